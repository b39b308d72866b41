"""One Settings object, read once from the environment (`OPENWABA_*`).

Command-line options of `openwaba serve` override the environment.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from openwaba.domain.errors import ConfigError
from openwaba.domain.retry import DEFAULT_DELAYS, DEFAULT_HORIZON, DEFAULT_JITTER, RetryPolicy, parse_delays
from openwaba.domain.throttle import THROUGHPUT_DEFAULT

_PREFIX = "OPENWABA_"


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("./openwaba-data")
    # postgresql://… to share one database between several nodes; SQLite in data_dir otherwise
    database_url: str | None = None
    database_pool: int = 10  # connections per node
    # how long work a node has claimed (deliveries, hand-overs) stays its own without renewal:
    # a node that dies leaves it to the others after this many seconds
    lease_seconds: float = 30.0
    # who holds leases in a shared database; host:port by default, stable across restarts
    node_id: str | None = None
    # sandbox seed: fixed in advance by scripts and test suites, random otherwise
    sandbox_api_key: str | None = None
    sandbox_phone_number: str = "15550001234"
    sandbox_users: tuple[str, ...] = ()
    # seconds after acceptance at which the sandbox reports sent, delivered, read
    sandbox_status_delays: tuple[float, float, float] = (0.0, 0.05, 0.1)
    # false: the sandbox accepts messages and reports nothing about them (load tests of the send path)
    sandbox_statuses: bool = True
    # the sandbox's template review: decided this many seconds after creation;
    # names matching the pattern are rejected (as are bodies that start or end with a variable)
    sandbox_template_review_seconds: float = 2.0
    sandbox_template_reject: str = "reject"
    # a scenario file applied to the demo number at every start (see the README, "Scenarios")
    sandbox_scenario: Path | None = None
    # per-number limits (130429 throughput, 131056 pair rate); channels can override both
    throughput: float = THROUGHPUT_DEFAULT
    rate_limits: bool = True
    # delivery engine
    retry_delays: tuple[float, ...] = DEFAULT_DELAYS
    retry_horizon: float = DEFAULT_HORIZON
    retry_jitter: float = DEFAULT_JITTER
    webhook_timeout: float = 10.0
    delivery_concurrency: int = 64
    destination_concurrency: int = 16  # in flight to one destination
    circuit_open_after: float = 1800.0  # seconds of failing without a break before a destination is paused
    circuit_probe_every: float = 60.0  # a paused destination gets one probe attempt this often
    # webhook routing
    multi_webhook_max: int = 3
    ssrf_guard: bool = True  # production numbers may not post to private/loopback addresses
    # Meta's Cloud API. `connector` switches the demo number (the first one) between the
    # sandbox and Meta; unset leaves it as it is. Meta needs the number's Meta
    # phone-number id, a system-user access token and the app secret.
    connector: str | None = None
    meta_phone_number_id: str | None = None
    meta_waba_id: str | None = None
    meta_access_token: str | None = None
    meta_app_secret: str | None = None
    meta_verify_token: str | None = None  # answers Meta's GET /meta/webhook subscription check
    meta_graph_url: str = "https://graph.facebook.com"
    meta_api_version: str = "v25.0"
    meta_timeout: float = 20.0  # seconds for one Graph call
    meta_retry_delays: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)  # pauses between tries when Meta says "not now"
    # partner/admin API: disabled until a key is set
    partner_id: str = "openwaba"
    partner_api_key: str | None = None
    # `manual` lets POST /sandbox/clock move time forward (tests, demos)
    clock: str = "system"
    log_level: str = "info"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "openwaba.db"

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(delays=self.retry_delays, horizon=self.retry_horizon, jitter=self.retry_jitter)

    def with_overrides(self, **values: object) -> Settings:
        given = {k: v for k, v in values.items() if v is not None}
        changed = replace(self, **given)  # type: ignore[arg-type]  # keys and types come from the CLI options
        changed.check()
        return changed

    def check(self) -> None:
        """ConfigError for values that convert but make no sense together."""
        if self.clock not in ("system", "manual"):
            raise ConfigError("OPENWABA_CLOCK must be 'system' or 'manual'")
        try:
            re.compile(self.sandbox_template_reject)
        except re.error as exc:
            raise ConfigError(f"OPENWABA_SANDBOX_TEMPLATE_REJECT is not a regular expression: {exc}") from None
        if self.database_url is not None and not self.database_url.startswith(("postgresql://", "postgres://")):
            raise ConfigError("the database URL must be a postgresql:// URL (leave it unset for SQLite)")
        if self.connector not in (None, "sandbox", "meta"):
            raise ConfigError("OPENWABA_CONNECTOR must be 'sandbox' or 'meta'")
        needed = ("meta_phone_number_id", "meta_access_token", "meta_app_secret")
        if self.connector == "meta" and not all(getattr(self, name) for name in needed):
            names = ", ".join(f"OPENWABA_{name.upper()}" for name in needed)
            raise ConfigError(f"OPENWABA_CONNECTOR=meta needs {names}")
        if not re.fullmatch(r"v\d+\.\d+", self.meta_api_version):
            raise ConfigError("OPENWABA_META_API_VERSION must look like v25.0")
        if self.lease_seconds <= self.webhook_timeout:
            raise ConfigError("OPENWABA_LEASE_SECONDS must be longer than OPENWABA_WEBHOOK_TIMEOUT")
        try:
            self.retry_policy()
        except ValueError as exc:
            raise ConfigError(f"invalid retry settings: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(_PREFIX + name)
            return value if value not in (None, "") else None

        values: dict[str, object] = {}
        try:
            for name, convert in _CONVERTERS.items():
                raw = get(name.upper())
                if raw is not None:
                    values[name] = convert(raw)
        except ValueError as exc:
            raise ConfigError(f"invalid setting: {exc}") from None
        settings = cls(**values)  # type: ignore[arg-type]
        settings.check()
        return settings


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _boolean(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _three_delays(raw: str) -> tuple[float, float, float]:
    delays = parse_delays(raw)
    if len(delays) != 3:
        raise ValueError("OPENWABA_SANDBOX_STATUS_DELAYS needs three numbers: sent,delivered,read")
    return (delays[0], delays[1], delays[2])


_CONVERTERS: dict[str, Callable[[str], object]] = {
    "host": str,
    "port": int,
    "data_dir": Path,
    "database_url": str,
    "database_pool": int,
    "lease_seconds": float,
    "node_id": str,
    "sandbox_api_key": str,
    "sandbox_phone_number": str,
    "sandbox_users": _csv,
    "sandbox_status_delays": _three_delays,
    "sandbox_statuses": _boolean,
    "sandbox_template_review_seconds": float,
    "sandbox_template_reject": str,
    "sandbox_scenario": Path,
    "throughput": float,
    "rate_limits": _boolean,
    "retry_delays": parse_delays,
    "retry_horizon": float,
    "retry_jitter": float,
    "webhook_timeout": float,
    "delivery_concurrency": int,
    "destination_concurrency": int,
    "circuit_open_after": float,
    "circuit_probe_every": float,
    "clock": str,
    "multi_webhook_max": int,
    "ssrf_guard": _boolean,
    "connector": str,
    "meta_phone_number_id": str,
    "meta_waba_id": str,
    "meta_access_token": str,
    "meta_app_secret": str,
    "meta_verify_token": str,
    "meta_graph_url": str,
    "meta_api_version": str,
    "meta_timeout": float,
    "meta_retry_delays": parse_delays,
    "partner_id": str,
    "partner_api_key": str,
    "log_level": str,
}
