"""The application's projections over HTTP: health and lag at /v1/projections and in /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx

import eventvault
from eventvault import StreamState
from eventvault.projections import ProjectionRunner
from tests.projections.helpers import append_activity
from tests.projections.model import Totals, deposit
from tests.server.serving import Served

ROOT = Path(__file__).resolve().parents[2]


def test_projections_show_their_state_and_lag_and_their_lag_is_a_metric(tmp_path: Path) -> None:
    db = str(tmp_path / "projected.db")
    with eventvault.connect(db) as store:
        append_activity(store, 40)
        for amount in (1, 13, 2):
            store.append_to_stream("account-9", [deposit(amount)], expected_version=StreamState.ANY)
        assert ProjectionRunner(store, [Totals()], lease_seconds=60).catch_up(30)
    server = Served(
        db,
        "--port",
        "0",
        "--allow-anonymous",
        "read,admin",
        "--projections",
        "tests.projections.cli_module",
        cwd=ROOT,
    )
    try:
        with httpx.Client(base_url=server.url) as client:
            listed = client.get("/v1/projections").json()["projections"]
            assert [(p["name"], p["state"], p["lag_events"]) for p in listed] == [
                ("totals", "stopped", 0),
                ("counter", "stopped", 43),
                ("picky", "stopped", 43),
            ]
            assert listed[0]["checkpoint"] == 43
            assert client.get("/v1/projections/counter").json()["lag_events"] == 43
            missing = client.get("/v1/projections/nothing")
            assert missing.status_code == 404
            assert "'totals'" in missing.json()["detail"]
            metrics = client.get("/metrics").text
            assert 'eventvault_projection_lag_events{projection="counter"} 43.0' in metrics
            assert 'eventvault_projection_lag_events{projection="totals"} 0.0' in metrics
    finally:
        server.terminate()
