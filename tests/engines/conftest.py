"""Fixtures that make the toy engine known: by `register_engine`, or by an entry point."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eventvault.store.registry import ENTRY_POINT_GROUP, register_engine, unregister_engine

from .toy import open_toy


def install_distribution(site: Path, name: str, entry_points: dict[str, str]) -> None:
    """Write a distribution's metadata (as pip would) into `site`, declaring engines."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    lines = [f"[{ENTRY_POINT_GROUP}]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def toy_registered() -> Iterator[None]:
    """The toy engine, registered for `toy://` by a call."""
    register_engine("toy", open_toy)
    try:
        yield
    finally:
        unregister_engine("toy")


@pytest.fixture
def toy_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The toy engine, declared for `toy://` by an installed distribution's entry point."""
    site = tmp_path / "site-packages"
    install_distribution(site, "toy_engine", {"toy": "tests.engines.toy:open_toy"})
    monkeypatch.syspath_prepend(str(site))
    unregister_engine("toy")
    try:
        yield site
    finally:
        unregister_engine("toy")
        sys.modules.pop("toy_engine", None)
