"""Public testing tools: the contract suite any engine can run.

`eventvault.testing.contract` holds the guarantees of the store as pytest classes (it needs
pytest and hypothesis, the `test` extra).
"""

__all__: list[str] = []
