"""The storage seam: what services need from a database, and nothing more.

Implementations: `sqlite.py` (embedded default, one process) and
`postgres.py` (several processes, on several machines, share one database).
Every write method is atomic; when it returns, its data is committed durably.
Implementations translate their driver's exceptions into
`openwaba.domain.errors` at this boundary.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from openwaba.domain.accounts import Channel, ChannelFormat, ChannelMode, MetaLink, SandboxUser, Waba
from openwaba.domain.deliveries import (
    AttemptOutcome,
    AttemptView,
    DeliveryFilter,
    DeliveryState,
    DeliveryView,
    Destination,
    DueDelivery,
)
from openwaba.domain.messages import OutgoingMessage
from openwaba.domain.routing import FanOut
from openwaba.domain.throttle import Rate


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to store, with the destinations it is to be delivered to."""

    id: str
    channel_id: int
    kind: str
    wamid: str | None
    created_at: float  # when it happened; its first delivery attempt is due then
    body: bytes  # the webhook body, rendered in the channel's format
    fanout: FanOut
    deadline: float  # the retry horizon of its deliveries
    order_key: str  # channel and user: the conversation this event belongs to
    message_status: str | None = None  # for status events: the outbound message's new status
    injected: tuple[str, ...] = ()  # what a sandbox scenario made up about this event (shown in the log)


@dataclass(slots=True)
class InboxPost:
    """A webhook post from Meta waiting to be ingested; set `done` once it is."""

    id: int
    body: bytes
    received_at: float
    done: bool = False


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    hint: str  # the key's first characters; the key itself is only stored hashed
    created_at: float


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A message a user sent to a business number."""

    wamid: str
    channel_id: int
    wa_id: str
    type: str
    content: dict[str, object]
    created_at: float
    context_message_id: str | None = None  # the business message the user replied to


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """An accepted outbound message not yet handed to its connector."""

    wamid: str
    channel_id: int
    message: OutgoingMessage
    created_at: float


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """A number's own throughput settings; None fields mean the deployment's default."""

    throughput: float | None = None  # messages per second
    rate_limits: bool | None = None  # False switches throughput and pair limits off


@dataclass(frozen=True, slots=True)
class ConversationEntry:
    """One message of a user's conversation with a business number."""

    wamid: str
    direction: str  # "in" (the user wrote) or "out"
    type: str
    content: dict[str, object]
    context_message_id: str | None
    status: str
    created_at: float


@dataclass(frozen=True, slots=True)
class MediaFile:
    """An uploaded or received media file; its bytes are stored under `sha256`."""

    id: str
    channel_id: int
    sha256: str
    mime_type: str
    file_size: int
    filename: str | None
    created_at: float


@dataclass(frozen=True, slots=True)
class StoredTemplate:
    """A template row. `decision` takes effect at `decided_at`; PENDING before."""

    id: str
    name: str
    language: str
    category: str
    components: list[dict[str, object]]
    decision: str
    rejected_reason: str | None
    decided_at: float
    created_at: float


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """An attempt's outcome and what it decided for the delivery."""

    outcome: AttemptOutcome
    state: DeliveryState
    next_attempt_at: float | None
    destination_id: int = 0
    disable_destination: bool = False  # the receiver answered 410 Gone


class Storage(abc.ABC):
    """Durable state of one openwaba deployment."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and bring the schema up to date."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @abc.abstractmethod
    def listen(self, on_due: Callable[[], None], on_config: Callable[[], None]) -> None:
        """Be told of changes other processes made: new due deliveries, and
        configuration (webhooks, keys, limits, settings) that caches must drop."""

    @abc.abstractmethod
    def lock(self, name: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Mutual exclusion across every process using the store (start-up seeding)."""

    # accounts -----------------------------------------------------------
    @abc.abstractmethod
    async def create_waba(self, waba: Waba, now: float, templates: Sequence[StoredTemplate] = ()) -> None:
        """Create a WABA together with the templates it starts with."""

    @abc.abstractmethod
    async def wabas(self) -> list[Waba]: ...

    @abc.abstractmethod
    async def create_channel(
        self,
        waba_id: str,
        phone_number: str,
        phone_number_id: str,
        fmt: ChannelFormat,
        connector: str,
        mode: ChannelMode,
        now: float,
    ) -> Channel: ...

    @abc.abstractmethod
    async def channels(self) -> list[Channel]: ...

    @abc.abstractmethod
    async def channel_for_key(self, key_hash: str) -> Channel | None: ...

    @abc.abstractmethod
    async def replace_api_key(self, channel_id: int, key_hash: str, hint: str, now: float, drop_webhook: bool) -> None:
        """Make `key_hash` the channel's only key (earlier keys stop working),
        and with `drop_webhook` remove the number's webhook in the same transaction."""

    @abc.abstractmethod
    async def api_keys(self, channel_id: int) -> list[ApiKeyInfo]: ...

    @abc.abstractmethod
    async def add_sandbox_users(self, channel_id: int, users: Sequence[SandboxUser]) -> None: ...

    @abc.abstractmethod
    async def sandbox_users(self, channel_id: int) -> list[SandboxUser]: ...

    # webhook destinations ------------------------------------------------
    # A scope is "channel:<id>" (kinds main and multi) or "waba:<id>" (kind waba).
    @abc.abstractmethod
    async def set_destination(
        self,
        scope: str,
        kind: str,
        name: str,
        url: str,
        headers: dict[str, str],
        override_all: bool = False,
        secrets: Sequence[str] = (),
        app_secret: str | None = None,
        fifo: bool = False,
    ) -> None:
        """Create or replace a destination."""

    @abc.abstractmethod
    async def update_destination(
        self,
        scope: str,
        kind: str,
        name: str,
        url: str | None,
        headers: dict[str, str] | None,
        secrets: Sequence[str] | None = None,
        app_secret: str | None = None,
        fifo: bool | None = None,
    ) -> bool:
        """Change what is given (None keeps it); False when there is no such destination."""

    @abc.abstractmethod
    async def remove_destination(self, scope: str, kind: str, name: str) -> bool:
        """Remove it and dead-letter its pending deliveries; False when absent."""

    @abc.abstractmethod
    async def destinations(self, scope: str) -> list[Destination]: ...

    @abc.abstractmethod
    async def channel_webhook_flags(self, channel_id: int) -> tuple[bool, str]:
        """(multi-webhook enabled, fan-out mode)."""

    @abc.abstractmethod
    async def set_channel_webhook_flags(
        self, channel_id: int, multi_enabled: bool | None, fanout: str | None
    ) -> None: ...

    # messages and events ------------------------------------------------
    @abc.abstractmethod
    async def insert_outbound(self, queued: QueuedMessage, lease_until: float | None) -> None:
        """Store an accepted message; this process hands it over until `lease_until`.

        None: the caller hands it over at once and settles it (`settle_outbound`); the
        row is never reclaimed, so a crash before settling leaves a record that a
        hand-over started, never a second one."""

    @abc.abstractmethod
    async def settle_outbound(self, wamid: str, remote_wamid: str | None) -> None:
        """The outcome of a synchronous hand-over: the network's id for the message,
        or None when it was not accepted (the row goes)."""

    @abc.abstractmethod
    async def claim_undispatched(self, now: float, limit: int, lease_until: float) -> list[QueuedMessage]:
        """Accepted messages not handed over whose lease has expired, leased to the caller."""

    @abc.abstractmethod
    async def mark_dispatched(self, wamids: Sequence[str]) -> None: ...

    @abc.abstractmethod
    async def ingest(self, events: Sequence[NewEvent], inbound: Sequence[InboundMessage]) -> None:
        """Store events, their deliveries and the messages they carry, atomically."""

    # deliveries ------------------------------------------------------------
    @abc.abstractmethod
    async def claim_due(self, now: float, limit: int, lease_until: float) -> list[DueDelivery]:
        """Lease up to `limit` due deliveries so no other worker attempts them."""

    @abc.abstractmethod
    async def renew_leases(self, delivery_ids: Sequence[int], lease_until: float) -> None:
        """Extend the leases this process holds (deliveries still queued or in flight)."""

    @abc.abstractmethod
    async def next_due_at(self, now: float) -> float | None: ...

    @abc.abstractmethod
    async def defer(self, delivery_ids: Sequence[int], until: float) -> None:
        """Postpone claimed deliveries without an attempt (a paused destination)."""

    @abc.abstractmethod
    async def undefer(self, destination_id: int, now: float) -> None:
        """Make a destination's postponed deliveries due now (it answers again)."""

    @abc.abstractmethod
    async def record_attempts(self, records: Sequence[AttemptRecord], now: float) -> None:
        """Store outcomes; a delivered primary releases the deliveries held for it
        (due at `now`), a dead one dead-letters them."""

    @abc.abstractmethod
    async def deliveries(
        self, channel_id: int, where: DeliveryFilter, limit: int, before_id: int | None
    ) -> list[DeliveryView]:
        """The channel's deliveries, newest first."""

    @abc.abstractmethod
    async def attempts(self, delivery_id: int) -> list[AttemptView]: ...

    @abc.abstractmethod
    async def event_body(self, event_id: str) -> bytes | None: ...

    @abc.abstractmethod
    async def replay(self, channel_id: int, where: DeliveryFilter, now: float, deadline: float) -> int:
        """Make matching deliveries (not pending) due again at `now`; returns how many."""

    @abc.abstractmethod
    async def queue_stats(self) -> tuple[int, float | None]:
        """(pending deliveries, creation time of the oldest)."""

    @abc.abstractmethod
    async def notices(self, channel_id: int, limit: int) -> list[tuple[float, str, str]]: ...

    @abc.abstractmethod
    async def channel_retry_horizon(self, channel_id: int) -> float | None: ...

    @abc.abstractmethod
    async def set_channel_retry_horizon(self, channel_id: int, horizon: float | None) -> None: ...

    @abc.abstractmethod
    async def release_leases(self) -> None:
        """At start-up: forget the leases of a killed predecessor when this process
        is the store's only user. A shared store keeps them; they expire."""

    # small settings ----------------------------------------------------------
    @abc.abstractmethod
    async def get_value(self, key: str) -> str | None: ...

    @abc.abstractmethod
    async def set_value(self, key: str, value: str) -> None: ...

    # per-number limits -------------------------------------------------------
    @abc.abstractmethod
    async def channel_limits(self, channel_id: int) -> ChannelLimits: ...

    @abc.abstractmethod
    async def set_channel_limits(self, channel_id: int, limits: ChannelLimits) -> None: ...

    @abc.abstractmethod
    async def admit(self, buckets: Sequence[tuple[str, Rate]], now: float) -> tuple[int, float] | None:
        """Count one message against every rate bucket, all or nothing (GCRA).
        None when admitted; else the index of the first bucket over its limit and its due time."""

    # conversations -----------------------------------------------------------
    @abc.abstractmethod
    async def last_inbound_at(self, channel_id: int, wa_id: str) -> float | None:
        """When the user last wrote to the number (the start of its service window)."""

    @abc.abstractmethod
    async def mark_read(self, channel_id: int, wamid: str) -> str | None:
        """Mark an inbound message, and the user's earlier ones, read; the user's wa_id.
        None when `wamid` is not a message a user sent to this number."""

    @abc.abstractmethod
    async def conversation(
        self, channel_id: int, wa_id: str, limit: int, now: float | None = None
    ) -> list[ConversationEntry]:
        """The newest `limit` messages between the number and the user, newest first."""

    @abc.abstractmethod
    async def conversation_message(self, channel_id: int, wa_id: str, wamid: str) -> ConversationEntry | None:
        """One message of the conversation between the number and the user."""

    # media -------------------------------------------------------------------
    @abc.abstractmethod
    async def insert_media(self, media: MediaFile) -> None: ...

    @abc.abstractmethod
    async def media(self, channel_id: int, media_id: str) -> MediaFile | None: ...

    @abc.abstractmethod
    async def delete_media(self, channel_id: int, media_id: str) -> tuple[bool, str | None]:
        """(deleted, sha256 of bytes no other media row uses any more)."""

    # templates ---------------------------------------------------------------
    @abc.abstractmethod
    async def insert_template(self, waba_id: str, template: StoredTemplate) -> None:
        """ConflictError when the WABA already has the name in that language."""

    @abc.abstractmethod
    async def templates(self, waba_id: str) -> list[StoredTemplate]: ...

    @abc.abstractmethod
    async def template(self, waba_id: str, name: str, language: str) -> StoredTemplate | None: ...

    @abc.abstractmethod
    async def delete_templates(self, waba_id: str, name: str) -> list[StoredTemplate]:
        """Delete every language of a template; the rows that went."""

    # Meta's Cloud API -------------------------------------------------------
    @abc.abstractmethod
    async def meta_links(self) -> list[MetaLink]: ...

    @abc.abstractmethod
    async def set_connector(self, channel_id: int, connector: str, link: MetaLink | None) -> None:
        """Switch a channel's connector, saving its Meta link first when one is given."""

    @abc.abstractmethod
    async def insert_meta_inbox(self, body: bytes, received_at: float) -> None:
        """Commit one webhook post from Meta, as received."""

    @abc.abstractmethod
    def meta_inbox(self, limit: int) -> contextlib.AbstractAsyncContextManager[list[InboxPost]]:
        """The oldest posts not yet ingested, held by the caller until the block ends;
        the ids it puts in `done` are deleted then (other nodes skip held posts)."""

    @abc.abstractmethod
    async def withdraw_event(self, event_id: str) -> bool:
        """Remove an event and its deliveries if no delivery was attempted yet."""
