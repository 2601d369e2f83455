"""The simulator of tests/sim (reset before each test), as tests/run uses it, and the
webhook receiver of tests/notify."""

from __future__ import annotations

from tests.notify.test_notify import webhook
from tests.run.conftest import fresh_sim, sim

__all__ = ["fresh_sim", "sim", "webhook"]
