"""The HTTP API against a real `eventvault serve`: problem details, auth, actor, metrics, health."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

import eventvault
from eventvault import NewEvent, StreamState
from eventvault.audit import AuditLedger, SubjectKeys
from eventvault.errors import AuthenticationError, PermissionDeniedError
from eventvault.server.tokens import CACHE_SECONDS, create_token, revoke_token
from tests.server.serving import Served

EVENT = {"event_type": "Opened", "data": {"owner": "ada"}}


def _token(db: Path, name: str, *scopes: str, prefixes: tuple[str, ...] = ()) -> str:
    with eventvault.connect(str(db)) as store:
        return create_token(store, name, list(scopes), list(prefixes))[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    folder = tmp_path_factory.mktemp("api")
    db = folder / "api.db"
    with eventvault.connect(str(db)):
        pass
    server = Served(str(db), "--port", "0", "--heartbeat", "0.2")
    try:
        yield server, db
    finally:
        server.terminate()


@pytest.fixture(scope="module")
def admin(served: tuple[Served, Path]) -> Iterator[httpx.Client]:
    server, db = served
    token = _token(db, "root", "admin")
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {token}"}) as client:
        yield client


def _head(client: httpx.Client) -> int:
    return int(client.get("/v1/head").json()["head_position"])


def _problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem: dict[str, object] = response.json()
    assert problem["status"] == status
    return problem


def test_a_wrong_expected_version_is_409_naming_the_expected_and_actual_version(
    admin: httpx.Client,
) -> None:
    body = {"expected_version": "no_stream", "events": [EVENT]}
    assert admin.post("/v1/streams/conflict-1", json=body).status_code == 201
    problem = _problem(admin.post("/v1/streams/conflict-1", json=body), 409)
    assert problem["error"] == "WrongExpectedVersionError"
    assert problem["args"] == {"stream_name": "conflict-1", "expected": "no_stream", "actual": 0}
    assert "expected no stream, actual version 0" in str(problem["detail"])


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid"),
        (b'{"expected_version": "any", "events": []}', "at least one event"),
        (b'{"expected_version": "maybe", "events": [{"event_type": "A", "data": {}}]}', "maybe"),
        (b'{"expected_version": -3, "events": [{"event_type": "A", "data": {}}]}', "-3"),
        (b'{"expected_version": "any", "events": [{"event_type": "A", "data": [1]}]}', "data"),
        (b'{"expected_version": "any", "events": [{"event_type": "", "data": {}}]}', "event_type"),
        (b'{"expected_version": "any", "events": [{"event_type": "A", "data": {}, "x": 1}]}', "x"),
        (
            b'{"expected_version": "any", "events": [{"event_type": "A", "data": {"n": NaN}}]}',
            "valid",
        ),
    ],
)
def test_bad_input_is_400_with_the_reason_and_writes_nothing(
    admin: httpx.Client, body: bytes, reason: str
) -> None:
    head = _head(admin)
    response = admin.post(
        "/v1/streams/bad-1", content=body, headers={"content-type": "application/json"}
    )
    problem = _problem(response, 400)
    assert reason in str(problem["detail"])
    assert _head(admin) == head


def test_query_parameters_of_the_wrong_type_are_400_naming_them(admin: httpx.Client) -> None:
    assert "after" in str(_problem(admin.get("/v1/log?after=abc"), 400)["detail"])
    assert "limit" in str(_problem(admin.get("/v1/log?limit=-1"), 400)["detail"])
    assert "stream_prefix" in str(_problem(admin.get("/v1/log?stream_prefix=%09"), 400)["detail"])


def test_an_unknown_route_and_a_wrong_method_are_problems(admin: httpx.Client) -> None:
    _problem(admin.get("/v1/nowhere"), 404)
    _problem(admin.delete("/v1/streams/a-1"), 405)


def test_a_body_over_the_limit_is_413_and_an_event_over_the_store_limit_too(
    tmp_path: Path,
) -> None:
    server = Served(
        str(tmp_path / "small.db"),
        "--port",
        "0",
        "--allow-anonymous",
        "read,write",
        "--max-request-bytes",
        "2000",
    )
    try:
        big = {
            "expected_version": "any",
            "events": [{"event_type": "A", "data": {"x": "y" * 3000}}],
        }
        problem = _problem(httpx.post(f"{server.url}/v1/streams/s-1", json=big), 413)
        assert "2000 bytes" in str(problem["detail"])
        assert httpx.get(f"{server.url}/v1/head").json()["head_position"] == 0
    finally:
        server.terminate()


def test_without_a_token_a_request_is_401_unless_anonymous_access_is_enabled(
    served: tuple[Served, Path],
) -> None:
    server, _ = served
    problem = _problem(httpx.get(f"{server.url}/v1/head"), 401)
    assert "bearer token" in str(problem["detail"])
    response = httpx.post(
        f"{server.url}/v1/streams/a-1", json={"expected_version": "any", "events": [EVENT]}
    )
    _problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
    bogus = {"authorization": "Bearer ev_0123456789abcdef_notarealsecretnotarealsecret"}
    _problem(httpx.get(f"{server.url}/v1/head", headers=bogus), 401)
    _problem(httpx.get(f"{server.url}/v1/head", headers={"authorization": "Basic eDp5"}), 401)
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_scopes_and_stream_prefixes_are_enforced_and_a_denied_append_leaves_no_trace(
    served: tuple[Served, Path], admin: httpx.Client
) -> None:
    server, db = served
    reader = {"authorization": f"Bearer {_token(db, 'reader', 'read')}"}
    orders = {
        "authorization": f"Bearer {_token(db, 'orders', 'read', 'write', prefixes=('order-',))}"
    }
    head = _head(admin)
    body = {"expected_version": "any", "events": [EVENT]}
    denied = [
        httpx.post(f"{server.url}/v1/streams/order-9", json=body, headers=reader),
        httpx.post(f"{server.url}/v1/streams/user-9", json=body, headers=orders),
        httpx.post(
            f"{server.url}/v1/appends",
            json={
                "appends": [
                    {"stream_name": "order-9", **body},
                    {"stream_name": "user-9", **body},
                ]
            },
            headers=orders,
        ),
        httpx.get(f"{server.url}/v1/streams/user-9", headers=orders),
        httpx.get(f"{server.url}/v1/log", headers=orders),
        httpx.get(f"{server.url}/v1/export", headers=orders),
        httpx.get(f"{server.url}/metrics", headers=reader),
    ]
    for response in denied:
        assert _problem(response, 403)["error"] == "PermissionDeniedError"
    assert _head(admin) == head
    assert admin.get("/v1/versions/order-9").json()["version"] is None
    allowed = httpx.post(f"{server.url}/v1/streams/order-9", json=body, headers=orders)
    assert allowed.status_code == 201
    log = httpx.get(f"{server.url}/v1/log?stream_prefix=order-", headers=orders)
    assert [line["stream_name"] for line in map(msgspec.json.decode, log.text.splitlines())] == [
        "order-9"
    ]


def test_the_token_that_appended_is_the_actor_and_a_client_cannot_forge_it(
    served: tuple[Served, Path], admin: httpx.Client
) -> None:
    server, db = served
    token = _token(db, "cashier-7", "write", "read")
    client = eventvault.connect(f"http://:{token}@{server.url.removeprefix('http://')}")
    try:
        client.append_to_stream(
            "till-1",
            [NewEvent("Sold", {"n": 1}), NewEvent("Sold", {"n": 2}, metadata={"note": "x"})],
            expected_version=StreamState.NO_STREAM,
        )
        assert [e.metadata for e in client.read_stream("till-1")] == [
            {"actor": "cashier-7"},
            {"note": "x", "actor": "cashier-7"},
        ]
        with pytest.raises(PermissionDeniedError, match="actor 'boss'"):
            client.append_to_stream(
                "till-1",
                [NewEvent("Sold", {"n": 3}, metadata={"actor": "boss"})],
                expected_version=StreamState.ANY,
            )
        assert client.get_stream_version("till-1") == 1
    finally:
        client.close()


def test_a_revoked_token_is_refused_within_the_cache_time(served: tuple[Served, Path]) -> None:
    server, db = served
    token = _token(db, "leaver", "read")
    headers = {"authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/v1/head", headers=headers).status_code == 200
    with eventvault.connect(str(db)) as store:
        revoke_token(store, "leaver")
    deadline = time.monotonic() + CACHE_SECONDS + 2
    while httpx.get(f"{server.url}/v1/head", headers=headers).status_code == 200:
        assert time.monotonic() < deadline, "the revoked token still works"
        time.sleep(0.2)
    with pytest.raises(AuthenticationError):
        eventvault.connect(f"http://:{token}@{server.url.removeprefix('http://')}")


def test_tokens_are_stored_hashed(served: tuple[Served, Path]) -> None:
    _, db = served
    token = _token(db, "hashed", "read")
    # ev_<id>_<secret>: the secret is URL-safe base64 and may itself hold "_".
    prefix, token_id, secret = token.split("_", 2)
    assert (prefix, len(token_id), len(secret)) == ("ev", 16, 43)
    assert secret.encode() not in db.read_bytes()
    assert secret.encode() not in Path(f"{db}-wal").read_bytes()


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics_count_appends_reads_and_subscribers(admin: httpx.Client) -> None:
    before = admin.get("/metrics").text
    body = {"expected_version": "any", "events": [EVENT, EVENT, EVENT]}
    assert admin.post("/v1/streams/metered-1", json=body).status_code == 201
    assert admin.get("/v1/streams/metered-1").status_code == 200
    with admin.stream("GET", "/v1/subscriptions/log?heartbeat=0.1") as stream:
        chunks = stream.iter_bytes()
        assert next(chunks) == b": subscribed\n\n"
        text = admin.get("/metrics").text
    for name, grown in [
        ("eventvault_appended_events_total", 3),
        ('eventvault_read_events_total{route="stream"}', 3),
    ]:
        assert _metric(text, name) - _metric(before, name) == grown
    assert _metric(text, "eventvault_subscribers") - _metric(before, "eventvault_subscribers") == 1
    assert "eventvault_append_batch_events_bucket" in text
    assert "eventvault_head_position" in text
    assert (
        'eventvault_http_requests_total{route="/v1/streams/{stream_name:path}",status="201"}'
        in text
    )


def test_health_answers_without_a_token(served: tuple[Served, Path]) -> None:
    server, _ = served
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok"
    assert health["engine"] == "sqlite"


def test_the_openapi_document_and_the_docs_page_are_published(served: tuple[Served, Path]) -> None:
    server, _ = served
    document = httpx.get(f"{server.url}/openapi.json").json()
    assert "/v1/streams/{stream_name}" in document["paths"]
    assert httpx.get(f"{server.url}/docs").status_code == 200


def test_the_server_package_is_imported_by_nothing_but_the_command_line() -> None:
    code = (
        "import sys, eventvault, eventvault.store.http.client, eventvault.aggregates;"
        "assert not [m for m in sys.modules if m.startswith(('eventvault.server', 'fastapi'))]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_schema_registry_is_served_and_enforced_on_appends(
    admin: httpx.Client, served: tuple[Served, Path]
) -> None:
    schema = {
        "type": "object",
        "properties": {"amount": {"type": "integer"}},
        "required": ["amount"],
    }
    created = admin.post("/v1/schemas/Deposited", json={"schema": schema})
    assert created.status_code == 201, created.text
    assert created.json() == {"event_type": "Deposited", "version": 1, "created": True}
    assert admin.post("/v1/schemas/Deposited", json={"schema": schema}).status_code == 200
    listed = admin.get("/v1/schemas").json()["types"]
    assert {"event_type": "Deposited", "versions": [1], "mode": "BACKWARD"} in listed
    (version,) = admin.get("/v1/schemas/Deposited").json()["versions"]
    assert version["registered_by"] == "root"
    assert version["schema"]["properties"] == schema["properties"]
    _problem(admin.get("/v1/schemas/Nothing"), 400)
    # A registration is held to the same body rules as every other request: malformed or
    # nested past what can be read is a 400 naming it, and nothing is registered.
    for broken in (b'{"schema": ', b'{"schema": ' + b'{"a": ' * 100_000 + b"1" + b"}" * 100_001):
        problem = _problem(admin.post("/v1/schemas/Broken", content=broken), 400)
        assert "registration" in str(problem["detail"])
    assert all(
        entry["event_type"] != "Broken" for entry in admin.get("/v1/schemas").json()["types"]
    )
    good = {"event_type": "Deposited", "data": {"amount": 5}}
    bad = {"event_type": "Deposited", "data": {"amount": "five"}}
    body = {"expected_version": "any", "events": [good]}
    assert admin.post("/v1/streams/acct-1", json=body).status_code == 201
    head = _head(admin)
    refused = admin.post(
        "/v1/streams/acct-1", json={"expected_version": "any", "events": [good, bad]}
    )
    assert refused.status_code == 400, refused.text
    assert "amount" in refused.json()["detail"]
    assert _head(admin) == head


# -- removal ------------------------------------------------------------------------------------


def _client(server: Served, token: str) -> eventvault.EventStore:
    return eventvault.connect(f"http://:{token}@{server.url.removeprefix('http://')}")


def test_removal_needs_the_admin_scope_and_a_denied_one_leaves_no_trace(
    served: tuple[Served, Path], admin: httpx.Client
) -> None:
    server, db = served
    writer = {"authorization": f"Bearer {_token(db, 'clerk', 'read', 'write')}"}
    limited = {"authorization": f"Bearer {_token(db, 'cart-admin', 'admin', prefixes=('cart-',))}"}
    body = {"expected_version": "no_stream", "events": [EVENT, EVENT]}
    assert admin.post("/v1/streams/ledger-1", json=body).status_code == 201
    head = _head(admin)
    delete = {"stream_name": "ledger-1", "kind": "hard-delete", "reason": "closed"}
    truncate = {"stream_name": "ledger-1", "kind": "truncate", "before": 1, "reason": "old"}
    denied = [
        httpx.post(f"{server.url}/v1/removals", json=delete, headers=writer),
        httpx.post(f"{server.url}/v1/removals", json=truncate, headers=writer),
        httpx.post(f"{server.url}/v1/removals", json=delete, headers=limited),
        httpx.put(
            f"{server.url}/v1/metadata/ledger-1",
            json={"max_count": 1, "reason": "policy"},
            headers=writer,
        ),
        httpx.post(f"{server.url}/v1/retention", json={}, headers=writer),
        httpx.post(f"{server.url}/v1/retention", json={}, headers=limited),
        httpx.get(f"{server.url}/v1/events?stream_name=ledger-1&stream_position=0", headers=writer),
    ]
    for response in denied:
        assert _problem(response, 403)["error"] == "PermissionDeniedError"
    assert _head(admin) == head
    assert len(admin.get("/v1/streams/ledger-1").text.splitlines()) == 2
    assert admin.get("/v1/metadata/ledger-1").json() == {
        "stream_name": "ledger-1",
        "max_age_us": None,
        "max_count": None,
    }


def test_the_token_that_removes_is_the_removals_actor_and_a_client_cannot_forge_it(
    served: tuple[Served, Path], admin: httpx.Client
) -> None:
    server, db = served
    client = _client(server, _token(db, "dpo", "admin"))
    try:
        client.append_to_stream(
            "subject-1",
            [NewEvent("Noted", {"n": n}) for n in range(3)],
            expected_version=StreamState.NO_STREAM,
        )
        head = client.head_position()
        with pytest.raises(PermissionDeniedError, match="actor 'boss'"):
            client.delete_stream("subject-1", hard=True, actor="boss", reason="erasure")
        with pytest.raises(PermissionDeniedError, match="actor 'boss'"):
            client.truncate_stream("subject-1", before=1, actor="boss", reason="erasure")
        assert client.head_position() == head
        removal = client.truncate_stream("subject-1", before=1, actor="dpo", reason="erasure")
        assert (removal.count, removal.record_position) == (1, head + 1)
        # A request that names no actor is recorded as the token's.
        answer = admin.post(
            "/v1/removals",
            json={"stream_name": "subject-1", "kind": "truncate", "before": 2, "reason": "again"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["count"] == 1
        records = [
            e for e in client.read_stream("$removals") if e.data["stream_name"] == "subject-1"
        ]
        assert [(r.data["actor"], r.metadata["actor"], r.data["reason"]) for r in records] == [
            ("dpo", "dpo", "erasure"),
            ("root", "root", "again"),
        ]
    finally:
        client.close()


def test_an_anonymous_removal_names_its_actor(tmp_path: Path) -> None:
    server = Served(
        str(tmp_path / "anonymous.db"), "--port", "0", "--allow-anonymous", "read,write,admin"
    )
    try:
        body = {"expected_version": "any", "events": [EVENT]}
        assert httpx.post(f"{server.url}/v1/streams/cart-1", json=body).status_code == 201
        unnamed = {"stream_name": "cart-1", "kind": "soft-delete", "reason": "abandoned"}
        problem = _problem(httpx.post(f"{server.url}/v1/removals", json=unnamed), 400)
        assert "actor" in str(problem["detail"])
        named = httpx.post(f"{server.url}/v1/removals", json={**unnamed, "actor": "ops"})
        assert named.status_code == 200, named.text
        assert named.json()["kind"] == "soft-delete"
        log = httpx.get(f"{server.url}/v1/log").text.splitlines()
        assert [msgspec.json.decode(line)["stream_name"] for line in log] == ["$removals"]
    finally:
        server.terminate()


# -- the audit ledger behind a server ------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "eventvault.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_an_audited_store_is_exported_and_copied_through_its_server_whose_export_checks_the_tree(
    tmp_path: Path,
) -> None:
    db = tmp_path / "audited.db"
    with eventvault.connect(str(db)) as store:
        keys = SubjectKeys(store)
        keys.declare("Registered", {"email": "customer"})
        keys.append_to_stream(
            "customer-1",
            [NewEvent("Registered", {"customer": "c-1", "email": "ada@example.com"})],
            expected_version=StreamState.NO_STREAM,
        )
        store.append_to_stream(
            "cart-1",
            [NewEvent("Added", {"n": n}) for n in range(2)],
            expected_version=StreamState.NO_STREAM,
        )
        AuditLedger(store).catch_up()
    server = Served(str(db), "--port", "0", "--allow-anonymous", "read,admin")
    try:
        exported = _cli("export", str(tmp_path / "backup.jsonl"), "--url", server.url)
        assert exported.returncode == 0, exported.stderr
        assert "exported 3 events" in exported.stderr
        copied = _cli("copy", server.url, str(tmp_path / "copy.db"))
        assert copied.returncode == 0, copied.stderr
        # The keys stay with the server's store: the copy says so rather than failing or
        # leaving it to be found out from erased fields.
        assert "subject keys stay beside the server's store" in copied.stderr
        with eventvault.connect(str(tmp_path / "copy.db")) as copy:
            assert copy.head_position() == 3
        # A global position moved behind the store's back passes every hash chain: only the
        # tree sees it, and the server's export checks the tree.
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE events SET global_position = 9000 WHERE global_position = 2")
        conn.close()
        answer = httpx.get(f"{server.url}/v1/export", timeout=30)
        assert answer.status_code == 200
        assert '"record":"end"' not in answer.text

        def logged() -> bool:
            return any(
                "audit tree" in line and "global position 2" in line and "missing" in line
                for line in server.log
            )

        # The server logs the failure as the response ends; its stderr is read by a thread.
        deadline = time.monotonic() + 30
        while not logged() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert logged(), server.log
    finally:
        server.terminate()
