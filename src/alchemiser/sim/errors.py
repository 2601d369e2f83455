"""Alpaca's error codes and the exception that carries one to an HTTP answer."""

from __future__ import annotations

from typing import Any

CODE_BAD_REQUEST = 40010001
CODE_UNAUTHORIZED = 40110000
CODE_FORBIDDEN = 40310000
CODE_PDT = 40310100
CODE_NOT_FOUND = 40410000
CODE_UNPROCESSABLE = 42210000
CODE_RATE_LIMIT = 42910000
CODE_INTERNAL = 50010000


class SimError(Exception):
    """An Alpaca-style error: HTTP status plus a `{"code", "message", ...}` body."""

    def __init__(
        self,
        status: int,
        code: int,
        message: str,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.extra}


def bad_request(message: str) -> SimError:
    return SimError(422, CODE_BAD_REQUEST, message)


def forbidden(message: str, **extra: Any) -> SimError:
    return SimError(403, CODE_FORBIDDEN, message, **extra)


def not_found(message: str) -> SimError:
    return SimError(404, CODE_NOT_FOUND, message)
