"""Storage engines: one package per engine (``sqlite``, ``postgres``).

Upper layers use only :mod:`loomdb.backend.protocol`: the :class:`Backend`
contract and the detection functions of the optional abilities. An engine
package is imported only when a store of its kind is opened (see
:func:`loomdb.connect`), so its driver is needed only then.
"""
