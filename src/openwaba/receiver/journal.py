"""The durable queue: one SQLite file, one connection, owned by one writer thread.

Acknowledging a webhook means its raw body is committed here first. The writer
thread takes everything that queued up while it was busy and commits the bodies
of all those concurrent requests in one transaction with one fsync (WAL,
`synchronous=FULL`), then settles their futures with one call into the event
loop. Under load hundreds of requests share one fsync; at rest a body commits
alone with no added delay. The dispatcher's bookkeeping queued in the same round
follows in a second transaction that needs no fsync of its own (see
`_Writer.run_operations`), so acks never wait for it. Checkpoints run beside the writer
(`Checkpointer`), never inside an ack's commit.

Tables:
- `envelopes`: the raw bodies as received (`webhook_id` UNIQUE, so a redelivery
  with the same id is acknowledged without being queued twice);
- `progress`: how far envelopes have been split into work rows (`expanded_upto`);
- `work`: one row per item of an envelope, added when the envelope is split.
  `key` is UNIQUE (message: wamid; status: wamid + status; other items: the
  envelope's identity + position), so an item posted twice is handled once;
- `statuses`: the merged state of each outbound message (highest rank seen, and
  highest rank handed to `on_status`).

A work row is `pending` (0) until its handlers succeeded (`done`, 1) or failed
`max_attempts` times (`dead`, 2). What is in flight lives only in memory, so
after a crash everything not yet `done` is simply pending again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from openwaba.batches import Outcome as Settled
from openwaba.batches import next_batch, settle
from openwaba.locks import hold_exclusively
from openwaba.receiver.events import Event, Status
from openwaba.receiver.parsing import BodyError, parse_body

T = TypeVar("T")
log = logging.getLogger("openwaba.receiver")
Operation = Callable[[sqlite3.Connection], Any]
_Job = tuple[bool, Any, "asyncio.Future[Any]"]  # (is_append, params or operation, future)
_Settled = list[Settled]

PENDING, DONE, DEAD = 0, 1, 2
_BATCH_LIMIT = 1024
_CHECKPOINT_EVERY = 0.5  # seconds
_WAL_SAFETY_PAGES = 16384  # 64 MiB: the writer checkpoints itself only if the checkpointer falls behind

_SCHEMA = """
CREATE TABLE IF NOT EXISTS envelopes (
    seq INTEGER PRIMARY KEY,
    webhook_id TEXT UNIQUE,
    body BLOB NOT NULL,
    received_at REAL NOT NULL
);
-- Envelopes up to this seq have been split into work rows: one small row to update instead of every envelope.
CREATE TABLE IF NOT EXISTS progress (id INTEGER PRIMARY KEY CHECK (id = 1), expanded_upto INTEGER NOT NULL);
INSERT OR IGNORE INTO progress VALUES (1, 0);
CREATE TABLE IF NOT EXISTS work (
    id INTEGER PRIMARY KEY,
    envelope INTEGER NOT NULL,
    item INTEGER NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL UNIQUE,
    lane TEXT,
    wamid TEXT,
    rank INTEGER,
    advances INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    done_mask INTEGER NOT NULL DEFAULT 0,
    due_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    error TEXT
);
CREATE INDEX IF NOT EXISTS work_pending ON work(id) WHERE state = 0;
CREATE INDEX IF NOT EXISTS work_lane ON work(lane, id) WHERE state = 0 AND lane IS NOT NULL;
CREATE TABLE IF NOT EXISTS statuses (
    wamid TEXT PRIMARY KEY,
    rank INTEGER NOT NULL,
    status TEXT NOT NULL,
    handled_rank INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
) WITHOUT ROWID;
"""

_APPEND = "INSERT INTO envelopes (webhook_id, body, received_at) VALUES (?, ?, ?) ON CONFLICT (webhook_id) DO NOTHING"
_INSERT_WORK = """INSERT INTO work
    (envelope, item, kind, key, lane, wamid, rank, advances, state, due_at, updated_at, error)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING"""
_MERGE_STATUS = """INSERT INTO statuses (wamid, rank, status, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (wamid) DO UPDATE SET rank = excluded.rank, status = excluded.status, updated_at = excluded.updated_at"""
# An item may start when no earlier item of its lane is pending: in strict mode
# (ordered conversations) whatever that item's due time, otherwise only an
# earlier item that is due too, so a retry waiting for its turn holds nothing up. Rows the dispatcher
# holds already are left out, and the rows come back as one JSON value: one step of the statement
# (each step hands the GIL to the event loop and has to win it back).
_CLAIM = """SELECT json_group_array(json_array(
    id, kind, lane, attempts, done_mask, advances, rank, wamid, envelope, item, handled_rank)) FROM (
SELECT w.id, w.kind, w.lane, w.attempts, w.done_mask, w.advances, w.rank, w.wamid, w.envelope, w.item,
       COALESCE(s.handled_rank, 0) AS handled_rank
FROM work w LEFT JOIN statuses s ON s.wamid = w.wamid
WHERE w.state = 0 AND w.due_at <= :now AND w.id NOT IN (SELECT value FROM json_each(:held))
AND (w.lane IS NULL OR NOT EXISTS (
    SELECT 1 FROM work p WHERE p.state = 0 AND p.lane = w.lane AND p.id < w.id AND (:strict OR p.due_at <= :now)))
ORDER BY w.id LIMIT :limit)"""
_NEXT_DUE = "SELECT MIN(due_at) FROM work WHERE state = 0 AND due_at > ?"
_UNEXPANDED = """SELECT seq, webhook_id, body FROM envelopes WHERE seq > (SELECT expanded_upto FROM progress)
ORDER BY seq LIMIT ?"""
_RECORD = "UPDATE work SET state = ?, attempts = ?, done_mask = ?, due_at = ?, error = ?, updated_at = ? WHERE id = ?"


class Claimed(NamedTuple):
    """A pending work row, with what the dispatcher needs to run it."""

    id: int
    kind: str
    lane: str | None
    attempts: int
    done_mask: int
    advances: bool
    rank: int | None
    wamid: str | None
    envelope: int
    item: int
    handled_rank: int


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one attempt: the row's new state, and the status rank now handled (if any)."""

    id: int
    state: int
    attempts: int
    done_mask: int
    due_at: float
    error: str | None
    wamid: str | None = None
    handled_rank: int | None = None


@dataclass(frozen=True, slots=True)
class Envelope:
    """A committed body, split into its items (or why it cannot be), ready to become work rows."""

    seq: int
    identity: str  # what duplicates of an item without an id of its own share: webhook-id, or the body's hash
    events: list[Event]
    error: str | None = None


def split(seq: int, webhook_id: str | None, body: bytes) -> Envelope:
    """Parse a committed body (in the event loop: parsing in the writer thread would hold up the acks)."""
    try:
        events = parse_body(body)
    except BodyError as exc:
        return Envelope(seq, "", [], str(exc))
    keyless = any(event.key is None for event in events)
    return Envelope(seq, webhook_id or (hashlib.sha256(body).hexdigest() if keyless else ""), events)


@dataclass(frozen=True, slots=True)
class Cycle:
    """One round of the dispatcher's bookkeeping, in one transaction."""

    outcomes: Sequence[Outcome]
    now: float
    strict: bool
    claim_limit: int
    held: Sequence[int]  # rows the dispatcher holds in memory (they are still pending)
    envelopes: Sequence[Envelope]  # new envelopes, split already (by the event loop, not this thread)
    scan_due: bool = False  # look up the earliest retry (after a start; the dispatcher tracks it from then on)


@dataclass(frozen=True, slots=True)
class CycleResult:
    parsed: dict[int, Event]  # work id -> item, for rows this cycle created
    claimed: list[Claimed]
    next_due: float | None  # with `scan_due`: the earliest pending item due after `now`


@dataclass(frozen=True, slots=True)
class DeadRow:
    id: int
    kind: str
    key: str
    attempts: int
    error: str | None
    failed_at: float
    item: int
    body: bytes


class Checkpointer:
    """Copies the WAL into the database file from its own connection and thread.

    Left to the writer, SQLite checkpoints inside whichever COMMIT crosses the WAL size limit: page
    copies and an fsync of the database file, several milliseconds every few thousand webhooks, all
    of them added to the acks waiting on that commit. A PASSIVE checkpoint never blocks the writer.
    """

    def __init__(self, path: Path) -> None:
        self._path = path
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="receiver-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stopping.wait(_CHECKPOINT_EVERY):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error as exc:  # e.g. the disk is full: the writer's safety net still works
                    log.warning("receiver: checkpoint failed: %s", exc)
        finally:
            conn.close()


class Journal:
    """The SQLite file and its writer thread; every database access goes through `run`."""

    def __init__(self, path: str | os.PathLike[str], lane_of: Callable[[Event], str | None]) -> None:
        self._path = Path(path)
        self._lane_of = lane_of
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_fd: int | None = None
        self._checkpointer: Checkpointer | None = None
        self.on_append: Callable[[], None] = lambda: None  # called in the loop after appended bodies commit

    async def open(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = _lock(self._path.with_name(self._path.name + ".lock"))
        self._loop = loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._thread = threading.Thread(target=self._serve, args=(loop, ready), name="receiver-sqlite", daemon=True)
        self._thread.start()
        try:
            await ready
        except BaseException:
            await self.close()
            raise
        self._checkpointer = Checkpointer(self._path)
        self._checkpointer.start()

    async def close(self) -> None:
        self._loop = None  # refuse new work from now on
        if self._checkpointer is not None:
            await asyncio.to_thread(self._checkpointer.stop)
            self._checkpointer = None
        if self._thread is not None:
            if self._thread.is_alive():
                self._jobs.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def append(self, body: bytes, webhook_id: str | None, now: float) -> asyncio.Future[None]:
        """Queue a body for the next commit; the future resolves once it is durable."""
        if self._loop is None:
            raise RuntimeError("the journal is not open")
        future: asyncio.Future[None] = self._loop.create_future()
        self._jobs.put((True, (webhook_id, body, now), future))
        return future

    async def run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        if self._loop is None:
            raise RuntimeError("the journal is not open")
        future: asyncio.Future[T] = self._loop.create_future()
        self._jobs.put((False, operation, future))
        return await future

    # --- the writer thread ---------------------------------------------------------------

    def _serve(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = _connect(self._path)
        except Exception as exc:  # report start-up failures to open()
            loop.call_soon_threadsafe(settle, [(ready, None, OSError(f"cannot open {self._path}: {exc}"))])
            return
        writer = _Writer(conn)
        started: _Settled = [(ready, None, None)]
        loop.call_soon_threadsafe(settle, started)
        try:
            while (batch := next_batch(self._jobs, _BATCH_LIMIT)) is not None:
                # Acks first, in their own durable commit: they never wait for the bookkeeping queued beside them.
                appends = [entry for entry in batch if entry[0]]
                if appends:
                    loop.call_soon_threadsafe(self._settle_appends, writer.commit_appends(appends))
                operations = [entry for entry in batch if not entry[0]]
                if operations:
                    loop.call_soon_threadsafe(settle, writer.run_operations(operations))
        finally:
            conn.close()

    def _settle_appends(self, settled: _Settled) -> None:
        settle(settled)
        self.on_append()

    # --- operations (run on the writer thread) ---------------------------------------------

    def cycle(self, conn: sqlite3.Connection, cycle: Cycle) -> CycleResult:
        record(conn, cycle.outcomes, cycle.now)
        parsed = self._expand(conn, cycle.envelopes, cycle.now)
        params = {"now": cycle.now, "strict": cycle.strict, "limit": cycle.claim_limit, "held": json.dumps(cycle.held)}
        (rows,) = conn.execute(_CLAIM, params).fetchone()
        claimed = [Claimed(*row) for row in json.loads(rows)]
        next_due = conn.execute(_NEXT_DUE, (cycle.now,)).fetchone()[0] if cycle.scan_due else None
        return CycleResult(parsed, claimed, next_due)

    def _expand(self, conn: sqlite3.Connection, envelopes: Sequence[Envelope], now: float) -> dict[int, Event]:
        """Work rows for split envelopes, de-duplicating and merging statuses as they arrive."""
        parsed: dict[int, Event] = {}
        for envelope in envelopes:
            if envelope.error is not None:
                # Kept and visible among the dead letters rather than lost or retried in vain.
                seq = envelope.seq
                params = (seq, 0, "invalid", f"invalid:{seq}", None, None, None, False, DEAD, now, now, envelope.error)
                conn.execute(_INSERT_WORK, params)
            for index, event in enumerate(envelope.events):
                work_id = self._insert_item(conn, envelope.seq, index, event, envelope.identity, now)
                if work_id is not None:
                    parsed[work_id] = event
        if envelopes:
            conn.execute("UPDATE progress SET expanded_upto = ?", (envelopes[-1].seq,))
        return parsed

    def _insert_item(
        self, conn: sqlite3.Connection, seq: int, index: int, event: Event, identity: str, now: float
    ) -> int | None:
        key = event.key or f"{event.kind}:{identity}:{index}"
        status = event if isinstance(event, Status) else None
        # Every status carries its wamid, so its attempt can see the rank already handed to on_status.
        wamid = status.id if status else None
        rank = status.rank if status else None
        advances = True
        if status is not None and rank is not None:
            row = conn.execute("SELECT rank FROM statuses WHERE wamid = ?", (wamid,)).fetchone()
            advances = row is None or rank > row[0]
        params = (seq, index, event.kind, key, self._lane_of(event), wamid, rank, advances, PENDING, now, now, None)
        cursor = conn.execute(_INSERT_WORK, params)
        if cursor.rowcount == 0:
            return None  # the same item arrived before: handled (or being handled) already
        if status is not None and rank is not None and advances:
            conn.execute(_MERGE_STATUS, (wamid, rank, status.status, now))
        return cursor.lastrowid


def record(conn: sqlite3.Connection, outcomes: Iterable[Outcome], now: float) -> None:
    for o in outcomes:
        conn.execute(_RECORD, (o.state, o.attempts, o.done_mask, o.due_at, o.error, now, o.id))
        if o.handled_rank is not None:
            conn.execute(
                "UPDATE statuses SET handled_rank = MAX(handled_rank, ?) WHERE wamid = ?", (o.handled_rank, o.wamid)
            )


def unexpanded(conn: sqlite3.Connection, limit: int) -> list[tuple[int, str | None, bytes]]:
    """Committed envelopes not yet split into work rows, oldest first."""
    return conn.execute(_UNEXPANDED, (limit,)).fetchall()


def envelope_body(conn: sqlite3.Connection, seq: int) -> bytes:
    body: bytes = conn.execute("SELECT body FROM envelopes WHERE seq = ?", (seq,)).fetchone()[0]
    return body


def dead_rows(conn: sqlite3.Connection, limit: int) -> list[DeadRow]:
    rows = conn.execute(
        """SELECT w.id, w.kind, w.key, w.attempts, w.error, w.updated_at, w.item, e.body
        FROM work w JOIN envelopes e ON e.seq = w.envelope WHERE w.state = 2 ORDER BY w.id LIMIT ?""",
        (limit,),
    )
    return [DeadRow(*row) for row in rows]


def revive(conn: sqlite3.Connection, ids: Sequence[int] | None, now: float) -> int:
    """Make dead rows pending again, due now, with a fresh attempt count."""
    sql = "UPDATE work SET state = 0, attempts = 0, due_at = ?, error = NULL, updated_at = ? WHERE state = 2"
    if ids is None:
        return conn.execute(sql, (now, now)).rowcount
    return sum(conn.execute(sql + " AND id = ?", (now, now, i)).rowcount for i in ids)


def counts(conn: sqlite3.Connection) -> dict[str, int]:
    result = {"pending": 0, "done": 0, "dead": 0}
    names = {PENDING: "pending", DONE: "done", DEAD: "dead"}
    for state, count in conn.execute("SELECT state, COUNT(*) FROM work GROUP BY state"):
        result[names[state]] = count
    (result["unexpanded"],) = conn.execute(
        "SELECT COUNT(*) FROM envelopes WHERE seq > (SELECT expanded_upto FROM progress)"
    ).fetchone()
    return result


def prune(conn: sqlite3.Connection, before: float) -> None:
    """Forget handled items older than `before`; dead letters and pending work stay."""
    conn.execute("DELETE FROM work WHERE state = 1 AND updated_at < ?", (before,))
    conn.execute(
        """DELETE FROM envelopes WHERE received_at < ? AND seq <= (SELECT expanded_upto FROM progress)
        AND seq NOT IN (SELECT envelope FROM work)""",
        (before,),
    )
    conn.execute("DELETE FROM statuses WHERE updated_at < ?", (before,))


# --- plumbing ----------------------------------------------------------------------------


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")  # a 200 promises the body survives a power cut
    conn.execute("PRAGMA busy_timeout = 5000")
    # The checkpointer thread copies the WAL into the database; checkpointing here is a safety net only.
    conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_SAFETY_PAGES}")
    conn.executescript(_SCHEMA)
    return conn


class _Writer:
    """The connection as the writer thread uses it. Every statement hands the GIL to the event loop and has
    to win it back, often behind a burst of requests, so a batch takes as few statements as it can."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._synchronous = "FULL"  # as _connect left it

    def commit_appends(self, appends: list[_Job]) -> _Settled:
        """The bodies of concurrent requests in one transaction, with one fsync: what a 200 promises."""
        conn = self.conn
        try:
            self._durability("FULL")
            if len(appends) == 1:
                conn.execute(_APPEND, appends[0][1])  # autocommit: the insert is the transaction
            else:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(_APPEND, [params for _, params, _ in appends])
                conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            return [(future, None, exc) for _, _, future in appends]
        return [(future, None, None) for _, _, future in appends]

    def run_operations(self, operations: list[_Job]) -> _Settled:
        """The dispatcher's bookkeeping in one transaction, committed without an fsync: the WAL is sequential,
        so the next append's fsync makes it durable too, and if the machine (not just the process) dies first,
        it is derived again from the bodies, which were durable already (items may then be handled again:
        at least once, as after any crash)."""
        conn = self.conn
        try:
            self._durability("NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            if len(operations) > 1:
                settled = self._isolated(operations)
            else:  # alone in its transaction, which isolates it already
                _, operation, future = operations[0]
                try:
                    settled = [(future, operation(conn), None)]
                except Exception as exc:
                    conn.rollback()
                    return [(future, None, exc)]
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.rollback()
            return [(future, None, exc) for _, _, future in operations]
        return settled

    def _isolated(self, operations: list[_Job]) -> _Settled:
        """Each operation in a SAVEPOINT, so one failing does not undo the others."""
        settled: _Settled = []
        for _, operation, future in operations:
            self.conn.execute("SAVEPOINT op")
            try:
                settled.append((future, operation(self.conn), None))
                self.conn.execute("RELEASE op")
            except Exception as exc:
                self.conn.execute("ROLLBACK TO op")
                self.conn.execute("RELEASE op")
                settled.append((future, None, exc))
        return settled

    def _durability(self, mode: str) -> None:
        if mode != self._synchronous:
            self.conn.execute(f"PRAGMA synchronous = {mode}")
            self._synchronous = mode




def _lock(path: Path) -> int:
    """One process per queue file: two writers would hand the same items to two dispatchers."""
    fd = hold_exclusively(path, 0o644)
    if fd is None:
        raise RuntimeError(f"{path} is locked: another receiver uses this queue")
    return fd
