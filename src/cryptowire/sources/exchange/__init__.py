"""The exchange seam: a venue is a declaration plus sans-I/O parsers; one shared supervisor
(:mod:`.connection`) and one source (:class:`.source.ExchangeSource`) serve them all.

How to declare a venue: see ``README.md`` in this package.
"""
