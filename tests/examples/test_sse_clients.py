"""The SSE clients of examples/sse, in JavaScript and in shell, follow a real server."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import msgspec
import pytest

import eventvault
from eventvault import NewEvent, StreamState
from tests.server.serving import Served

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "sse"


@pytest.fixture
def served(tmp_path: Path) -> Served:
    server = Served(str(tmp_path / "sse.db"), "--port", "0", "--allow-anonymous", "read,write")
    with eventvault.connect(server.url) as client:
        client.append_to_stream(
            "order-1",
            [NewEvent("Placed", {"n": n}) for n in range(3)],
            expected_version=StreamState.NO_STREAM,
        )
    return server


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_javascript_client_prints_the_events_then_live_ones(served: Served) -> None:
    try:
        child = subprocess.Popen(
            ["node", str(EXAMPLES / "follow.mjs"), served.url, "4"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        first = [child.stdout.readline() for _ in range(3)]
        with eventvault.connect(served.url) as client:
            client.append_to_stream(
                "order-2", [NewEvent("Paid", {"n": 9})], expected_version=StreamState.ANY
            )
        out, _ = child.communicate(timeout=30)
        assert child.returncode == 0
        assert first == [f'{n + 1} order-1 Placed {{"n":{n}}}\n' for n in range(3)]
        assert out == '4 order-2 Paid {"n":9}\n'
    finally:
        served.terminate()


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_shell_client_prints_one_json_event_per_line(served: Served) -> None:
    try:
        child = subprocess.Popen(
            ["sh", str(EXAMPLES / "follow.sh"), served.url, "1"],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert child.stdout is not None
        lines = [child.stdout.readline() for _ in range(2)]
        # The script, curl and sed: the process group this test started.
        os.killpg(child.pid, signal.SIGTERM)
        child.communicate(timeout=30)
        events = [msgspec.json.decode(line) for line in lines]
        assert [(e["global_position"], e["data"]) for e in events] == [(2, {"n": 1}), (3, {"n": 2})]
    finally:
        served.terminate()
