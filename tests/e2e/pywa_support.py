"""A pywa bot wired to an openwaba server, for the pywa end-to-end tests.

pywa (the third-party SDK) is used exactly as its users use it: a `WhatsApp`
client that sends through the Graph API and handles webhooks on its own
Starlette app. Two things differ from talking to Meta: the base URL (pywa
hard-codes graph.facebook.com) and the token (openwaba's API key).

The bot records every typed update its handlers get and every warning or error
pywa logs while it validates, types and dispatches an update: a webhook pywa
could not parse is acknowledged with 200 all the same (pywa parses after
answering), so its log is where such a failure shows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import httpx
from pywa import handlers
from pywa.client import WhatsApp
from pywa.types.base_update import RawUpdate
from pywa.types.message import Message
from pywa.types.message_status import MessageStatus
from starlette.applications import Starlette

from openwaba.testing.apps import AppServer

from .support import DEFAULT_WAIT, Server, wait_until

API_VERSION = "25.0"
APP_SECRET = "pywa-e2e-app-secret-7c1d"
VERIFY_TOKEN = "pywa-e2e-verify"
WEBHOOK_PATH = "/webhook"

U = TypeVar("U")


class LogRecorder(logging.Handler):
    """Keeps every record of WARNING or above that pywa's loggers emit."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self._lock_records = threading.Lock()
        self._records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock_records:
            self._records.append(record)

    @property
    def problems(self) -> list[str]:
        with self._lock_records:
            records = list(self._records)
        return [
            f"{r.levelname} {r.name}: {r.getMessage()}"
            + (f"\n{self.formatException(r.exc_info)}" if r.exc_info else "")
            for r in records
        ]

    def formatException(self, exc_info: Any) -> str:  # noqa: N802 - logging's name
        return logging.Formatter().formatException(exc_info)


@dataclass
class Updates:
    """What pywa's handlers were called with, in arrival order (handlers run in worker threads)."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    typed: list[Any] = field(default_factory=list)
    raw: list[RawUpdate] = field(default_factory=list)

    def add(self, update: Any) -> None:
        with self._lock:
            (self.raw if isinstance(update, RawUpdate) else self.typed).append(update)

    def of_type(self, kind: type[U]) -> list[U]:
        with self._lock:
            return [u for u in self.typed if isinstance(u, kind)]

    def statuses(self, wamid: str) -> list[MessageStatus[str]]:
        return [s for s in self.of_type(MessageStatus) if s.id == wamid]

    def raw_about(self, wamid: str) -> list[RawUpdate]:
        """Raw updates whose message or status has id `wamid`."""
        with self._lock:
            raw = list(self.raw)
        return [r for r in raw if wamid in (item.get("id") for item in _items(r))]

    def describe(self) -> str:
        with self._lock:
            typed = [
                f"{type(u).__name__} {getattr(u, 'id', '')} {getattr(u, 'status', '') or getattr(u, 'type', '')}"
                for u in self.typed
            ]
            raw = len(self.raw)
        return f"{len(typed)} typed updates, {raw} raw:\n  " + "\n  ".join(typed)


def _items(update: RawUpdate) -> list[dict[str, Any]]:
    value: dict[str, Any] = update["entry"][0]["changes"][0]["value"]
    return [*value.get("messages", []), *value.get("statuses", [])]


@dataclass
class Bot:
    """A pywa `WhatsApp` client against one openwaba number, its webhook served on 127.0.0.1."""

    srv: Server
    wa: WhatsApp
    session: httpx.Client
    app: AppServer
    updates: Updates
    log: LogRecorder
    phone_id: str
    waba_id: str

    @property
    def webhook_url(self) -> str:
        return f"{self.app.url}{WEBHOOK_PATH}"

    def wait_for(self, check: Callable[[Updates], U | None], what: str, timeout: float = DEFAULT_WAIT) -> U:
        """Poll the recorded updates until `check` returns something truthy."""
        return wait_until(lambda: check(self.updates), timeout, what, self.describe)

    def wait_for_update(self, wamid: str, kind: type[U]) -> U:
        """The first update of type `kind` with id `wamid`."""

        def find(updates: Updates) -> U | None:
            return next((u for u in updates.of_type(kind) if getattr(u, "id", None) == wamid), None)

        return self.wait_for(find, f"a {kind.__name__} with id {wamid}")

    def wait_for_message(self, wamid: str) -> Message:
        return self.wait_for_update(wamid, Message)

    def wait_for_raw(self, wamid: str) -> RawUpdate:
        """The first raw update about `wamid` (pywa calls raw handlers after the typed ones)."""
        return self.wait_for(lambda u: next(iter(u.raw_about(wamid)), None), f"a raw update about {wamid}")

    def wait_for_statuses(self, wamid: str, wanted: set[str]) -> dict[str, MessageStatus[str]]:
        """Wait until pywa handled a MessageStatus of `wamid` for every status in `wanted`; by status."""

        def found(updates: Updates) -> dict[str, MessageStatus[str]] | None:
            got = {str(s.status.value): s for s in updates.statuses(wamid)}
            return got if wanted <= set(got) else None

        return self.wait_for(found, f"pywa MessageStatus {sorted(wanted)} of {wamid}")

    def describe(self) -> str:
        problems = "\n".join(self.log.problems) or "(none)"
        return f"{self.updates.describe()}\npywa warnings/errors:\n{problems}"

    def close(self) -> None:
        self.app.stop()
        self.session.close()
        logging.getLogger("pywa").removeHandler(self.log)


def number_ids(srv: Server) -> tuple[str, str]:
    """(phone_number_id, waba_id) of the server's seeded sandbox number, from openwaba's own API."""
    phone_id = str(srv.ok("GET", "/phone_number")["phone_number_id"])
    entities = srv.ok("GET", "/health_status")["health_status"]["entities"]
    [waba_id] = [e["id"] for e in entities if e["entity_type"] == "WABA"]
    return phone_id, str(waba_id)


def start_bot(srv: Server, **options: Any) -> Bot:
    """A pywa client for the server's number with typed handlers that record, served and set as
    the webhook; `options` go to `WhatsApp(...)` as they are."""
    assert srv.api_key, "the server needs a known API key"
    phone_id, waba_id = number_ids(srv)
    session, starlette = httpx.Client(timeout=10.0), Starlette()
    wa = WhatsApp(
        phone_id=phone_id,
        token=srv.api_key,  # change 1 of 2: openwaba's API key is the Bearer token
        session=session,
        server=cast(Any, starlette),  # pywa adds its webhook routes (typed Flask | FastAPI, takes Starlette)
        webhook_endpoint=WEBHOOK_PATH,
        verify_token=VERIFY_TOKEN,
        app_secret=APP_SECRET,  # pywa checks X-Hub-Signature-256 with it (validate_updates stays on)
        waba_id=waba_id,  # with phone_id: pywa drops updates whose entry id or phone_number_id differ
        api_version=API_VERSION,
        **options,
    )
    # pywa quietly stops checking signatures when it has no app secret; make sure it checks them.
    assert wa._validate_updates
    # Change 2 of 2, the only other one pywa needs: its GraphAPI sets the session's base URL to
    # https://graph.facebook.com/v{version}; the session is ours, so point it at openwaba.
    session.base_url = httpx.URL(f"{srv.url}/v{API_VERSION}")

    updates, log = Updates(), LogRecorder()
    logging.getLogger("pywa").addHandler(log)
    wa.add_handlers(
        handlers.MessageHandler(lambda _, u: updates.add(u)),
        handlers.MessageStatusHandler(lambda _, u: updates.add(u)),
        handlers.CallbackButtonHandler(lambda _, u: updates.add(u)),
        handlers.CallbackSelectionHandler(lambda _, u: updates.add(u)),
        handlers.RawUpdateHandler(lambda _, u: updates.add(u)),
    )
    app = AppServer(starlette).start()
    bot = Bot(srv, wa, session, app, updates, log, phone_id, waba_id)
    srv.ok("POST", "/v1/configs/webhook", {"url": bot.webhook_url, "app_secret": APP_SECRET})
    return bot
