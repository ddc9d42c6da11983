"""Child processes for the contract suite: writers racing on a stream, crash victims, tailers.

Run as `python -m eventvault.testing._workers COMMAND URL ...`; each prints one JSON line per
result so the parent can check what was acknowledged.
"""

from __future__ import annotations

import sys
import threading
import time
import uuid

import msgspec

from eventvault import NewEvent, StreamState, WrongExpectedVersionError, connect
from eventvault.store.seam import Transaction

__all__ = ["main", "resent_batch"]


_PRINTING = threading.Lock()


def _print(line: dict[str, object]) -> None:
    """Print one JSON line and flush it, whole even when threads print at once."""
    with _PRINTING:
        sys.stdout.write(msgspec.json.encode(line).decode() + "\n")
        sys.stdout.flush()


def race(url: str, stream_name: str, attempts: int, worker: str) -> None:
    """Try `attempts` times to append to one stream at the version just read; print each win."""
    with connect(url) as store:
        for attempt in range(attempts):
            version = store.get_stream_version(stream_name)
            expected = StreamState.NO_STREAM if version is None else version
            try:
                result = store.append_to_stream(
                    stream_name,
                    [NewEvent("Raced", {"worker": worker, "attempt": attempt})],
                    expected_version=expected,
                )
            except WrongExpectedVersionError:
                continue
            _print({"worker": worker, "attempt": attempt, "position": result.stream_position})


def append_forever(url: str, stream_name: str, worker: str, threads: int = 1) -> None:
    """Append events of 1 to 3 events each from `threads` threads until killed; print each
    acknowledged append. Threads append to streams of their own, so that group commits hold
    appends of several threads."""
    with connect(url) as store:

        def work(thread: int) -> None:
            number = 0
            while True:
                size = number % 3 + 1
                stream = f"{stream_name}-{thread}-{number % 5}"
                events = [
                    NewEvent("Crashed", {"worker": worker, "n": number, "i": i, "pad": "x" * 200})
                    for i in range(size)
                ]
                result = store.append_to_stream(stream, events, expected_version=StreamState.ANY)
                line = {
                    "n": number,
                    "stream": stream,
                    "position": result.stream_position,
                    "global": result.global_position,
                    "size": size,
                }
                _print(line)
                number += 1

        for thread in range(1, threads):
            threading.Thread(target=work, args=(thread,), daemon=True).start()
        work(0)


def resent_batch(seed: uuid.UUID, round_: int) -> tuple[list[NewEvent], int | StreamState]:
    """The append that every sender sends in round `round_`: three events with ids derived from
    `seed`, and the expected version that fits the rounds before it."""
    events = [
        NewEvent("Resent", {"round": round_, "i": i}, event_id=uuid.uuid5(seed, f"{round_}:{i}"))
        for i in range(3)
    ]
    return events, StreamState.NO_STREAM if round_ == 0 else 3 * round_ - 1


def resend(url: str, stream_name: str, seed: str, rounds: int, threads: int) -> None:
    """Say `ready`, wait for a line on stdin, then send each round's append from `threads`
    threads at once, as clients retrying the same request do; print every result."""
    with connect(url) as store:
        _print({"ready": True})
        sys.stdin.readline()

        def send(round_: int) -> None:
            events, expected = resent_batch(uuid.UUID(seed), round_)
            result = store.append_to_stream(stream_name, events, expected_version=expected)
            _print(
                {
                    "round": round_,
                    "position": result.stream_position,
                    "global": result.global_position,
                }
            )

        for round_ in range(rounds):
            senders = [threading.Thread(target=send, args=(round_,)) for _ in range(threads)]
            for sender in senders:
                sender.start()
            for sender in senders:
                sender.join()


def append_timed(url: str, stream_name: str, count: int, pause: float) -> None:
    """Append `count` events, one at a time, printing the wall-clock time each was acknowledged."""
    with connect(url) as store:
        for number in range(count):
            time.sleep(pause)
            result = store.append_to_stream(
                stream_name, [NewEvent("Timed", {"n": number})], expected_version=StreamState.ANY
            )
            _print({"global": result.global_position, "acked_at": time.time()})


def use_counts(url: str) -> None:
    """Bring the contract suite's counter component up to date (processes racing to)."""
    from eventvault.testing.contract.seam import COUNTS

    with connect(url) as store:
        store.use(COUNTS)


def transact_and_hang(url: str, name: str) -> None:
    """Write a counter and append in one transaction, say so, then hang before committing."""
    from eventvault.testing.contract.seam import COUNTS, bump

    with connect(url) as store:
        store.use(COUNTS)

        def work(tx: Transaction) -> None:
            bump(tx, name, 1)
            tx.append_to_stream(f"{name}-1", [NewEvent("E", {})], expected_version=StreamState.ANY)
            sys.stdout.write("inside\n")
            sys.stdout.flush()
            time.sleep(3600)

        store.run_transaction(work)


def transact_forever(url: str, name: str) -> None:
    """Run transactions of a counter +3 and three events until killed; print each commit."""
    from eventvault.testing.contract.seam import COUNTS, bump

    with connect(url) as store:
        store.use(COUNTS)
        number = 0
        while True:

            def work(tx: Transaction, number: int = number) -> None:
                bump(tx, name, 3)
                tx.append_to_stream(
                    f"{name}-{number % 4}",
                    [
                        NewEvent("Counted", {"n": number, "i": i, "pad": "x" * 100})
                        for i in range(3)
                    ],
                    expected_version=StreamState.ANY,
                )

            store.run_transaction(work)
            _print({"n": number})
            number += 1


def main(argv: list[str]) -> None:
    """Dispatch a worker command."""
    command, url, stream_name, *rest = argv
    if command == "race":
        race(url, stream_name, int(rest[0]), rest[1])
    elif command == "append-forever":
        append_forever(url, stream_name, rest[0], int(rest[1]) if len(rest) > 1 else 1)
    elif command == "resend":
        resend(url, stream_name, rest[0], int(rest[1]), int(rest[2]))
    elif command == "append-timed":
        append_timed(url, stream_name, int(rest[0]), float(rest[1]))
    elif command == "use-counts":
        use_counts(url)
    elif command == "transact-and-hang":
        transact_and_hang(url, stream_name)
    elif command == "transact-forever":
        transact_forever(url, stream_name)
    else:
        raise SystemExit(f"unknown worker command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
