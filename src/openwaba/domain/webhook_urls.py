"""What a webhook URL may look like.

Cloud API numbers in production follow 360dialog's rules: HTTPS only, and
neither an underscore nor a port in the host. Sandbox numbers accept any
http(s) URL, including `http://127.0.0.1:9000/hook`, so local receivers work.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from openwaba.domain.errors import RequestError


def check_webhook_url(url: str, *, production: bool) -> str:
    """Return the host of a valid URL; raise RequestError naming the broken rule."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise RequestError(100, f"Webhook url '{url}' is not a valid URL") from None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host:
        raise RequestError(100, f"Webhook url '{url}' must be an absolute http(s) URL")
    if production:
        if parts.scheme != "https":
            raise RequestError(100, f"Webhook url '{url}' must use HTTPS (with a valid certificate)")
        if "_" in host:
            raise RequestError(100, f"Webhook url '{url}' must not contain '_' (underscore) in the host name")
        if port is not None:
            raise RequestError(100, f"Webhook url '{url}' must not contain a port (':{port}') in the host")
    return host


def is_private_address(address: str) -> bool:
    """True for addresses a production webhook must not reach (SSRF protection)."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast
