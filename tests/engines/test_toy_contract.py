"""The whole contract suite on the toy engine, opened by `connect` through its entry point.

tests/contract/ runs the suite on the toy engine through a factory; here the same classes run
on URLs, so the registry, the entry point and `connect` are what the suite exercises.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from eventvault.testing.contract import EngineSpec
from tests.contract import test_contract

# Every class of tests/contract/, collected again here, where `engine` is the toy engine.
globals().update(
    {name: value for name, value in vars(test_contract).items() if name.startswith("Test")}
)


@pytest.fixture
def engine(toy_entry_point: Path) -> EngineSpec:
    """A toy store of its own for each test, reached as `toy://NAME`."""
    prefix = f"toy://contract{uuid.uuid4().hex[:12]}"
    counter = iter(range(10**9))

    def new_url() -> str:
        return f"{prefix}fresh{next(counter)}"

    return EngineSpec("toy-url", prefix, durable=True, multiprocess=False, new_url=new_url)
