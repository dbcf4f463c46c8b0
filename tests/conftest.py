"""Shared fixtures: fake AWS credentials for every test, so nothing can reach a real account."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

# Property tests judge results, never speed: on a loaded 2-core machine a single draw can take a
# second, which Hypothesis would otherwise report as a failure.
settings.register_profile("ecr-pipeline", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ecr-pipeline")

# Set before collection: modules that create the shared Logger/Metrics at import read these.
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "EcrPipelineTest")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "ecr-pipeline")


@pytest.fixture(autouse=True)
def fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_REGION", raising=False)
    # The stack's own account, as template.yaml sets it: moto's account, the samples' account.
    monkeypatch.setenv("STACK_ACCOUNT", "123456789012")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "EcrPipelineTest")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "ecr-pipeline")
    monkeypatch.setenv("POWERTOOLS_DEV", "false")


@pytest.fixture
def slack_stand_in() -> Iterator[Any]:
    """The emulator's Slack stand-in (webhook and Web API) on loopback, for the test's duration."""
    from emulator.slack import SlackWebhook

    running = SlackWebhook()
    running.start()
    yield running
    running.stop()
