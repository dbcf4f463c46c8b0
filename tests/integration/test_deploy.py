"""deploy against moto (ECS task definitions, CodeDeploy create_deployment, DynamoDB conditional
writes, SQS); Stubber for DeploymentLimitExceededException, which moto never raises."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.events.pipeline import push_from_detail
from tests.events import load_event
from tests.handlers import create_pipeline_tables
from tests.integration.image_flow_world import (
    COMMIT,
    REPOSITORY_URI,
    Function,
    load_function,
    make_ecs_service,
    make_repository,
    register_image,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def aws() -> Iterator[str]:
    with mock_aws():
        create_pipeline_tables()
        make_repository()
        yield make_ecs_service()


def promoted(
    time: str = "2026-11-28T10:05:00.000000Z", digest: str = DIGEST, commit: str = COMMIT, ref: str = "main"
) -> dict[str, Any]:
    event = load_event("image_promoted", image_digest=digest, commit=commit, image_tag=f"sha-{commit}")
    push = {
        **event["detail"]["pushes"][0],
        "push_time": time,
        "push_id": f"{time}#branch#{ref}",
        "commit": commit,
        "ref": ref,
    }
    event["detail"]["pushes"] = [push]
    event["id"] = f"promoted-{time}-{digest[-4:]}"
    # What the pipeline recorded before promoting: the push, the image and its PASSED verdict.
    Ledger("ledger").record_push(push_from_detail(push, "push"))
    register_image(digest, commit)
    return event


def deployment_of(deployment_id: str) -> dict[str, Any]:
    return dict(boto3.client("codedeploy").get_deployment(deploymentId=deployment_id)["deploymentInfo"])


def test_promoted_main_registers_a_revision_pinned_by_digest_and_starts_a_blue_green_deployment(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy = load_function("deploy", monkeypatch)

    result = deploy.invoke(promoted())

    (environment,) = result["environments"]
    assert environment["status"] == "started"
    (started,) = deploy.details("Deployment Started")
    task_definition = boto3.client("ecs").describe_task_definition(taskDefinition=started["task_definition_arn"])
    containers = {c["name"]: c["image"] for c in task_definition["taskDefinition"]["containerDefinitions"]}
    assert containers["web"] == f"{REPOSITORY_URI}@{DIGEST}"
    assert containers["log-router"].endswith("aws-for-fluent-bit:stable")
    assert started["task_definition_arn"] != aws
    revision = deployment_of(started["deployment_id"])["revision"]
    appspec = json.loads(revision["appSpecContent"]["content"])
    target = appspec["Resources"][0]["TargetService"]
    assert target["Properties"]["TaskDefinition"] == started["task_definition_arn"]
    assert target["Properties"]["LoadBalancerInfo"] == {"ContainerName": "web", "ContainerPort": 8080}
    assert (started["environment"], started["application"], started["deployment_group"]) == (
        "dev",
        "demo-app",
        "demo-app-dev",
    )


def test_the_new_revision_runs_with_the_roles_pipeline_yaml_names(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a service whose task definition has no task role (make_ecs_service)
    deploy = load_function("deploy", monkeypatch)

    deploy.invoke(promoted())

    (started,) = deploy.details("Deployment Started")
    revision = boto3.client("ecs").describe_task_definition(taskDefinition=started["task_definition_arn"])
    definition = revision["taskDefinition"]
    assert definition["taskRoleArn"] == "arn:aws:iam::123456789012:role/demo-app-task"
    assert definition["executionRoleArn"] == "arn:aws:iam::123456789012:role/demo-app-task-execution"


def test_environment_records_the_deployed_push(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy = load_function("deploy", monkeypatch)

    deploy.invoke(promoted())

    state = Ledger("ledger").get_environment("demo-app", "dev")
    assert state is not None and state.image_digest == DIGEST and state.deployment_id
    assert state.push_time == "2026-11-28T10:05:00.000000Z"


def test_ref_without_a_deploy_target_is_not_deployed(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy = load_function("deploy", monkeypatch)

    result = deploy.invoke(promoted(ref="feature/login"))

    assert result == {"status": "ignored", "effect": "ignored", "reason": "no deploy target for the promoted refs"}
    assert deploy.published == []


def test_older_push_promoted_late_is_skipped_as_superseded(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy = load_function("deploy", monkeypatch)
    newer = promoted("2026-11-28T10:05:00.000000Z", "sha256:" + "22" * 32, "2" * 40)
    older = promoted("2026-11-28T10:04:00.000000Z", "sha256:" + "11" * 32, "1" * 40)

    deploy.invoke(newer)
    result = deploy.invoke(older)

    assert result["environments"][0]["status"] == "skipped"
    (skipped,) = deploy.details("Deployment Skipped")
    assert skipped["reason"] == "superseded" and skipped["superseded_by"]["commit"] == "2" * 40
    state = Ledger("ledger").get_environment("demo-app", "dev")
    assert state is not None and state.image_digest == "sha256:" + "22" * 32


def test_redelivered_promotion_deploys_once(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy = load_function("deploy", monkeypatch)
    event = promoted()

    deploy.invoke(event)
    deploy.invoke(dict(event, id="another-delivery"))

    assert deploy.detail_types() == ["Deployment Started"]
    assert deploy.calls["codedeploy:CreateDeployment"] == 1


def busy_group(deploy: Function, then_free: bool = False) -> Stubber:
    """The group busy with another push's deployment on the first try (which looks for no earlier
    deployment of its own: there can be none), and free on the next when `then_free`."""
    stubber = Stubber(deploy.app.services.codedeploy._client)
    stubber.add_client_error(
        "create_deployment",
        service_error_code="DeploymentLimitExceededException",
        service_message="The deployment group demo-app-dev has an active deployment",
    )
    if then_free:
        stubber.add_response("create_deployment", {"deploymentId": "d-NEWEST"})
    return stubber


def busy_with(stubber: Stubber, description: str, retry_attempts: int = 0) -> None:
    """The group busy, and the lookup of its active deployments finding one with `description`."""
    stubber.add_client_error(
        "create_deployment",
        service_error_code="DeploymentLimitExceededException",
        response_meta={"RetryAttempts": retry_attempts},
    )
    stubber.add_response(
        "list_deployments",
        {"deployments": ["d-MINE"]},
        {"applicationName": "demo-app", "deploymentGroupName": "demo-app-dev", "includeOnlyStatuses": ANY},
    )
    stubber.add_response(
        "batch_get_deployments", {"deploymentsInfo": [{"deploymentId": "d-MINE", "description": description}]}
    )


def retry_queue(monkeypatch: pytest.MonkeyPatch) -> str:
    url = str(boto3.client("sqs").create_queue(QueueName="deploy-retry")["QueueUrl"])
    monkeypatch.setenv("DEPLOY_RETRY_QUEUE_URL", url)
    return url


def record_sends(deploy: Function) -> list[dict[str, Any]]:
    """The retry messages deploy sends, as the SQS records Lambda would deliver after their delay."""
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append({"eventSource": "aws:sqs", "messageId": str(len(sent)), "body": params["MessageBody"]})

    deploy.app.services.retry_queue._client.meta.events.register("provide-client-params.sqs.SendMessage", record)
    return sent


def test_busy_group_queues_the_candidate_with_a_delay_and_says_so(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = retry_queue(monkeypatch)
    deploy = load_function("deploy", monkeypatch)
    sent: list[dict[str, Any]] = []
    deploy.app.services.retry_queue._client.meta.events.register(
        "provide-client-params.sqs.SendMessage", lambda params, **_: sent.append(params)
    )

    with busy_group(deploy):
        result = deploy.invoke(promoted())

    assert result["environments"][0]["status"] == "queued"
    assert "codedeploy:ListDeployments" not in deploy.calls  # a first try has no deployment to find
    (message,) = sent
    assert message["QueueUrl"] == url and message["DelaySeconds"] == 30
    assert json.loads(message["MessageBody"])["attempt"] == 1
    (queued,) = deploy.details("Deployment Queued")
    assert queued["retry_in_seconds"] == 30 and queued["environment"] == "dev"


def test_queued_candidate_is_deployed_when_the_group_is_free(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    retry_queue(monkeypatch)
    deploy = load_function("deploy", monkeypatch)
    sent = record_sends(deploy)
    with busy_group(deploy, then_free=True):
        deploy.invoke(promoted())
        result = deploy.invoke({"Records": sent})

    assert result["environments"][0] == {
        "environment": "dev",
        "status": "started",
        "effect": "acted",
        "deployment_id": "d-NEWEST",
    }
    assert deploy.calls["ecs:RegisterTaskDefinition"] == 1  # the retry reuses the revision it registered
    state = Ledger("ledger").get_environment("demo-app", "dev")
    assert state is not None and state.deployment_id == "d-NEWEST"


def test_deployment_started_after_a_retry_names_the_push_author_and_message(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a promoted push and a group busy on the first try
    retry_queue(monkeypatch)
    deploy = load_function("deploy", monkeypatch)
    sent = record_sends(deploy)
    event = promoted()
    pushed = push_from_detail(event["detail"]["pushes"][0], "push")

    # When the retry deploys it
    with busy_group(deploy, then_free=True):
        deploy.invoke(event)
        deploy.invoke({"Records": sent})

    # Then its "Deployment Started" carries the same push fields as one without a retry
    (started,) = deploy.details("Deployment Started")
    assert started["author"] == pushed.author != ""
    assert started["message"] == pushed.message != ""
    assert started["push_id"] == pushed.push_id and started["ref"] == "main"


def test_queued_older_candidate_never_overtakes_a_newer_one(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    retry_queue(monkeypatch)
    deploy = load_function("deploy", monkeypatch)
    older = promoted("2026-11-28T10:04:00.000000Z", "sha256:" + "11" * 32, "1" * 40)
    newer = promoted("2026-11-28T10:05:00.000000Z", "sha256:" + "22" * 32, "2" * 40)
    sent = record_sends(deploy)
    with busy_group(deploy):
        deploy.invoke(older)
    older_retry = list(sent)
    deploy.invoke(newer)  # the group is free again: moto creates the deployment

    result = deploy.invoke({"Records": older_retry})

    assert result["environments"][0]["status"] == "superseded"
    state = Ledger("ledger").get_environment("demo-app", "dev")
    assert state is not None and state.image_digest == "sha256:" + "22" * 32
    assert deploy.detail_types() == ["Deployment Queued", "Deployment Started"]


def test_a_retry_finding_the_group_busy_with_its_own_deployment_counts_it_as_started(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a first try that failed at create_deployment (its request may still have gone through)
    retry_queue(monkeypatch)
    deploy = load_function("deploy", monkeypatch)
    event = promoted()
    push_id = event["detail"]["pushes"][0]["push_id"]
    stubber = Stubber(deploy.app.services.codedeploy._client)
    stubber.add_client_error("create_deployment", service_error_code="InternalFailure", http_status_code=500)
    busy_with(stubber, f"ecr-pipeline [dev {push_id}] main")

    # When Lambda's retry finds the group busy with a deployment carrying this candidate's marker
    with stubber:
        with pytest.raises(Exception, match="InternalFailure"):
            deploy.invoke(event)
        result = deploy.invoke(event)

    # Then that deployment is this candidate's: started, not queued, not created twice
    assert result["environments"][0]["deployment_id"] == "d-MINE"
    assert deploy.detail_types() == ["Deployment Started"]
    stubber.assert_no_pending_responses()


def test_a_first_try_sent_twice_by_botocore_looks_for_its_own_deployment(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a create_deployment whose first send went through unseen and whose resend found the group busy
    retry_queue(monkeypatch)
    deploy = load_function("deploy", monkeypatch)
    event = promoted()
    push_id = event["detail"]["pushes"][0]["push_id"]
    stubber = Stubber(deploy.app.services.codedeploy._client)
    busy_with(stubber, f"ecr-pipeline [dev {push_id}] main", retry_attempts=1)

    with stubber:
        result = deploy.invoke(event)

    assert result["environments"][0]["deployment_id"] == "d-MINE"
    assert deploy.detail_types() == ["Deployment Started"]


def test_a_first_try_on_a_busy_group_does_not_look_for_an_earlier_deployment(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    retry_queue(monkeypatch)
    deploy = load_function("deploy", monkeypatch)

    with busy_group(deploy) as stubber:
        result = deploy.invoke(promoted())

    assert result["environments"][0]["status"] == "queued"
    assert "codedeploy:ListDeployments" not in deploy.calls
    assert "codedeploy:BatchGetDeployments" not in deploy.calls
    stubber.assert_no_pending_responses()


def test_busy_group_without_a_retry_queue_raises_for_lambdas_async_retry(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEPLOY_RETRY_QUEUE_URL", raising=False)
    deploy = load_function("deploy", monkeypatch)

    with busy_group(deploy), pytest.raises(Exception, match="busy"):
        deploy.invoke(promoted())

    state = Ledger("ledger").get_environment("demo-app", "dev")
    assert state is not None and state.deployment_id is None  # kept as the pending candidate


def test_missing_container_in_the_task_definition_fails_with_its_name(
    aws: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from tests.integration.image_flow_world import write_config

    target = {
        "ref": "main",
        "environment": "dev",
        "cluster": "demo-cluster",
        "service": "demo-app-dev",
        "container_name": "api",
        "container_port": 8080,
        "codedeploy_application": "demo-app",
        "deployment_group": "demo-app-dev",
        "task_role": "demo-app-task",
        "execution_role": "demo-app-task-execution",
    }
    deploy = load_function("deploy", monkeypatch, write_config(tmp_path, {"deploy": [target]}))

    with pytest.raises(ValueError, match="no container 'api'"):
        deploy.invoke(promoted())


def test_retry_after_a_failure_past_create_deployment_announces_without_deploying_twice(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy = load_function("deploy", monkeypatch)
    event = promoted()
    events_stub = Stubber(deploy.app.services.publisher._client)
    events_stub.add_client_error("put_events", service_error_code="InternalException", http_status_code=500)

    with events_stub, pytest.raises(Exception, match="InternalException"):
        deploy.invoke(event)
    retried = deploy.invoke(event)

    assert retried["environments"][0]["status"] == "already deployed"
    assert deploy.calls["codedeploy:CreateDeployment"] == 1
    attempted, announced = deploy.details("Deployment Started")  # the first was refused by EventBridge
    state = Ledger("ledger").get_environment("demo-app", "dev")
    assert state is not None and announced["deployment_id"] == attempted["deployment_id"] == state.deployment_id


def test_three_attempts_that_fail_at_create_deployment_register_one_task_definition(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy = load_function("deploy", monkeypatch)
    event = promoted()
    stubber = Stubber(deploy.app.services.codedeploy._client)
    for _ in range(3):  # Lambda's three attempts of one asynchronous event
        stubber.add_client_error("create_deployment", service_error_code="ThrottlingException", http_status_code=400)

    with stubber:
        for _ in range(3):
            with pytest.raises(Exception, match="ThrottlingException"):
                deploy.invoke(event)

    assert deploy.calls["ecs:RegisterTaskDefinition"] == 1
    state = Ledger("ledger").get_environment("demo-app", "dev")
    assert state is not None and state.task_definition_arn and state.deployment_id is None


# --- trust: deploy moves an environment only as far as the ledger backs the event -------------------


def test_a_promotion_of_an_image_without_a_passed_verdict_deploys_nothing(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy = load_function("deploy", monkeypatch)
    event = promoted()
    Ledger("ledger").record_verdict("demo-app", DIGEST, "BLOCKED", ["1 CRITICAL over the limit 0"], "basic")

    result = deploy.invoke(event)

    assert (result["status"], result["field"]) == ("rejected", "detail.image_digest")
    assert deploy.calls["ecs:RegisterTaskDefinition"] == 0 and deploy.published == []
    assert Ledger("ledger").get_environment("demo-app", "dev") is None


def test_a_far_future_push_time_cannot_pin_an_environment(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy = load_function("deploy", monkeypatch)
    event = promoted()  # the ledger holds this push at 10:05
    event["detail"]["pushes"][0]["push_time"] = "2099-01-01T00:00:00.000000Z"

    result = deploy.invoke(event)

    assert (result["status"], result["field"]) == ("rejected", "detail.pushes")
    assert Ledger("ledger").get_environment("demo-app", "dev") is None
    assert deploy.calls["codedeploy:CreateDeployment"] == 0


def test_the_repository_uri_comes_from_the_ledger_not_the_event(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    deploy = load_function("deploy", monkeypatch)
    event = promoted()
    event["detail"]["repository_uri"] = "docker.io/attacker/app"

    result = deploy.invoke(event)

    assert result["environments"][0]["status"] == "started"
    (started,) = deploy.details("Deployment Started")
    assert started["image"] == f"{REPOSITORY_URI}@{DIGEST}"


def test_a_missing_deployment_group_is_told_once_as_misconfigured_not_retried(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy = load_function("deploy", monkeypatch)
    stubber = Stubber(deploy.app.services.codedeploy._client)
    stubber.add_client_error("create_deployment", service_error_code="DeploymentGroupDoesNotExistException")

    with stubber:
        result = deploy.invoke(promoted())

    assert result["environments"][0]["status"] == "misconfigured"
    (skipped,) = deploy.details("Deployment Skipped")
    assert "DeploymentGroupDoesNotExistException: demo-app/demo-app-dev" in skipped["reason"]


def test_a_missing_deployment_group_is_asked_again_a_bounded_number_of_times(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    retry_queue(monkeypatch)
    deploy = load_function("deploy", monkeypatch)
    sent = record_sends(deploy)
    stubber = Stubber(deploy.app.services.codedeploy._client)
    for _ in range(4):
        stubber.add_client_error("create_deployment", service_error_code="DeploymentGroupDoesNotExistException")

    statuses = []
    with stubber:
        statuses.append(deploy.invoke(promoted())["environments"][0]["status"])
        for _ in range(3):
            retry = list(sent)
            sent.clear()
            statuses.append(deploy.invoke({"Records": retry})["environments"][0]["status"])

    assert statuses == ["queued", "queued", "queued", "misconfigured"]
    assert deploy.calls["ecs:RegisterTaskDefinition"] == 1 and sent == []


# --- events: one PutEvents per handled event, none for a failed one ---------------------------------


def two_environments(tmp_path: Any) -> Any:
    """dev and staging, both deployed from main (on the one moto service and group)."""
    from tests.integration.image_flow_world import write_config

    base = {
        "ref": "main",
        "cluster": "demo-cluster",
        "service": "demo-app-dev",
        "container_name": "web",
        "container_port": 8080,
        "codedeploy_application": "demo-app",
        "deployment_group": "demo-app-dev",
        "task_role": "demo-app-task",
        "execution_role": "demo-app-task-execution",
    }
    return write_config(tmp_path, {"deploy": [{**base, "environment": "dev"}, {**base, "environment": "staging"}]})


def test_the_events_of_every_environment_go_out_in_one_call(
    aws: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    deploy = load_function("deploy", monkeypatch, two_environments(tmp_path))

    result = deploy.invoke(promoted())

    assert [environment["status"] for environment in result["environments"]] == ["started", "started"]
    assert [started["environment"] for started in deploy.details("Deployment Started")] == ["dev", "staging"]
    assert deploy.calls["events:PutEvents"] == 1


def test_a_failure_in_one_environment_sends_nothing_and_the_retry_announces_each_once(
    aws: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    # Given dev deployed and staging failing at create_deployment within one event
    deploy = load_function("deploy", monkeypatch, two_environments(tmp_path))
    event = promoted()
    stubber = Stubber(deploy.app.services.codedeploy._client)
    stubber.add_response("create_deployment", {"deploymentId": "d-DEV"})
    stubber.add_client_error("create_deployment", service_error_code="ThrottlingException", http_status_code=400)
    stubber.add_response("create_deployment", {"deploymentId": "d-STAGING"})

    with stubber:
        with pytest.raises(Exception, match="ThrottlingException"):
            deploy.invoke(event)
        # Then nothing was told, since Lambda's retry tells it
        assert deploy.published == []
        retried = deploy.invoke(event)

    assert [environment["status"] for environment in retried["environments"]] == ["already deployed", "started"]
    started = {detail["environment"]: detail["deployment_id"] for detail in deploy.details("Deployment Started")}
    assert started == {"dev": "d-DEV", "staging": "d-STAGING"}
    assert len(deploy.published) == 2


def ended(deployment_id: str, status: str, **info: Any) -> None:
    """Moves moto's deployment to its end, as CodeDeploy would (moto keeps it Created forever)."""
    from moto.codedeploy.models import codedeploy_backends

    deployment = codedeploy_backends["123456789012"]["us-east-1"].deployments[deployment_id]
    deployment.status = status


def state_change(deployment_id: str, state: str, event_id: str) -> dict[str, Any]:
    event = load_event("codedeploy_success", deploymentId=deployment_id, state=state)
    event["id"] = event_id
    return event


def test_a_deployments_end_is_read_back_recorded_and_told_once_whatever_delivers_it(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    deploy = load_function("deploy", monkeypatch)
    (started,) = deploy.invoke(promoted())["environments"]
    deployment_id = started["deployment_id"]

    # An event that comes before the end (or is about another deployment) changes nothing.
    early = deploy.invoke(state_change(deployment_id, "SUCCESS", "early"))
    ended(deployment_id, "Succeeded")
    first = deploy.invoke(state_change(deployment_id, "SUCCESS", "first"))
    again = deploy.invoke(state_change(deployment_id, "SUCCESS", "another-delivery"))

    assert early["status"] == "ignored" and "not ended" in early["reason"]
    assert first["status"] == "ended" and first["recorded"] is True
    # Told again (an earlier try may have recorded it and failed to tell it): the same fact, which notify tells once.
    assert again["status"] == "ended" and again["recorded"] is False
    told, retold = deploy.details("Deployment Succeeded")
    assert told == retold
    assert told["deployment_id"] == deployment_id and told["image"].endswith(f"@{DIGEST}")
    ledger = Ledger("ledger")
    serving = ledger.get_serving("demo-app", "dev")
    assert serving is not None and serving.image_digest == DIGEST
    environment = ledger.get_environment("demo-app", "dev")
    assert environment is not None and environment.outcome == "SUCCEEDED"
