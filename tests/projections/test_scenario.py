"""ProjectionScenario: given events, then the read model, in memory."""

from __future__ import annotations

import pytest

from eventvault import NewEvent
from eventvault.testing import ProjectionScenario

from .helpers import located
from .model import Collector, Counter, Deposited, Picky, Totals, Withdrawn


def test_given_events_then_the_read_model() -> None:
    with ProjectionScenario(Totals()) as scenario:
        scenario.given("account-1", Deposited(10), Withdrawn(3)).given("account-2", Deposited(5))
        scenario.given("audit-1", Deposited(99))  # another category: not for Totals
        scenario.then(
            "SELECT stream, balance, events FROM totals ORDER BY stream",
            [("account-1", 7, 2), ("account-2", 5, 1)],
        )
        # More events later: applied from the checkpoint, once.
        scenario.given("account-2", Deposited(1))
        assert scenario.query("SELECT balance FROM totals WHERE stream = ?", ("account-2",)) == [
            (6,)
        ]


def test_then_names_the_rows_that_differ() -> None:
    scenario = ProjectionScenario(Totals()).given("account-1", Deposited(10))
    with pytest.raises(
        AssertionError, match=r"! 0: expected \('account-1', 11\), got \('account-1', 10\)"
    ):
        scenario.then("SELECT stream, balance FROM totals", [("account-1", 11)])


def test_a_read_model_meant_for_another_database_is_tested_in_memory() -> None:
    elsewhere = located(Totals, "postgresql://nobody@nowhere.invalid/reports")()
    scenario = ProjectionScenario(elsewhere).given("account-1", Deposited(4))
    scenario.then("SELECT balance FROM totals", [(4,)])


def test_raw_handlers_take_new_events() -> None:
    scenario = ProjectionScenario(Counter()).given(
        "account-1", NewEvent("Deposited", {"amount": 1}), NewEvent("Other", {})
    )
    scenario.then("SELECT global_position, times FROM applied", [(1, 1)])


def test_then_fails_gives_the_failure_and_query_reports_it() -> None:
    scenario = ProjectionScenario(Picky()).given("account-1", Deposited(1), Deposited(13))
    failure = scenario.then_fails(ValueError, match="unlucky")
    assert (failure.stream_name, failure.stream_position) == ("account-1", 1)
    with pytest.raises(AssertionError, match=r"stopped at account-1@1 \(Deposited\)"):
        scenario.query("SELECT * FROM seen")
    with pytest.raises(AssertionError, match="failed with ValueError"):
        scenario.then_fails(KeyError)
    with pytest.raises(AssertionError, match="every event was applied"):
        ProjectionScenario(Picky()).given("account-1", Deposited(1)).then_fails(ValueError)


def test_a_sink_receives_the_events_given() -> None:
    sink = Collector()
    ProjectionScenario(sink).given("account-1", Deposited(1), Deposited(2)).run()
    assert sink.received == [(1, 1), (2, 2)]


def test_typed_events_need_a_registry_and_a_projection_instance() -> None:
    with pytest.raises(AssertionError, match="has no registry"):
        ProjectionScenario(Counter()).given("account-1", Deposited(1))
    with pytest.raises(TypeError, match="projection instance"):
        ProjectionScenario(Totals)  # type: ignore[type-var]
