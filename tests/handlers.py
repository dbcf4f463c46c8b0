"""Loading a function's handler module fresh, as a Lambda cold start would, and a Lambda context."""

from __future__ import annotations

import importlib.util
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import boto3

from ecr_pipeline.adapters import clients
from ecr_pipeline.settings import load_pipeline_config

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = ""
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "2026/11/28/[$LATEST]test"

    def __post_init__(self) -> None:
        self.aws_request_id = self.aws_request_id or str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def load_handler(function: str) -> ModuleType:
    """Import functions/<function>/app.py as a new module, with fresh boto3 clients and config."""
    clients.client.cache_clear()
    load_pipeline_config.cache_clear()
    path = FUNCTIONS_DIR / function / "app.py"
    name = f"handler_{function}_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def create_pipeline_tables(ledger: str = "ledger", idempotency: str = "idempotency") -> None:
    """The ledger and idempotency tables, keyed as template.yaml keys them (call inside mock_aws)."""
    dynamodb = boto3.client("dynamodb")
    dynamodb.create_table(
        TableName=ledger,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    dynamodb.create_table(
        TableName=idempotency,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )


def create_build_project(name: str = "image-build", repository: str = "demo-app") -> None:
    """The CodeBuild project start_build starts builds of, as moto needs it (call inside mock_aws)."""
    boto3.client("codebuild").create_project(
        name=name,
        source={
            "type": "CODECOMMIT",
            "location": f"https://git-codecommit.us-east-1.amazonaws.com/v1/repos/{repository}",
        },
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "ARM_CONTAINER",
            "image": "aws/codebuild/amazonlinux-aarch64-standard:3.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole=f"arn:aws:iam::123456789012:role/{name}",
    )
