"""The `eventvault` command line: append, read, follow, export, import and copy event stores.

Run `eventvault --help`, or see docs/cli.md. `main` is the entry point of the console script.
"""

from eventvault.cli.app import app, main

__all__ = ["app", "main"]
