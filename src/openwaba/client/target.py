"""Where the client sends requests: the base URL, the credentials and the path layout.

openwaba, 360dialog's Cloud host and its sandbox share one path layout (`/messages`,
`/media`, `/v1/configs/...`) keyed by `D360-API-KEY`. Meta's Cloud API puts the
version and the object id in the path (`/v23.0/{phone_number_id}/messages`) and
takes a bearer token. Everything else about a call is the same, so a `Target` is the
only thing that differs between them.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum

from openwaba.client.errors import UnsupportedError

D360_URL = "https://waba-v2.360dialog.io"
D360_SANDBOX_URL = "https://waba-sandbox.360dialog.io"
GRAPH_URL = "https://graph.facebook.com"
GRAPH_VERSION = "v23.0"
OPENWABA_URL = "http://127.0.0.1:8080"
_LOOKASIDE_HOST = "lookaside.fbsbx.com"


class Layout(Enum):
    D360 = "d360"
    GRAPH = "graph"
    PARTNER = "partner"


# Route name → (360dialog path, Graph path without the version). None: the target has no such endpoint.
_ROUTES: dict[str, tuple[str | None, str | None]] = {
    "messages": ("/messages", "/{phone_number_id}/messages"),
    "media": ("/media", "/{phone_number_id}/media"),
    "media_item": ("/{media_id}", "/{media_id}"),
    "templates": ("/v1/configs/templates", "/{waba_id}/message_templates"),
    "template": ("/v1/configs/templates/{name}", "/{waba_id}/message_templates"),
    "phone_number": ("/phone_number", "/{phone_number_id}"),
    "health": ("/health_status", "/{phone_number_id}"),
    "profile": ("/whatsapp_business_profile", "/{phone_number_id}/whatsapp_business_profile"),
    "webhook": ("/v1/configs/webhook", None),
    "waba_webhook": ("/waba_webhook", None),
    "multi_webhook": ("/multi_webhook", None),
    "multi_webhook_destination": ("/multi_webhook/{name}", None),
    "deliveries": ("/deliveries", None),
    "delivery": ("/deliveries/{delivery_id}", None),
    "delivery_replay": ("/deliveries/{delivery_id}/replay", None),
    "deliveries_replay": ("/deliveries/replay", None),
    "notices": ("/notices", None),
    "sandbox_users": ("/sandbox/users", None),
    "sandbox_user_messages": ("/sandbox/users/{wa_id}/messages", None),
    "sandbox_clock": ("/sandbox/clock", None),
    "sandbox_scenario": ("/sandbox/scenario", None),
    "sandbox_user_scenario": ("/sandbox/users/{wa_id}/scenario", None),
    "sandbox_user_script": ("/sandbox/users/{wa_id}/script", None),
}


@dataclass(frozen=True, slots=True)
class Target:
    """A WhatsApp API host and how to talk to it. Build one with the class methods."""

    base_url: str
    headers: Mapping[str, str]
    layout: Layout
    messages_path: str = "/messages"
    version: str = GRAPH_VERSION
    phone_number_id: str = ""
    waba_id: str = ""
    partner_id: str = ""
    name: str = field(default="openwaba")

    @classmethod
    def openwaba(cls, api_key: str, base_url: str = OPENWABA_URL) -> Target:
        """An openwaba gateway (the sandbox by default), keyed by the number's `D360-API-KEY`."""
        return cls(base_url.rstrip("/"), {"D360-API-KEY": api_key}, Layout.D360)

    @classmethod
    def d360(cls, api_key: str, base_url: str = D360_URL) -> Target:
        """360dialog's Cloud API host."""
        return cls(base_url.rstrip("/"), {"D360-API-KEY": api_key}, Layout.D360, name="360dialog")

    @classmethod
    def d360_sandbox(cls, api_key: str, base_url: str = D360_SANDBOX_URL) -> Target:
        """360dialog's sandbox: messages go to `/v1/messages` (and are answered 201)."""
        headers = {"D360-API-KEY": api_key}
        return cls(base_url.rstrip("/"), headers, Layout.D360, messages_path="/v1/messages", name="360dialog sandbox")

    @classmethod
    def meta(
        cls,
        access_token: str,
        phone_number_id: str,
        waba_id: str = "",
        version: str = GRAPH_VERSION,
        base_url: str = GRAPH_URL,
    ) -> Target:
        """Meta's Cloud API (Graph): a system-user token, the phone number id and (for templates) the WABA id."""
        headers = {"Authorization": f"Bearer {access_token}"}
        return cls(
            base_url.rstrip("/"),
            headers,
            Layout.GRAPH,
            version=version,
            phone_number_id=phone_number_id,
            waba_id=waba_id,
            name="Meta Cloud API",
        )

    @classmethod
    def partner(cls, partner_key: str, partner_id: str = "openwaba", base_url: str = OPENWABA_URL) -> Target:
        """The Partner API (WABAs, numbers, API keys), keyed by `X-API-Key`."""
        headers = {"X-API-Key": partner_key}
        return cls(base_url.rstrip("/"), headers, Layout.PARTNER, partner_id=partner_id, name="partner API")

    @property
    def is_graph(self) -> bool:
        return self.layout is Layout.GRAPH

    def url(self, route: str, **ids: str) -> str:
        """The absolute URL of a route, e.g. `url("media_item", media_id="123")`."""
        if self.layout is Layout.PARTNER:
            raise UnsupportedError(f"{route} needs a number's API key, not the partner key")
        d360, graph = _ROUTES[route]
        template = graph if self.is_graph else (self.messages_path if route == "messages" else d360)
        if template is None:
            raise UnsupportedError(f"{self.name} has no {route.replace('_', ' ')} endpoint")
        ids = {"phone_number_id": self.phone_number_id, "waba_id": self.waba_id, **ids}
        if "{waba_id}" in template and not ids["waba_id"]:
            raise UnsupportedError("templates on Meta's Cloud API need the WABA id: Target.meta(..., waba_id=...)")
        path = template.format(**{k: urllib.parse.quote(v, safe="") for k, v in ids.items()})
        return f"{self.base_url}/{self.version}{path}" if self.is_graph else self.base_url + path

    def partner_url(self, path: str) -> str:
        """The absolute URL of a Partner API path such as `/channels`."""
        if self.layout is not Layout.PARTNER:
            raise UnsupportedError("the Partner API needs Target.partner(partner_key, ...)")
        return f"{self.base_url}/api/v2/partners/{urllib.parse.quote(self.partner_id, safe='')}{path}"

    def download_url(self, url: str) -> tuple[str, Mapping[str, str]]:
        """Where to fetch a media URL from, and with which headers.

        360dialog hands out Meta's lookaside URLs and serves them itself under the same
        path, so the host is swapped. Credentials go only to the target's own host (and
        to Meta's lookaside host for Meta), never to a third party named in a URL.
        """
        parts = urllib.parse.urlsplit(url)
        lookaside = parts.scheme == "https" and parts.netloc == _LOOKASIDE_HOST  # exactly the host: no userinfo, port
        if lookaside and not self.is_graph:
            url = self.base_url + urllib.parse.urlunsplit(("", "", parts.path, parts.query, parts.fragment))
            parts = urllib.parse.urlsplit(url)
        base = urllib.parse.urlsplit(self.base_url)
        own = (parts.scheme, parts.netloc) == (base.scheme, base.netloc)  # same origin: no http downgrade
        return url, (self.headers if own or (lookaside and self.is_graph) else {})
