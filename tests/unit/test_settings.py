"""Settings for the shared database: what is accepted, and the 4xx-style message for what is not."""

from __future__ import annotations

import pytest

from openwaba.config import Settings
from openwaba.domain.errors import ConfigError


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, (None, 10, 30.0, None)),
        ({"OPENWABA_DATABASE_URL": "postgresql://u:p@db/o"}, ("postgresql://u:p@db/o", 10, 30.0, None)),
        ({"OPENWABA_DATABASE_URL": "postgres://db/x", "OPENWABA_DATABASE_POOL": "4"}, ("postgres://db/x", 4, 30, None)),
        ({"OPENWABA_LEASE_SECONDS": "3", "OPENWABA_WEBHOOK_TIMEOUT": "2"}, (None, 10, 3.0, None)),
        ({"OPENWABA_NODE_ID": "eu-1"}, (None, 10, 30.0, "eu-1")),
    ],
)
def test_database_settings_accepted(env: dict[str, str], expected: tuple[object, ...]) -> None:
    s = Settings.from_env(env)
    assert (s.database_url, s.database_pool, s.lease_seconds, s.node_id) == expected


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"OPENWABA_DATABASE_URL": "mysql://db/x"}, "must be a postgresql:// URL"),
        ({"OPENWABA_DATABASE_URL": "sqlite:///x.db"}, "must be a postgresql:// URL"),
        ({"OPENWABA_LEASE_SECONDS": "10"}, "OPENWABA_LEASE_SECONDS must be longer than OPENWABA_WEBHOOK_TIMEOUT"),
        ({"OPENWABA_LEASE_SECONDS": "2", "OPENWABA_WEBHOOK_TIMEOUT": "5"}, "must be longer"),
        ({"OPENWABA_DATABASE_POOL": "many"}, "invalid setting"),
    ],
)
def test_database_settings_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)


def test_command_line_overrides_are_checked_too() -> None:
    with pytest.raises(ConfigError, match="postgresql://"):
        Settings.from_env({}).with_overrides(database_url="http://db")
