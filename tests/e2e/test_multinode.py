"""Several nodes on one database: three real `openwaba serve` processes on
different ports share one PostgreSQL database; messages are sent round-robin to
all three, and one node is SIGKILLed in the middle of the load.

What is checked:

* every status (`sent`, `delivered`, `read`) of every message a node answered
  200 reaches the receiver at least once, and so does every event in the
  database (including messages committed by the dead node whose answer the
  client never got); afterwards no delivery is left undelivered and no accepted
  message is left un-handed-over;
* no event is ever attempted twice at the same time: the receiver times every
  request and no two requests with the same `webhook-id` overlap;
* the survivors finish the dead node's work, and only after its lease expired:
  right before the kill the receiver holds its answers (so the doomed node
  certainly has attempts in flight); the deliveries that node leased are
  posted again by the survivors, never before the lease recorded in the
  database ran out.

The servers use the system clock (a manual clock is per process). Nothing
sleeps to wait for an outcome: the load is paced, the rest is bounded polling.
"""

from __future__ import annotations

import functools
import os
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import DEFAULT_ENV
from .multinode_support import Database, Senders, TimingReceiver, leased_by, metric_total
from .support import Server, ServerFactory, wait_until

pytestmark = pytest.mark.e2e

NODES = 3
MESSAGES = 240
RATE = 40.0  # messages a second, over all nodes
CLIENTS = 4
KILL_AFTER = MESSAGES // 3  # accepted messages before the node dies
GATE = 2 * MESSAGES // 3  # messages from here on wait until the node is dead: they go to the survivors
LEASE = 3.0
TIMEOUT = 2.0
FAST = (0.05, 0.15)  # the receiver answers in 50-150 ms: several attempts in flight on every node
HOLD = 0.8  # around the kill it answers in 0.8 s (< TIMEOUT): the doomed node has attempts in flight
CLOCK_SLACK = 0.05  # seconds between the database's lease time and the receiver's clock reading
STATUSES = ("sent", "delivered", "read")
# Events of one conversation are posted one after another: many users, many conversations in flight.
USERS = tuple(f"1555123{n:04d}" for n in range(1, 25))

ENV: dict[str, str | None] = {
    "OPENWABA_CLOCK": None,  # the system clock: every node must see the same time
    "OPENWABA_LEASE_SECONDS": str(LEASE),
    "OPENWABA_WEBHOOK_TIMEOUT": str(TIMEOUT),
    "OPENWABA_RETRY_DELAYS": "0.5,1,2",  # quick retries, should an attempt fail
    "OPENWABA_RETRY_JITTER": "0",
    "OPENWABA_RATE_LIMITS": "false",
    "OPENWABA_SANDBOX_USERS": ",".join(USERS),
    "OPENWABA_SANDBOX_STATUS_DELAYS": "0,0.05,0.1",
}


@pytest.fixture
def timing_receiver(request: pytest.FixtureRequest) -> Iterator[TimingReceiver]:
    seed = int(os.environ.get("MULTINODE_SEED") or random.randrange(1 << 30))
    print(f"\nmulti-node seed {seed} (set MULTINODE_SEED to repeat the receiver's delays)")
    rec = TimingReceiver(FAST, HOLD, seed)
    rec.start()
    try:
        yield rec
    finally:
        rec.stop()


def has_webhook(node: Server, url: str) -> bool:
    return bool(node.ok("GET", "/v1/configs/webhook")["url"] == url)


def start_together(nodes: list[Server]) -> None:
    """Start the nodes at the same time (they migrate and seed the one database under its locks)."""
    failures: list[BaseException] = []

    def start(node: Server) -> None:
        try:
            node.start()
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=start, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]


@pytest.fixture
def nodes_factory(pg_url: str, tmp_path: Path) -> Iterator[ServerFactory]:
    """Servers on the one shared database (stopped before `pg_url` drops it)."""
    factory = ServerFactory(tmp_path, DEFAULT_ENV)
    try:
        yield factory
    finally:
        factory.close()


def test_three_nodes_share_the_work_and_survive_a_sigkill(
    pg_url: str, nodes_factory: ServerFactory, timing_receiver: TimingReceiver
) -> None:
    server = nodes_factory
    started = time.monotonic()
    receiver = timing_receiver
    env = {**ENV, "OPENWABA_DATABASE_URL": pg_url}
    nodes = [server(env, start=False) for _ in range(NODES)]
    start_together(nodes)
    print(f"{NODES} nodes up after {time.monotonic() - started:.1f} s: {[n.url for n in nodes]}")

    # The webhook is set on one node; the others hear of it by NOTIFY.
    nodes[0].set_webhook(receiver.url)
    for node in nodes:
        wait_until(functools.partial(has_webhook, node, receiver.url), 5, f"the webhook on {node.url}")

    db = Database(pg_url)
    proceed = threading.Event()
    senders = Senders(nodes, USERS, MESSAGES, RATE, CLIENTS, GATE, proceed)
    doomed, survivors = nodes[1], [nodes[0], nodes[2]]
    assert doomed.process is not None
    pattern = leased_by(doomed.port)
    try:
        senders.start()
        wait_until(lambda: senders.accepted_count >= KILL_AFTER or senders.problems, 15,
                   f"{KILL_AFTER} accepted messages")
        assert not senders.problems, senders.problems[:5]

        # Hold the answers, and kill the node once it has held attempts in flight.
        receiver.hold(True)
        hold_since = time.time()

        def doomed_in_flight() -> list[str]:
            held = [w for w, start in receiver.in_progress().items() if start >= hold_since]
            if not held:
                return []
            rows = db.fetch("SELECT event_id FROM deliveries WHERE state = 'pending' AND lease_owner LIKE $1 "
                            "AND event_id = ANY($2::text[])", pattern, held)
            return [r["event_id"] for r in rows] if len(rows) >= 2 else []

        before_kill = wait_until(doomed_in_flight, 10, "held attempts of the doomed node in flight")
        doomed_metrics = doomed.call("GET", "/metrics").body.decode()
        kill_at = time.time()
        doomed.kill()
        killed_at = time.time()
        senders.drop(doomed)
        accepted_at_kill = senders.accepted_count
        # What the dead node held: deliveries under its lease, accepted messages not yet handed over.
        orphans = {r["event_id"]: r for r in db.fetch(
            "SELECT id, event_id, lease_until, attempts FROM deliveries "
            "WHERE state = 'pending' AND lease_owner LIKE $1", pattern)}
        undispatched_at_kill = db.fetch("SELECT wamid, handover_lease FROM messages WHERE NOT dispatched")
        receiver.hold(False)
        proceed.set()
        print(f"killed {doomed.url} at +{time.monotonic() - started:.1f} s after {accepted_at_kill} accepted "
              f"messages; it held {len(orphans)} deliveries ({len(before_kill)} seen in flight just before) "
              f"and {len(undispatched_at_kill)} messages (of any node) were accepted but not handed over")

        assert senders.join(30), "the senders did not finish"
        assert not senders.problems, senders.problems[:5]
        accepted = {w: index for w, (index, _) in senders.accepted.items()}
        assert len(accepted) == MESSAGES
        print(f"all {MESSAGES} messages accepted at +{time.monotonic() - started:.1f} s; "
              f"{senders.resent} requests sent again after a connection error")

        # Wait (bounded) until everything is delivered and handed over.
        expected = {(w, s) for w in accepted for s in STATUSES}

        def outstanding() -> dict[str, Any]:
            answered = {a.webhook_id for a in receiver.attempts if a.answered}
            events = {r["id"] for r in db.fetch("SELECT id FROM events WHERE kind = 'status'")}
            return {
                "statuses not answered 200": sorted(expected - receiver.delivered())[:5],
                "events not answered 200": sorted(events - answered)[:5],
                "deliveries not delivered": db.fetch(
                    "SELECT id, event_id, state, attempts, lease_until, lease_owner, last_error FROM deliveries "
                    "WHERE state <> 'delivered' ORDER BY id LIMIT 5"),
                "messages not handed over": db.fetch(
                    "SELECT wamid, handover_lease FROM messages WHERE NOT dispatched LIMIT 5"),
            }

        wait_until(lambda: not any(outstanding().values()), 20, "every event delivered",
                   lambda: f"outstanding: {outstanding()}")
        print(f"everything delivered at +{time.monotonic() - started:.1f} s")

        # Nothing was left behind, in the database either.
        states = {r["state"]: r["n"] for r in db.fetch("SELECT state, count(*) AS n FROM deliveries GROUP BY state")}
        assert set(states) == {"delivered"}, states
        assert db.value("SELECT count(*) FROM messages WHERE NOT dispatched") == 0
        incomplete = db.fetch(
            "SELECT m.wamid, count(e.id) AS n FROM messages m "
            "LEFT JOIN events e ON e.wamid = m.wamid AND e.kind = 'status' "
            "WHERE m.direction = 'out' GROUP BY m.wamid HAVING count(e.id) <> 3")
        assert not incomplete, f"messages without exactly three status events: {incomplete[:5]}"
        assert receiver.malformed == 0

        # No event was ever attempted by two nodes (or twice by one) at the same time.
        overlaps = receiver.overlaps()
        assert not overlaps, f"{len(overlaps)} overlapping attempts of one event:\n" + "\n".join(
            f"  {a.short()}\n  {b.short()}" for a, b in overlaps[:10])

        # The load was spread: every node accepted messages and posted webhooks.
        for node in nodes:
            assert senders.accepted_by(node), f"{node.url} accepted no message"
        assert metric_total(doomed_metrics, "openwaba_delivery_attempts_total") > 0
        for node in survivors:
            posted = metric_total(node.call("GET", "/metrics").body.decode(), "openwaba_delivery_attempts_total")
            assert posted > 0, f"{node.url} posted no webhook"

        # The survivors finished the dead node's work, and only once its lease had run out.
        attempts = receiver.attempts
        assert orphans, "the killed node held no delivery"
        in_flight = {a.webhook_id for a in attempts
                     if a.webhook_id in orphans and a.start < kill_at and a.end > killed_at}
        assert in_flight, f"none of the killed node's deliveries was in flight at the kill: {sorted(orphans)[:5]}"
        takeover_delays = []
        for event_id, row in orphans.items():
            lease_until = row["lease_until"]
            assert lease_until > kill_at, f"{event_id}: the node's lease had run out before it died: {row}"
            later = sorted((a for a in attempts if a.webhook_id == event_id and a.start > killed_at),
                           key=lambda a: a.start)
            assert any(a.answered for a in later), f"{event_id} (the killed node's) was not delivered after the kill"
            early = [a.short() for a in later if a.start < lease_until - CLOCK_SLACK]
            assert not early, f"{event_id} was posted again before the lease ({lease_until:.3f}) ran out: {early}"
            takeover_delays.append(later[0].start - kill_at)
        assert min(takeover_delays) >= LEASE / 3, f"taken over too soon after the kill: {sorted(takeover_delays)}"

        reclaims = sum(node.log_tail(1 << 20).count("whose hand-over lease had expired") for node in survivors)
        extra = sum(1 for a in attempts if a.answered) - len({a.webhook_id for a in attempts if a.answered})
        print(
            f"receiver: {len(attempts)} requests, {len({a.webhook_id for a in attempts})} events, {extra} extra "
            f"200s (events posted again); {len(in_flight)} of the dead node's {len(orphans)} deliveries were in "
            f"flight at the kill; taken over {min(takeover_delays):.2f}-{max(takeover_delays):.2f} s after it "
            f"(lease {LEASE:g} s); {reclaims} reclaims of accepted messages by survivors; deliveries {states}; "
            f"total {time.monotonic() - started:.1f} s"
        )
    finally:
        senders.stop()
        db.close()
