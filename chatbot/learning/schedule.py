"""The nightly trigger: APScheduler runs the background consolidation at HH:MM local time while the app runs.
(For machines where the app is not always up, see scripts/cron.example and scripts/systemd/.)"""
from __future__ import annotations

import logging
from pathlib import Path

from chatbot.learning.jobs import start_consolidation

log = logging.getLogger(__name__)


def start_nightly(home: Path, hhmm: str, config_file: str | None = None):
    """Start a BackgroundScheduler with one cron job; returns the scheduler (call .shutdown() to stop)."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger

    hour, minute = (int(x) for x in hhmm.split(":"))
    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(lambda: log.info("nightly consolidation: %s", start_consolidation(home, config_file)),
                      CronTrigger(hour=hour, minute=minute), id="nightly-consolidation",
                      max_instances=1, coalesce=True, misfire_grace_time=3600)
    scheduler.start()
    log.info("nightly consolidation scheduled at %s", hhmm)
    return scheduler
