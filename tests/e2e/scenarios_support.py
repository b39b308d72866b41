"""Helpers for the sandbox scenario tests: setting scenario layers, reading the
delivery log (`GET /deliveries`, with each status named from its payload), and
waiting for what the simulated network and users post.

Absence ("read never comes") is proven without sleeping: the sandbox stores
every status event of a message at once at hand-over, so once its `sent` has
arrived the delivery log lists everything the message will ever get; when all
of those are delivered, nothing more can come.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .support import Received, Receiver, Server, wait_until

SCENARIO = "/sandbox/scenario"


def scenario_path(wa_id: str | None = None) -> str:
    """The number's scenario, or one simulated user's layer."""
    return SCENARIO if wa_id is None else f"/sandbox/users/{wa_id}/scenario"


def put_scenario(srv: Server, document: dict[str, Any], wa_id: str | None = None) -> dict[str, Any]:
    """Replace a layer; return the layer as the server stored it."""
    stored: dict[str, Any] = srv.ok("PUT", scenario_path(wa_id), document)["scenario"]
    return stored


def clock_now(srv: Server) -> float:
    return float(srv.ok("GET", "/sandbox/clock")["now"])


def send(srv: Server, body: dict[str, Any]) -> str:
    """`POST /messages` that must be accepted; the wamid."""
    reply = srv.call("POST", "/messages", body)
    assert reply.status == 200, f"POST /messages answered {reply.status}: {reply.body!r}"
    return str(reply.json()["messages"][0]["id"])


def act(srv: Server, wa_id: str, body: dict[str, Any]) -> str:
    """A simulated user acts (JSON); the inbound wamid."""
    reply = srv.call("POST", f"/sandbox/users/{wa_id}/messages", body)
    assert reply.status == 200, f"user action {body} answered {reply.status}: {reply.body!r}"
    return str(reply.json()["messages"][0]["id"])


# --- the delivery log ---------------------------------------------------------------------


def deliveries(srv: Server) -> list[dict[str, Any]]:
    """Every delivery of the number, oldest first, through `GET /deliveries` (all pages)."""
    items: list[dict[str, Any]] = []
    before = ""
    while True:
        page = srv.ok("GET", f"/deliveries?limit=100{before}")
        items.extend(page["deliveries"])
        if not page["paging"]:
            return sorted(items, key=lambda d: int(d["id"]))
        before = f"&before={page['paging']['before']}"


@dataclass(frozen=True)
class Logged:
    """One delivery of a status event, with the status its payload carries."""

    status: str
    delivery: dict[str, Any]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.delivery["injected"])

    @property
    def at(self) -> float:
        """When the status happens (the event's time, exact)."""
        return float(self.delivery["created_at"])


def status_log(srv: Server, wamid: str) -> list[Logged]:
    """The status deliveries of `wamid`, in the order the statuses happen."""
    found = [d for d in deliveries(srv) if d["event"]["wamid"] == wamid and d["event"]["kind"] == "status"]
    logged = [Logged(status_of(srv, int(d["id"])), d) for d in found]
    return sorted(logged, key=lambda item: (item.at, int(item.delivery["id"])))


def status_of(srv: Server, delivery_id: int) -> str:
    payload = srv.ok("GET", f"/deliveries/{delivery_id}")["payload"]
    return str(payload["entry"][0]["changes"][0]["value"]["statuses"][0]["status"])


def wait_all_delivered(srv: Server, wamid: str, count: int) -> list[Logged]:
    """Wait until `wamid` has exactly `count` status deliveries, all delivered; return them."""
    def settled() -> list[Logged] | None:
        log = status_log(srv, wamid)
        return log if len(log) == count and all(x.delivery["state"] == "delivered" for x in log) else None
    return wait_until(settled, what=f"{count} delivered statuses of {wamid}",
                      describe=lambda: f"log now: {status_log(srv, wamid)}")


def labels_by_status(log: list[Logged]) -> dict[str, list[tuple[str, ...]]]:
    """status -> the injected labels of each of its deliveries (sorted, so copies compare as a multiset)."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for item in log:
        out.setdefault(item.status, []).append(item.labels)
    return {status: sorted(labels) for status, labels in out.items()}


# --- what the receiver got ----------------------------------------------------------------


def arrived(receiver: Receiver, wamid: str) -> list[str]:
    """The statuses of `wamid` in the order the receiver got them (by arrival of the request)."""
    by_id = {r.webhook_id: r.status["status"] for r in receiver.statuses_of(wamid) if r.status is not None}
    return [by_id[w] for w in receiver.arrivals if w in by_id]


def wait_statuses(receiver: Receiver, wamid: str, count: int) -> list[Received]:
    """Wait until `count` status webhooks of `wamid` were answered; return them."""
    return receiver.wait_for_count(lambda r: r.status is not None and r.status.get("id") == wamid, count,
                                   what=f"statuses of {wamid}")


def wait_failed(receiver: Receiver, wamid: str) -> dict[str, Any]:
    [request] = wait_statuses(receiver, wamid, 1)
    assert request.status is not None and request.status["status"] == "failed", request.short()
    return request.status


def wait_message(receiver: Receiver, match: Callable[[dict[str, Any]], bool], what: str) -> Received:
    """Wait for the inbound message webhook whose message matches; return the request."""
    [got] = receiver.wait_for_count(lambda r: r.message is not None and match(r.message), 1, what=what)
    return got


def wait_inbound(receiver: Receiver, wamid: str) -> dict[str, Any]:
    """The inbound message `wamid` as its webhook carries it."""
    message = wait_message(receiver, lambda m: m.get("id") == wamid, f"inbound {wamid}").message
    assert message is not None
    return message
