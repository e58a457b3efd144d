"""The rules :func:`loomdb.sql.compile.compile_query` applies, in order, to
turn a PostgreSQL query into the backend's SQL over branch views.

Each rule is a function ``rule(tree, ctx) -> tree`` in its own module: it
reads the query tree and the :class:`~loomdb.sql.rules.context.Context` the
rules share, may modify the tree it is given (``compile_query`` hands the
first rule a copy), and returns the tree the next rule receives. What a rule
learns about the query (result names and types, parameter types, the view of
each table) it records in the root's ``meta`` under the keys of
:mod:`loomdb.sql.rules.context`, as sqlglot's ``annotate_types`` records
types on the nodes. Rules do no I/O: a table's view SQL comes from the
context's callback.
"""
