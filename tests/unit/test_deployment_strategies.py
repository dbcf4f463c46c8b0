"""The pure parts of the two deployment strategies: the deploy target's fields, ECS's deployment
configuration with the gate, the AppSpec's hook, what a deployment's end is read as, and the gate's
reading of its hook payloads."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecr_pipeline.config import ConfigError, parse_config
from ecr_pipeline.config_deploy import DeployTarget, deploy_target_item
from ecr_pipeline.core.deploy_plan import GATE_STAGE, TrafficGate, appspec, ecs_deployment_configuration
from ecr_pipeline.core.deploy_settle import FAILED, ROLLED_BACK, SUCCEEDED, codedeploy_end, ecs_end, end_reason
from ecr_pipeline.core.traffic_gate import CodeDeployHook, EcsHook, parse_gate_request
from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.records import EnvironmentState
from ecr_pipeline.stack import stack_parameters
from tests.events import EVENTS_DIR

GATE = TrafficGate("arn:aws:lambda:us-east-1:123456789012:function:CodeDeployHook_x-gate", "arn:aws:iam::1:role/r")
TARGET = {
    "ref": "main",
    "environment": "dev",
    "cluster": "demo-cluster",
    "service": "demo-app-dev",
    "container_name": "web",
    "container_port": 8080,
    "task_role": "task",
    "execution_role": "exec",
}


def config_with(target: dict[str, Any]) -> Any:
    return parse_config({"version": 1, "repositories": {"demo-app": {"images": {"demo-app": {"deploy": [target]}}}}})


def ecs_target(**fields: Any) -> DeployTarget:
    return DeployTarget(**{**TARGET, "strategy": "ecs", "traffic": "blue_green", **fields})


def test_an_ecs_target_needs_no_codedeploy_names_and_defaults_to_blue_green() -> None:
    (target,) = config_with({**TARGET, "strategy": "ecs"}).deploy_targets()

    assert (target.strategy, target.traffic, target.ecs_strategy) == ("ecs", "blue_green", "BLUE_GREEN")
    assert (target.codedeploy_application, target.deployment_group) == ("", "")


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"strategy": "rolling"}, "deploy[0].strategy"),
        ({"strategy": "ecs", "traffic": "all"}, "deploy[0].traffic"),
        ({"strategy": "ecs", "codedeploy_application": "a"}, "deploy[0].codedeploy_application"),
        ({"traffic": "canary", "codedeploy_application": "a", "deployment_group": "g"}, "deploy[0].traffic"),
        ({}, "deploy[0].codedeploy_application"),  # a codedeploy target names its application and group
    ],
)
def test_a_deploy_target_that_mixes_the_strategies_names_the_field(fields: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config_with({**TARGET, **fields})

    assert raised.value.path.endswith(field)


def test_each_strategy_gets_its_own_stack_parameter() -> None:
    config = parse_config(
        {
            "version": 1,
            "repositories": {
                "demo-app": {
                    "images": {
                        "demo-app": {
                            "deploy": [
                                {**TARGET, "codedeploy_application": "app", "deployment_group": "group"},
                                {**TARGET, "environment": "prod", "service": "demo-app-prod", "strategy": "ecs"},
                            ]
                        }
                    }
                }
            },
        }
    )

    parameters = stack_parameters(config)

    assert parameters["DeployTargets"] == "demo-cluster/demo-app-dev/app/group/task/exec"
    assert parameters["EcsDeployTargets"] == "demo-cluster/demo-app-prod/task/exec"
    assert deploy_target_item(ecs_target()) == "demo-cluster/demo-app-dev/task/exec"


def test_ecs_configuration_keeps_the_services_alarms_and_sets_traffic_and_the_gate() -> None:
    current = {
        "strategy": "BLUE_GREEN",
        "bakeTimeInMinutes": 5,
        "alarms": {"alarmNames": ["five-xx"], "enable": True, "rollback": True},
        "lifecycleHooks": [{"hookTargetArn": "arn:other", "lifecycleStages": ["POST_SCALE_UP"]}],
        "canaryConfiguration": {"canaryPercent": 20.0, "canaryBakeTimeInMinutes": 2},
    }

    configuration = ecs_deployment_configuration(current, ecs_target(traffic="canary"), GATE)

    assert configuration["strategy"] == "CANARY"
    assert configuration["canaryConfiguration"] == {"canaryPercent": 20.0, "canaryBakeTimeInMinutes": 2}
    assert configuration["alarms"] == current["alarms"] and configuration["bakeTimeInMinutes"] == 5
    assert configuration["lifecycleHooks"] == [
        current["lifecycleHooks"][0],
        {"hookTargetArn": GATE.function_arn, "roleArn": GATE.role_arn, "lifecycleStages": [GATE_STAGE]},
    ]


def test_the_gate_is_attached_once_however_often_the_service_is_updated() -> None:
    once = ecs_deployment_configuration({}, ecs_target(traffic="linear"), GATE)
    twice = ecs_deployment_configuration(once, ecs_target(traffic="linear"), GATE)

    assert twice == once
    assert once["linearConfiguration"] == {"stepPercent": 10.0, "stepBakeTimeInMinutes": 1}
    assert [hook["hookTargetArn"] for hook in twice["lifecycleHooks"]] == [GATE.function_arn]


def test_the_appspec_runs_the_gate_before_traffic_is_allowed() -> None:
    document = json.loads(appspec("arn:td:1", "web", 8080, GATE))

    assert document["Hooks"] == [{"BeforeAllowTraffic": GATE.function_arn}]
    assert "Hooks" not in json.loads(appspec("arn:td:1", "web", 8080))


@pytest.mark.parametrize(
    ("info", "end"),
    [
        ({"status": "InProgress"}, None),
        ({"status": "Succeeded"}, (SUCCEEDED, "")),
        (
            {
                "status": "Failed",
                "errorInformation": {"code": "ALARM_ACTIVE", "message": "alarms: five-xx"},
                "rollbackInfo": {"rollbackMessage": "rolled back"},
            },
            (ROLLED_BACK, "ALARM_ACTIVE: alarms: five-xx"),
        ),
        ({"status": "Failed", "errorInformation": {"code": "HEALTH_CONSTRAINTS"}}, (FAILED, "HEALTH_CONSTRAINTS")),
        ({"status": "Stopped"}, (FAILED, "stopped")),
    ],
)
def test_a_codedeploy_deployment_is_read_as_its_end(info: dict[str, Any], end: tuple[str, str] | None) -> None:
    read = codedeploy_end(info)

    assert ((read.outcome, read.reason) if read else None) == end


@pytest.mark.parametrize(
    ("deployment", "end"),
    [
        ({"status": "ROLLBACK_IN_PROGRESS"}, None),  # a FAILED event can come before the rollback's end
        ({"status": "SUCCESSFUL"}, (SUCCEEDED, "")),
        (
            {
                "status": "ROLLBACK_SUCCESSFUL",
                "statusReason": "detected triggered alarm(s)",
                "alarms": {"triggeredAlarmNames": ["five-xx"]},
            },
            (ROLLED_BACK, "alarm five-xx in ALARM; detected triggered alarm(s)"),
        ),
        (
            {"status": "ROLLBACK_FAILED", "statusReason": "hook failed"},
            (ROLLED_BACK, "hook failed; the rollback itself failed"),
        ),
        ({"status": "STOPPED"}, (FAILED, "ECS service deployment STOPPED")),
    ],
)
def test_an_ecs_service_deployment_is_read_as_its_end(deployment: dict[str, Any], end: tuple[str, str] | None) -> None:
    read = ecs_end(deployment)

    assert ((read.outcome, read.reason) if read else None) == end


def test_the_gates_refusal_is_the_reason_a_deployment_is_said_to_have_stopped() -> None:
    state = EnvironmentState("r", "dev", "sha256:" + "a" * 64, "c" * 40, "branch", "main", "t", "p")
    end = codedeploy_end({"status": "Failed", "errorInformation": {"code": "HOOK_EXECUTION_FAILURE"}})
    assert end is not None

    assert end_reason(end, state) == "HOOK_EXECUTION_FAILURE"
    assert end_reason(end, state._replace(gate_reason="image is BLOCKED now")) == (
        "stopped at the traffic shift: image is BLOCKED now"
    )


def test_the_gate_reads_both_hook_payloads() -> None:
    ecs = parse_gate_request(json.loads((EVENTS_DIR / "traffic_gate_ecs_hook.json").read_text()))
    codedeploy = parse_gate_request(json.loads((EVENTS_DIR / "traffic_gate_codedeploy_hook.json").read_text()))

    assert isinstance(ecs, EcsHook) and (ecs.cluster, ecs.service) == ("demo-cluster", "demo-app-dev")
    assert ecs.lifecycle_stage == GATE_STAGE and ecs.service_deployment_arn.endswith("/QdR7sT2uVwXyZ01aBcDe")
    assert codedeploy == CodeDeployHook("d-7XQ2ABCDE", "eyJlbmNyeXB0ZWREYXRhIjoiZXhhbXBsZSJ9")


def test_a_hook_payload_without_a_service_names_the_field() -> None:
    payload = json.loads((EVENTS_DIR / "traffic_gate_ecs_hook.json").read_text())
    payload["executionDetails"]["serviceArn"] = "arn:aws:lambda:us-east-1:123456789012:function:x"

    with pytest.raises(MalformedEvent) as raised:
        parse_gate_request(payload)

    assert raised.value.field == "executionDetails.serviceArn"


class FakeServices:
    """The gate's services, answering from memory: the revision's task definition and the ledger."""

    def __init__(self, image: str, verdict: str | None) -> None:
        self.image, self.verdict = image, verdict
        self.written: list[dict[str, str]] = []

    # ecs
    def revision_task_definition(self, arn: str) -> str:
        return "arn:aws:ecs:us-east-1:123456789012:task-definition/demo-app-dev:7"

    def describe_task_definition(self, arn: str) -> dict[str, Any]:
        return {"containerDefinitions": [{"name": "web", "image": self.image}]}

    # ledger
    def get_image(self, repository: str, digest: str) -> Any:
        from ecr_pipeline.records import ImageRecord

        return ImageRecord(repository, digest, commit="c" * 40, verdict=self.verdict) if self.verdict else None

    def get_environment(self, repository: str, environment: str) -> EnvironmentState:
        arn = "arn:aws:ecs:us-east-1:123456789012:service-deployment/demo-cluster/demo-app-dev/QdR7sT2uVwXyZ01aBcDe"
        return EnvironmentState(repository, environment, "d", "c" * 40, "branch", "main", "t", "p", deployment_id=arn)

    def update_environment(self, state: EnvironmentState, **values: str) -> bool:
        self.written.append(values)
        return True


def judged(image: str, verdict: str | None) -> tuple[Any, FakeServices]:
    import datetime as dt

    from ecr_pipeline.core.traffic_gate import GateServices, judge

    fake = FakeServices(image, verdict)
    services = GateServices(ledger=fake, ecr=fake, ecs=fake, codedeploy=fake)  # type: ignore[arg-type]
    config = config_with({**TARGET, "strategy": "ecs"})
    request = parse_gate_request(json.loads((EVENTS_DIR / "traffic_gate_ecs_hook.json").read_text()))
    return judge(request, config, services, dt.date(2026, 12, 2)), fake


def test_the_gate_lets_through_a_revision_that_runs_no_image_of_the_pipelines() -> None:
    outcome, fake = judged("public.ecr.aws/nginx/nginx:stable", None)

    assert outcome.status == "ignored"
    assert fake.written == []


def test_the_gate_refuses_an_image_the_ledger_has_no_passed_verdict_for_and_says_so_on_the_record() -> None:
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/demo-app@sha256:" + "ab" * 32

    outcome, fake = judged(image, "BLOCKED")

    assert outcome.status == "refused"
    assert outcome.reason is not None and "no PASSED verdict" in outcome.reason
    assert fake.written == [{"gate_reason": outcome.reason}]
