"""Meta's Graph API as the connector speaks it: request bodies, error answers,
and the retry schedule (with an injected sleep, against a fake Graph on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.meta.fake_graph import DEFAULT_PNID, FakeGraph, graph_error

from openwaba.clock import ManualClock
from openwaba.connectors.base import ConnectorError
from openwaba.connectors.meta import GraphSettings, MetaConnector
from openwaba.domain import graph
from openwaba.domain.accounts import MetaLink
from openwaba.domain.errors import RequestError
from openwaba.domain.messages import Dialect, OutgoingMessage, parse_messages_body
from openwaba.services.accounts import Accounts
from openwaba.services.media import Media
from openwaba.storage.base import QueuedMessage
from openwaba.storage.sqlite import SQLiteStorage


def message(body: dict[str, object], dialect: Dialect = Dialect.CLOUD) -> OutgoingMessage:
    parsed = parse_messages_body(json.dumps({"messaging_product": "whatsapp", **body}).encode(), dialect)
    assert isinstance(parsed, OutgoingMessage)
    return parsed


# --- request bodies ----------------------------------------------------------------------

def test_a_media_message_names_metas_media_id_and_drops_on_premise_fields() -> None:
    sent = message({"to": "+16505551234", "type": "image", "image": {"id": "111", "caption": "hi"}})
    body = graph.message_body(sent, {"111": "999"})
    assert body == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+16505551234",
                    "type": "image", "image": {"id": "999", "caption": "hi"}}
    linked = message({"to": "16505551234", "type": "document",
                      "document": {"link": "https://example.com/a.pdf", "provider": {"name": "x"}}},
                     Dialect.ON_PREMISE)
    assert graph.message_body(linked, {})["document"] == {"link": "https://example.com/a.pdf"}


def test_contacts_are_an_array_and_template_headers_use_metas_ids() -> None:
    card = {"name": {"formatted_name": "Ann", "first_name": "Ann"}, "phones": [{"phone": "+15550001111"}]}
    sent = message({"to": "15550001111", "type": "contacts", "contacts": [card]})
    assert graph.message_body(sent, {})["contacts"][0][
        "name"]["formatted_name"] == "Ann"
    template = {"name": "order", "language": {"code": "en_US"}, "components": [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "111"}}]}]}
    body = graph.message_body(message({"to": "15550001111", "type": "template", "template": template}), {"111": "999"})
    assert body["template"]["components"][0]["parameters"][0]["image"] == {"id": "999"}


def test_read_body_with_and_without_typing() -> None:
    assert graph.read_body("wamid.X", False) == {"messaging_product": "whatsapp", "status": "read",
                                                "message_id": "wamid.X"}
    assert graph.read_body("wamid.X", True)["typing_indicator"] == {"type": "text"}


# --- error answers -----------------------------------------------------------------------

# (HTTP status, Graph code, retried?)
ANSWERS = [
    (400, 131009, False), (400, 131047, False), (400, 132001, False), (401, 190, False), (400, 131056, False),
    (400, 130429, True), (429, 4, True), (400, 80007, True), (500, 131000, True), (503, 131016, True),
    (500, 131057, True), (502, 100, True),
]


@pytest.mark.parametrize(("status", "code", "retried"), ANSWERS)
def test_which_answers_are_tried_again(status: int, code: int, retried: bool) -> None:
    failed = graph.failure(status, json.dumps(graph_error(code, "why")).encode())
    assert (failed.code, failed.details, failed.retryable) == (code, "why", retried)
    error = failed.as_request_error()
    assert error.code == code
    assert error.http_status == (503 if status >= 500 else status)  # Meta's 5xx are an upstream failure


@given(st.integers(100, 599), st.binary(max_size=300))
def test_any_error_answer_is_understood(status: int, raw: bytes) -> None:
    failed = graph.failure(status, raw)
    assert isinstance(failed.code, int) and failed.title and failed.details
    assert failed.as_request_error().http_status < 600


@given(st.binary(max_size=300))
def test_a_send_answer_without_an_id_is_noticed(raw: bytes) -> None:
    wamid = graph.sent_wamid(raw)
    assert wamid is None or (isinstance(wamid, str) and wamid)


# --- the connector's retries, with an injected sleep --------------------------------------

@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph(token="tok", app_secret="sec") as server:
        yield server


class _Links:
    """Accounts' link look-up, for a connector tested alone."""

    def __init__(self, link: MetaLink) -> None:
        self.link = link

    async def meta_link(self, channel: object) -> MetaLink:
        return self.link


def send_with(
    fake: FakeGraph, tmp: Path, delays: tuple[float, ...], url: str | None = None
) -> tuple[str | Exception, list[float]]:
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)

    async def scenario() -> str | Exception:
        storage = SQLiteStorage(tmp / "db.sqlite")
        await storage.open()
        clock = ManualClock()
        link = MetaLink(1, DEFAULT_PNID, None, "tok", "sec")
        accounts: Accounts = _Links(link)  # type: ignore[assignment]
        connector = MetaConnector(GraphSettings(url or fake.url, "v25.0", 2.0, delays), accounts,
                                  Media(storage, clock, tmp / "media"), storage, clock, sleep)
        text = message({"to": "15550001111", "type": "text", "text": {"body": "x"}})
        queued = QueuedMessage("wamid.ours", 1, text, 0.0)
        try:
            return str(await connector.send(None, queued))  # type: ignore[arg-type]
        except (RequestError, ConnectorError) as exc:
            return exc
        finally:
            await connector.close()
            await storage.close()

    return asyncio.run(scenario()), pauses


def test_throttling_is_tried_again_after_each_pause_then_succeeds(fake: FakeGraph, tmp_path: Path) -> None:
    fake.fail_next(2, status=429, code=130429)
    fake.fail_next(1, status=500, code=131000)
    result, pauses = send_with(fake, tmp_path, (0.5, 1.0, 2.0, 4.0))
    assert isinstance(result, str) and result.startswith("wamid.")
    assert pauses == [0.5, 1.0, 2.0]
    assert len(fake.sent_messages()) == 4


def test_when_the_pauses_run_out_the_client_hears_meta(fake: FakeGraph, tmp_path: Path) -> None:
    fake.fail_next(3, status=400, code=130429, details="throughput reached")
    result, pauses = send_with(fake, tmp_path, (0.5, 1.0))
    assert isinstance(result, RequestError) and (result.code, result.details) == (130429, "throughput reached")
    assert pauses == [0.5, 1.0]


def test_a_refusal_or_a_lost_answer_is_never_tried_again(fake: FakeGraph, tmp_path: Path) -> None:
    fake.fail_next(1, status=400, code=131009)
    refused, pauses = send_with(fake, tmp_path, (0.5,))
    assert isinstance(refused, RequestError) and refused.code == 131009 and pauses == []
    fake.drop_next(1)
    lost, pauses = send_with(fake, tmp_path, (0.5,))
    assert isinstance(lost, ConnectorError) and pauses == []
    assert len(fake.sent_messages()) == 2


def test_an_unreachable_graph_is_tried_again_then_answers_service_unavailable(fake: FakeGraph, tmp_path: Path) -> None:
    with socket.socket() as held:  # a port nothing listens on: connecting is refused, nothing was sent
        held.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{held.getsockname()[1]}"
        result, pauses = send_with(fake, tmp_path, (0.5, 1.0), url=closed)
    assert isinstance(result, RequestError) and (result.code, result.http_status) == (131016, 503)
    assert "cannot reach Meta" in result.details
    assert pauses == [0.5, 1.0]
