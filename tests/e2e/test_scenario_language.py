"""The scenario language: each step does what docs/emulator.md says, and a malformed one is refused by name.

push (several commits in one git push; a branch moved to a ref), push_image (an operator's PutImage),
slack (the webhook failing as Slack fails), the run's template parameters, and the docs' own examples.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emulator.__main__ import main
from emulator.scenario import ScenarioError, load_scenario
from tests.e2e.conftest import REPO_ROOT, run
from tests.e2e.helpers import builds_of, deliveries, events, image_of, step

pytestmark = pytest.mark.e2e

DOCS = REPO_ROOT / "docs" / "emulator.md"
EXAMPLES = REPO_ROOT / "emulator" / "scenarios" / "examples"
PUSH_EVENT = "CodeCommit Repository State Change"


def _scenario(directory: Path, text: str) -> Path:
    path = directory / "scenario.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _git(work_dir: Path, *args: str) -> str:
    bare = work_dir / "codecommit" / "demo-app.git"
    return subprocess.run(["git", *args], cwd=bare, capture_output=True, text=True, check=True).stdout.strip()


def _push_events(report: dict[str, Any], number: int) -> list[dict[str, Any]]:
    ids = step(report, number)["events"]
    return [event["detail"] for event in events(report, PUSH_EVENT) if event["id"] in ids]


# --- push: several commits, one git push -------------------------------------------------------

MULTI_COMMIT = """
name: multi-commit
steps:
  - commit: {branch: main, files: {Dockerfile: "FROM scratch\\n", a.txt: "a\\n"}}
  - push:
      branch: main
      commits:
        - {message: "First of three", files: {b.txt: "b\\n"}}
        - {message: "Second of three", author: "Ada Lovelace <ada@example.com>", delete: [a.txt]}
        - {message: "Third of three", files: {c.txt: "c\\n"}}
"""


@pytest.fixture(scope="module")
def multi_commit(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    directory = tmp_path_factory.mktemp("multi-commit")
    work_dir = directory / "work"
    return run(_scenario(directory, MULTI_COMMIT), work_dir=work_dir), work_dir


def test_a_push_of_three_commits_is_one_push_event_spanning_them(multi_commit: tuple[dict[str, Any], Path]) -> None:
    report, work_dir = multi_commit
    pushed = step(report, 2)

    (detail,) = _push_events(report, 2)

    assert len(pushed["commits"]) == 3
    assert detail["event"] == "referenceUpdated"
    assert detail["oldCommitId"] == step(report, 1)["commit"] == pushed["old_commit"]
    assert detail["commitId"] == pushed["commits"][-1] == pushed["commit"]
    assert (
        _git(work_dir, "rev-list", "--reverse", f"{detail['oldCommitId']}..{detail['commitId']}").split()
        == (pushed["commits"])
    )
    assert len(events(report, PUSH_EVENT)) == 2


def test_a_push_of_three_commits_builds_only_the_last(multi_commit: tuple[dict[str, Any], Path]) -> None:
    report, _ = multi_commit
    first, second, last = step(report, 2)["commits"]

    assert [build["status"] for build in builds_of(report, last)] == ["SUCCEEDED"]
    assert builds_of(report, first) == builds_of(report, second) == []


def test_each_commit_of_a_push_has_its_own_message_author_and_files(multi_commit: tuple[dict[str, Any], Path]) -> None:
    report, work_dir = multi_commit
    commits = step(report, 2)["commits"]

    logged = [_git(work_dir, "log", "-1", "--format=%s|%an <%ae>", commit) for commit in commits]
    last_files = _git(work_dir, "ls-tree", "--name-only", commits[-1]).split()

    assert logged == [
        "First of three|Dana Developer <dana@example.com>",
        "Second of three|Ada Lovelace <ada@example.com>",
        "Third of three|Dana Developer <dana@example.com>",
    ]
    assert sorted(last_files) == ["Dockerfile", "b.txt", "c.txt"]


def test_the_same_multi_commit_scenario_makes_the_same_commit_ids(
    multi_commit: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    report, _ = multi_commit

    again = run(_scenario(tmp_path, MULTI_COMMIT))

    assert step(again, 2)["commits"] == step(report, 2)["commits"]


# --- push: a branch moved to a ref ---------------------------------------------------------------

MOVE_BRANCH = """
name: move-branch
steps:
  - commit: {branch: main, files: {Dockerfile: "FROM scratch\\n"}}
  - push: {branch: feature/x, from: main, commits: [{message: "Feature", files: {x.txt: "x\\n"}}]}
  - push: {branch: main, to: feature/x}
  - push: {branch: main, to: "main~1"}
"""


@pytest.fixture(scope="module")
def move_branch(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    directory = tmp_path_factory.mktemp("move-branch")
    work_dir = directory / "work"
    return run(_scenario(directory, MOVE_BRANCH), work_dir=work_dir), work_dir


def test_a_new_branch_of_a_push_starts_from_its_from_branch(move_branch: tuple[dict[str, Any], Path]) -> None:
    report, work_dir = move_branch
    (feature,) = step(report, 2)["commits"]

    (detail,) = _push_events(report, 2)

    assert detail["event"] == "referenceCreated"
    assert "oldCommitId" not in detail
    assert _git(work_dir, "rev-parse", f"{feature}^") == step(report, 1)["commit"]


def test_push_to_a_descendant_fast_forwards_the_branch(move_branch: tuple[dict[str, Any], Path]) -> None:
    report, _ = move_branch
    moved = step(report, 3)

    (detail,) = _push_events(report, 3)

    assert moved["forced"] is False
    assert (detail["oldCommitId"], detail["commitId"]) == (step(report, 1)["commit"], step(report, 2)["commit"])


def test_push_to_an_older_commit_is_a_forced_update(move_branch: tuple[dict[str, Any], Path]) -> None:
    report, work_dir = move_branch
    reset = step(report, 4)

    (detail,) = _push_events(report, 4)

    assert reset["forced"] is True
    assert (detail["oldCommitId"], detail["commitId"]) == (step(report, 2)["commit"], step(report, 1)["commit"])
    assert _git(work_dir, "rev-parse", "refs/heads/main") == step(report, 1)["commit"]


# --- push_image: an operator's PutImage ----------------------------------------------------------

PUSH_IMAGE = """
name: push-image
steps:
  - commit: {branch: main, files: {Dockerfile: "FROM scratch\\n"}}
  - commit: {branch: experiment/x, from: main, files: {x.txt: "x\\n"}}
  - push_image:
      repository: demo-app
      tag: hotfix
      like: experiment/x
      scan_findings: [{id: CVE-2024-0001, severity: HIGH}]
  - push_image: {repository: ecr-pipeline/demo-app, tag: rollback-point, like: main}
"""


@pytest.fixture(scope="module")
def push_image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run(_scenario(tmp_path_factory.mktemp("push-image"), PUSH_IMAGE))


def test_an_image_pushed_by_hand_emits_ecr_s_push_event_with_its_tag(push_image: dict[str, Any]) -> None:
    pushed = step(push_image, 3)

    (detail,) = [event["detail"] for event in events(push_image, "ECR Image Action") if event["id"] in pushed["events"]]

    assert (detail["action-type"], detail["image-tag"], detail["image-digest"]) == ("PUSH", "hotfix", pushed["digest"])
    assert pushed["commit"] == step(push_image, 2)["commit"]
    assert builds_of(push_image, pushed["commit"]) == []


def test_an_image_pushed_by_hand_is_scanned_on_push_with_the_step_s_findings(push_image: dict[str, Any]) -> None:
    digest = step(push_image, 3)["digest"]

    scans = [
        event["detail"] for event in events(push_image, "ECR Image Scan") if event["detail"]["image-digest"] == digest
    ]
    (image,) = [
        image for image in push_image["final_state"]["images"]["ecr-pipeline/demo-app"] if image["digest"] == digest
    ]

    assert [(scan["scan-status"], scan["finding-severity-counts"], scan["image-tags"]) for scan in scans] == [
        ("COMPLETE", {"HIGH": 1}, ["hotfix"])
    ]
    assert image["tags"] == ["hotfix"]
    assert image["scan"]["counts"] == {"HIGH": 1}


def test_tag_image_leaves_a_hand_pushed_tag_alone(push_image: dict[str, Any]) -> None:
    (event_id,) = step(push_image, 3)["events"]

    handled = [entry for entry in deliveries(push_image, "TagImageFunction") if entry["event_id"] == event_id]

    assert [entry["outcome"] for entry in handled] == ["ignored"]
    assert "not a build tag" in handled[0]["reason"]


def test_an_image_pushed_like_a_built_commit_is_the_build_s_image(push_image: dict[str, Any]) -> None:
    pushed = step(push_image, 4)
    built = image_of(push_image, step(push_image, 1)["commit"])

    scans = [
        scan for scan in events(push_image, "ECR Image Scan") if scan["detail"]["image-digest"] == pushed["digest"]
    ]

    assert built is not None
    assert pushed["digest"] == built["digest"]
    assert "rollback-point" in built["tags"]
    assert len(pushed["events"]) == 1
    assert len(scans) == 1  # the build's push was scanned; the same image pushed again is not


# --- slack: the webhook failing as Slack fails ------------------------------------------------

SLACK = """
name: slack-errors
steps:
  - slack: {answer: 429}
  - commit: {branch: main, files: {Dockerfile: "FROM scratch\\n"}}
  - slack: {answer: 429, retry_after: 60}
  - commit: {branch: main, files: {v.txt: "2\\n"}}
  - slack: {answer: 500, times: 3}
  - commit: {branch: main, files: {v.txt: "3\\n"}}
  - slack: {answer: drop}
  - commit: {branch: main, files: {v.txt: "4\\n"}}
  - slack: {answer: timeout}
  - commit: {branch: main, files: {v.txt: "5\\n"}}
  - slack: {answer: 429, retry_after: 60, times: 30}
  - commit: {branch: main, files: {v.txt: "6\\n"}}
"""


@pytest.fixture(scope="module")
def slack(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run(_scenario(tmp_path_factory.mktemp("slack"), SLACK))


def _first_message(report: dict[str, Any], number: int) -> list[dict[str, Any]]:
    """The Notify deliveries of the "Build Started" of step `number`'s push: the first message it meets."""
    start = step(report, number)["seq"]
    end = step(report, number + 1)["seq"] if any(e.get("step") == number + 1 for e in report["timeline"]) else 10**9
    return [
        entry
        for entry in deliveries(report, "NotifyFunction")
        if start < entry["seq"] < end and entry["detail_type"] == "Build Started"
    ]


def _slack_status(entry: dict[str, Any]) -> dict[str, Any]:
    return dict(entry["result"]["channels"]["slack"])


def test_a_short_rate_limit_is_waited_out_by_the_client(slack: dict[str, Any]) -> None:
    (delivery,) = _first_message(slack, 2)

    assert _slack_status(delivery) == {"status": "sent"}
    assert [(message["accepted"], message["error"]) for message in delivery["slack"]] == [
        (False, "answered 429 rate_limited, Retry-After 1"),
        (True, ""),
    ]


def test_a_long_rate_limit_fails_the_invocation_and_lambda_s_retry_delivers(slack: dict[str, Any]) -> None:
    first, retry = _first_message(slack, 4)

    assert (first["outcome"], first["attempt"]) == ("failed", 1)
    assert "answered 429" in first["reason"]
    assert (retry["attempt"], _slack_status(retry)) == (2, {"status": "sent"})


def test_a_500_on_each_of_the_client_s_tries_fails_the_invocation_and_lambda_s_retry_delivers(
    slack: dict[str, Any],
) -> None:
    first, retry = _first_message(slack, 6)

    assert (first["outcome"], first["attempt"]) == ("failed", 1)
    assert [message["error"] for message in first["slack"]] == ["answered 500 internal_error"] * 3
    assert (retry["attempt"], _slack_status(retry)) == (2, {"status": "sent"})


def test_slack_failing_on_every_lambda_attempt_keeps_the_message_for_ops(slack: dict[str, Any]) -> None:
    attempts = _first_message(slack, 12)

    assert [entry["attempt"] for entry in attempts] == [1, 2, 3]
    assert [entry["outcome"] for entry in attempts[:2]] == ["failed", "failed"]
    assert [[message["accepted"] for message in entry["slack"]] for entry in attempts] == [[False]] * 3
    assert _slack_status(attempts[2])["status"] == "kept"
    assert _slack_status(attempts[2])["reason"].startswith("failed on 3 attempts")


def test_a_dropped_connection_keeps_the_message_as_maybe_delivered(slack: dict[str, Any]) -> None:
    (delivery,) = _first_message(slack, 8)

    assert _slack_status(delivery)["status"] == "kept"
    assert _slack_status(delivery)["reason"].startswith("no answer, so maybe delivered")
    assert [message["error"] for message in delivery["slack"]] == ["no answer: the connection was closed"]


def test_a_request_held_past_the_client_s_timeout_keeps_the_message(slack: dict[str, Any]) -> None:
    (delivery,) = _first_message(slack, 10)

    assert _slack_status(delivery)["status"] == "kept"
    assert "TimeoutError" in _slack_status(delivery)["reason"]
    assert [message["error"].split(":")[0] for message in delivery["slack"]] == ["no answer"]


def test_every_failed_slack_request_is_in_the_report_with_its_answer(slack: dict[str, Any]) -> None:
    refused = [message["error"] for message in slack["final_state"]["slack_messages"] if not message["accepted"]]

    assert refused.count("answered 429 rate_limited, Retry-After 1") == 1
    assert refused.count("answered 500 internal_error") == 3
    assert refused.count("no answer: the connection was closed") == 1
    assert sum(error.startswith("no answer: held until the client gave up") for error in refused) == 1
    assert refused.count("answered 429 rate_limited, Retry-After 60") > 3


# --- parameters: the template's, for the run -----------------------------------------------------

PARAMETERS = """
name: parameters
parameters: {LogLevel: ERROR}
steps:
  - commit: {branch: main, files: {Dockerfile: "FROM scratch\\n"}}
"""


def _info_lines(work_dir: Path) -> int:
    logs = sorted((work_dir / "logs").glob("*.log"))
    assert logs, f"no function logs in {work_dir}"
    return sum(log.read_text(encoding="utf-8").count('"level":"INFO"') for log in logs)


def test_a_scenario_s_parameters_set_the_functions_log_level(tmp_path: Path) -> None:
    report = run(_scenario(tmp_path, PARAMETERS), work_dir=tmp_path / "work")

    assert report["options"]["parameters"] == {"LogLevel": "ERROR"}
    assert [build["status"] for build in report["final_state"]["builds"]] == ["SUCCEEDED"]
    assert _info_lines(tmp_path / "work") == 0


def test_a_command_line_parameter_wins_over_the_scenario_s(tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    arguments = ["run", str(_scenario(tmp_path, PARAMETERS)), "--quiet", "--report", str(report_path)]

    exit_code = main([*arguments, "--parameter", "LogLevel=INFO", "--work-dir", str(tmp_path / "work")])

    assert exit_code == 0
    assert json.loads(report_path.read_text(encoding="utf-8"))["options"]["parameters"] == {"LogLevel": "INFO"}
    assert _info_lines(tmp_path / "work") > 0


@pytest.mark.parametrize(
    ("scenario_parameters", "command_line", "named"),
    [
        ("{}", ["--parameter", "Colour=blue"], "parameter 'Colour' is not declared"),
        ("{Colour: blue}", [], "parameter 'Colour' is not declared"),
        ("{}", ["--parameter", "ImageRepositories=other"], "parameter 'ImageRepositories' cannot be given"),
    ],
)
def test_a_parameter_the_run_may_not_set_exits_two_naming_it(
    tmp_path: Path, scenario_parameters: str, command_line: list[str], named: str
) -> None:
    scenario = _scenario(tmp_path, f"parameters: {scenario_parameters}\nsteps:\n  - tag: {{name: v1}}\n")

    finished = subprocess.run(
        [sys.executable, "-m", "emulator", "run", str(scenario), "--quiet", *command_line],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert finished.returncode == 2
    assert named in finished.stderr


# --- malformed steps: refused when the scenario is read, naming the field -------------------------


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            "- push: {branch: main, commits: [{}, {files: [a.txt]}]}",
            r"steps\[1\]\.push\.commits\[2\]\.files: must be a mapping",
        ),
        ("- push: {branch: main, commits: [{colour: red}]}", r"steps\[1\]\.push\.commits\[1\]\.colour: unknown field"),
        (
            "- push: {branch: main, commits: [{delete: a.txt}]}",
            r"steps\[1\]\.push\.commits\[1\]\.delete: must be a list",
        ),
        ("- push: {branch: main, commits: []}", r"steps\[1\]\.push\.commits: must be a non-empty list"),
        ("- push: {branch: main, commits: [{}], to: main}", r"steps\[1\]\.push: needs exactly one of `commits`"),
        ("- push: {branch: main}", r"steps\[1\]\.push: needs exactly one of `commits`"),
        ("- push: {commits: [{}]}", r"steps\[1\]\.push\.branch: required"),
        ("- push: {branch: main, to: x, from: main}", r"steps\[1\]\.push\.from: only with `commits`"),
        ("- push_image: {repository: demo-app, like: main}", r"steps\[1\]\.push_image\.tag: required"),
        (
            "- push_image: {repository: demo-app, tag: t, like: main, scan_status: LOST}",
            r"steps\[1\]\.push_image\.scan_status: must be COMPLETE or FAILED",
        ),
        ("- slack: {answer: 404}", r"steps\[1\]\.slack\.answer: must be one of 500, 429, timeout, drop"),
        ("- slack: {answer: 500, times: 0}", r"steps\[1\]\.slack\.times: must be a whole number, 1 or more"),
        ("- slack: {answer: drop, retry_after: 5}", r"steps\[1\]\.slack\.retry_after: only with answer 429"),
    ],
)
def test_a_malformed_step_is_refused_naming_its_field(tmp_path: Path, steps: str, message: str) -> None:
    path = _scenario(tmp_path, f"steps:\n  {steps}\n")

    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


def test_scenario_parameters_must_be_a_mapping(tmp_path: Path) -> None:
    path = _scenario(tmp_path, "parameters: [LogLevel]\nsteps:\n  - tag: {name: v1}\n")

    with pytest.raises(ScenarioError, match=r"^parameters: must be a mapping"):
        load_scenario(path)


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ("- slack: {answer: 404}", "steps[1].slack.answer: must be one of"),
        ("- push: {branch: main, to: nowhere}", "steps[1].push.to: 'nowhere' is no branch, tag or commit of demo-app"),
        (
            "- push_image: {repository: other, tag: t, like: main}",
            "steps[1].push_image.repository: 'other' is not an image",
        ),
    ],
)
def test_an_invalid_new_step_exits_two_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], steps: str, message: str
) -> None:
    path = _scenario(tmp_path, f"steps:\n  {steps}\n")

    exit_code = main(["run", str(path), "--quiet"])

    assert exit_code == 2
    assert message in capsys.readouterr().err


# --- the docs' examples run as written --------------------------------------------------------------


def _documented_runs() -> list[str]:
    """Every `python -m emulator run ...` line of docs/emulator.md's fenced blocks that runs an example file."""
    lines = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", DOCS.read_text(encoding="utf-8"), flags=re.M | re.S):
        lines += [line.strip() for line in block.splitlines() if "-m emulator run emulator/scenarios/" in line]
    return lines


def test_every_example_file_is_run_by_a_documented_command_line() -> None:
    documented = " ".join(_documented_runs())

    assert sorted(EXAMPLES.glob("*.yaml"))
    assert [path.name for path in sorted(EXAMPLES.glob("*.yaml")) if path.name not in documented] == []


@pytest.mark.parametrize("command_line", _documented_runs())
def test_a_documented_command_line_runs_as_written_and_exits_zero(command_line: str) -> None:
    finished = subprocess.run(
        shlex.split(command_line.split("#", 1)[0]), cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )

    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-3000:]
