"""`python -m ecr_pipeline.status --metrics` against the emulator while it still runs: the delivery
metrics of a run with one successful deployment and one rolled back, and the build economy and blocked
CVEs of a run with a docs-only push, a git tag, a superseded build, a coalesced push and a blocked image,
from the ledger, read-only."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from ecr_pipeline.core.start_build import REASON_IMAGE_EXISTS, REASON_NO_MATCHING_PATHS, REASON_SUPERSEDED
from ecr_pipeline.status import main
from emulator.__main__ import run_scenario
from emulator.core import DEFAULT_CONFIG, Emulator, Options
from emulator.logs_insights import read_logs, run_query
from emulator.operator_role import OPERATOR_CALLER, operator_shell
from emulator.output import Printer
from tests.e2e.helpers import PUSHES_OF_EVERY_KIND, builds_of, image_of, step, without_quiet_window

pytestmark = pytest.mark.e2e

SCENARIO = """
name: one-deployed-one-rolled-back
steps:
  - commit: {branch: main, message: "First", files: {Dockerfile: "FROM scratch\\n", app.txt: "1\\n"}}
  - deployment_fails: {environment: dev, alarm: demo-app-dev-target-5xx}
  - wait: false
    commit: {branch: main, message: "Between", files: {app.txt: "1b\\n"}}
  - commit: {branch: main, message: "Second", files: {app.txt: "2\\n"}}
"""
# No quiet window here: the fourth push builds at once and the fifth supersedes its running build.


def run_metrics(directory: Path, scenario: str, config: Path = DEFAULT_CONFIG) -> dict[str, Any]:
    """Run `scenario` and, while the emulator still runs, `status --metrics --json` over its ledger."""
    path = directory / "scenario.yaml"
    path.write_text(scenario, encoding="utf-8")
    seen: dict[str, Any] = {}

    def look(emulator: Emulator, report: dict[str, Any]) -> None:
        assert emulator.front is not None and emulator.template is not None
        table = emulator.template.resolver.names.name("LedgerTable", emulator.template.resolver)
        calls = []
        emulator.front.observers.append(lambda call: calls.append(call) if call.caller == OPERATOR_CALLER else None)
        # An operator's shell: the account's credentials, the front's endpoint, the read-only operator role.
        with operator_shell(emulator):
            arguments = ["--metrics", "--ledger-table", table, "--config", str(config), "--region", "us-east-1"]
            arguments += ["--stack-prefix", f"{emulator.options.stack_name}/", "--json"]
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                seen["code"] = main(arguments)
            seen["document"] = json.loads(out.getvalue())
            text = io.StringIO()
            with contextlib.redirect_stdout(text):
                main(arguments[:-1])
            seen["text"] = text.getvalue()
        seen["writes"] = [call.operation for call in calls if call.is_write]
        cloudwatch = emulator.aws("cloudwatch", direct=True)
        seen["dashboard"] = cloudwatch.get_dashboard(DashboardName=emulator.options.stack_name)["DashboardBody"]
        seen["project"] = emulator.template.resolver.names.name("ImageBuildProject", emulator.template.resolver)

    options = Options(printer=Printer(enabled=False), config=config, work_dir=directory / "work")
    seen["report"] = run_scenario(path, options, while_running=look)
    seen["logs"] = directory / "work" / "logs"
    return seen


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_metrics(tmp_path_factory.mktemp("status"), SCENARIO)


@pytest.fixture(scope="module")
def economy_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("economy")
    return run_metrics(directory, PUSHES_OF_EVERY_KIND, without_quiet_window(DEFAULT_CONFIG, directory))


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


def economy_of(run: dict[str, Any]) -> dict[str, Any]:
    (economy,) = run["document"]["build_economy"]
    assert economy["repository"] == "demo-app"
    return economy


def test_a_coalesced_push_is_a_build_saved_by_the_quiet_window(printed: dict[str, Any]) -> None:
    economy = economy_of(printed)
    report = printed["report"]
    built = {build["commit"] for build in report["final_state"]["builds"]}

    # First (a new branch, built at once), Between (folded into Second's build), Second.
    assert step(report, 3)["commit"] not in built and step(report, 4)["commit"] in built
    assert (economy["pushes"], economy["builds_started"], economy["saved_by_coalescing"]) == (3, 2, 1)
    assert economy["builds_per_push"] == 2 / 3 and economy["waiting"] == 0


def test_the_economy_counts_the_docs_push_the_tag_and_the_superseded_build(economy_run: dict[str, Any]) -> None:
    economy = economy_of(economy_run)
    report = economy_run["report"]
    builds = report["final_state"]["builds"]

    # Builds of First, Second (stopped by Third), Third and Vulnerable; Docs only and the tag built nothing.
    assert economy["builds_started"] == len(builds) == 4
    assert [build["status"] for build in builds_of(report, step(report, 4)["commit"])] == ["STOPPED"]
    assert economy["pushes"] == 6 and economy["builds_per_push"] == 4 / 6
    assert (economy["saved_by_filter"], economy["saved_by_supersede"], economy["reused"]) == (1, 1, 1)
    assert economy["saved_by_coalescing"] == 0


def test_the_blocked_image_is_counted_with_the_cves_that_blocked_it(economy_run: dict[str, Any]) -> None:
    (images,) = economy_run["document"]["blocked_images"]
    report = economy_run["report"]
    blocked_image = image_of(report, step(report, 6)["commit"])

    assert blocked_image is not None and blocked_image["verdict"] == "BLOCKED"
    # Every built image that was scanned has a verdict; only the vulnerable one is blocked.
    assert images["judged"] == 3
    (blocked,) = images["blocked"]
    assert blocked["image_digest"] == blocked_image["digest"]
    # CRITICAL and HIGH are over the policy (at most 0 each); MEDIUM has no limit, so it blocked nothing.
    assert blocked["cves"] == ["CVE-2023-4863", "CVE-2023-5129"]
    assert images["cves"] == {"CVE-2023-4863": 1, "CVE-2023-5129": 1}
    assert economy_run["writes"] == [] and report["permission_gaps"] == []


def test_the_stack_the_emulator_provisions_has_the_dashboard_with_its_own_names(printed: dict[str, Any]) -> None:
    dashboard = json.loads(printed["dashboard"])
    project_rows = [
        row
        for widget in dashboard["widgets"]
        for row in widget["properties"].get("metrics", [])
        if row[:1] == ["AWS/CodeBuild"]
    ]

    assert project_rows and {row[3] for row in project_rows} == {printed["project"]}
    assert any(widget["type"] == "alarm" and widget["properties"]["alarms"] for widget in dashboard["widgets"])


def test_the_dashboards_build_decisions_query_counts_the_run(economy_run: dict[str, Any]) -> None:
    dashboard = json.loads(economy_run["dashboard"])
    (query,) = [
        widget["properties"]["query"]
        for widget in dashboard["widgets"]
        if widget["type"] == "log" and "image handled" in widget["properties"]["query"]
    ]
    source, rest = query.split(" | ", 1)
    group = source.removeprefix("SOURCE ").strip("'")
    report = economy_run["report"]
    records = read_logs(economy_run["logs"], {"StartBuildFunction": group})

    rows = run_query(rest, [record for record in records if record["@log"] == group])

    counted = {(row["action"], row.get("reason", "")): int(row["images"]) for row in rows}
    # First, Second (stopped later by Third: logged as started), Third and Vulnerable; the docs-only
    # push skipped by the filter; the tag promoted without a build.
    assert counted == {
        ("started", ""): 4,
        ("skipped", REASON_NO_MATCHING_PATHS): 1,
        ("promotion", REASON_IMAGE_EXISTS): 1,
    }
    assert ("skipped", REASON_SUPERSEDED) not in counted and report["permission_gaps"] == []


def test_the_printed_metrics_say_the_economy_and_the_cves(economy_run: dict[str, Any]) -> None:
    text = economy_run["text"]

    assert "demo-app: 6 push(es), 4 build(s) started (0.67 per push);" in text
    assert "saved: 1 by path filters, 1 by supersede, 0 by coalescing; 1 promoted without a build" in text
    assert "1 of 3 image(s) blocked; CVEs that blocked: CVE-2023-4863 (1), CVE-2023-5129 (1)" in text
