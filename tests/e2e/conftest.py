"""Fixtures for the end-to-end tests: real `openwaba serve` processes and a real
webhook receiver, all on 127.0.0.1."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .support import API_KEY, Receiver, Server, ServerFactory, free_port

# Every server gets these unless a test says otherwise (a value of None removes one).
DEFAULT_ENV: dict[str, str | None] = {
    "OPENWABA_SANDBOX_API_KEY": API_KEY,
    "OPENWABA_CLOCK": "manual",
    "OPENWABA_RETRY_JITTER": "0",
    "OPENWABA_WEBHOOK_TIMEOUT": "5",
    # Most tests send bursts to one user to exercise delivery; the tests of
    # WhatsApp's throughput and pair rate limits switch them back on.
    "OPENWABA_RATE_LIMITS": "false",
}


def failed(request: pytest.FixtureRequest) -> bool:
    """Whether the test's set-up or call failed (tests/conftest.py records the reports)."""
    return any(getattr(request.node, f"rep_{when}", None) is not None
               and getattr(request.node, f"rep_{when}").failed for when in ("setup", "call"))


@pytest.fixture
def port() -> Callable[[], int]:
    """A helper that returns a free TCP port on 127.0.0.1."""
    return free_port


# Every test using `server` runs on both stores; OPENWABA_TEST_DATABASE=sqlite|postgres picks one.
STORES = [s for s in ("sqlite", "postgres") if os.environ.get("OPENWABA_TEST_DATABASE", s) == s]


@pytest.fixture(params=STORES)
def server(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServerFactory]:
    """`server(env=None, start=True) -> Server`: a real `openwaba serve` on a fresh
    data directory and port (and, for the postgres run, a fresh PostgreSQL database).
    Every server is stopped at teardown; on failure their output is printed."""
    databases = _postgres_databases(request) if request.param == "postgres" else None
    factory = ServerFactory(tmp_path, DEFAULT_ENV, databases)
    try:
        yield factory
    finally:
        factory.close()
        if failed(request):
            print(factory.report())


def _postgres_databases(request: pytest.FixtureRequest) -> Callable[[], str]:
    """A fresh PostgreSQL database for each server the test creates."""
    cluster = request.getfixturevalue("pg_cluster")
    template = request.getfixturevalue("pg_template")
    names = itertools.count(1)

    created: list[str] = []

    def fresh() -> str:
        name = f"e2e_{os.getpid()}_{id(request.node)}_{next(names)}"
        cluster.create_database(name, template=template)
        created.append(name)
        return str(cluster.url(name))

    def drop() -> None:  # runs after the fixture has stopped its servers
        for name in created:
            cluster.drop_database(name)

    request.addfinalizer(drop)
    return fresh


@pytest.fixture
def receiver(request: pytest.FixtureRequest) -> Iterator[Receiver]:
    """A started webhook receiver on 127.0.0.1 that records every request."""
    rec = Receiver()
    rec.start()
    try:
        yield rec
    finally:
        rec.stop()
        if failed(request):
            print(rec.describe())


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for a whole module, for tests that only read or get rejected."""
    factory = ServerFactory(tmp_path_factory.mktemp("shared"), DEFAULT_ENV)
    try:
        yield factory()
    finally:
        factory.close()
