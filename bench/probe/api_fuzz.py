"""schemathesis against a running `backupmanager web` (gunicorn, production mode, real token).

Usage (as root, from the repository root):
    .venv/bin/python -m bench.probe.api_fuzz [--cases 200]

Starts the worker and the web process over a fresh instance with one full-access token, a job
and one archive, then generates `--cases` positive and `--cases` negative cases per operation of
/api/v1/openapi.json over real HTTP and validates every answer against the document. Reports
5xx answers and schema violations (issue 13's run used --cases 1000: 26,852 cases in all).
"""

from __future__ import annotations

import argparse
import re
import signal
import subprocess
import tempfile
from pathlib import Path

import schemathesis
from bench.probe.common import Instance, Tally, instance, listening
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from backupmanager import tokens
from backupmanager.clock import system_clock
from tests.api_world import HEADER
from tests.e2e.browser import free_port
from tests.helpers import BACKUPMANAGER, add_job, run_job_now, wait_for


def fuzz_operation(
    operation: object, mode: GenerationMode, cases: int, tally: Tally, kinds: dict[str, int]
) -> None:
    """`cases` generated requests; each failure counted under its operation, check and status."""

    @given(case=operation.as_strategy(generation_mode=mode))  # type: ignore[attr-defined]
    @settings(max_examples=cases, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def check(case: schemathesis.Case) -> None:
        tally.case()
        try:
            case.call_and_validate(timeout=30)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as error:  # schemathesis's FailureGroup: a finding, the run goes on
            text = str(error)
            titles = re.findall(r"^- (ST\d+ [^\n]+)", text, re.MULTILINE) or [text[:120]]
            status = re.search(r"^\[(\d{3})\]", text, re.MULTILINE)
            answer = status[1] if status else "no answer"
            for title in titles:
                key = f"{case.method} {case.operation.path}: {title} (HTTP {answer})"
                kinds[key] = kinds.get(key, 0) + 1
                tally.findings.append(key)

    check()


def serve(inst: Instance, port: int) -> list[subprocess.Popen[bytes]]:
    log = (inst.base / "web.log").open("ab")
    commands = (["worker"], ["web", "--bind", f"127.0.0.1:{port}"])
    return [
        subprocess.Popen([str(BACKUPMANAGER), *command], env=inst.env, stdout=log, stderr=log)
        for command in commands
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=200, help="per operation and mode")
    arguments = parser.parse_args()
    tally = Tally("api_fuzz")
    kinds: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="bm-probe-") as folder, instance(Path(folder)) as inst:
        job_id = add_job(inst.db, inst.settings)
        run_job_now(inst.db, inst.settings, job_id)
        token = tokens.create_token(inst.db, "probe", now=system_clock()).token
        port = free_port()
        processes = serve(inst, port)
        try:
            url = f"http://127.0.0.1:{port}/api/v1/openapi.json"
            wait_for(lambda: listening(port), what="the web process")
            config = schemathesis.Config.from_dict(
                {"auth": {"openapi": {"ApiKey": {"api_key": token}}}}
            )
            schema = schemathesis.openapi.from_url(url, config=config, headers={HEADER: token})
            for result in schema.get_all_operations():
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    fuzz_operation(result.ok(), mode, arguments.cases, tally, kinds)
        finally:
            for process in processes:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=60)
    for key, count in sorted(kinds.items()):
        print(f"{count:6d} x {key}")
    server_errors = sum(count for key, count in kinds.items() if "(HTTP 5" in key)
    print(tally.summary(distinct=len(kinds), http_5xx=server_errors))


if __name__ == "__main__":
    main()
