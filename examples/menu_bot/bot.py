"""A small WhatsApp bot: it offers a menu of reply buttons and answers the choice.

Starlette serves openwaba's receiver toolkit at /webhook; replies go out through
openwaba's client. Run it against a local openwaba:

    OPENWABA_API_KEY=devkey uvicorn bot:app --port 9000
    openwaba webhooks set http://127.0.0.1:9000/webhook --api-key devkey
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.routing import Route

from openwaba.client import AsyncClient, messages
from openwaba.receiver import Message, Receiver

MENU = [("hours", "Opening hours"), ("prices", "Prices")]
ANSWERS = {"hours": "We are open 9:00-17:00, Monday to Friday.", "prices": "Coffee 2 EUR, cake 3 EUR."}


def create_app(api_key: str, base_url: str, journal: str = "bot-webhooks.db") -> Starlette:
    client = AsyncClient.openwaba(api_key, base_url)
    receiver = Receiver(journal)  # acks each webhook once it is committed; a duplicate is handled once

    @receiver.on_message
    async def answer(message: Message) -> None:
        choice = message.interactive.id if message.interactive else None
        if choice in ANSWERS:
            await client.send(messages.text(message.from_, ANSWERS[choice]).replying_to(message.id))
        else:
            await client.send(messages.buttons(message.from_, "Hi! What would you like to know?", MENU))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await receiver.start()
        yield
        await receiver.stop()
        await client.aclose()

    # The receiver is an ASGI app; a Route (not a Mount) serves it at /webhook without a redirect to /webhook/.
    return Starlette(routes=[Route("/webhook", receiver, methods=["GET", "POST"])], lifespan=lifespan)


if os.environ.get("OPENWABA_API_KEY"):
    app = create_app(os.environ["OPENWABA_API_KEY"], os.environ.get("OPENWABA_URL", "http://127.0.0.1:8080"))
