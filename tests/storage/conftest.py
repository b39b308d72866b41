"""Fixtures of the storage contract suite: every test runs once per backend.

A test gets `storage` (opened, on a fresh database) and `runner`, the event
loop the storage was opened on: `runner.run(coroutine)`. Storages bind their
connections to that loop, so a test's coroutines must run on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from openwaba.storage.base import Storage
from openwaba.storage.sqlite import SQLiteStorage

BACKENDS = ("sqlite", "postgres")

StorageFactory = Callable[[], Storage]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def storage_factory(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> StorageFactory:
    """Makes (unopened) storages that all see the same database of this test."""
    if backend == "sqlite":
        path = tmp_path / "openwaba.db"
        return lambda: SQLiteStorage(path)
    url: str = request.getfixturevalue("pg_url")
    from openwaba.storage.postgres import PostgresStorage  # SQLite-only runs do not need the module

    return lambda: PostgresStorage(url)


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop_runner:
        yield loop_runner


@pytest.fixture
def storage(storage_factory: StorageFactory, runner: asyncio.Runner) -> Iterator[Storage]:
    opened = storage_factory()
    runner.run(opened.open())
    try:
        yield opened
    finally:
        runner.run(opened.close())


@pytest.fixture
def node_factory(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> StorageFactory:
    """Storages that share one database as nodes do: PostgreSQL, or a SQLite file
    opened as the workers of one `openwaba serve --workers N` open it."""
    if backend == "sqlite":
        path = tmp_path / "openwaba.db"
        return lambda: SQLiteStorage(path, shared=True)
    factory: StorageFactory = request.getfixturevalue("storage_factory")
    return factory


@pytest.fixture
def node(node_factory: StorageFactory, runner: asyncio.Runner) -> Iterator[Storage]:
    opened = node_factory()
    runner.run(opened.open())
    try:
        yield opened
    finally:
        runner.run(opened.close())
