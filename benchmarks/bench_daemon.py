"""Benchmark of `alchemiser run`: resident memory idle and at the peak of a run.

Target (issue 12): under 300 MB idle, with the 78 valid strategies of the shared
corpus (../shared/corpus/clj) configured.

The daemon is the real command in its own process, against `alchemiser sim` in
another. The simulator's clock starts at 15:20 ET: the daemon starts, reconciles,
and idles (idle RSS is read once it is ready and has idled a few seconds). Then the
clock is moved to 15:30 and the daemon's own schedule starts the run; RSS is
sampled until /status shows the run finished, and the kernel's high-water mark
(VmHWM) gives the peak. The run parses and evaluates in worker processes, which
exit when the evaluation ends: their memory is sampled beside the daemon's and
reported with it. Idle is read again after the run.

Run: `.venv/bin/python benchmarks/bench_daemon.py` (TEST_DATABASE_URL selects a
PostgreSQL server; without it an embedded one is started).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from bench_run import CORPUS, HISTORY_YEARS, valid_strategies
from simproc import database_server, start_sim

from alchemiser import db

START = "2026-11-18T15:20:00-05:00"
RUN_TIME = "2026-11-18T15:30:00-05:00"
TARGET_IDLE_MB = 300
IDLE_SECONDS = 5.0
SETTLE_SECONDS = 30.0  # allocators hand memory back with a delay
SAMPLE_SECONDS = 0.2
TIMEOUT_S = 600
CAPITAL = 10_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def memory_mb(pid: int, field: str) -> float:
    """VmRSS (now) or VmHWM (the peak so far) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def children_mb(pid: int) -> float:
    """The resident memory of the process's children now (its evaluation workers)."""
    total = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            with contextlib.suppress(OSError, RuntimeError):  # it just exited
                total += memory_mb(int(child), "VmRSS")
    return total


def get(port: int, path: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


def set_clock(trading_url: str, now: str) -> None:
    request = urllib.request.Request(
        f"{trading_url}/_sim/clock",
        data=json.dumps({"now": now}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=10).close()


def write_config(folder: Path, port: int) -> Path:
    lines = [
        f"health_port = {port}",
        "[daemon]",
        "check_seconds = 1",
        "[marketdata]",
        f"history_years = {HISTORY_YEARS}",
        "[execution]",
        "step_interval_seconds = 1.0",
    ]
    for strategy in valid_strategies():
        lines += [
            "[[strategies]]",
            f'id = "{strategy.id}"',
            f'file = "{strategy.file}"',
            "allocation = 0",
            f"capital = {CAPITAL}",
        ]
    path = folder / "bench.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def wait_for(port: int, proc: subprocess.Popen[bytes], path: str, done: Any) -> Any:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the daemon exited ({proc.returncode})")
        code, body = get(port, path)
        if done(code, body):
            return body
        time.sleep(SAMPLE_SECONDS)
    sys.exit(f"timed out waiting for {path}")


def bench(env: dict[str, str], database_url: str, folder: Path) -> None:
    port = free_port()
    config = write_config(folder, port)
    child_env = {
        **os.environ,
        **env,
        "ALCHEMISER_DATABASE_URL": database_url,
        "ALCHEMISER_CONFIG": str(config),
        "ALCHEMISER_LOG_LEVEL": "warning",
        "ALCHEMISER_LOG_FORMAT": "json",
    }
    log = (folder / "daemon.log").open("w")
    command = [sys.executable, "-m", "alchemiser.cli", "run"]
    proc = subprocess.Popen(command, env=child_env, stdout=log, stderr=log)
    try:
        started = time.perf_counter()
        wait_for(port, proc, "/readyz", lambda code, _: code == 200)
        ready_s = time.perf_counter() - started
        print(f"{len(valid_strategies())} strategies; ready in {ready_s:.1f} s")
        time.sleep(IDLE_SECONDS)
        idle = memory_mb(proc.pid, "VmRSS")
        verdict = "PASS" if idle < TARGET_IDLE_MB else "FAIL"
        print(f"idle RSS before the run: {idle:.0f} MB (target < {TARGET_IDLE_MB} MB) {verdict}")

        set_clock(env["ALPACA_TRADING_URL"], RUN_TIME)
        run_started, peak, peak_tree = time.perf_counter(), idle, idle
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            own = memory_mb(proc.pid, "VmRSS")
            peak, peak_tree = max(peak, own), max(peak_tree, own + children_mb(proc.pid))
            _, status = get(port, "/status")
            run = status and status["last_run"]
            if run and run["status"] in ("completed", "failed") and not status["running"]:
                break
            time.sleep(SAMPLE_SECONDS)
        else:
            sys.exit("the run did not finish")
        high_water = memory_mb(proc.pid, "VmHWM")
        failed = sum(1 for s in run["strategies"] if not s["ok"])
        print(
            f"the run: {run['status']} in {time.perf_counter() - run_started:.1f} s "
            f"({failed} strategies skipped); peak RSS {max(peak, high_water):.0f} MB "
            f"(sampled {peak:.0f} MB, VmHWM {high_water:.0f} MB); with its evaluation "
            f"workers, sampled: {peak_tree:.0f} MB"
        )
        time.sleep(SETTLE_SECONDS)
        after = memory_mb(proc.pid, "VmRSS")
        print(f"idle RSS {SETTLE_SECONDS:.0f} s after the run: {after:.0f} MB")
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def main() -> None:
    if not CORPUS.is_dir():
        sys.exit(f"the corpus is not at {CORPUS}")
    server = database_server()
    name = f"alchemiser_bench_{uuid.uuid4().hex[:8]}"
    url = asyncio.run(db.create_database(server, name))
    proc, env = start_sim("--seed", "3", "--now", START, "--cash", "10000000")
    try:
        with tempfile.TemporaryDirectory() as folder:
            bench(env, url, Path(folder))
    finally:
        proc.terminate()
        proc.wait(10)
        asyncio.run(db.drop_database(server, name))


if __name__ == "__main__":
    main()
