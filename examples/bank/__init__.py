"""A bank: accounts as event-sourced aggregates on eventvault (run `python examples/bank/app.py`)."""
