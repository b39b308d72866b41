"""`openwaba migrate`: brings SQLite or PostgreSQL up to date, says what it did, and is a no-op after."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from openwaba.storage.queries import load_migrations

from .conftest import Cli


def test_migrate_postgresql_then_nothing_left(cli: Cli, pg_empty_url: str) -> None:
    versions = ", ".join(str(v) for v, _ in load_migrations("postgres"))
    first = cli("migrate", "--database-url", pg_empty_url)
    assert first.code == 0, first
    assert f"applied migrations {versions}" in first.out
    assert "postgres@" in first.out
    again = cli("migrate", "--database-url", pg_empty_url)
    assert again.code == 0 and "the schema is up to date" in again.out, again

    async def tables() -> set[str]:
        conn = await asyncpg.connect(pg_empty_url)
        try:
            return {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        finally:
            await conn.close()

    assert {"channels", "deliveries", "rate_buckets", "openwaba_migrations"} <= asyncio.run(tables())


def test_migrate_sqlite_in_the_data_directory(cli: Cli, tmp_path: Path) -> None:
    versions = ", ".join(str(v) for v, _ in load_migrations("sqlite"))
    first = cli("migrate", "--data-dir", str(tmp_path))
    assert first.code == 0, first
    assert f"applied migrations {versions}" in first.out
    assert (tmp_path / "openwaba.db").exists()
    assert "the schema is up to date" in cli("migrate", "--data-dir", str(tmp_path)).out


def test_migrate_refuses_a_url_that_is_not_postgresql(cli: Cli) -> None:
    shown = cli("migrate", "--database-url", "mysql://x@localhost/db")
    assert shown.code == 2, shown
    assert "postgresql://" in shown.err


def test_migrate_reports_an_unreachable_database(cli: Cli) -> None:
    shown = cli("migrate", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
    assert shown.code == 2, shown
    assert "cannot migrate postgresql://nobody@127.0.0.1:1/none" in shown.err
