"""The OpenAPI document (`src/openwaba/openapi.json`, served at `GET /openapi.json`) is
the contract of openwaba's 360dialog dialect. These tests keep it honest:

* the served document is a valid OpenAPI 3.1 document whose `$ref`s all resolve;
* every route of the app is documented, and every documented operation is a route;
* schemathesis, loading the document from the live server, sends generated requests
  to every operation (examples, coverage and fuzzing phases) and checks that no
  answer is a 5xx and that every status code, content type and body is the one the
  document promises.

The schemathesis run is bounded (a fixed number of examples per operation, a fixed
seed, a subprocess timeout). Operations that would lock the run out are excluded:
creating an API key revokes the key every other request uses.

Webhook URLs are the one way generated input could make the server reach out: a
`before_call` hook (this module, loaded by schemathesis through SCHEMATHESIS_HOOKS)
replaces every URL the server would accept with the test's own loopback receiver,
and the test checks afterwards that no other URL was ever stored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from .support import ALICE, API_KEY, KEY_HEADER, Receiver, Server, ServerFactory, http

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PARTNER_KEY = "e2e-contract-partner-key-5d1e"
SERVER_ENV: dict[str, str | None] = {
    "OPENWABA_SANDBOX_API_KEY": API_KEY,
    "OPENWABA_CLOCK": "manual",
    "OPENWABA_RETRY_JITTER": "0",
    "OPENWABA_WEBHOOK_TIMEOUT": "5",
    "OPENWABA_RATE_LIMITS": "false",  # generated traffic is not a client to throttle
    "OPENWABA_PARTNER_API_KEY": PARTNER_KEY,
}

# Creating an API key revokes the key every other request of the run carries.
EXCLUDED_OPERATIONS = ("createApiKey",)
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "ignored_auth",
)
MAX_EXAMPLES = int(os.environ.get("OPENWABA_CONTRACT_EXAMPLES", "25"))
SEED = os.environ.get("OPENWABA_CONTRACT_SEED", "20240611")
RUN_TIMEOUT = 420.0  # seconds: a hung run fails instead of eating CI's budget

# --- the schemathesis hook (runs inside the `schemathesis run` process) ---------------------------

RECEIVER_ENV = "E2E_CONTRACT_RECEIVER_URL"
WEBHOOK_OPERATIONS = {
    ("POST", "/v1/configs/webhook"),
    ("POST", "/waba_webhook"),
    ("POST", "/multi_webhook"),
    ("PUT", "/multi_webhook"),
    ("PATCH", "/multi_webhook"),
}
CLOCK_STEP_MAX = 315_360_000  # ten years: the document's `advance_seconds` maximum


def _acceptable_url(value: object) -> bool:
    """Whether openwaba would accept `value` as a sandbox webhook URL (mirrors check_webhook_url)."""
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value.strip())
        _ = parts.port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def localise_webhook_urls(method: str, path: str, body: Any, receiver: str) -> None:
    """Point every URL the server would accept at `receiver` (in place)."""
    if (method.upper(), path) not in WEBHOOK_OPERATIONS or not isinstance(body, dict):
        return
    if _acceptable_url(body.get("url")):
        body["url"] = receiver
    destinations = body.get("destinations")
    if isinstance(destinations, list):
        for destination in destinations:
            if isinstance(destination, dict) and _acceptable_url(destination.get("url")):
                destination["url"] = receiver


def bound_clock_step(method: str, path: str, body: Any) -> None:
    """Keep the manual clock finite: the server accepts any step (see the report on the clock)."""
    if (method.upper(), path) != ("POST", "/sandbox/clock") or not isinstance(body, dict):
        return
    step = body.get("advance_seconds")
    if isinstance(step, int | float) and not isinstance(step, bool) and step > CLOCK_STEP_MAX:
        body["advance_seconds"] = CLOCK_STEP_MAX


if os.environ.get(RECEIVER_ENV):  # imported by `schemathesis run` through SCHEMATHESIS_HOOKS
    import schemathesis

    @schemathesis.hook
    def before_call(context: Any, case: Any, kwargs: Any) -> None:
        method, path = case.operation.method, case.operation.path
        localise_webhook_urls(method, path, case.body, os.environ[RECEIVER_ENV])
        bound_clock_step(method, path, case.body)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def contract_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    factory = ServerFactory(tmp_path_factory.mktemp("contract"), SERVER_ENV)
    try:
        yield factory()
    finally:
        factory.close()


def document() -> dict[str, Any]:
    return json.loads((REPO / "src" / "openwaba" / "openapi.json").read_text())


def _operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in methods}


def _resolve(doc: dict[str, Any], pointer: str) -> Any:
    assert pointer.startswith("#/"), f"only local $refs are used: {pointer}"
    node: Any = doc
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


# --- the document ---------------------------------------------------------------------------------


def test_served_document_is_valid_openapi_31(contract_server: Server) -> None:
    import schemathesis

    reply = http("GET", contract_server.url + "/openapi.json")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("application/json")
    served = reply.json()
    assert served == document(), "GET /openapi.json must serve src/openwaba/openapi.json"
    assert served["openapi"].startswith("3.1.")
    schemathesis.openapi.from_dict(served).validate()  # the OpenAPI 3.1 meta-schema
    unresolved = sorted({r for r in _refs(served) if _try_resolve(served, r) is None})
    assert not unresolved, f"$refs that resolve to nothing: {unresolved}"
    for path, item in served["paths"].items():
        for method, operation in item.items():
            assert operation.get("responses"), f"{method.upper()} {path} documents no response"
            assert "security" in operation, f"{method.upper()} {path} does not say how it is authenticated"


def _try_resolve(doc: dict[str, Any], pointer: str) -> Any:
    try:
        return _resolve(doc, pointer)
    except (KeyError, AssertionError):
        return None


def test_every_route_is_documented(tmp_path: Path) -> None:
    from starlette.routing import Route

    from openwaba.config import Settings
    from openwaba.http.app import create_app

    app = create_app(Settings(data_dir=tmp_path / "data"))
    served: set[tuple[str, str]] = set()
    for route in app.routes:
        assert isinstance(route, Route), f"unexpected route type {route!r}"
        path = route.path_format  # `/{media_id:digits}` -> `/{media_id}`
        served |= {(method, path) for method in route.methods or () if method != "HEAD"}
    documented = _operations(document())
    assert not served - documented, f"routes missing from openapi.json: {sorted(served - documented)}"
    assert not documented - served, f"documented operations the app does not serve: {sorted(documented - served)}"


# --- the server against the document --------------------------------------------------------------


def test_server_conforms_to_document(contract_server: Server) -> None:
    receiver = Receiver()
    receiver.start()
    try:
        _seed(contract_server, receiver)
        result, elapsed = _run_schemathesis(contract_server, receiver.url)
    finally:
        receiver.stop()
    output = result.stdout + result.stderr
    print(f"schemathesis ran {elapsed:.0f} s")
    assert result.returncode == 0, f"schemathesis found problems:\n{output[-30000:]}\n{contract_server.log_tail(6000)}"
    stored = contract_server.query("SELECT url FROM destinations")
    strays = [row["url"] for row in stored if urlsplit(row["url"]).hostname not in ("127.0.0.1", "localhost")]
    assert not strays, f"webhook URLs other than the loopback receiver were stored: {strays}"


def _seed(srv: Server, receiver: Receiver) -> None:
    """Give the run something to find: a webhook, an inbound message, a send, their deliveries
    (delivery ids start at 1, the document's example)."""
    srv.set_webhook(receiver.url)
    srv.user_says(ALICE, "hello from the contract test")
    srv.send_text(ALICE, "hello back")
    srv.wait_for_deliveries(lambda rows: any(row["state"] == "delivered" for row in rows), what="a delivered webhook")


def _run_schemathesis(srv: Server, receiver_url: str) -> tuple[subprocess.CompletedProcess[str], float]:
    command = [
        str(Path(sys.executable).parent / "schemathesis"),
        "run",
        f"{srv.url}/openapi.json",
        "--url", srv.url,
        "--checks", ",".join(CHECKS),
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", SEED,
        "--workers", "2",
        "--request-timeout", "10",
        "--generation-database", "none",
        "--suppress-health-check", "all",
        "--header", f"{KEY_HEADER}: {API_KEY}",
        "--header", f"X-API-Key: {PARTNER_KEY}",
        "--no-color",
    ]
    for operation_id in EXCLUDED_OPERATIONS:
        command += ["--exclude-operation-id", operation_id]
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "e2e.test_openapi",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests"), os.environ.get("PYTHONPATH")])),
        RECEIVER_ENV: receiver_url,
    }
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=RUN_TIMEOUT,
                            stdin=subprocess.DEVNULL)
    return result, time.monotonic() - started
