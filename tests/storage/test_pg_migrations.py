"""PostgreSQL migrations: from an empty database they produce exactly the
schema the storage was written for, once, however many nodes run them.

`pg_schema.txt` is the reviewed description of that schema (tables, columns,
constraints, indexes, functions). After adding a migration, regenerate it with
OPENWABA_UPDATE_SCHEMA=1 and review the diff like code.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import asyncpg
import pytest

from openwaba.storage.postgres import migrate
from openwaba.storage.queries import load_migrations, load_queries

SNAPSHOT = Path(__file__).with_name("pg_schema.txt")

_DESCRIBE = [
    # columns: name, type, nullability, default
    """SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type
              || CASE WHEN is_nullable = 'NO' THEN ' not null' ELSE '' END
              || coalesce(' default ' || column_default, '')
              || CASE WHEN is_identity = 'YES' THEN ' identity' ELSE '' END
       FROM information_schema.columns WHERE table_schema = 'public'""",
    # constraints: primary keys, uniques, foreign keys, checks
    """SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid)
       FROM pg_constraint WHERE connamespace = 'public'::regnamespace""",
    # indexes, with their predicates
    """SELECT 'index ' || indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = 'public'""",
    # functions, by signature
    """SELECT 'function ' || p.oid::regprocedure FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace""",
]


async def describe(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        lines: list[str] = []
        for query in _DESCRIBE:
            lines += [row[0] for row in await conn.fetch(query)]
        return sorted(lines)
    finally:
        await conn.close()


def test_migrations_produce_the_reviewed_schema(pg_empty_url: str) -> None:
    applied = asyncio.run(migrate(pg_empty_url))
    assert applied == [version for version, _ in load_migrations("postgres")]
    actual = "\n".join(asyncio.run(describe(pg_empty_url))) + "\n"
    if os.environ.get("OPENWABA_UPDATE_SCHEMA"):
        SNAPSHOT.write_text(actual)
    assert actual == SNAPSHOT.read_text(), "the migrations changed the schema: see this module's docstring"


def test_migrating_again_changes_nothing(pg_empty_url: str) -> None:
    asyncio.run(migrate(pg_empty_url))
    before = asyncio.run(describe(pg_empty_url))
    assert asyncio.run(migrate(pg_empty_url)) == []
    assert asyncio.run(describe(pg_empty_url)) == before


def test_nodes_migrating_at_once_apply_each_migration_once(pg_empty_url: str) -> None:
    async def together() -> list[list[int]]:
        return list(await asyncio.gather(*(migrate(pg_empty_url) for _ in range(4))))

    results = asyncio.run(together())
    versions = [version for version, _ in load_migrations("postgres")]
    assert sorted(v for applied in results for v in applied) == versions  # each applied by exactly one
    assert results.count([]) == 3


@pytest.mark.parametrize("name", sorted(load_queries("postgres")))
def test_every_named_query_fits_the_migrated_schema(pg_url: str, name: str) -> None:
    """PREPARE checks names, columns and types against the schema without running anything."""

    async def prepare() -> None:
        conn = await asyncpg.connect(pg_url)
        try:
            await conn.prepare(load_queries("postgres")[name])
        finally:
            await conn.close()

    asyncio.run(prepare())
