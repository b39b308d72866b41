"""Starter templates: stored with every new WABA, and backfilled once for WABAs
created before templates existed (a deleted hello_world stays deleted)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from openwaba.clock import Clock
from openwaba.domain.accounts import Waba
from openwaba.services.accounts import Accounts
from openwaba.services.templates import Templates, starter_templates
from openwaba.storage.sqlite import SQLiteStorage

T0 = 1_700_000_000.0


class NoSink:
    async def ingest(self, notifications: object) -> None:
        raise AssertionError("starter templates announce nothing")


def names(rows: list) -> list[tuple[str, str, str]]:  # type: ignore[type-arg]
    return [(t.name, t.language, t.decision) for t in rows]


def test_a_new_waba_is_stored_with_hello_world(tmp_path: Path) -> None:
    async def scenario() -> None:
        storage = SQLiteStorage(tmp_path / "db")
        await storage.open()
        try:
            waba = await Accounts(storage, Clock(), lambda: None).create_waba("Acme")
            assert names(await storage.templates(waba.id)) == [("hello_world", "en_US", "APPROVED")]
        finally:
            await storage.close()

    asyncio.run(scenario())


def test_backfill_runs_once_for_wabas_that_had_no_templates(tmp_path: Path) -> None:
    async def scenario() -> None:
        storage = SQLiteStorage(tmp_path / "db")
        await storage.open()
        try:
            clock = Clock()
            templates = Templates(storage, Accounts(storage, clock, lambda: None), clock, NoSink(), 0.0, None)
            old = Waba("102290129340398", "created before templates")
            await storage.create_waba(old, T0)  # no starters: the shape of an older data directory
            other = Waba("102290129340399", "created with its starters")
            await storage.create_waba(other, T0, starter_templates(T0))
            await templates.backfill_starters()
            assert names(await storage.templates(old.id)) == [("hello_world", "en_US", "APPROVED")]
            assert len(await storage.templates(other.id)) == 1  # not given a second copy
            await storage.delete_templates(old.id, "hello_world")
            await templates.backfill_starters()
            assert await storage.templates(old.id) == []
        finally:
            await storage.close()

    asyncio.run(scenario())
