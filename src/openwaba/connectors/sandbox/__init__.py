"""The built-in sandbox: a simulated WhatsApp network with simulated users."""

from openwaba.connectors.sandbox.network import SandboxConnector

__all__ = ["SandboxConnector"]
