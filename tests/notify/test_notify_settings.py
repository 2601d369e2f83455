"""`[notifications]`: channels from the TOML, secrets from the environment only."""

from __future__ import annotations

from pathlib import Path

import pytest

from alchemiser.settings import ConfigError, load_settings

CHANNELS = """
[notifications.email]
host = "smtp.example.org"
username = "trader"
from_address = "alchemiser@example.org"
to = ["trader@example.org"]

[notifications.webhook]
url = "https://hooks.example.org/T000/B000"
"""


def test_channels_come_from_the_file_and_secrets_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "alchemiser.toml"
    config.write_text(CHANNELS)
    monkeypatch.setenv("ALCHEMISER_NOTIFICATIONS__EMAIL__PASSWORD", "pw-from-env")
    monkeypatch.setenv("ALCHEMISER_NOTIFICATIONS__WEBHOOK__HEADER_VALUE", "Bearer t")
    monkeypatch.setenv("ALCHEMISER_NOTIFICATIONS__EMAIL__PORT", "465")
    notifications = load_settings(config).notifications
    assert notifications.email is not None and notifications.webhook is not None
    assert notifications.email.host == "smtp.example.org"
    assert notifications.email.port == 465 and notifications.email.security == "starttls"
    assert notifications.email.password is not None
    assert notifications.email.password.get_secret_value() == "pw-from-env"
    assert "pw-from-env" not in repr(notifications)
    assert notifications.webhook.header_value is not None
    assert notifications.webhook.header_value.get_secret_value() == "Bearer t"
    # The webhook's URL carries its token (Slack, Discord): never shown either.
    assert "T000/B000" not in repr(notifications)
    assert notifications.webhook.url.get_secret_value() == "https://hooks.example.org/T000/B000"


def test_a_password_in_the_file_is_refused_without_being_shown(tmp_path: Path) -> None:
    config = tmp_path / "alchemiser.toml"
    config.write_text(CHANNELS.replace('username = "trader"', 'password = "pw-in-file"'))
    with pytest.raises(ConfigError) as refused:
        load_settings(config)
    message = str(refused.value)
    assert "notifications.email.password" in message
    assert "ALCHEMISER_NOTIFICATIONS__EMAIL__PASSWORD" in message
    assert "pw-in-file" not in message


def test_a_channel_without_recipients_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "alchemiser.toml"
    config.write_text(CHANNELS.replace('to = ["trader@example.org"]', "to = []"))
    with pytest.raises(ConfigError, match=r"notifications\.email\.to"):
        load_settings(config)
