"""Which destinations an event goes to, by 360dialog's rules.

- The *primary* destination is the phone number's webhook, or the WABA's
  webhook when the number has none, or when the WABA webhook was set with
  `override_all`.
- With multi-webhook enabled, every extra destination receives the event too.
  By default (as 360dialog documents) an extra destination receives it only
  once the primary has answered 200; a channel can ask for independent
  delivery instead.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from openwaba.domain.deliveries import Destination


class FanoutMode(enum.Enum):
    AFTER_MAIN = "after_main"
    INDEPENDENT = "independent"


@dataclass(frozen=True, slots=True)
class WebhookSetup:
    """Everything configured for one channel's events."""

    main: Destination | None = None
    waba: Destination | None = None
    waba_override_all: bool = False
    multi_enabled: bool = False
    multi: tuple[Destination, ...] = ()
    fanout: FanoutMode = FanoutMode.AFTER_MAIN


@dataclass(frozen=True, slots=True)
class FanOut:
    """The deliveries one event gets."""

    primary: int | None = None
    extras: tuple[int, ...] = field(default=())
    extras_wait_for_primary: bool = False


def fan_out(setup: WebhookSetup) -> FanOut:
    primary = setup.main
    if setup.waba is not None and (setup.waba_override_all or setup.main is None):
        primary = setup.waba
    extras = tuple(d.id for d in setup.multi) if setup.multi_enabled else ()
    primary_id = primary.id if primary is not None else None
    wait = primary_id is not None and bool(extras) and setup.fanout is FanoutMode.AFTER_MAIN
    return FanOut(primary_id, extras, wait)
