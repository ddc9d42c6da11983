"""`python -m eventvault.cli`: the same as the `eventvault` console script."""

from eventvault.cli.app import main

main()
