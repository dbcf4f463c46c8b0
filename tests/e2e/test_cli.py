"""`python -m emulator`: exit codes, the report file and the messages a user reads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO_ROOT

pytestmark = pytest.mark.e2e


def _emulator(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator", *arguments], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def test_run_writes_the_report_and_exits_zero(tmp_path: Path) -> None:
    scenario = tmp_path / "one-push.yaml"
    scenario.write_text(
        'name: one-push\nsteps:\n  - commit: {branch: main, files: {Dockerfile: "FROM scratch\\n"}}\n', encoding="utf-8"
    )
    report_path = tmp_path / "report.json"

    finished = _emulator("run", str(scenario), "--report", str(report_path), "--quiet")

    assert finished.returncode == 0, finished.stderr
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report["format"] == 1
    assert {"images", "builds", "environments", "sns_messages", "slack_messages"} <= set(report["final_state"])
    assert f"Report written to {report_path}" in finished.stdout


def test_invalid_scenario_exits_two_naming_the_step(tmp_path: Path) -> None:
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("steps:\n  - push_everything: {}\n", encoding="utf-8")

    finished = _emulator("run", str(scenario))

    assert finished.returncode == 2
    assert "steps[1].push_everything: unknown field" in finished.stderr


def test_unmet_expectation_exits_one_and_says_which(tmp_path: Path) -> None:
    scenario = tmp_path / "expect.yaml"
    scenario.write_text(
        "name: expect\nsteps:\n"
        '  - commit: {branch: main, files: {Dockerfile: "FROM scratch\\n"}}\n'
        "    expect: {built: true, not_deployed: dev}\n",
        encoding="utf-8",
    )

    finished = _emulator("run", str(scenario), "--quiet")

    assert finished.returncode == 1, finished.stdout + finished.stderr
    assert "ok   step 1: built from main" in finished.stdout
    assert "FAIL step 1: never deployed to dev" in finished.stdout


def test_docker_mode_without_an_engine_exits_two_saying_how_to_install_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import emulator.core
    from emulator.__main__ import main

    monkeypatch.setattr(emulator.core, "docker_available", lambda: False)

    code = main(["run", str(REPO_ROOT / "emulator" / "scenarios" / "demo.yaml"), "--builds", "docker", "--quiet"])

    assert code == 2
    error = capsys.readouterr().err
    assert "install with: apt-get update && apt-get install -y --no-install-recommends docker.io" in error
