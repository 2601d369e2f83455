"""Start-up configuration: every error names the key, the value's source and the reason."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("ALCHEMISER_", "ALPACA_")):
            monkeypatch.delenv(name)


def write_config(tmp_path: Path, body: str, strategies: tuple[str, ...] = ()) -> Path:
    (tmp_path / "strategies").mkdir(exist_ok=True)
    for name in strategies:
        (tmp_path / "strategies" / name).write_text('(defsymphony "x" {} (asset "SPY"))\n')
    path = tmp_path / "alchemiser.toml"
    path.write_text(body)
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return info.value.problems


def test_a_valid_file_loads_with_paths_relative_to_it(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
[[strategies]]
id = "tqqq"
file = "strategies/a.clj"
allocation = 0.6
[[strategies]]
id = "bonds"
file = "strategies/b.clj"
allocation = 0.4
capital = 2500.50
""",
        strategies=("a.clj", "b.clj"),
    )
    settings = load_settings(path)
    assert [s.id for s in settings.strategies] == ["tqqq", "bonds"]
    assert settings.strategies[0].file == tmp_path / "strategies" / "a.clj"
    assert settings.strategies[1].capital == Decimal("2500.50")
    assert isinstance(settings.strategies[0].allocation, Decimal)


def test_allocations_over_one_stop_start_up(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
[[strategies]]
id = "a"
file = "strategies/a.clj"
allocation = 0.7
[[strategies]]
id = "b"
file = "strategies/b.clj"
allocation = 0.35
""",
        strategies=("a.clj", "b.clj"),
    )
    assert problems(path) == [
        f"strategies.*.allocation (file {path}): allocations sum to 1.05, over 1"
    ]


def test_missing_strategy_file_stops_start_up(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[[strategies]]\nid = "a"\nfile = "strategies/missing.clj"\nallocation = 0.5\n',
    )
    missing = tmp_path / "strategies" / "missing.clj"
    assert problems(path) == [
        f"strategies[0].file = '{missing}' (file {path}): strategy file does not exist"
    ]


def test_duplicate_strategy_ids_stop_start_up(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        """
[[strategies]]
id = "same"
file = "strategies/a.clj"
allocation = 0.2
[[strategies]]
id = "same"
file = "strategies/b.clj"
allocation = 0.2
""",
        strategies=("a.clj", "b.clj"),
    )
    assert problems(path) == [f"strategies[1].id = 'same' (file {path}): duplicate strategy id"]


def test_bad_value_in_file_names_key_file_and_reason(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[execution]\nstep_interval_seconds = -5\n")
    (message,) = problems(path)
    assert message.startswith(f"execution.step_interval_seconds = -5 (file {path}):")
    assert "greater than 0" in message


def test_bad_value_in_environment_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, "[risk]\nmin_trade_value = 5\n")
    monkeypatch.setenv("ALCHEMISER_RISK__MIN_TRADE_VALUE", "lots")
    (message,) = problems(path)
    assert message.startswith(
        "risk.min_trade_value = 'lots' (environment variable ALCHEMISER_RISK__MIN_TRADE_VALUE):"
    )
    assert "decimal" in message


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, 'today_price = "live"\n[alpaca]\nfeed = "sip"\n')
    monkeypatch.setenv("ALCHEMISER_TODAY_PRICE", "previous_close")
    monkeypatch.setenv("ALPACA_FEED", "iex")
    settings = load_settings(path)
    assert settings.today_price == "previous_close"
    assert settings.alpaca.feed == "iex"


def test_unknown_key_is_an_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[execution]\nstep_intervall_seconds = 5\n")
    (message,) = problems(path)
    assert message.startswith(f"execution.step_intervall_seconds = 5 (file {path}):")
    assert "Extra inputs are not permitted" in message


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "today_price = \n")
    (message,) = problems(path)
    assert message.startswith(f"{path}: not valid TOML:")
    assert "line 1" in message


def test_config_env_var_pointing_nowhere_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("ALCHEMISER_CONFIG", str(missing))
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.problems == [
        f"ALCHEMISER_CONFIG={missing} (environment): file does not exist"
    ]


def test_alpaca_environment_and_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALPACA_API_KEY", "PK-ABC-123")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "s3cr3t-value")
    monkeypatch.setenv("ALPACA_PAPER", "false")
    monkeypatch.setenv("ALPACA_TRADING_URL", "http://127.0.0.1:8765/")
    monkeypatch.setenv("ALPACA_STREAM_URL", "ws://127.0.0.1:8765/stream")
    settings = load_settings(tmp_path / "absent.toml")
    alpaca = settings.alpaca
    assert alpaca.api_key.get_secret_value() == "PK-ABC-123"
    assert alpaca.paper is False
    # alpaca-py wants an origin without a trailing slash (a slash gives //v2 and a 404).
    assert alpaca.trading_base_url == "http://127.0.0.1:8765"
    assert alpaca.trading_stream_url == "ws://127.0.0.1:8765/stream"
    dumped = repr(settings) + settings.model_dump_json()
    assert "PK-ABC-123" not in dumped
    assert "s3cr3t-value" not in dumped


def test_alpaca_defaults_follow_paper_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(tmp_path / "a.toml").alpaca.trading_base_url == (
        "https://paper-api.alpaca.markets"
    )
    monkeypatch.setenv("ALPACA_PAPER", "false")
    live = load_settings(tmp_path / "a.toml").alpaca
    assert live.trading_base_url == "https://api.alpaca.markets"
    assert live.trading_stream_url == "wss://api.alpaca.markets/stream"


def test_a_url_with_a_path_is_rejected_without_showing_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALPACA_DATA_URL", "http://127.0.0.1:1/v2")
    monkeypatch.setenv("ALPACA_SECRET_KEY", "")
    (message,) = problems(tmp_path / "a.toml")
    assert message.startswith(
        "alpaca.data_url = 'http://127.0.0.1:1/v2' (environment variable ALPACA_DATA_URL):"
    )
    assert "origin" in message


def test_secret_values_are_never_echoed_in_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path, "[alpaca]\napi_key = 12345678\n")
    (message,) = problems(path)
    assert message.startswith(f"alpaca.api_key (file {path}):")
    assert "12345678" not in message


def test_reserved_book_name_is_rejected(tmp_path: Path) -> None:
    path = write_config(
        tmp_path,
        '[[strategies]]\nid = "unallocated"\nfile = "strategies/a.clj"\nallocation = 0.1\n',
        strategies=("a.clj",),
    )
    (message,) = problems(path)
    assert message.startswith(f"strategies[0].id = 'unallocated' (file {path}):")
    assert "reserved" in message


def test_slippage_allowance_above_the_cash_buffer_is_rejected(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[risk]\ncash_buffer = 0.002\nslippage_allowance = 0.005\n")
    (message,) = problems(path)
    assert message == (
        f"risk.slippage_allowance = 0.005 (file {path}): exceeds risk.cash_buffer 0.002, "
        "so planned buys would be cut back every run"
    )
