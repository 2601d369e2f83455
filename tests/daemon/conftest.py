"""The simulator of tests/sim (reset before each test), as tests/run uses it."""

from __future__ import annotations

from tests.run.conftest import fresh_sim, sim

__all__ = ["fresh_sim", "sim"]
