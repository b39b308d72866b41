"""openwaba's pytest plugin (registered through the `pytest11` entry point).

Fixtures:
- `openwaba_env` (session): extra `OPENWABA_*` settings for the gateway; override it in a conftest;
- `openwaba_gateway` (session): the `GatewayProcess` every test shares;
- `gateway`: the test's own sandbox number on it (a `Gateway`, with a `client`);
- `user`: that number's first simulated user (`gateway.users` has all three);
- `inbox`: a recording webhook receiver that gets every event of the number;
- `clock`: the gateway's manual clock;
- `serve_app`: `serve_app(app) -> url` runs an ASGI app (the bot under test) for the test.

Loading this module imports nothing beyond pytest: it is loaded in every pytest
run of an environment where openwaba is installed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from openwaba.testing.handles import Gateway, SimulatedUser, TestClock
    from openwaba.testing.inbox import Inbox
    from openwaba.testing.process import GatewayProcess

SERVER_HINT = "openwaba's test fixtures start a gateway, which needs: pip install 'openwaba[testing]'"


@pytest.fixture(scope="session")
def openwaba_env() -> dict[str, str]:
    """Settings for the session's gateway, e.g. `{"OPENWABA_RATE_LIMITS": "false"}`."""
    return {}


@pytest.fixture(scope="session")
def openwaba_gateway(
    openwaba_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayProcess]:
    for package in ("starlette", "msgspec", "aiohttp", "uvicorn"):
        _require(package)
    from openwaba.testing.process import GatewayProcess

    process = GatewayProcess(tmp_path_factory.mktemp("openwaba"), openwaba_env).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def _openwaba_waba(openwaba_gateway: GatewayProcess) -> str:
    from openwaba.client import Client
    from openwaba.client.target import Target

    target = Target.partner(openwaba_gateway.partner_key, openwaba_gateway.partner_id, openwaba_gateway.url)
    with Client(target) as partner:
        return str(partner.create_waba("openwaba tests")["id"])


@pytest.fixture
def gateway(openwaba_gateway: GatewayProcess, _openwaba_waba: str) -> Iterator[Gateway]:
    from openwaba.testing.handles import Gateway

    number = Gateway.create(openwaba_gateway.url, openwaba_gateway.partner_key, openwaba_gateway.partner_id,
                            _openwaba_waba)
    try:
        yield number
    finally:
        number.close()


@pytest.fixture
def user(gateway: Gateway) -> SimulatedUser:
    return gateway.user


@pytest.fixture
def inbox(gateway: Gateway) -> Iterator[Inbox]:
    from openwaba.testing.inbox import Inbox

    receiver = Inbox().start()
    gateway.watch(receiver.url)  # the webhook, or a copy of it once the test sets its bot as the webhook
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def clock(gateway: Gateway) -> TestClock:
    from openwaba.testing.handles import TestClock

    return TestClock(gateway.client)


@pytest.fixture
def serve_app() -> Iterator[Callable[[Any], str]]:
    from openwaba.testing.apps import AppServer

    running: list[AppServer] = []

    def serve(app: Any) -> str:
        server = AppServer(app).start()
        running.append(server)
        return server.url

    try:
        yield serve
    finally:
        for server in reversed(running):
            server.stop()


def _require(package: str) -> None:
    import importlib.util

    if importlib.util.find_spec(package) is None:
        pytest.fail(SERVER_HINT, pytrace=False)
