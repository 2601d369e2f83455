"""Settings: environment variables over `config/alchemiser.toml` over defaults.

Environment: `ALCHEMISER_*` (nested keys with `__`, e.g.
`ALCHEMISER_EXECUTION__STEP_INTERVAL_SECONDS`) and Alpaca's own `ALPACA_*`.
The TOML file (`ALCHEMISER_CONFIG`, default `config/alchemiser.toml`) holds the
strategies, schedule, execution and risk settings. Strategy file paths in the
TOML are relative to the TOML file's folder.

`load_settings()` is the only way in: any bad value becomes a `ConfigError`
whose message names the key, where the value came from and what is wrong.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "ALCHEMISER_"
ENV_NESTED_DELIMITER = "__"
CONFIG_ENV_VAR = "ALCHEMISER_CONFIG"
DEFAULT_CONFIG_PATH = Path("config/alchemiser.toml")
ALPACA_ENV_PREFIX = "ALPACA_"
# The account that owns whatever no strategy's book holds.
UNALLOCATED_BOOK = "unallocated"


class ConfigError(Exception):
    """Start-up configuration is invalid; the message says exactly what and where."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StrategyConfig(_Section):
    """One strategy: its `.clj` file and its share of the account."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    file: Path
    allocation: Decimal = Field(ge=0, le=1)
    # A fixed starting amount instead of allocation × equity.
    capital: Decimal | None = Field(default=None, gt=0)
    state: Literal["active", "halted"] = "active"

    @field_validator("id")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == UNALLOCATED_BOOK:
            raise ValueError(f"'{UNALLOCATED_BOOK}' is reserved for cash no strategy holds")
        return value


class ScheduleConfig(_Section):
    # Run at this ET time, or `minutes_before_close` before an early close if earlier.
    run_time: time = time(15, 30)
    minutes_before_close: int = Field(default=30, ge=1, le=390)


class DaemonConfig(_Section):
    """`alchemiser run`: its health server and how it stops and keeps time."""

    # 0.0.0.0 only inside a container whose port is published to 127.0.0.1.
    health_host: str = "127.0.0.1"
    # On SIGTERM/SIGINT working walks get this long (no new order) before their
    # orders are cancelled and the run is recorded as interrupted.
    grace_seconds: float = Field(default=30.0, ge=0)
    # How often the broker's clock and calendar are read (the schedule follows them).
    check_seconds: float = Field(default=30.0, gt=0)
    # Overnight bar refresh, ET (after the previous session's bars are final).
    bars_refresh_time: time = time(4, 0)
    # /readyz turns red when the books were last reconciled longer ago than this.
    reconcile_max_age_seconds: float = Field(default=3600.0, gt=0)


class ExecutionConfig(_Section):
    # Fractions of the spread from the near side for successive limit steps.
    step_fractions: tuple[Decimal, ...] = (Decimal("0.75"), Decimal("0.85"), Decimal("0.95"))
    step_interval_seconds: float = Field(default=30.0, gt=0)
    order_timeout_seconds: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    # While walks are live, orders are read back over REST this often (Alpaca never
    # replays what the stream missed) and a stream that missed fills is reconnected.
    catch_up_interval_seconds: float = Field(default=30.0, gt=0)
    # A one-sided, crossed or stale quote is priced as the last trade ± this fraction
    # of its price (when the trade is fresh); 0: the walk waits for a usable quote.
    last_trade_band: Decimal = Field(default=Decimal("0.001"), ge=0, lt=Decimal("0.1"))

    @field_validator("step_fractions")
    @classmethod
    def _fractions_in_spread(cls, value: tuple[Decimal, ...]) -> tuple[Decimal, ...]:
        if not value:
            raise ValueError("at least one step is needed")
        if any(not (0 <= f <= 1) for f in value):
            raise ValueError("each step must be between 0 and 1 (a fraction of the spread)")
        if list(value) != sorted(value):
            raise ValueError("steps must walk toward the far side (ascending)")
        return value


class BacktestConfig(_Section):
    """Costs `alchemiser backtest` charges; zero by default, as in Composer's backtests."""

    slippage_bps: Decimal = Field(default=Decimal(0), ge=0)  # of each trade's value
    fee_per_trade: Decimal = Field(default=Decimal(0), ge=0)  # dollars per symbol traded


class RiskConfig(_Section):
    min_trade_value: Decimal = Field(default=Decimal("1.00"), ge=0)
    cash_buffer: Decimal = Field(default=Decimal("0.01"), ge=0, lt=1)
    # Phase 2 spends at most cash × (1 − slippage_allowance) at reference prices, since
    # buys fill above them (limits across the spread, then market). Keep it ≤ cash_buffer,
    # or planned buys are scaled down every run.
    slippage_allowance: Decimal = Field(default=Decimal("0.005"), ge=0, lt=1)
    reconcile_tolerance: Decimal = Field(default=Decimal("0.01"), ge=0)
    max_data_age_days: int = Field(default=1, ge=0)
    # Checked before orders are sent: no net order above this value (None: no limit), and
    # no run that trades more than this share of the account (sells plus buys; 2 allows a
    # full rotation). A plan over either is not traded, and says why.
    max_order_value: Decimal | None = Field(default=None, gt=0)
    max_run_traded_share: Decimal = Field(default=Decimal(2), gt=0)


class MarketDataConfig(_Section):
    # A new ticker's bars reach back this far.
    history_years: int = Field(default=20, ge=1, le=100)
    # alpaca-py sends requests without a timeout; we set one on its session.
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    # Our own bounded retries (429, 5xx, timeouts); alpaca-py's are switched off.
    # 1+2+4+8+16+30 s of backoff outlasts the data API's one-minute rate-limit window.
    max_retries: int = Field(default=6, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=1.0, ge=0)
    retry_backoff_max_seconds: float = Field(default=30.0, ge=0)
    # How many of the newest stored bars a refresh re-reads to detect retroactive adjustments.
    adjustment_check_bars: int = Field(default=5, ge=1, le=100)
    # Parallel requests to the data API.
    concurrency: int = Field(default=4, ge=1, le=32)


class BooksConfig(_Section):
    # When cash moves between funded books: only when a strategy's allocation changes
    # in the configuration, or also when a book's share of the account drifts past
    # drift_threshold (absolute, e.g. 0.05 = 5 points).
    capital_policy: Literal["allocation_change", "drift"] = "allocation_change"
    drift_threshold: Decimal = Field(default=Decimal("0.05"), gt=0, lt=1)


class EmailConfig(_Section):
    """E-mail over SMTP. The password comes from the environment only."""

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    # starttls (port 587), ssl (port 465), or none (a local relay).
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_address: str
    to: tuple[str, ...] = Field(min_length=1)
    timeout_seconds: float = Field(default=30.0, gt=0)


class WebhookConfig(_Section):
    """A JSON POST; `header_value` (from the environment only) is sent as `header_name`."""

    # A secret: Slack's and Discord's webhooks carry their token in the path.
    url: SecretStr
    header_name: str = "Authorization"
    header_value: SecretStr | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value


class NotificationsConfig(_Section):
    # A run's summary, and a failed or missed run, go to every channel configured here.
    email: EmailConfig | None = None
    webhook: WebhookConfig | None = None


# Settings that may come only from the environment, never from the TOML file.
ENV_ONLY_SECRETS = (
    ("notifications", "email", "password"),
    ("notifications", "webhook", "header_value"),
)


class AlpacaConfig(_Section):
    api_key: SecretStr = SecretStr("")
    secret_key: SecretStr = SecretStr("")
    paper: bool = True
    trading_url: str | None = None
    data_url: str = "https://data.alpaca.markets"
    stream_url: str | None = None
    data_stream_url: str = "wss://stream.data.alpaca.markets/v2/iex"
    feed: Literal["iex", "sip"] = "iex"

    @field_validator("trading_url", "data_url")
    @classmethod
    def _origin_only(cls, value: str | None) -> str | None:
        # alpaca-py appends /v2/...: a trailing slash or a path gives 404s (wire doc §1).
        if value is not None and value.rstrip("/").count("/") > 2:
            raise ValueError("must be an origin like http://host:port, without a path")
        return value.rstrip("/") if value else value

    @property
    def trading_base_url(self) -> str:
        if self.trading_url:
            return self.trading_url
        return "https://paper-api.alpaca.markets" if self.paper else "https://api.alpaca.markets"

    @property
    def trading_stream_url(self) -> str:
        if self.stream_url:
            return self.stream_url
        host = "paper-api" if self.paper else "api"
        return f"wss://{host}.alpaca.markets/stream"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        frozen=True,
    )

    config: Path = DEFAULT_CONFIG_PATH
    database_url: SecretStr | None = None
    data_dir: Path = Path(".alchemiser")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    today_price: Literal["live", "previous_close"] = "live"
    health_port: int = Field(default=8080, ge=0, le=65535)
    strategies: tuple[StrategyConfig, ...] = ()
    schedule: ScheduleConfig = ScheduleConfig()
    daemon: DaemonConfig = DaemonConfig()
    execution: ExecutionConfig = ExecutionConfig()
    risk: RiskConfig = RiskConfig()
    books: BooksConfig = BooksConfig()
    alpaca: AlpacaConfig = AlpacaConfig()
    marketdata: MarketDataConfig = MarketDataConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    backtest: BacktestConfig = BacktestConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest priority first: ALCHEMISER_* env, then ALPACA_* env, then the TOML
        # (passed as init kwargs by load_settings).
        return (env_settings, _AlpacaEnvSource(settings_cls), init_settings)


class _AlpacaEnvSource(PydanticBaseSettingsSource):
    """Maps Alpaca's conventional ALPACA_* variables onto the `alpaca` section."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ builds the whole section

    def __call__(self) -> dict[str, Any]:
        found = _alpaca_env(os.environ)
        return {"alpaca": found} if found else {}


def _alpaca_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        name: environ[ALPACA_ENV_PREFIX + name.upper()]
        for name in AlpacaConfig.model_fields
        if ALPACA_ENV_PREFIX + name.upper() in environ
    }


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get(CONFIG_ENV_VAR, str(DEFAULT_CONFIG_PATH)))


def load_settings(path: Path | None = None) -> Settings:
    """Read the TOML and the environment, validate, and check cross-field rules."""
    path = path or config_path()
    toml = _read_toml(path)
    _resolve_strategy_files(toml, path.parent)
    try:
        settings = Settings(**{**toml, "config": path})
    except ValidationError as exc:
        raise ConfigError([_describe(err, toml, path) for err in exc.errors()]) from None
    problems = _cross_checks(settings, toml, path)
    if problems:
        raise ConfigError(problems)
    return settings


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.exists():
        if CONFIG_ENV_VAR in os.environ:
            raise ConfigError([f"{CONFIG_ENV_VAR}={path} (environment): file does not exist"])
        return {}  # the default file is optional: defaults and environment suffice
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None


def _resolve_strategy_files(toml: dict[str, Any], base: Path) -> None:
    for entry in toml.get("strategies", []):
        if isinstance(entry, dict) and isinstance(entry.get("file"), str):
            entry["file"] = str(base / entry["file"])


def _describe(err: Mapping[str, Any], toml: Mapping[str, Any], path: Path) -> str:
    loc = tuple(err["loc"])
    key = _key_name(loc)
    source = _source_of(loc, toml, path)
    value = err.get("input")
    shown = "" if _is_secret(loc) or isinstance(value, dict) else f" = {value!r}"
    return f"{key}{shown} ({source}): {err['msg']}"


def _key_name(loc: tuple[Any, ...]) -> str:
    """('strategies', 0, 'id') → 'strategies[0].id', as a TOML user would name it."""
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else f".{part}" if name else str(part)
    return name


def _is_secret(loc: tuple[Any, ...]) -> bool:
    return any(
        str(p) in {"api_key", "secret_key", "database_url", "password", "header_value"} for p in loc
    )


def _source_of(loc: tuple[Any, ...], toml: Mapping[str, Any], path: Path) -> str:
    """Where a value at `loc` came from: an environment variable, the file, or a default."""
    env_name = ENV_PREFIX + ENV_NESTED_DELIMITER.join(str(p) for p in loc).upper()
    if env_name in os.environ:
        return f"environment variable {env_name}"
    if loc and loc[0] == "alpaca" and len(loc) > 1:
        alpaca_name = ALPACA_ENV_PREFIX + str(loc[1]).upper()
        if alpaca_name in os.environ:
            return f"environment variable {alpaca_name}"
    if _in_toml(loc, toml):
        return f"file {path}"
    return "default"


def _in_toml(loc: tuple[Any, ...], toml: Any) -> bool:
    node = toml
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        else:
            return False
    return True


def _cross_checks(settings: Settings, toml: Mapping[str, Any], path: Path) -> list[str]:
    problems: list[str] = []
    problems += [
        f"{_key_name(loc)} (file {path}): a secret; set it in the environment "
        f"({ENV_PREFIX}{ENV_NESTED_DELIMITER.join(loc).upper()}), not in the file"
        for loc in ENV_ONLY_SECRETS
        if _in_toml(loc, toml)
    ]
    seen: set[str] = set()
    for i, strategy in enumerate(settings.strategies):
        where = f"strategies[{i}]"
        if strategy.id in seen:
            problems.append(f"{where}.id = {strategy.id!r} (file {path}): duplicate strategy id")
        seen.add(strategy.id)
        if not strategy.file.is_file():
            problems.append(
                f"{where}.file = '{strategy.file}' (file {path}): strategy file does not exist"
            )
    risk = settings.risk
    if risk.slippage_allowance > risk.cash_buffer:
        source = _source_of(("risk", "slippage_allowance"), toml, path)
        problems.append(
            f"risk.slippage_allowance = {risk.slippage_allowance} ({source}): exceeds "
            f"risk.cash_buffer {risk.cash_buffer}, so planned buys would be cut back every run"
        )
    total = sum((s.allocation for s in settings.strategies), Decimal(0))
    if total > 1:
        problems.append(
            f"strategies.*.allocation (file {path}): allocations sum to {total}, over 1"
        )
    return problems
