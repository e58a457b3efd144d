"""``python -m loomdb.cli``: the ``loomdb`` command."""

from . import main

main()
