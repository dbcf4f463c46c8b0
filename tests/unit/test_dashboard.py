"""template.yaml's dashboard: every count the code emits, every dead-letter queue and every alarm of the
template is on it, and its body, resolved as CloudFormation resolves it, is a dashboard CloudWatch takes.

The metric names are read from the code: each `count_outcome(kind, status)` call of a handler with the
statuses its kind counts (the `Literal` of outcomes.py), each `count(name)` and each metric constant;
a kind the table below does not know fails the test, so a new count cannot miss the dashboard.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, get_args

from ecr_pipeline import outcomes
from ecr_pipeline.core.deploy_settle import FAILED, ROLLED_BACK, SUCCEEDED
from ecr_pipeline.core.scan_policy import VERDICTS
from ecr_pipeline.observability import metric_name
from tests.stack import ROOT, stack
from tests.unit.test_failure_queues import USERS

TEMPLATE = stack()
RESOURCES: dict[str, Any] = TEMPLATE.document["Resources"]
SOURCES = sorted([*(ROOT / "functions").glob("*/app.py"), *(ROOT / "layers/common/ecr_pipeline").rglob("*.py")])

# The statuses each outcome kind is counted with (the handler's `count_outcome(kind, <status>)`).
STATUSES_OF_KIND: dict[str, tuple[str, ...]] = {
    "Pushes": ("ignored",),  # start_build counts only the ignored ones; the handled ones count as Builds
    "Builds": get_args(outcomes.BuildDecision),
    "Settles": get_args(outcomes.SettleStatus),
    "Verdict": VERDICTS,
    "TagImage": get_args(outcomes.TagStatus),
    "Events": ("ignored",),  # tag_image: an event it does not act on
    "Deploy": get_args(outcomes.DeployStatus),
    "Deployments": get_args(outcomes.EnvironmentStatus),
    "DeploymentsEnded": (SUCCEEDED, FAILED, ROLLED_BACK),
    "TrafficGate": get_args(outcomes.GateStatus),
}
# CloudWatch's limits on one dashboard (CloudWatch service quotas: widgets, metrics), and the body size
# this template keeps under (CloudFormation takes a template of at most 1 MB from S3).
MAX_WIDGETS = 500
MAX_METRICS_PER_WIDGET = 500
MAX_METRICS = 2500
MAX_BODY_BYTES = 1_000_000


def _constant(node: ast.AST, constants: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    return None


def emitted() -> tuple[set[str], set[str]]:
    """(the metric names the code emits, the outcome kinds it counts)."""
    names: set[str] = set()
    kinds: set[str] = set()
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {
            target.id: node.value.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name) and target.id.isupper()
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            function = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
            first = node.args[0] if node.args else None
            if function == "count_outcome" and first is not None:
                kind = _constant(first, constants)
                assert kind, f"{path}: count_outcome with a kind that is not a literal"
                kinds.add(kind)
            elif function == "count" and isinstance(first, ast.IfExp):  # count("A" if ... else "B")
                names.update(
                    name for name in (_constant(first.body, constants), _constant(first.orelse, constants)) if name
                )
            elif function == "count" and first is not None and _constant(first, constants):
                names.add(str(_constant(first, constants)))
            elif function in ("add_metric", "single_metric"):
                for keyword in node.keywords:
                    if keyword.arg == "name" and _constant(keyword.value, constants):
                        names.add(str(_constant(keyword.value, constants)))
            if function == "log_metrics" and any(
                keyword.arg == "capture_cold_start_metric" and getattr(keyword.value, "value", False)
                for keyword in node.keywords
            ):
                names.add("ColdStart")  # Powertools' own
    names.discard("name")  # the generic `count(name)` inside count_outcome
    return names, kinds


def dashboard_body() -> str:
    (logical_id,) = TEMPLATE.resources_of_type("AWS::CloudWatch::Dashboard")
    return str(TEMPLATE.resolver.resolve(RESOURCES[logical_id]["Properties"]["DashboardBody"]))


BODY = dashboard_body()
DASHBOARD = json.loads(BODY)


def expressions() -> list[str]:
    """The metric math and SEARCH expressions of the dashboard's graphs."""
    return [
        str(item["expression"])
        for widget in DASHBOARD["widgets"]
        for row in widget["properties"].get("metrics", [])
        for item in row
        if isinstance(item, dict) and "expression" in item
    ]


def names_on_dashboard() -> set[str]:
    searched = {name for text in expressions() for name in re.findall(r'MetricName="([A-Za-z0-9_]+)"', text)}
    named = {
        str(row[1])
        for widget in DASHBOARD["widgets"]
        for row in widget["properties"].get("metrics", [])
        if isinstance(row[0], str)
    }
    return searched | named


def test_every_metric_the_code_emits_is_on_the_dashboard() -> None:
    names, kinds = emitted()
    unknown = kinds - set(STATUSES_OF_KIND)

    assert not unknown, f"count_outcome kinds with no statuses in this test's table: {sorted(unknown)}"
    expected = names | {metric_name(kind, status) for kind in kinds for status in STATUSES_OF_KIND[kind]}
    # The code emits these for sure: the reading of the code is not empty.
    assert {"BuildsStarted", "VerdictBlocked", "NotificationsDelivered", "EventsUntrusted"} <= expected
    assert expected - names_on_dashboard() == set()


def test_every_dead_letter_queue_of_the_template_is_on_the_dashboard() -> None:
    queues = {arn["Fn::GetAtt"][0] for arn in USERS.values() if isinstance(arn, dict) and "Fn::GetAtt" in arn}
    depths = {
        row[3]
        for widget in DASHBOARD["widgets"]
        for row in widget["properties"].get("metrics", [])
        if row[:2] == ["AWS/SQS", "ApproximateNumberOfMessagesVisible"]
    }

    assert len(queues) >= 4
    assert {TEMPLATE.resolver.names.name(queue, TEMPLATE.resolver) for queue in queues} <= depths


def test_every_alarm_of_the_template_is_on_the_dashboards_alarm_widget() -> None:
    alarms = TEMPLATE.resources_of_type("AWS::CloudWatch::Alarm")
    (widget,) = [widget for widget in DASHBOARD["widgets"] if widget["type"] == "alarm"]

    assert "EventsUntrustedAlarm" in alarms
    assert sorted(widget["properties"]["alarms"]) == sorted(
        TEMPLATE.resolver.names.get_att(alarm, "Arn", TEMPLATE.resolver) for alarm in alarms
    )


def test_every_function_has_its_errors_and_durations_on_the_dashboard() -> None:
    functions = {
        TEMPLATE.resolver.names.name(lid, TEMPLATE.resolver)
        for lid in TEMPLATE.resources_of_type("AWS::Serverless::Function")
    }
    rows = [row for widget in DASHBOARD["widgets"] for row in widget["properties"].get("metrics", [])]

    for metric in ("Errors", "Duration"):
        assert {row[3] for row in rows if row[:3] == ["AWS/Lambda", metric, "FunctionName"]} == functions


def test_the_body_is_a_dashboard_cloudwatch_takes() -> None:
    widgets = DASHBOARD["widgets"]
    metric_counts = [len(widget["properties"].get("metrics", [])) for widget in widgets]

    assert "${" not in BODY  # every name was substituted
    assert 0 < len(widgets) <= MAX_WIDGETS
    assert max(metric_counts) <= MAX_METRICS_PER_WIDGET and sum(metric_counts) <= MAX_METRICS
    assert len(BODY.encode()) <= MAX_BODY_BYTES
    for widget in widgets:
        assert widget["type"] in ("text", "metric", "log", "alarm")
        assert widget["x"] + widget["width"] <= 24
        if widget["type"] in ("metric", "log"):
            assert widget["properties"]["region"] == "us-east-1"
    log_groups = re.findall(r"SOURCE '([^']+)'", BODY)
    assert log_groups and all(
        group in {TEMPLATE.resolver.ref(lid) for lid in TEMPLATE.resources_of_type("AWS::Logs::LogGroup")}
        for group in log_groups
    )


def test_the_pipelines_searches_count_and_name_exact_metrics() -> None:
    searches = [re.fullmatch(r"SEARCH\('(.*)', '([A-Za-z0-9]+)', 300\)", text) for text in expressions()]

    assert searches and all(searches)
    for found in searches:
        assert found is not None
        terms, statistic = found.groups()
        # Any dimensions (repository, environment, channel): the namespace and exact metric names only.
        assert re.fullmatch(r'"EcrPipeline" (\(MetricName="\w+"( OR MetricName="\w+")*\)|MetricName="\w+")', terms)
        assert statistic == "Sum"
