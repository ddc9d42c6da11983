"""Public testing tools.

- `AggregateScenario`: given events / when a command / then events or an error, for
  aggregates, without a database.
- `eventvault.testing.contract`: the guarantees of the store as pytest classes, which any engine
  can run (it needs pytest and hypothesis, the `test` extra).
"""

from eventvault.testing.aggregates import AggregateScenario

__all__ = ["AggregateScenario"]
