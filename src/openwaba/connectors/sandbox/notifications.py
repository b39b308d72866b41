"""Meta-shaped notifications, built exactly as Meta's Cloud API posts them,
so sandbox traffic goes through the same ingest code as production traffic.
"""

from __future__ import annotations

from typing import Any

from openwaba.domain.accounts import Channel, SandboxUser


def notification(channel: Channel, value_items: dict[str, Any], contacts: list[dict[str, Any]]) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": channel.phone_number, "phone_number_id": channel.phone_number_id},
    }
    if contacts:
        value["contacts"] = contacts
    value.update(value_items)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": channel.waba_id, "changes": [{"value": value, "field": "messages"}]}],
    }


def status_item(
    wamid: str,
    status: str,
    at: float,
    recipient: str,
    *,
    conversation: dict[str, Any] | None = None,
    errors: list[dict[str, Any]] | None = None,
    biz_opaque_callback_data: str | None = None,
    pricing: dict[str, Any] | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(int(at)), "recipient_id": recipient}
    if biz_opaque_callback_data is not None:
        item["biz_opaque_callback_data"] = biz_opaque_callback_data
    if errors:
        item["errors"] = errors  # a failed status has no conversation or pricing
    elif conversation is not None:
        item["conversation"] = conversation
        item["pricing"] = pricing or {
            "billable": False,
            "pricing_model": "PMP",
            "type": "free_customer_service",
            "category": "service",
        }
    return item


def inbound_item(user: SandboxUser, wamid: str, at: float, type_name: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"from": user.wa_id, "id": wamid, "timestamp": str(int(at)), "type": type_name, type_name: content}
