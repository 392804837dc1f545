"""The city form standard and its pure engine: a form goes in, a state and effects come out.

Nothing in this package does network or database I/O; it reads only its own package data
(standard forms, gazetteer, catalogs).
"""
