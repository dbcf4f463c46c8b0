"""`ecr-pipeline status` against the emulator while it still runs: the stories of a deployed commit (later
replaced), a docs-only push, a git tag, a superseded build and a blocked image, each checked against the
run's report; the command reads only, as a read-only operator role, and the run has no permission gap."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from ecr_pipeline.cli import main
from emulator.__main__ import run_scenario
from emulator.core import DEFAULT_CONFIG, Emulator, Options
from emulator.operator_role import OPERATOR_CALLER, operator_shell, story_options
from emulator.output import Printer
from tests.e2e.helpers import PUSHES_OF_EVERY_KIND, builds_of, image_of, step, without_quiet_window

pytestmark = pytest.mark.e2e


# Steps (1-based): 1 deployed then replaced by 5, 2 docs-only, 3 the tag, 4 superseded by 5, 6 blocked.
ASKED = {
    "deployed": lambda report: ["--commit", step(report, 1)["commit"]],
    "docs": lambda report: ["--commit", step(report, 2)["commit"]],
    "tag": lambda report: ["--tag", "v1.0.0"],
    "superseded": lambda report: ["--commit", step(report, 4)["commit"]],
    "replacing": lambda report: ["--commit", step(report, 5)["commit"]],
    "blocked": lambda report: ["--commit", step(report, 6)["commit"]],
    "branch": lambda report: ["--branch", "main"],
    "environment": lambda report: ["--environment", "dev"],
    "digest": lambda report: ["--digest", image_of(report, step(report, 5)["commit"])["digest"]],  # type: ignore[index]
    "unknown": lambda report: ["--commit", "0" * 40],
}


def status(emulator: Emulator, arguments: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["status", *arguments, *story_options(emulator)])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def told(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("story")
    # No quiet window: the second push builds at once, and the third supersedes its running build.
    config = without_quiet_window(DEFAULT_CONFIG, directory)
    (directory / "scenario.yaml").write_text(PUSHES_OF_EVERY_KIND, encoding="utf-8")
    seen: dict[str, Any] = {"stories": {}, "texts": {}}

    def look(emulator: Emulator, report: dict[str, Any]) -> None:
        assert emulator.front is not None
        calls: list[Any] = []
        emulator.front.observers.append(lambda call: calls.append(call) if call.caller == OPERATOR_CALLER else None)
        with operator_shell(emulator):
            for name, asked in ASKED.items():
                code, out, err = status(emulator, [*asked(report), "--json"])
                seen["stories"][name] = {"code": code, "document": json.loads(out) if code == 0 else None, "err": err}
            seen["texts"]["blocked"] = status(emulator, ASKED["blocked"](report))
            seen["metrics"] = status(emulator, ["--metrics", "--json"])
        seen["calls"] = [(call.service, call.operation) for call in calls]
        seen["writes"] = [call.operation for call in calls if call.is_write]
        seen["gaps"] = list(emulator.permission_gaps)

    options = Options(printer=Printer(enabled=False), config=config)
    seen["report"] = run_scenario(directory / "scenario.yaml", options, while_running=look)
    return seen


def story(told: dict[str, Any], name: str) -> dict[str, Any]:
    asked = told["stories"][name]
    assert asked["code"] == 0, asked["err"]
    (only,) = asked["document"]["stories"]
    return only


def image(story: dict[str, Any]) -> dict[str, Any]:
    (only,) = story["images"]
    return only


def dev(story: dict[str, Any]) -> dict[str, Any]:
    (place,) = image(story)["environments"]
    assert place["environment"] == "dev"
    return place


def test_a_deployed_commit_tells_its_push_build_image_verdict_and_deployment(told: dict[str, Any]) -> None:
    report = told["report"]
    commit = step(report, 1)["commit"]
    told_story = story(told, "deployed")
    built = image(told_story)
    (build,) = builds_of(report, commit)
    (environment,) = report["final_state"]["environments"]
    ledger_history = environment["ledger"]["history"]
    (deployment,) = [record for record in ledger_history if record["commit"] == commit]

    assert told_story["commit"] == commit and told_story["repository"] == "demo-app"
    # Its push to main, then the git tag pushed on it (step 3).
    assert [(push["ref_type"], push["ref"]) for push in told_story["pushes"]] == [("branch", "main"), ("tag", "v1.0.0")]
    assert told_story["pushes"][0]["message"].strip() == "First"
    assert [item["build_id"] for item in built["builds"]] == [build["id"]]
    assert built["builds"][0]["status"] == "SUCCEEDED" and built["builds"][0]["log_url"].startswith("https://")
    assert built["image_digest"] == image_of(report, commit)["digest"]  # type: ignore[index]
    assert built["tags"] == image_of(report, commit)["tags"]  # type: ignore[index]
    assert built["verdict"]["verdict"] == "PASSED"
    place = dev(told_story)
    assert [(item["deployment_id"], item["status"]) for item in place["deployments"]] == [
        (deployment["deployment_id"], deployment["outcome"])
    ]
    assert deployment["outcome"] == "SUCCEEDED"


def test_a_deployed_commit_says_which_later_push_replaced_it(told: dict[str, Any]) -> None:
    report = told["report"]
    place = dev(story(told, "deployed"))
    (environment,) = report["final_state"]["environments"]

    assert place["serving_now"] is False
    assert place["replaced_by"]["commit"] == step(report, 5)["commit"] == environment["commit"]
    assert place["replaced_by"]["status"] == "SERVING"
    assert dev(story(told, "replacing"))["serving_now"] is True


def test_a_docs_only_push_tells_the_skipped_build_and_its_reason(told: dict[str, Any]) -> None:
    report = told["report"]
    told_story = story(told, "docs")
    skipped = image(told_story)

    assert builds_of(report, step(report, 2)["commit"]) == []
    assert skipped["builds"] == [] and skipped["image_digest"] is None
    assert [(item["ref"], item["reason"]) for item in skipped["skipped"]] == [
        ("main", "no changed file matches the image's paths")
    ]
    assert any(notice["status"] == "SKIPPED" for notice in told_story["notifications"])


def test_a_git_tag_tells_the_commit_it_promoted_with_its_semver_tags(told: dict[str, Any]) -> None:
    report = told["report"]
    told_story = story(told, "tag")

    assert told_story["commit"] == step(report, 1)["commit"]
    assert ("tag", "v1.0.0") in [(push["ref_type"], push["ref"]) for push in told_story["pushes"]]
    assert {"1.0.0", "1.0", "1"} <= set(image(told_story)["tags"])


def test_a_superseded_build_names_the_build_and_commit_that_superseded_it(told: dict[str, Any]) -> None:
    report = told["report"]
    older, newer = step(report, 4)["commit"], step(report, 5)["commit"]
    (stopped,) = builds_of(report, older)
    (replacing,) = builds_of(report, newer)
    (build,) = image(story(told, "superseded"))["builds"]

    assert stopped["status"] == "STOPPED"
    assert build["build_id"] == stopped["id"] and build["status"] == "SUPERSEDED"
    assert build["superseded_by"] == {"build_id": replacing["id"], "commit": newer}
    assert image(story(told, "superseded"))["image_digest"] is None


def test_a_blocked_image_tells_its_verdict_reasons_and_top_finding(told: dict[str, Any]) -> None:
    report = told["report"]
    commit = step(report, 6)["commit"]
    blocked = image(story(told, "blocked"))
    reported = image_of(report, commit)

    assert reported is not None and reported["verdict"] == "BLOCKED"
    assert blocked["image_digest"] == reported["digest"]
    assert blocked["verdict"]["verdict"] == "BLOCKED" and blocked["verdict"]["reasons"]
    # The top findings, by severity: all three of the scan's (two of them blocked it).
    top = [finding["id"] for finding in blocked["verdict"]["top_findings"]]
    assert top == ["CVE-2023-4863", "CVE-2023-5129", "CVE-2024-0727"]
    assert "latest" not in blocked["tags"]
    assert dev(story(told, "blocked"))["deployments"] == []


def test_the_text_story_says_the_verdict_and_the_finding(told: dict[str, Any]) -> None:
    code, text, _ = told["texts"]["blocked"]

    assert code == 0
    assert text.startswith(f"Commit {step(told['report'], 6)['commit']} of demo-app")
    assert "verdict: BLOCKED" in text and "CRITICAL CVE-2023-4863 in libwebp" in text


def test_a_branch_an_environment_and_a_digest_lead_to_their_commit(told: dict[str, Any]) -> None:
    report = told["report"]
    environment = told["stories"]["environment"]["document"]

    assert story(told, "branch")["commit"] == step(report, 6)["commit"]
    assert story(told, "digest")["commit"] == step(report, 5)["commit"]
    assert environment["environments"][0]["serving"] == step(report, 5)["commit"]
    assert [item["commit"] for item in environment["stories"]] == [step(report, 5)["commit"]]


def test_status_metrics_hands_over_to_the_delivery_metrics(told: dict[str, Any]) -> None:
    code, out, _ = told["metrics"]
    (dev,) = json.loads(out)["environments"]

    assert code == 0
    assert (dev["environment"], dev["succeeded"], dev["failed"]) == ("dev", 2, 0)


def test_an_unknown_commit_is_said_to_be_unknown(told: dict[str, Any]) -> None:
    asked = told["stories"]["unknown"]

    assert asked["code"] == 2
    assert f"unknown commit {'0' * 40}" in asked["err"]


def test_every_notification_sent_is_in_the_story_with_its_channels(told: dict[str, Any]) -> None:
    notices = story(told, "deployed")["notifications"]

    assert {"build", "scan", "deployment"} <= {notice["event"] for notice in notices}
    assert all(notice["channels"] for notice in notices)
    assert all(set(notice["channels"].values()) <= {"delivered", "kept", "failed"} for notice in notices)


def test_status_reads_only_as_the_operator_role_and_the_run_had_no_permission_gap(told: dict[str, Any]) -> None:
    assert told["writes"] == []
    assert ("dynamodb", "Query") in told["calls"] and ("codebuild", "BatchGetBuilds") in told["calls"]
    assert told["gaps"] == [] and told["report"]["permission_gaps"] == []


def test_the_command_without_a_table_names_what_is_missing(tmp_path: Path, capsys: Any) -> None:
    code = main(["status", "--commit", "a" * 40, "--config", str(DEFAULT_CONFIG)])

    assert code == 2
    assert "--ledger-table" in capsys.readouterr().err


def test_the_demo_ends_with_the_story_of_its_last_push(tmp_path: Path, capsys: Any) -> None:
    from emulator.__main__ import main as emulator_main

    code = emulator_main(["demo", "--report", str(tmp_path / "demo-report.json")])
    printed = capsys.readouterr().out
    report = json.loads((tmp_path / "demo-report.json").read_text(encoding="utf-8"))
    last = [entry for entry in report["timeline"] if entry["kind"] == "step" and entry.get("commit")][-1]
    told = printed[printed.rindex("The story of the last push") :].splitlines()

    assert code == 0
    assert told[1] == f"Commit {last['commit']} of demo-app"
    assert "    verdict: BLOCKED (basic)" in told
    # The output ends with the story's last notification: the blocked image's.
    assert "Image blocked by its scan [BLOCKED]" in told[-1]
    assert report["permission_gaps"] == []
