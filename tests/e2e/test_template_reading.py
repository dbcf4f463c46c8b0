"""How the emulator reads template.yaml: SAM's Globals merge, intrinsics resolved to its own resources."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulator.iam import Statement, policy_statements
from emulator.template import TemplateError, load_template

pytestmark = pytest.mark.e2e

TEMPLATE = """
Parameters:
  Stage: {Type: String, Default: dev}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Globals:
  Function:
    Timeout: 30
    Layers: [!Ref Shared]
    Environment:
      Variables: {STAGE: !Ref Stage, TABLE: !Ref Table, MODE: global}
Resources:
  Shared: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: layer/}}
  Table: {Type: AWS::DynamoDB::Table, Properties: {TableName: !Sub "${AWS::StackName}-ledger"}}
  Queue: {Type: AWS::SQS::Queue}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Timeout: 90
      Environment:
        Variables:
          MODE: local
          QUEUE_URL: !Ref Queue
          QUEUE_ARN: !GetAtt Queue.Arn
          LEVEL: !If [IsProd, WARNING, DEBUG]
      Events:
        Pushes:
          Type: EventBridgeRule
          Properties:
            Pattern: {source: [aws.codecommit]}
        Retries:
          Type: SQS
          Properties: {Queue: !GetAtt Queue.Arn, BatchSize: 5, FunctionResponseTypes: [ReportBatchItemFailures]}
"""


@pytest.fixture
def template_path(tmp_path: Path) -> Path:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    return path


def test_function_environment_merges_globals_with_its_own(template_path: Path) -> None:
    worker = load_template(template_path).functions["Worker"]

    assert worker.environment == {
        "STAGE": "dev",
        "TABLE": "ecr-pipeline-ledger",
        "MODE": "local",
        "QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/ecr-pipeline-Queue",
        "QUEUE_ARN": "arn:aws:sqs:us-east-1:123456789012:ecr-pipeline-Queue",
        "LEVEL": "DEBUG",
    }
    assert worker.timeout_seconds == 90
    assert worker.layer_dirs == ((template_path.parent / "layer").resolve(),)


def test_parameter_override_changes_conditions(template_path: Path) -> None:
    worker = load_template(template_path, {"Stage": "prod"}).functions["Worker"]

    assert (worker.environment["STAGE"], worker.environment["LEVEL"]) == ("prod", "WARNING")


def test_event_sources_become_rules_and_queue_sources(template_path: Path) -> None:
    worker = load_template(template_path).functions["Worker"]

    assert [(rule.name, rule.pattern) for rule in worker.rules] == [("Worker.Pushes", {"source": ["aws.codecommit"]})]
    assert [
        (queue.queue_logical_id, queue.batch_size, queue.report_batch_item_failures) for queue in worker.queues
    ] == [("Queue", 5, True)]


def test_unknown_parameter_override_is_refused(template_path: Path) -> None:
    with pytest.raises(TemplateError, match="parameter 'Colour' is not declared"):
        load_template(template_path, {"Colour": "blue"})


def test_explicit_role_policies_are_the_function_permissions(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        """
Resources:
  Table: {Type: AWS::DynamoDB::Table}
  WorkerRole:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: worker
          PolicyDocument:
            Statement:
              - {Effect: Allow, Action: dynamodb:GetItem, Resource: !GetAtt Table.Arn}
  Worker:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.handler, Role: !GetAtt WorkerRole.Arn}
""",
        encoding="utf-8",
    )

    statements, complete = policy_statements(load_template(path).functions["Worker"].policies)

    assert complete
    assert statements == [
        Statement(True, ("dynamodb:GetItem",), ("arn:aws:dynamodb:us-east-1:123456789012:table/ecr-pipeline-Table",))
    ]
