"""Evolving events, one module per kind of change, each with its upcaster (docs/schema-registry.md).

Each module declares the classes of version 1 (`BEFORE`) and of the new version (`AFTER`), its
`upcasters`, and `evolve(store)`, which writes version-1 events, registers the new version as an
application does at start-up, and returns what the application then reads.
"""
