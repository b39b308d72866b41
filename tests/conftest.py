"""Fixtures shared by every suite: a throwaway PostgreSQL cluster and fresh databases on it.

The cluster starts on first use (SQLite-only runs never start it) and is stopped
and deleted at the end of the session, whatever the tests did. Each test asking
for `pg_url` gets its own database, copied from a template migrated once per
session, and dropped again after the test.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator

import pytest

from pgcluster import Cluster, find_bindir

TEMPLATE_DB = "openwaba_template"
_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[Cluster]:
    """A running PostgreSQL server of this session. Missing binaries fail the test: scripts/test installs them."""
    bindir = find_bindir()
    if bindir is None:
        pytest.fail(
            "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found; run scripts/test, which installs "
            "them, or point OPENWABA_PG_BINDIR at a directory holding them"
        )
    cluster = Cluster(bindir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_template(pg_cluster: Cluster) -> str:
    """The name of a database holding openwaba's migrated schema, to copy databases from."""
    from openwaba.storage.postgres import migrate  # only PostgreSQL tests need the module

    pg_cluster.create_database(TEMPLATE_DB)
    asyncio.run(migrate(pg_cluster.url(TEMPLATE_DB)))
    # A template must have no sessions when it is copied; nobody has any business connecting to it later.
    pg_cluster.execute(f"ALTER DATABASE {TEMPLATE_DB} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
    pg_cluster.disconnect_all(TEMPLATE_DB)
    return TEMPLATE_DB


def _fresh_database(cluster: Cluster, template: str | None) -> Iterator[str]:
    name = f"openwaba_test_{next(_database_numbers)}"
    cluster.create_database(name, template=template)
    try:
        yield cluster.url(name)
    finally:
        cluster.drop_database(name)


@pytest.fixture
def pg_url(pg_cluster: Cluster, pg_template: str) -> Iterator[str]:
    """The URL of a fresh database of this test's own, with openwaba's schema (unix socket)."""
    yield from _fresh_database(pg_cluster, pg_template)


@pytest.fixture
def pg_empty_url(pg_cluster: Cluster) -> Iterator[str]:
    """The URL of a fresh, empty database (no migrations applied): for tests of the migrations themselves."""
    yield from _fresh_database(pg_cluster, "template0")


# Each test's reports by phase (`item.rep_setup`, `item.rep_call`), so fixtures can tell
# at teardown whether their test failed and print what they hold.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
