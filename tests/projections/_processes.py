"""Processes the crash and ownership tests start, kill and stop.

python -m tests.projections._processes runner STORE_URL READ_MODEL_URL|- OWNER LEASE
python -m tests.projections._processes writer STORE_URL COUNT START PAUSE
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import sys
import time

import eventvault
from eventvault.projections import ProjectionRunner

from .helpers import append_activity, located
from .model import Counter, Totals


def projections_at(read_model: str) -> list[Totals | Counter]:
    url = None if read_model == "-" else read_model
    return [located(Totals, url)(), located(Counter, url)()]


def run(store_url: str, read_model: str, owner: str, lease: float) -> None:
    """Run Totals and Counter until SIGTERM (then exit 0 after the current batch)."""
    logging.basicConfig(level=logging.INFO, format=f"{owner} %(asctime)s %(message)s")
    # A test that finds the runner stuck asks for the stacks of its threads.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    with eventvault.connect(store_url) as store:
        runner = ProjectionRunner(
            store, projections_at(read_model), owner=owner, lease_seconds=lease
        )
        print("started", flush=True)
        runner.run()
    print("stopped", flush=True)


def write(store_url: str, count: int, start: int, pause: float) -> None:
    """Append `count` events, one at a time, `pause` seconds apart."""
    with eventvault.connect(store_url) as store:
        for n in range(start, start + count):
            append_activity(store, 1, start=n)
            time.sleep(pause)


def main(argv: list[str]) -> None:
    command, *args = argv
    if command == "runner":
        run(args[0], args[1], args[2], float(args[3]))
    elif command == "writer":
        write(args[0], int(args[1]), int(args[2]), float(args[3]))
    else:
        raise SystemExit(f"unknown command {command!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
