"""Test a WhatsApp integration against openwaba's sandbox.

With `pip install "openwaba[testing]"`, pytest gets fixtures (see `openwaba.testing.plugin`):
`gateway` (a sandbox number of the test's own on a gateway the session starts), `user`
(a simulated WhatsApp user), `inbox` (a recording webhook receiver), `clock` (the manual
clock) and `serve_app` (runs the bot under test). The classes work without pytest too.
"""

from collections.abc import Callable
from typing import Any

from openwaba.testing.apps import AppServer
from openwaba.testing.handles import Gateway, SimulatedUser, TestClock, shown_text
from openwaba.testing.inbox import Delivery, Inbox
from openwaba.testing.process import GatewayProcess

ServeApp = Callable[[Any], str]  # the `serve_app` fixture: runs an ASGI app, returns its base URL

__all__ = [
    "AppServer", "Delivery", "Gateway", "GatewayProcess", "Inbox", "ServeApp", "SimulatedUser", "TestClock",
    "shown_text",
]
