"""/metrics' run duration: a resumed run is timed by its final attempt."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from alchemiser.daemon.metrics import Metrics
from alchemiser.daemon.status import Snapshot

STARTED = datetime(2026, 11, 18, 20, 30, tzinfo=UTC)


def duration(run: dict[str, object]) -> float:
    body = Metrics().render(Snapshot(last_run=run), stream_connected=True, reconciled=True)
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    return float(families["alchemiser_last_run_duration_seconds"].samples[0].value)


def test_a_resumed_run_is_timed_by_its_final_attempt_not_the_downtime_before_it() -> None:
    # Started at 15:30, the daemon was down for two hours, the resumed attempt took 42 s.
    run = {
        "started_at": STARTED,
        "finished_at": STARTED + timedelta(hours=2, seconds=42),
        "timings": {"evaluated": 3.5, "planned": 4.0, "executed": 40.0, "reconciled": 42.0},
    }
    assert duration(run) == 42.0


def test_a_run_without_step_times_is_timed_from_start_to_finish() -> None:
    run = {"started_at": STARTED, "finished_at": STARTED + timedelta(seconds=90), "timings": None}
    assert duration(run) == 90.0
