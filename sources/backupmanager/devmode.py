"""Dev mode: worker and dashboard in one process as the current user, everything under one folder."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path

from sqlalchemy import select

from backupmanager import services
from backupmanager.db import Database, upgrade_schema
from backupmanager.models import Job
from backupmanager.settings import Settings, load_settings

REAL_YUNOHOST = Path("/usr/bin/yunohost")
DEMO_JOB = {
    "name": "demo nextcloud",
    "type": "ynh_app",
    "config": {"app_id": "nextcloud"},
    "cron": "* * * * *",
    "retention": "count:5",
}


def simulator_path() -> Path:
    """The YunoHost simulator of the source checkout (tests and dev mode only)."""
    return Path(__file__).resolve().parents[1] / "tests" / "fakes" / "yunohost"


def dev_settings(data_dir: Path, *, config_path: Path | None = None, bind: str = "") -> Settings:
    """Every path under data_dir; the simulator stands in for a missing `yunohost`."""
    defaults: dict[str, object] = {
        "instance_name": "dev",
        "instance_url": f"http://{bind}" if bind else "",
        "data_dir": str(data_dir),
        "archives_dir": str(data_dir / "archives"),
        "poll_seconds": 1.0,
    }
    if not REAL_YUNOHOST.exists():
        defaults["programs"] = {"yunohost": str(simulator_path())}
        os.environ.setdefault("YNH_SIM_ROOT", str(data_dir / "yunohost-sim"))
        os.environ.setdefault("YNH_SIM_ARCHIVES_DIR", str(data_dir / "archives"))
    return load_settings(config_path, defaults=defaults)


def seed_demo_job(settings: Settings) -> None:
    """A first scheduled job, so a newcomer sees a backup happen within a minute."""
    database = Database(settings)
    try:
        with database.read() as session:
            if session.scalar(select(Job.id).limit(1)) is not None:
                return
        job = services.create_job(database, settings, dict(DEMO_JOB))
        logging.getLogger(__name__).info("created demo job %s (every minute)", job.id)
    finally:
        database.dispose()


def is_loopback(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _interrupt(_signal: int, _frame: object) -> None:
    raise KeyboardInterrupt


def serve(data_dir: Path, bind: str, *, config_path: Path | None = None) -> None:
    from werkzeug.serving import make_server

    from backupmanager.app import create_app
    from backupmanager.worker import Worker

    host, _, port = bind.rpartition(":")
    if not is_loopback(host or "127.0.0.1"):
        # Dev mode has no login: it must never be reachable from another machine.
        raise SystemExit(f"dev mode listens on this machine only: use 127.0.0.1, not {host}")
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = dev_settings(data_dir, config_path=config_path, bind=bind)
    settings.archives_dir.mkdir(parents=True, exist_ok=True)
    upgrade_schema(settings)
    seed_demo_job(settings)
    worker = Worker(settings)
    worker_thread = threading.Thread(target=worker.run_forever, name="worker", daemon=True)
    worker_thread.start()
    app = create_app(settings, dev_mode=True)
    server = make_server(host or "127.0.0.1", int(port), app, threaded=True)
    print(
        f"BackupManager dev mode: http://{bind}/  (no login: the local user is the admin; "
        f"data in {data_dir}; Ctrl+C to stop)",
        flush=True,
    )
    # Ctrl+C and `kill` both stop it cleanly, even when started from a script that ignores
    # SIGINT for its background jobs (a non-interactive shell's `&` does).
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop_event.set()
        worker_thread.join(timeout=30)
