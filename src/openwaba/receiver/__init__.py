"""openwaba.receiver: what every WhatsApp webhook receiver must do, done once.

    from openwaba.receiver import Receiver, Message, Status

    receiver = Receiver("./webhooks.db", secret="whsec_…")

    @receiver.on_message
    async def handle(message: Message) -> None: ...

`receiver` is a raw ASGI 3 app (mount it, or run it with `serve(receiver, host, port)`
or `uvicorn module:receiver`). A 200 means the body is committed to SQLite; items are
then parsed (Cloud and On-Premise formats), de-duplicated, status-merged and handed
to the handlers, with retries and dead letters. Importing this package imports only
the standard library.
"""

from openwaba.receiver.app import DeadLetter, Receiver
from openwaba.receiver.events import (
    ButtonReply,
    Context,
    Conversation,
    ErrorDetail,
    Event,
    InteractiveReply,
    Location,
    Media,
    Message,
    Phone,
    Pricing,
    Reaction,
    SharedContact,
    Status,
    TemplateStatus,
    Unknown,
    WebhookError,
)
from openwaba.receiver.parsing import parse_body, parse_document
from openwaba.receiver.server import serve

__all__ = [
    "ButtonReply",
    "Context",
    "Conversation",
    "DeadLetter",
    "ErrorDetail",
    "Event",
    "InteractiveReply",
    "Location",
    "Media",
    "Message",
    "Phone",
    "Pricing",
    "Reaction",
    "Receiver",
    "SharedContact",
    "Status",
    "TemplateStatus",
    "Unknown",
    "WebhookError",
    "parse_body",
    "parse_document",
    "serve",
]
