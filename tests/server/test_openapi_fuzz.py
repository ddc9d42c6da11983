"""schemathesis against the published OpenAPI document of a real server: no server error and no
response that breaks the document (status, content type, headers, body schema).

Subscriptions are left out (an event stream never ends, so no fuzzed request of one would),
and so is the check that every schema-valid request is accepted: the document cannot state every
rule of the store (a stream named twice in one multi-stream append, names with control
characters, integers written as 1.0), which are refused with 400 and their reason. The check
that schema-violating requests are refused runs on the request bodies only: in a query string
every value is text, and a "violating" `event_type=true` is an event type like any other.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.server.serving import Served


@pytest.mark.slow
def test_fuzzing_the_api_finds_no_server_error_and_no_response_off_the_document(
    tmp_path: Path,
) -> None:
    server = Served(
        str(tmp_path / "fuzz.db"),
        "--port",
        "0",
        "--allow-anonymous",
        "read,write,admin",
        "--heartbeat",
        "0.1",
    )
    try:
        runs = [
            ("positive_data_acceptance,negative_data_rejection", [], "60"),
            ("positive_data_acceptance", ["--include-method", "POST"], "45"),
        ]
        for excluded, only, seconds in runs:
            result = subprocess.run(
                [
                    str(Path(sys.executable).with_name("st")),
                    "run",
                    f"{server.url}/openapi.json",
                    "--checks",
                    "all",
                    "--exclude-checks",
                    excluded,
                    *only,
                    "--exclude-path-regex",
                    "^/v1/subscriptions",
                    "--max-examples",
                    "10",
                    "--max-time",
                    seconds,
                    "--request-timeout",
                    "20",
                    "--seed",
                    "7",
                    "--no-color",
                ],
                capture_output=True,
                text=True,
                timeout=300,
                env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.server.schemathesis_hooks"},
                cwd=Path(__file__).parents[2],
            )
            assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
        assert not any("Traceback" in line or "failed unexpectedly" in line for line in server.log)
    finally:
        server.terminate()
