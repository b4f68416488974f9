"""The composition root: builds, owns, starts and closes everything one hub process runs.

:mod:`cryptowire.app.wiring` builds the parts from settings (store, bus, cluster, sources,
notify, RFQ rate providers, the token admin); :class:`cryptowire.app.node.Node` owns them and
their lifecycle. Nothing else constructs a concrete backend.
"""
