"""Contract: a hypothesis state machine drives an engine and a plain model side by side."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from eventvault import (
    EventStore,
    ExpectedVersion,
    NewEvent,
    StreamAppend,
    StreamState,
    WrongExpectedVersionError,
)
from eventvault.testing.contract.base import ContractBase, EngineSpec

__all__ = ["StatefulContract"]

STREAMS = ["cart-1", "cart-2", "order-1", "order-22"]
TYPES = ["Added", "Removed", "Checked"]
MODES = ["any", "no_stream", "exists", "exact", "stale"]


@dataclass
class Model:
    """The plain model: streams as lists, the log as a list, nothing else."""

    streams: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    log: list[tuple[str, int, str, int]] = field(default_factory=list)
    counter: int = 0

    def version(self, stream: str) -> int | None:
        events = self.streams.get(stream)
        return len(events) - 1 if events else None

    def expected(self, stream: str, mode: str) -> ExpectedVersion:
        version = self.version(stream)
        if mode == "any":
            return StreamState.ANY
        if mode == "no_stream":
            return StreamState.NO_STREAM
        if mode == "exists":
            return StreamState.STREAM_EXISTS
        if mode == "exact":
            return 0 if version is None else version
        return (version or 0) + 1

    def accepts(self, stream: str, expected: ExpectedVersion) -> bool:
        version = self.version(stream)
        if expected is StreamState.ANY:
            return True
        if expected is StreamState.NO_STREAM:
            return version is None
        if expected is StreamState.STREAM_EXISTS:
            return version is not None
        return expected == version

    def new_events(self, types: list[str]) -> list[NewEvent]:
        batch = []
        for event_type in types:
            self.counter += 1
            batch.append(NewEvent(event_type, {"n": self.counter}))
        return batch

    def record(self, stream: str, batch: list[NewEvent]) -> None:
        events = self.streams.setdefault(stream, [])
        for event in batch:
            number = event.data["n"]  # type: ignore[index]
            assert isinstance(number, int)
            self.log.append((stream, len(events), event.event_type, number))
            events.append((event.event_type, number))


def _machine(engine: EngineSpec) -> type[RuleBasedStateMachine]:
    class StoreMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.store: EventStore = engine.fresh()
            self.model = Model()

        def teardown(self) -> None:
            self.store.close()

        @rule(
            stream=st.sampled_from(STREAMS),
            types=st.lists(st.sampled_from(TYPES), min_size=1, max_size=3),
            mode=st.sampled_from(MODES),
        )
        def append(self, stream: str, types: list[str], mode: str) -> None:
            expected = self.model.expected(stream, mode)
            batch = self.model.new_events(types)
            if self.model.accepts(stream, expected):
                result = self.store.append_to_stream(stream, batch, expected_version=expected)
                self.model.record(stream, batch)
                assert result.stream_position == self.model.version(stream)
            else:
                try:
                    self.store.append_to_stream(stream, batch, expected_version=expected)
                except WrongExpectedVersionError as error:
                    assert error.actual == self.model.version(stream)
                else:
                    raise AssertionError(f"append to {stream} at {expected!r} should conflict")

        @rule(
            first=st.sampled_from(STREAMS),
            second=st.sampled_from(STREAMS),
            first_mode=st.sampled_from(MODES),
            second_mode=st.sampled_from(MODES),
        )
        def append_to_two_streams(
            self, first: str, second: str, first_mode: str, second_mode: str
        ) -> None:
            if first == second:
                return
            plan = [
                (first, self.model.expected(first, first_mode), self.model.new_events(["Added"])),
                (
                    second,
                    self.model.expected(second, second_mode),
                    self.model.new_events(["Checked", "Added"]),
                ),
            ]
            appends = [StreamAppend(name, batch, expected) for name, expected, batch in plan]
            accepted = all(self.model.accepts(name, expected) for name, expected, _ in plan)
            if accepted:
                self.store.append_to_streams(appends)
                for name, _, batch in plan:
                    self.model.record(name, batch)
            else:
                try:
                    self.store.append_to_streams(appends)
                except WrongExpectedVersionError:
                    pass
                else:
                    raise AssertionError("multi-stream append should conflict")

        @rule(
            stream=st.sampled_from(STREAMS),
            start=st.integers(min_value=0, max_value=8),
            backwards=st.booleans(),
            limit=st.none() | st.integers(min_value=0, max_value=5),
        )
        def read_stream(self, stream: str, start: int, backwards: bool, limit: int | None) -> None:
            model = [
                (position, kind, number)
                for position, (kind, number) in enumerate(self.model.streams.get(stream, []))
            ]
            if backwards:
                model = [m for m in model if m[0] <= start][::-1]
            else:
                model = [m for m in model if m[0] >= start]
            if limit is not None:
                model = model[:limit]
            got = [
                (e.stream_position, e.event_type, e.data["n"])
                for e in self.store.read_stream(
                    stream, from_position=start, backwards=backwards, limit=limit
                )
            ]
            assert got == model

        @rule(
            skip=st.integers(min_value=0, max_value=10),
            backwards=st.booleans(),
            types=st.none() | st.lists(st.sampled_from(TYPES), min_size=1, max_size=2),
            prefix=st.none() | st.sampled_from(["cart-", "order-2", "o"]),
        )
        def read_all(
            self, skip: int, backwards: bool, types: list[str] | None, prefix: str | None
        ) -> None:
            everything = list(self.store.read_all())
            after = everything[skip - 1].global_position if 0 < skip <= len(everything) else 0
            model = [
                (stream, position, kind, number)
                for (stream, position, kind, number), event in zip(
                    self.model.log, everything, strict=True
                )
                if (
                    after == 0
                    or (
                        event.global_position < after
                        if backwards
                        else event.global_position > after
                    )
                )
                and (types is None or kind in types)
                and (prefix is None or stream.startswith(prefix))
            ]
            if backwards:
                model = model[::-1]
            got = [
                (e.stream_name, e.stream_position, e.event_type, e.data["n"])
                for e in self.store.read_all(
                    after=after, backwards=backwards, event_types=types, stream_prefix=prefix
                )
            ]
            assert got == model

        @invariant()
        def versions_and_log_match(self) -> None:
            for stream in STREAMS:
                assert self.store.get_stream_version(stream) == self.model.version(stream)
            log = [(e.stream_name, e.stream_position) for e in self.store.read_all()]
            assert log == [(s, p) for s, p, _, _ in self.model.log]
            positions = [e.global_position for e in self.store.read_all()]
            assert positions == sorted(set(positions))

    return StoreMachine


class StatefulContract(ContractBase):
    """Random appends, conflicts and reads find no difference between engine and model."""

    def test_random_operations_match_the_model(self, engine: EngineSpec) -> None:
        run_state_machine_as_test(  # type: ignore[no-untyped-call, unused-ignore]
            _machine(engine),
            settings=settings(
                max_examples=100,
                stateful_step_count=30,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
