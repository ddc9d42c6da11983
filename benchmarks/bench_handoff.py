"""The ceiling of one-event appends from many threads on this machine, whatever the engine does.

Measure 2 of `bench_core.py` asks 16 threads, each appending one event per call, for 4x the
raw single-thread one-event-per-commit rate. Each such call must put its thread to sleep until
the commit that holds it returns, and wake it again. This script measures what that hand-off
alone allows: eventvault's group committer with a commit function that does no SQL and only
sleeps, with the GIL released, for as long as one raw commit takes here (measured first, on a
durable SQLite file). The rate it reaches is an upper bound for any engine built on one Python
thread per appending caller.

Run: `python benchmarks/bench_handoff.py [--threads 16] [--calls 400] [--rounds 5]`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
import uuid

from eventvault.store._groupcommit import GroupCommitter


def raw_commit_seconds(directory: str, commits: int, rounds: int) -> float:
    """Seconds per INSERT and COMMIT on a WAL, synchronous=FULL SQLite file, from the best of
    `rounds` rounds of `commits` commits (the figure `bench_core.py` uses for its raw rate)."""
    conn = sqlite3.connect(os.path.join(directory, "raw.db"), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE events (position INTEGER PRIMARY KEY, id BLOB, data BLOB, h BLOB)")
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for n in range(commits):
            payload = json.dumps({"n": n}).encode()
            conn.execute("BEGIN")
            conn.execute(
                "INSERT INTO events (id, data, h) VALUES (?, ?, ?)",
                (uuid.uuid4().bytes, payload, hashlib.sha256(payload).digest()),
            )
            conn.execute("COMMIT")
        best = min(best, (time.perf_counter() - start) / commits)
    conn.close()
    return best


def handoff_rate(threads: int, calls: int, commit_seconds: float, caller_work: float) -> float:
    """Requests per second through a `GroupCommitter` whose commit only sleeps.

    Args:
        threads: caller threads, each submitting `calls` requests one after another.
        calls: requests per thread.
        commit_seconds: how long each commit sleeps (the GIL is released while it does).
        caller_work: seconds of Python each caller spends before each request (0: none).
    """

    def commit(requests: list[int]) -> list[int | BaseException]:
        time.sleep(commit_seconds)
        return list(requests)

    committer: GroupCommitter[int, int] = GroupCommitter(commit)

    def run() -> None:
        for n in range(calls):
            if caller_work:
                until = time.perf_counter() + caller_work
                while time.perf_counter() < until:
                    pass
            committer.submit(n)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * calls / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    """Measure and print the ceiling; returns 0."""
    parser = argparse.ArgumentParser(description="ceiling of one-event appends from N threads")
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--calls", type=int, default=400, help="requests per thread per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="eventvault-handoff-") as directory:
        commit = raw_commit_seconds(directory, 300, args.rounds)
    raw_rate = 1 / commit
    print(
        f"raw INSERT+COMMIT on this disk: {commit * 1e6:.0f} us (best round), {raw_rate:,.0f}/s; "
        f"4x that is {4 * raw_rate:,.0f}/s"
    )
    for work in (0.0, 10e-6):
        rates = [handoff_rate(args.threads, args.calls, commit, work) for _ in range(args.rounds)]
        best = max(rates)
        print(
            f"{args.threads} threads, commit sleeps {commit * 1e6:.0f} us, "
            f"{work * 1e6:.0f} us of Python per call: best {best:,.0f}/s = "
            f"{best / raw_rate:.2f}x raw (rounds: {', '.join(f'{r:,.0f}' for r in rates)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
