"""What the benchmarks share: `alchemiser sim` in its own process, and a PostgreSQL server.

Run as scripts, the benchmarks find this module beside them (their folder is on
`sys.path`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from alchemiser import db

SETTINGS_LINES = 6  # `alchemiser sim` prints the ALPACA_* settings first, one a line


def start_sim(*options: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`alchemiser sim --port 0 OPTIONS...` and the ALPACA_* settings that reach it."""
    command = [sys.executable, "-m", "alchemiser.cli", "sim", "--port", "0", *options]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = (proc.stdout.readline().strip() for _ in range(SETTINGS_LINES))
    return proc, dict(line.split("=", 1) for line in lines)


def database_server() -> str:
    """TEST_DATABASE_URL's server, or an embedded one started for the benchmark."""
    configured = os.environ.get("TEST_DATABASE_URL")
    if configured:
        return db.async_url(configured)
    return db.start_embedded(Path(tempfile.mkdtemp()), scratch=True)
