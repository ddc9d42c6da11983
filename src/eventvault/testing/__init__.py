"""Public testing tools.

- `AggregateScenario`: given events / when a command / then events or an error, for
  aggregates, without a database.
- `ProjectionScenario`: given events / then the read model (or the failure), for projections,
  in memory.
- `eventvault.testing.contract`: the guarantees of the store as pytest classes, which any engine
  can run (it needs pytest and hypothesis, the `test` extra).
"""

from eventvault.testing.aggregates import AggregateScenario
from eventvault.testing.projections import ProjectionScenario

__all__ = ["AggregateScenario", "ProjectionScenario"]
