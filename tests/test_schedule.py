"""The scheduled jobs and their intervals, as README's Operations and Configuration state them."""

from __future__ import annotations

from pathlib import Path

from core.settings import load_settings
from vigia import scheduler
from vigia.wiring import build


def test_every_job_runs_at_its_stated_interval_and_only_the_rules_reload_is_per_replica(
    tmp_path: Path,
) -> None:
    services = build(
        load_settings(
            data_dir=tmp_path,
            database_url="",
            feeds=[str(tmp_path / "feed.txt")],
            misp_url="http://127.0.0.1:9",
            elasticsearch_url="http://127.0.0.1:9",
            reports_dir=tmp_path / "reports",
        )
    )
    jobs = scheduler.start(services)
    try:
        every = {j.id: j.trigger.interval.total_seconds() for j in jobs.get_jobs()}
        shared = {j.id: j.args[-1] for j in jobs.get_jobs()}
    finally:
        jobs.shutdown(wait=False)
        services.close()
    assert every == {
        "audit-verify": 3600,
        "indicators-expire": 3600,  # the expiry purge, hourly
        "incidents": 30,  # grouping sweep, SLA breaches, notification outbox
        "rules": 60,  # the YARA reload
        "certification": 1800,  # expiry, reminders, observation
        "progress-snapshot": 3600,
        "notify-digest": 3600,  # the daily digests, on the first run after midnight
        "feeds": 60 * 60,  # VIGIA_FEED_MINUTES (60)
        "misp": 15 * 60,  # VIGIA_MISP_SYNC_MINUTES (15): the sync, then the sightings
        "alerts-to-elasticsearch": 10,
        "indicators-to-elasticsearch": 60,
        "reports": 15 * 60,  # VIGIA_REPORTS_MINUTES (15): folder, mailbox, URLs
    }
    doc = scheduler.__doc__ or ""
    assert [name for name in every if f"`{name}`" not in doc] == []  # each job named
    assert [name for name, is_shared in shared.items() if not is_shared] == ["rules"]
    bare = build(load_settings(data_dir=tmp_path / "bare", database_url=""))
    plain = scheduler.start(bare)
    try:  # without feeds, MISP or a cluster, their jobs are not scheduled
        assert {j.id for j in plain.get_jobs()} == {name for name, *_ in scheduler.JOBS}
    finally:
        plain.shutdown(wait=False)
        bare.close()
