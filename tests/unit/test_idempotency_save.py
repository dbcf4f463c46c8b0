"""The idempotency layer every handler uses: a throttled success-save never re-runs completed work."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import idempotent_function
from botocore.stub import Stubber

from ecr_pipeline.idempotency import SAVE_FAILED_METRIC, idempotency_config, persistence_layer
from ecr_pipeline.observability import metrics
from tests.handlers import FakeLambdaContext

THROTTLED = "ProvisionedThroughputExceededException"


def stubbed_work(done: list[str]) -> tuple[Any, Stubber]:
    dynamodb = boto3.client("dynamodb", region_name="us-east-1")
    stubber = Stubber(dynamodb)

    config = idempotency_config()
    config.register_lambda_context(FakeLambdaContext())

    @idempotent_function(
        data_keyword_argument="fact", persistence_store=persistence_layer("idempotency", dynamodb), config=config
    )
    def publish_build_started(*, fact: dict[str, str]) -> dict[str, str]:
        done.append(fact["build_id"])
        return {"status": "started"}

    return publish_build_started, stubber


def test_a_throttled_success_save_returns_the_result_of_the_work_done_once() -> None:
    done: list[str] = []
    work, stubber = stubbed_work(done)
    stubber.add_response("put_item", {})  # the INPROGRESS record
    stubber.add_client_error("update_item", service_error_code=THROTTLED, http_status_code=400)
    metrics.clear_metrics()

    with stubber:
        result = work(fact={"build_id": "b-1"})
        stubber.assert_no_pending_responses()

    assert result == {"status": "started"}
    assert done == ["b-1"]
    assert SAVE_FAILED_METRIC in metrics.metric_set
    metrics.clear_metrics()


def test_a_failed_in_progress_save_is_still_raised_before_any_work() -> None:
    done: list[str] = []
    work, stubber = stubbed_work(done)
    stubber.add_client_error("put_item", service_error_code=THROTTLED, http_status_code=400)

    with stubber, pytest.raises(Exception, match="Failed to save in progress record"):
        work(fact={"build_id": "b-1"})

    assert done == []
