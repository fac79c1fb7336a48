"""Secrets never reach a log, the database, a process list, a page or an API answer.

Usage (as root, from the repository root, after ./tools/services.sh):
    .venv/bin/python -m bench.probe.secret_scan

Creates a remote MariaDB and a remote PostgreSQL database (on 127.0.0.1, with passwords full of
quoting traps, as tests/integration/test_db_credentials.py does), stores their passwords with
`backupmanager secrets set --stdin`, creates a full and a read-only API token, then with the
worker and gunicorn running: backs up both jobs through the API, restores each archive into a
copy through the API and runs a restore drill from the CLI, while `ps -eww` is sampled. Then
greps for every secret: the worker's and the web process's output, every file under the data
and archives folders (SQLite database and its WAL included), the `ps` samples, every API answer
and every dashboard page reachable from `/` (dev-mode client).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import tempfile
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bench.probe.common import Instance, Tally, files_under, instance, listening

from backupmanager.app import create_app
from tests.e2e.browser import free_port
from tests.helpers import BACKUPMANAGER, run_cli, wait_for
from tests.integration.test_db_credentials import RemoteDatabase, _create, _drop

HEADER = "X-BackupManager-Key"


class PsSampler(threading.Thread):
    """`ps -eww -o args` every 50 ms while the runs go on."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[str] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            result = subprocess.run(["ps", "-eww", "-o", "args"], capture_output=True, text=True)
            self.samples.append(result.stdout)


class Api:
    def __init__(self, port: int, token: str, texts: list[tuple[str, str]]) -> None:
        self.base, self.token, self.texts = f"http://127.0.0.1:{port}/api/v1", token, texts

    def call(self, method: str, path: str, body: object = None) -> dict[str, object]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header(HEADER, self.token)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                text = answer.read().decode()
        except urllib.error.HTTPError as error:
            text = error.read().decode()
        self.texts.append((f"API {method} {path}", text))
        return dict(json.loads(text)) if text.startswith("{") else {}


def setup(inst: Instance, remotes: list[RemoteDatabase]) -> tuple[str, str]:
    for remote in remotes:
        secret = f"{remote.engine}-pw"
        subprocess.run([str(BACKUPMANAGER), "secrets", "set", secret, "--stdin"],
                       input=remote.password + "\n", text=True, env=inst.env, check=True)  # fmt: skip
        config = json.dumps({"database": remote.name, "user": remote.user, "host": "127.0.0.1",
                             "port": remote.port, "password_secret": secret})  # fmt: skip
        added = run_cli(inst.env, "jobs", "add", "--name", remote.engine, "--type",
                        remote.engine, "--config", config, "--cron", "0 3 * * *")  # fmt: skip
        assert added.returncode == 0, added.stderr
    full = run_cli(inst.env, "--json", "tokens", "create", "probe-full")
    reader = run_cli(inst.env, "--json", "tokens", "create", "probe-reader", "--read-only")
    return json.loads(full.stdout)["token"], json.loads(reader.stdout)["token"]


def poll(api: Api, path: str, ready: Callable[[dict[str, object]], bool]) -> dict[str, object]:
    def answer() -> dict[str, object] | None:
        got = api.call("GET", path)
        return got if ready(got) else None

    return dict(wait_for(answer, timeout=300, what=path))


def exercise(api: Api, inst: Instance, remotes: list[RemoteDatabase]) -> None:
    """Back up, restore into a copy and drill each job; read every API answer on the way."""
    for job_id, remote in enumerate(remotes, start=1):
        run_id = api.call("POST", f"/jobs/{job_id}/run", {})["run_id"]
        run = poll(api, f"/runs/{run_id}", lambda answer: bool(answer.get("finished_at")))
        name = str(run.get("archive_name"))
        print(f"{remote.engine}: backup {run.get('status')}", flush=True)
        options = {"database": remote.copies[0], "overwrite": True}
        api.call("POST", f"/archives/{name}/restore", options)
        status = f"/archives/{name}/restore/status"
        restored = poll(api, status, lambda answer: answer.get("status") in ("success", "error"))
        print(f"{remote.engine}: restore into a copy {restored['status']}", flush=True)
        api.call("GET", f"/archives/{name}/info")
        drill = run_cli(inst.env, "--json", "jobs", "drill", str(job_id), "--wait", timeout=300)
        api.texts.append(("CLI jobs drill", drill.stdout + drill.stderr))
        print(f"{remote.engine}: drill exit status {drill.returncode}", flush=True)
    for path in ("/health", "/jobs", "/runs", "/archives", "/openapi.json", "/commands/1"):
        api.call("GET", path)


def dashboard_pages(inst: Instance, texts: list[tuple[str, str]], *, limit: int = 300) -> None:
    """Every page reachable from `/` by links, through the dev-mode Flask client."""
    client = create_app(inst.settings, dev_mode=True).test_client()
    seen, queue = set(), ["/"]
    while queue and len(seen) < limit:
        path = queue.pop()
        if path in seen:
            continue
        seen.add(path)
        for language in ("en", "fr"):
            page = client.get(path, headers={"Accept-Language": language}).get_data(as_text=True)
            texts.append((f"page {path} ({language})", page))
        for link in re.findall(r'(?:href|hx-get)="(/[^"#]*)"', page):
            if not link.startswith("/static/"):
                queue.append(link.replace("&amp;", "&"))


def stored_texts(inst: Instance) -> list[tuple[str, str]]:
    """Every file of the data and archives folders, and the processes' output, as text."""
    texts = []
    for root in (inst.settings.data_dir, inst.settings.archives_dir, inst.base / "logs"):
        for path in files_under(root):
            if path.is_file() and not path.is_symlink():
                texts.append((str(path), path.read_bytes().decode("utf-8", "replace")))
    return texts


def scan(secrets: dict[str, str], texts: list[tuple[str, str]], tally: Tally) -> None:
    for where, text in texts:
        for label, secret in secrets.items():
            tally.check(secret not in text, f"the {label} appears in {where}")


def main() -> None:
    tally = Tally("secret_scan")
    remotes = [_create("mysql"), _create("postgresql")]
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bm-probe-") as folder,
            instance(Path(folder)) as inst,
        ):
            full, reader = setup(inst, remotes)
            texts: list[tuple[str, str]] = []
            sampler = PsSampler()
            port = free_port()
            (inst.base / "logs").mkdir()
            processes = [
                subprocess.Popen(
                    [str(BACKUPMANAGER), *command],
                    env=inst.env,
                    stdout=(inst.base / "logs" / f"{command[0]}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                )
                for command in (["worker"], ["web", "--bind", f"127.0.0.1:{port}"])
            ]
            try:
                wait_for(lambda: listening(port), what="the web process")
                sampler.start()
                exercise(Api(port, full, texts), inst, remotes)
                Api(port, reader, texts).call("GET", "/jobs")
            finally:
                sampler.done.set()
                for process in processes:
                    process.send_signal(signal.SIGTERM)
                    process.wait(timeout=60)
            dashboard_pages(inst, texts)
            texts += [(f"ps sample {n}", sample) for n, sample in enumerate(sampler.samples)]
            texts += stored_texts(inst)
            secrets = {f"{r.engine} password": r.password for r in remotes}
            secrets |= {"full token": full, "read-only token": reader}
            scan(secrets, texts, tally)
            places = len(texts)
    finally:
        for remote in remotes:
            _drop(remote)
    print(tally.summary(places=places, ps_samples=len(sampler.samples), secrets=len(secrets)))


if __name__ == "__main__":
    main()
