"""The environment a function runs with, read and checked once at start-up.

Core code never reads os.environ: handlers call `load_settings` and pass the result on.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import NamedTuple

from ecr_pipeline.config import PipelineConfig, load_config

# The layer ships pipeline.json, compiled from pipeline.yaml by `sam build`; a source tree has the YAML.
_COMPILED_CONFIG = Path(__file__).with_name("pipeline.json")
DEFAULT_CONFIG_PATH = _COMPILED_CONFIG if _COMPILED_CONFIG.exists() else Path(__file__).with_name("pipeline.yaml")


class SettingsError(ValueError):
    """A required environment variable is missing or empty; the message names it."""


class Settings(NamedTuple):
    stage: str
    event_bus_name: str
    event_source: str
    config_path: str
    ledger_table: str = ""
    idempotency_table: str = ""
    codebuild_project: str = ""
    topic_arn: str = ""
    slack_webhook_secret_arn: str = ""
    # Bot-token mode (a push's messages are one thread): the token's secret and the channel posted to.
    slack_bot_token_secret_arn: str = ""
    slack_channel_id: str = ""
    deploy_retry_queue_url: str = ""
    build_window_queue_url: str = ""
    # The stack this function belongs to: its events carry it, its rules hear only it.
    stack_name: str = ""
    # "<stack name>/": the stack's ECR repositories are the image names of pipeline.yaml under it.
    ecr_repository_prefix: str = ""
    # The stack's own account and region: an AWS event of any other is not acted on.
    account: str = ""
    region: str = ""
    # The traffic-shift gate deploy attaches to every deployment, and (strategy ecs) the role ECS invokes it with.
    traffic_gate_function_arn: str = ""
    traffic_gate_role_arn: str = ""


_FIELDS = {
    "ledger_table": "LEDGER_TABLE",
    "idempotency_table": "IDEMPOTENCY_TABLE",
    "codebuild_project": "CODEBUILD_PROJECT",
    "topic_arn": "TOPIC_ARN",
    "slack_webhook_secret_arn": "SLACK_WEBHOOK_SECRET_ARN",
    "slack_bot_token_secret_arn": "SLACK_BOT_TOKEN_SECRET_ARN",
    "slack_channel_id": "SLACK_CHANNEL_ID",
    "deploy_retry_queue_url": "DEPLOY_RETRY_QUEUE_URL",
    "build_window_queue_url": "BUILD_WINDOW_QUEUE_URL",
    "stack_name": "PIPELINE_STACK",
    "ecr_repository_prefix": "ECR_REPOSITORY_PREFIX",
    "account": "STACK_ACCOUNT",
    "traffic_gate_function_arn": "TRAFFIC_GATE_FUNCTION_ARN",
    "traffic_gate_role_arn": "TRAFFIC_GATE_ROLE_ARN",
}


def read_settings(environ: Mapping[str, str], required: tuple[str, ...] = ()) -> Settings:
    """Build Settings from an environment; every name in `required` (a Settings field) must be set."""
    values = {name: environ.get(variable, "").strip() for name, variable in _FIELDS.items()}
    for name in required:
        if not values.get(name):
            raise SettingsError(f"environment variable {_FIELDS[name]} is required by this function and is not set")
    return Settings(
        stage=environ.get("STAGE", "dev"),
        event_bus_name=environ.get("EVENT_BUS_NAME", "default") or "default",
        event_source=environ.get("PIPELINE_EVENT_SOURCE", "ecr-pipeline") or "ecr-pipeline",
        config_path=environ.get("PIPELINE_CONFIG", "") or str(DEFAULT_CONFIG_PATH),
        # Lambda sets AWS_REGION; boto3 and the tests read AWS_DEFAULT_REGION.
        region=(environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "").strip(),
        **values,
    )


def slack_mode(settings: Settings) -> str:
    """`threads` with a bot token (it wins over a webhook), `webhook` with only a webhook, `` without Slack."""
    if settings.slack_bot_token_secret_arn:
        if not settings.slack_channel_id:
            raise SettingsError(
                "environment variable SLACK_CHANNEL_ID is required with SLACK_BOT_TOKEN_SECRET_ARN and is not set"
            )
        return "threads"
    return "webhook" if settings.slack_webhook_secret_arn else ""


def load_settings(*required: str) -> Settings:
    return read_settings(os.environ, required)


@cache
def load_pipeline_config(path: str, ecr_repository_prefix: str = "") -> PipelineConfig:
    """pipeline.yaml, parsed once per process (a Lambda execution environment)."""
    return load_config(path, ecr_repository_prefix)
