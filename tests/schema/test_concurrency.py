"""Registry changes from several processes at once serialize: each decides on the registry as
the one before it left it, and a change that no longer applies fails clearly, writing
nothing. Real processes, on the engines several processes can share."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import eventvault
from eventvault.errors import RegistryChangeConflictError, SchemaRegistrationError
from eventvault.schema import SchemaRegistry

PROCESSES = 4
BASE: dict[str, Any] = {
    "type": "object",
    "properties": {"owner": {"type": "string"}},
    "additionalProperties": False,
}


def _schema(worker: int) -> dict[str, Any]:
    """A schema compatible (BACKWARD) with BASE and with every other worker's."""
    return {**BASE, "description": f"written by worker {worker}"}


def _register(url: str, worker: int, version: int | None, start: float, results: Any) -> None:
    with eventvault.connect(url) as store:
        registry = SchemaRegistry(store, actor=f"worker-{worker}")
        registry.state()
        time.sleep(max(0.0, start - time.time()))
        try:
            result = registry.register("AccountOpened", _schema(worker), version=version)
            results.put((worker, "ok", result.version))
        except RegistryChangeConflictError as exc:
            results.put((worker, "conflict", str(exc)))
        except SchemaRegistrationError as exc:
            # It began after the winner had committed: a plain refusal, no race.
            results.put((worker, "refused", str(exc)))
        except Exception as exc:
            results.put((worker, "error", f"{type(exc).__name__}: {exc}"))


def _race(url: str, version: int | None) -> list[tuple[int, str, object]]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    start = time.time() + 5.0
    workers = [
        context.Process(target=_register, args=(url, worker, version, start, results))
        for worker in range(PROCESSES)
    ]
    for process in workers:
        process.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    return sorted(outcomes)


def test_racing_registrations_of_one_version_let_exactly_one_win(shared_url: str) -> None:
    with eventvault.connect(shared_url) as store:
        SchemaRegistry(store).register("AccountOpened", BASE)
    outcomes = _race(shared_url, version=2)
    winners = [o for o in outcomes if o[1] == "ok"]
    losers = [o for o in outcomes if o[1] in ("conflict", "refused")]
    assert len(winners) == 1, outcomes
    assert len(losers) == PROCESSES - 1, outcomes
    for _, _, message in losers:
        assert "version 2 is registered with another schema" in str(message)
        assert f"by worker-{winners[0][0]}" in str(message)
    with eventvault.connect(shared_url) as store:
        registry = SchemaRegistry(store)
        history = registry.history()
        assert [(c.change_id, c.version) for c in history] == [(1, 1), (2, 2)]
        assert history[1].changed_by == f"worker-{winners[0][0]}"
        assert registry.get("AccountOpened", 2).schema["description"] == (
            f"written by worker {winners[0][0]}"
        )


def test_racing_registrations_of_the_next_version_each_get_their_own(shared_url: str) -> None:
    with eventvault.connect(shared_url) as store:
        SchemaRegistry(store).register("AccountOpened", BASE)
    outcomes = _race(shared_url, version=None)
    assert [o[1] for o in outcomes] == ["ok"] * PROCESSES, outcomes
    assert sorted(int(str(o[2])) for o in outcomes) == list(range(2, PROCESSES + 2))
    with eventvault.connect(shared_url) as store:
        history = SchemaRegistry(store).history()
    assert [c.change_id for c in history] == list(range(1, PROCESSES + 2))
    assert [c.version for c in history] == list(range(1, PROCESSES + 2))
