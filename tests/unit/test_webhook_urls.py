"""Webhook URL rules (domain.webhook_urls): any http(s) URL for sandbox numbers;
for production numbers 360dialog's Cloud rules (HTTPS, no '_' and no port in
the host), and the SSRF guard's notion of a private address."""

from __future__ import annotations

import pytest

from openwaba.domain.errors import RequestError
from openwaba.domain.webhook_urls import check_webhook_url, is_private_address

# (url, host returned for a sandbox number, rule a production number names, or None: accepted)
URLS: list[tuple[str, str, str | None]] = [
    ("https://yourwebhook.example.com", "yourwebhook.example.com", None),  # 360dialog's "valid" example
    ("https://subdomain.yourwebhook.example.com", "subdomain.yourwebhook.example.com", None),
    ("https://your_webhook.example.com", "your_webhook.example.com", "underscore"),  # its "invalid" examples
    ("https://subdomain.your_webhook.example.com:3000", "subdomain.your_webhook.example.com", "underscore"),
    ("https://example.com:3000/hook", "example.com", "port"),
    ("https://example.com:443/hook", "example.com", "port"),
    ("http://example.com/hook", "example.com", "https"),
    ("http://127.0.0.1:9000/hook", "127.0.0.1", "https"),
    ("https://example.com/my_hook?a_b=c_d#x_y", "example.com", None),  # '_' outside the host is fine
    ("https://Example.COM/Hook", "example.com", None),
    ("HTTPS://example.com/hook", "example.com", None),
    ("https://93.184.216.34/hook", "93.184.216.34", None),
    ("https://[2606:2800:220:1:248:1893:25c8:1946]/hook", "2606:2800:220:1:248:1893:25c8:1946", None),
    ("https://[::1]:8443/hook", "::1", "port"),
]


@pytest.mark.parametrize(("url", "host", "rule"), URLS, ids=[u for u, _, _ in URLS])
def test_sandbox_numbers_accept_any_http_url(url: str, host: str, rule: str | None) -> None:
    assert check_webhook_url(url, production=False) == host


@pytest.mark.parametrize(("url", "host", "rule"), URLS, ids=[u for u, _, _ in URLS])
def test_production_numbers_follow_cloud_rules(url: str, host: str, rule: str | None) -> None:
    if rule is None:
        assert check_webhook_url(url, production=True) == host
        return
    with pytest.raises(RequestError) as raised:
        check_webhook_url(url, production=True)
    assert raised.value.code == 100 and raised.value.http_status == 400
    assert rule in raised.value.details.lower()
    assert url in raised.value.details, "the message names the URL"


NOT_URLS = [
    "",
    "example.com/hook",
    "/hook",
    "ftp://example.com/hook",
    "javascript:alert(1)",
    "file:///etc/passwd",
    "http://",
    "https:///hook",
    "http://[::1",
    "http://example.com:99999/hook",
    "http://example.com:port/hook",
]


@pytest.mark.parametrize("production", [False, True], ids=["sandbox", "production"])
@pytest.mark.parametrize("url", NOT_URLS)
def test_what_is_not_an_http_url_is_refused_for_every_number(url: str, production: bool) -> None:
    with pytest.raises(RequestError) as raised:
        check_webhook_url(url, production=production)
    assert raised.value.code == 100
    assert url in raised.value.details


PRIVATE = [
    "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.254", "192.168.1.20", "127.0.0.1", "127.8.9.10",
    "169.254.169.254", "0.0.0.0", "100.64.0.1", "192.0.2.10", "198.18.0.1", "224.0.0.1", "239.255.255.250",
    "255.255.255.255", "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1", "ff02::1", "::ffff:127.0.0.1",
    "::ffff:10.0.0.1", "::ffff:169.254.169.254", "2001:db8::1",
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:2800:220:1:248:1893:25c8:1946", "2a00:1450:4001::1",
          "::ffff:93.184.216.34"]


@pytest.mark.parametrize("address", PRIVATE)
def test_private_loopback_link_local_and_reserved_addresses_are_private(address: str) -> None:
    assert is_private_address(address) is True


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_not_private(address: str) -> None:
    assert is_private_address(address) is False


def test_a_non_address_is_an_error() -> None:
    with pytest.raises(ValueError):
        is_private_address("example.com")
