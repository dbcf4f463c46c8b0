"""`python -m ecr_pipeline.status --metrics` against the emulator while it still runs: the delivery
metrics of a run with one successful deployment and one rolled back, from the ledger, read-only."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from ecr_pipeline.status import main
from emulator.__main__ import run_scenario
from emulator.core import DEFAULT_CONFIG, Emulator, Options
from emulator.output import Printer

pytestmark = pytest.mark.e2e

SCENARIO = """
name: one-deployed-one-rolled-back
steps:
  - commit: {branch: main, message: "First", files: {Dockerfile: "FROM scratch\\n", app.txt: "1\\n"}}
  - deployment_fails: {environment: dev, alarm: demo-app-dev-target-5xx}
  - commit: {branch: main, message: "Second", files: {app.txt: "2\\n"}}
"""


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    path = tmp_path_factory.mktemp("status") / "scenario.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    seen: dict[str, Any] = {}

    def look(emulator: Emulator, report: dict[str, Any]) -> None:
        assert emulator.front is not None and emulator.template is not None
        table = emulator.template.resolver.names.name("LedgerTable", emulator.template.resolver)
        calls = []
        emulator.front.observers.append(lambda call: calls.append(call) if call.caller == "status" else None)
        # An operator's shell: credentials of the account, and the endpoint of the emulator's front.
        settings = {
            "AWS_ENDPOINT_URL": emulator.front.endpoint_for("status"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        before = {name: os.environ.get(name) for name in settings}
        os.environ.update(settings)
        try:
            arguments = ["--metrics", "--ledger-table", table, "--config", str(DEFAULT_CONFIG), "--region", "us-east-1"]
            arguments += ["--stack-prefix", f"{emulator.options.stack_name}/", "--json"]
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                seen["code"] = main(arguments)
            seen["document"] = json.loads(out.getvalue())
        finally:
            for name, value in before.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
        seen["writes"] = [call.operation for call in calls if call.is_write]

    seen["report"] = run_scenario(path, Options(printer=Printer(enabled=False)), while_running=look)
    return seen


def test_the_metrics_count_the_deployment_and_the_rollback(printed: dict[str, Any]) -> None:
    assert printed["code"] == 0
    (dev,) = printed["document"]["environments"]

    assert dev["environment"] == "dev" and dev["target"] == "demo-cluster/demo-app-dev"
    assert (dev["ended"], dev["succeeded"], dev["failed"], dev["change_failure_rate"]) == (2, 1, 1, 0.5)
    assert dev["time_to_restore_median_seconds"] is None  # nothing succeeded after the rollback


def test_status_reads_only_and_the_run_had_no_permission_gap(printed: dict[str, Any]) -> None:
    assert printed["writes"] == []
    assert printed["report"]["permission_gaps"] == []


def test_a_window_that_is_not_a_duration_names_the_option(tmp_path: Path, capsys: Any) -> None:
    code = main(["--metrics", "--ledger-table", "t", "--since", "a month"])

    assert code == 2
    assert "--since" in capsys.readouterr().err
