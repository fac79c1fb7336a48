"""The worker: single scheduler, queued commands, missed slots, crash recovery (S-S)."""

from __future__ import annotations

import os
import signal
import subprocess
import tarfile
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from backupmanager import services
from backupmanager.clock import system_clock
from backupmanager.db import Database
from backupmanager.models import Archive, Job, Run
from backupmanager.settings import Settings
from backupmanager.worker import Worker, WorkerAlreadyRunning, catch_up_missed_slots
from tests.helpers import BACKUPMANAGER, add_job, set_behaviour, wait_for


def start_worker(cli_env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BACKUPMANAGER), "worker"], env=cli_env, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def run_status(db: Database, run_id: int) -> str:
    with db.read() as session:
        return services.get_run(session, run_id).status


def test_only_one_worker_per_machine(db: Database, settings: Settings) -> None:
    first = Worker(settings)
    first.acquire_lock()
    try:
        second = Worker(settings)
        try:
            second.acquire_lock()
        except WorkerAlreadyRunning as error:
            assert str(os.getpid()) in str(error)
        else:
            raise AssertionError("a second worker got the lock")
    finally:
        first.stop()


def test_worker_runs_queued_commands_and_picks_up_new_jobs(
    db: Database, settings: Settings
) -> None:
    worker = Worker(settings)
    worker.start()
    try:
        job_id = add_job(db, settings, cron="0 4 * * *")  # created after start, no restart
        worker.tick()
        assert job_id in worker._scheduler.next_fire_times()
        queued = services.queue_run(
            db, job_id, trigger="manual", requested_by="test", now=system_clock()
        )
        worker.tick()
        wait_for(lambda: run_status(db, queued.run_id) == "success", what="the queued run")
        services.set_enabled(db, job_id, False)
        worker.tick()
        assert job_id not in worker._scheduler.next_fire_times()
    finally:
        worker.stop()


def test_one_run_of_a_job_at_a_time(db: Database, settings: Settings) -> None:
    job_id = add_job(db, settings)
    first = services.queue_run(db, job_id, trigger="manual", requested_by="a", now=system_clock())
    second = services.queue_run(
        db, job_id, trigger="schedule", requested_by="b", now=system_clock()
    )
    assert first.created and not second.created and second.run_id == first.run_id


def test_missed_slot_runs_once_at_start_up(db: Database, settings: Settings) -> None:
    hourly = add_job(db, settings, name="hourly", cron="0 * * * *")
    fresh = add_job(db, settings, name="fresh", cron="0 * * * *")
    now = system_clock()
    with db.write() as session:  # the worker was down for 5 hours: 5 slots missed
        session.execute(
            update(Job).where(Job.id == hourly).values(created_at=now - timedelta(hours=5))
        )
    assert catch_up_missed_slots(db, settings, now) == [hourly]
    assert catch_up_missed_slots(db, settings, now) == []  # once, not once per missed slot
    with db.read() as session:
        runs = session.scalars(select(Run)).all()
    assert [(run.job_id, run.trigger) for run in runs] == [(hourly, "catch-up")]
    assert fresh not in [run.job_id for run in runs]


def test_sigkill_mid_backup_leaves_no_false_archive(
    db: Database, settings: Settings, sim_root: Path, cli_env: dict[str, str], tmp_path: Path
) -> None:
    job_id = add_job(db, settings)
    set_behaviour(sim_root, delay_seconds=4)
    log = tmp_path / "worker.log"
    worker = start_worker(cli_env, log)
    try:
        queued = services.queue_run(
            db, job_id, trigger="manual", requested_by="test", now=system_clock()
        )
        partial = settings.archives_dir / f"bm-partial-r{queued.run_id}.tar"
        wait_for(partial.exists, what="YunoHost to start writing the archive")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    assert run_status(db, queued.run_id) == "running"  # nobody could record anything
    set_behaviour(sim_root)
    restarted = start_worker(cli_env, log)
    try:
        wait_for(
            lambda: run_status(db, queued.run_id) == "interrupted",
            what="the run to be marked interrupted",
        )
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=30) == 0, log.read_text()
    # The orphaned YunoHost process may still finish; wait for it, then check every final name.
    wait_for(
        lambda: (
            subprocess.run(
                ["pgrep", "-f", f"bm-partial-r{queued.run_id}"], capture_output=True
            ).returncode
            != 0
        ),
        what="the orphaned yunohost to end",
    )
    with db.read() as session:
        indexed = {row.name: row for row in session.scalars(select(Archive))}
        run = session.get(Run, queued.run_id)
    assert run is not None and "interrupted" in (run.error_message or "")
    for path in settings.archives_dir.glob("*.tar"):
        if path.name.startswith("bm-partial-"):
            continue
        name = path.name.removesuffix(".tar")
        assert name in indexed, f"{path.name} appeared without being indexed"
        with tarfile.open(path) as tar:
            assert "backup_info.json" in tar.getnames(), f"{path.name} is not a complete archive"
    assert not any(
        name.startswith("jerry_") for name in indexed
    )  # the killed run produced nothing final


def test_commands_orphaned_by_a_stopped_worker_are_failed_at_start_up(
    db: Database, settings: Settings
) -> None:
    """A worker that died during retention left its command `running` after the run succeeded."""
    from backupmanager.models import Command
    from backupmanager.worker import fail_orphaned_commands

    job_id = add_job(db, settings)
    done = services.queue_run(db, job_id, trigger="manual", requested_by="t", now=system_clock())
    with db.write() as session:
        session.execute(update(Run).where(Run.id == done.run_id).values(status="success"))
        session.execute(
            update(Command).where(Command.run_id == done.run_id).values(status="running")
        )
    other = add_job(db, settings, name="still running")
    live = services.queue_run(db, other, trigger="manual", requested_by="t", now=system_clock())
    with db.write() as session:  # a CLI running this job itself, right now
        session.execute(
            update(Run).where(Run.id == live.run_id).values(status="running", pid=os.getpid())
        )
        session.execute(
            update(Command).where(Command.run_id == live.run_id).values(status="running")
        )
    orphans = fail_orphaned_commands(db, system_clock())
    with db.read() as session:
        statuses = dict(session.execute(select(Command.run_id, Command.status)).all())
    assert len(orphans) == 1
    assert statuses == {done.run_id: "failed", live.run_id: "running"}


def test_old_finished_commands_are_pruned(db: Database, settings: Settings) -> None:
    from backupmanager.commands import KEEP_FINISHED_COMMANDS, prune_finished_commands
    from backupmanager.models import Command

    now = system_clock()
    with db.write() as session:
        for status, age in (("done", 40), ("failed", 31), ("done", 2), ("queued", 90)):
            finished = now - timedelta(days=age) if status != "queued" else None
            session.add(Command(kind="refresh_apps", status=status, finished_at=finished))
    assert timedelta(days=30) == KEEP_FINISHED_COMMANDS
    assert prune_finished_commands(db, now) == 2
    with db.read() as session:
        left = sorted(session.execute(select(Command.status)).scalars())
    assert left == ["done", "queued"]  # the recent one, and work not done yet
