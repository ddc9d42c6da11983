"""Tests of the `eventvault` command line."""
