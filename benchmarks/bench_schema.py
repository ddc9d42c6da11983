"""The schema registry: what validated appends and upcasting on read cost, side by side with
the same work without them, taking turns within each round (benchmarks/README.md).

Run: `python benchmarks/bench_schema.py [--quick] [--rounds 7] [--events 1000000] [--json PATH]`.

1. one-event appends to a SQLite file store (WAL, synchronous=FULL), validation on vs off;
   target: validation adds at most 25 % (rate ratio on/off >= 0.80).
2. 1,000-event appends, the same; target: at most 50 % (ratio >= 0.67).
1m, 2m. the same on the in-memory engine, where an append costs no sync: informative.
3. reading N events (1,000,000 by default) of version 1 with `read_all` and decoding each with
   `EventRegistry.decode`: once through an upcaster to the version-2 class, once as the
   version-1 class; target: upcasting costs at most 2x (time ratio <= 2.0).
4. the same events as one aggregate's stream, loaded with `Repository.get`: informative.
5. the validator candidates on realistic event schemas, compiled once, validating decoded
   payloads (the measurement of ADR 0010): informative.

Every event carries bench_core's payload, `{"amount": n, "currency": "EUR", "note": "coffee"}`,
checked against a closed object schema with an integer minimum, an enum and a maxLength.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import sys
import time
import timeit
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import msgspec
from _common import (
    BenchmarkSetupError,
    Stat,
    Table,
    bench_dir,
    format_rate,
    format_ratio,
    interleave,
    machine_info,
    print_table,
    summarize,
    timed,
    write_json,
)

import eventvault
from eventvault import EventStore, NewEvent, StreamState
from eventvault.aggregates import Aggregate, EventRegistry, Repository, applies
from eventvault.schema import SchemaRegistry, Upcasters, class_schema

DEPOSIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "amount": {"type": "integer", "minimum": 0},
        "currency": {"enum": ["EUR", "USD", "GBP"]},
        "note": {"type": "string", "maxLength": 200},
    },
    "required": ["amount", "currency"],
    "additionalProperties": False,
}


def payload(n: int) -> dict[str, object]:
    return {"amount": n, "currency": "EUR", "note": "coffee"}


# -- 1, 2: appends --------------------------------------------------------------------------


def _open(url: str, validated: bool) -> EventStore:
    store = eventvault.connect(url)
    registry = SchemaRegistry(store)
    registry.register("MoneyDeposited", DEPOSIT_SCHEMA)
    if validated:
        registry.enforce()
    return store


def _one_event_appends(store: EventStore, count: int, stream: str) -> float:
    version = store.get_stream_version(stream)
    expected = StreamState.NO_STREAM if version is None else version

    def run() -> None:
        position = expected
        for n in range(count):
            result = store.append_to_stream(
                stream,
                [NewEvent("MoneyDeposited", payload(n), metadata={"actor": "bench"})],
                expected_version=position,
            )
            position = result.stream_position

    return count / timed(run)


def _batch_appends(store: EventStore, batches: int, size: int, prefix: str, round_no: int) -> float:
    prepared = [
        [NewEvent("MoneyDeposited", payload(n), metadata={"actor": "bench"}) for n in range(size)]
        for _ in range(batches)
    ]

    def run() -> None:
        for index, events in enumerate(prepared):
            store.append_to_stream(
                f"{prefix}-{round_no}-{index}", events, expected_version=StreamState.NO_STREAM
            )

    return batches * size / timed(run)


def measure_appends(
    engine: Literal["sqlite", "memory"],
    kind: Literal["one", "batch"],
    rounds: int,
    quick: bool,
    folder: Path,
) -> dict[str, list[float]]:
    urls = {
        name: (str(folder / f"{engine}-{kind}-{name}.db") if engine == "sqlite" else "memory://")
        for name in ("validation on", "validation off")
    }
    stores = {name: _open(url, name == "validation on") for name, url in urls.items()}
    counters = dict.fromkeys(stores, 0)
    one_count = 20 if quick else (300 if engine == "sqlite" else 5000)
    batches = 1 if quick else (5 if engine == "sqlite" else 20)

    def contender(name: str) -> Callable[[], float]:
        store = stores[name]

        def sample() -> float:
            counters[name] += 1
            if kind == "one":
                return _one_event_appends(store, one_count, "account-1")
            return _batch_appends(store, batches, 1000, "batch", counters[name])

        return sample

    try:
        for name in stores:  # warm-up, untimed
            contender(name)()
        return interleave({name: contender(name) for name in stores}, rounds)
    finally:
        for store in stores.values():
            store.close()


# -- 3, 4: upcasting on read ----------------------------------------------------------------


class DepositedV1(msgspec.Struct, frozen=True):
    amount: int
    currency: str
    note: str = ""


class DepositedV2(msgspec.Struct, frozen=True):
    amount_cents: int
    currency: str
    note: str = ""


def _registries() -> tuple[EventRegistry, EventRegistry, Upcasters]:
    old, new = EventRegistry(), EventRegistry()
    old.register(DepositedV1, name="MoneyDeposited", version=1)
    new.register(DepositedV2, name="MoneyDeposited", version=2)
    upcasters = Upcasters()

    @upcasters.upcaster(
        "MoneyDeposited", from_version=1, examples=[{"amount": 5, "currency": "EUR"}]
    )
    def to_cents(data: dict[str, Any]) -> dict[str, Any]:
        data["amount_cents"] = data.pop("amount") * 100
        return data

    return old, new, upcasters


class Balance(msgspec.Struct):
    total: int = 0


class AccountV1(Aggregate[Balance]):
    category = "account"
    state_type = Balance

    @applies(DepositedV1)
    def _deposited(self, event: DepositedV1) -> None:
        self.state.total += event.amount


class AccountV2(Aggregate[Balance]):
    category = "account"
    state_type = Balance

    @applies(DepositedV2)
    def _deposited(self, event: DepositedV2) -> None:
        self.state.total += event.amount_cents


def _fill_for_reading(url: str, events: int) -> tuple[EventRegistry, EventRegistry]:
    """A store of `events` version-1 events in one stream (`account-1`), with the registry
    evolved to version 2 (mode NONE: a rename) and its upcaster checked."""
    old, new, upcasters = _registries()
    with eventvault.connect(url) as store:
        registry = SchemaRegistry(store)
        registry.sync(old)
        size = 1000
        for start in range(0, events, size):
            batch = [
                old.to_new_event(DepositedV1(n, "EUR", "coffee"))
                for n in range(start, min(events, start + size))
            ]
            store.append_to_stream("account-1", batch, expected_version=StreamState.ANY)
        registry.set_mode("MoneyDeposited", "NONE")
        registry.sync(new, upcasters=upcasters)
    return old, new


def measure_reads(url: str, events: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    old, new = _fill_for_reading(url, events)
    store = eventvault.connect(url)
    try:

        def read_with(events_registry: EventRegistry) -> Callable[[], float]:
            decode = events_registry.decode

            def sample() -> float:
                def run() -> None:
                    for recorded in store.read_all():
                        decode(recorded)

                return events / timed(run)

            return sample

        def load_with(
            aggregate: type[Aggregate[Balance]], events_registry: EventRegistry
        ) -> Callable[[], float]:
            repository = Repository(aggregate, store, events_registry)

            def sample() -> float:
                return events / timed(lambda: repository.get("1"))

            return sample

        readers = {"upcast to v2": read_with(new), "as v1, no upcast": read_with(old)}
        loaders = {
            "upcast to v2": load_with(AccountV2, new),
            "as v1, no upcast": load_with(AccountV1, old),
        }
        for sample in (*readers.values(), *loaders.values()):
            sample()  # warm-up, untimed
        return {
            "read_all + decode": interleave(readers, rounds),
            "Repository.get": interleave(loaders, rounds),
        }
    finally:
        store.close()


# -- 5: the validator candidates --------------------------------------------------------------


class Line(msgspec.Struct, frozen=True):
    sku: str
    quantity: int
    price_cents: int


class OrderPlaced(msgspec.Struct, frozen=True):
    order_id: uuid.UUID
    customer: str
    placed_at: datetime.datetime
    currency: Literal["EUR", "USD", "GBP"]
    lines: list[Line]
    note: str | None = None
    coupon: str | None = None


def _candidates(schema: dict[str, Any]) -> dict[str, Callable[[object], bool]]:
    """Each installed candidate compiled once for `schema`, as `is_valid(decoded payload)`."""
    found: dict[str, Callable[[object], bool]] = {}
    with _absent_ok():
        rs = importlib.import_module("jsonschema_rs")
        found["jsonschema-rs"] = rs.Draft202012Validator(schema).is_valid
    with _absent_ok():
        js = importlib.import_module("jsonschema")
        found["jsonschema"] = js.Draft202012Validator(schema).is_valid
    with _absent_ok():
        fast = importlib.import_module("fastjsonschema")
        compiled = fast.compile(schema)
        error = fast.JsonSchemaValueException

        def fast_is_valid(value: object) -> bool:
            try:
                compiled(value)
            except error:
                return False
            return True

        found["fastjsonschema"] = fast_is_valid
    with _absent_ok():
        jschon = importlib.import_module("jschon")
        jschon.create_catalog("2020-12")
        jschon_schema = jschon.JSONSchema(schema)
        found["jschon"] = lambda value: bool(jschon_schema.evaluate(jschon.JSON(value)).valid)
    return found


class _absent_ok:
    """Skip a candidate that is not installed (`pip install -e '.[bench]'` installs them)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, value: object, traceback: object) -> bool:
        return isinstance(value, ImportError)


CORRECTNESS: list[tuple[dict[str, Any], object, bool]] = [
    ({"type": "array", "prefixItems": [{"type": "integer"}], "items": False}, [1], True),
    ({"type": "array", "prefixItems": [{"type": "integer"}], "items": False}, [1, 2], False),
    ({"type": "object", "properties": {"a": {}}, "unevaluatedProperties": False}, {"b": 1}, False),
    ({"type": "object", "dependentRequired": {"a": ["b"]}}, {"a": 1}, False),
    ({"$defs": {"x": {"type": "integer"}}, "$ref": "#/$defs/x", "minimum": 5}, 3, False),
    ({"contains": {"type": "integer"}, "minContains": 2}, [1, "a"], False),
    ({"type": "integer"}, 1.0, True),
]


def measure_candidates(quick: bool) -> list[tuple[str, str, float, str]]:
    """(candidate, schema, microseconds per validation, draft 2020-12 cases passed)."""
    order = class_schema(OrderPlaced)
    deposit = {**DEPOSIT_SCHEMA, "$schema": "https://json-schema.org/draft/2020-12/schema"}
    payloads = {
        "OrderPlaced (nested, 2 lines)": (
            order,
            msgspec.json.encode(
                OrderPlaced(
                    uuid.uuid4(),
                    "ada",
                    datetime.datetime.now(datetime.UTC),
                    "EUR",
                    [Line("a", 1, 100), Line("b", 2, 250)],
                    note="gift",
                )
            ),
        ),
        "MoneyDeposited (flat)": (deposit, msgspec.json.encode(payload(5))),
    }
    rows: list[tuple[str, str, float, str]] = []
    correct: dict[str, int] = {}
    for case_schema, instance, expected in CORRECTNESS:
        full = {"$schema": "https://json-schema.org/draft/2020-12/schema", **case_schema}
        for name, is_valid in _candidates(full).items():
            try:
                ok = is_valid(instance) is expected
            except Exception:
                ok = False
            correct[name] = correct.get(name, 0) + ok
    for label, (schema, raw) in payloads.items():
        for name, is_valid in _candidates(schema).items():
            decoded = msgspec.json.decode(raw)
            if not is_valid(decoded):
                raise BenchmarkSetupError(f"{name} refuses a valid {label}")
            number = 200 if quick else (2000 if name in ("jsonschema", "jschon") else 50_000)

            def check(
                validate: Callable[[object], bool] = is_valid, payload_bytes: bytes = raw
            ) -> bool:
                return validate(msgspec.json.decode(payload_bytes))

            best = min(timeit.repeat(check, number=number, repeat=3 if quick else 7)) / number
            rows.append((name, label, best * 1e6, f"{correct.get(name, 0)}/{len(CORRECTNESS)}"))
    return rows


# -- the run ----------------------------------------------------------------------------------


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7; quick 2)")
    parser.add_argument(
        "--events", type=int, help="events read in measures 3 and 4 (default 1,000,000)"
    )
    parser.add_argument("--stat", choices=["best", "median"], default="best")
    parser.add_argument("--dir", help="directory for the database files (not on tmpfs)")
    parser.add_argument("--allow-tmpfs", action="store_true", help="accept a memory file system")
    parser.add_argument("--plain", action="store_true", help="plain-text tables, without Rich")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> int:
    rounds = args.rounds or (2 if args.quick else 7)
    events = args.events or (2000 if args.quick else 1_000_000)
    stat: Stat = args.stat
    figures: dict[str, object] = {"rounds": rounds, "events": events, "stat": stat}
    rows: list[tuple[str, ...]] = []
    missed = False
    with bench_dir("evbench-schema-", args.dir, allow_memory_fs=args.allow_tmpfs) as folder:
        figures["machine"] = machine_info(folder)
        for engine, kind, label, floor in (
            ("sqlite", "one", "1. one-event appends, SQLite", 0.80),
            ("sqlite", "batch", "2. 1,000-event appends, SQLite", 1 / 1.5),
            ("memory", "one", "1m. one-event appends, memory", None),
            ("memory", "batch", "2m. 1,000-event appends, memory", None),
        ):
            samples = measure_appends(engine, kind, rounds, args.quick, folder)  # type: ignore[arg-type]
            on = summarize(samples["validation on"], stat)
            off = summarize(samples["validation off"], stat)
            ratio = on / off
            met = "" if floor is None else ("met" if ratio >= floor else "MISSED")
            missed = missed or met == "MISSED"
            added = f"{(off / on - 1) * 100:+.0f} %"
            target = (
                "informative" if floor is None else f">= {floor:.2f}x (adds <= {1 / floor - 1:.0%})"
            )
            rows.append(
                (label, format_rate(on), format_rate(off), format_ratio(ratio), added, target, met)
            )
            figures[label] = {"samples": samples, "ratio": ratio}
        reads = measure_reads(str(folder / "reads.db"), events, rounds)
        for label, floor in (("read_all + decode", 2.0), ("Repository.get", None)):
            samples = reads[label]
            upcast = summarize(samples["upcast to v2"], stat)
            plain = summarize(samples["as v1, no upcast"], stat)
            cost = plain / upcast
            met = "" if floor is None else ("met" if cost <= floor else "MISSED")
            missed = missed or met == "MISSED"
            number = "3." if floor else "4."
            rows.append(
                (
                    f"{number} {events:,} events, {label}",
                    format_rate(upcast),
                    format_rate(plain),
                    format_ratio(upcast / plain),
                    f"{cost:.2f}x the time",
                    "informative" if floor is None else "<= 2.0x the time",
                    met,
                )
            )
            figures[f"read: {label}"] = {"samples": samples, "time_ratio": cost}
    print_table(
        Table(
            "The schema registry: validation and upcasting, each beside the same work without",
            ("measure", "with", "without", "rate ratio", "cost", "target", ""),
            tuple(rows),
            frozenset({1, 2, 3, 4}),
        ),
        plain=args.plain,
    )
    candidates = measure_candidates(args.quick)
    figures["candidates"] = [
        {"candidate": c, "schema": s, "microseconds": us, "draft_2020_12": ok}
        for c, s, us, ok in candidates
    ]
    print_table(
        Table(
            "5. validator candidates: one validation of a decoded payload (best of 7)",
            ("candidate", "schema", "µs", "draft 2020-12 cases"),
            tuple((c, s, f"{us:.2f}", ok) for c, s, us, ok in candidates),
            frozenset({2}),
        ),
        plain=args.plain,
    )
    if args.json:
        write_json(args.json, figures)
    return 1 if (missed and args.check) else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    started = time.perf_counter()
    try:
        code = run(args)
    except BenchmarkSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
