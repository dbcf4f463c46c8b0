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


def written(directory: Path, text: str) -> Path:
    path = directory / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def template_path(tmp_path: Path) -> Path:
    return written(tmp_path, TEMPLATE)


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


LOOPS = """
Parameters:
  Names: {Type: CommaDelimitedList}
  Targets: {Type: CommaDelimitedList, Default: "a/one,b/two"}
Conditions:
  HasTargets: !Not [!Equals [!Join [",", !Ref Targets], none]]
Resources:
  WorkerRole: {Type: AWS::IAM::Role}
  Fn::ForEach::Repositories:
    - Name
    - !Ref Names
    - Repository&{Name}:
        Type: AWS::ECR::Repository
        Properties:
          RepositoryName: !Sub ${AWS::StackName}/${Name}
          Tags:
            - {Key: image, Value: !Ref Name}
            - !If [HasTargets, {Key: targets, Value: "yes"}, !Ref AWS::NoValue]
  Fn::ForEach::Grants:
    - Target
    - !Ref Targets
    - Grant&{Target}:
        Type: AWS::IAM::RolePolicy
        Condition: HasTargets
        Properties:
          RoleName: !Ref WorkerRole
          PolicyName: !Select [1, !Split ["/", !Ref Target]]
          PolicyDocument:
            Statement:
              - Effect: Allow
                Action: ecs:DescribeServices
                Resource: !Sub
                  - arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/${Cluster}/${Service}
                  - {Cluster: !Select [0, !Split ["/", !Ref Target]], Service: !Select [1, !Split ["/", !Ref Target]]}
  Worker:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: src/, Handler: app.handler, Role: !GetAtt WorkerRole.Arn}
"""


@pytest.fixture
def loops_path(tmp_path: Path) -> Path:
    return written(tmp_path, LOOPS)


def test_foreach_makes_one_resource_per_item_named_by_its_letters_and_digits(loops_path: Path) -> None:
    template = load_template(loops_path, {"Names": "orders-api,web"}, stack_name="shop-dev")

    repositories = template.resources_of_type("AWS::ECR::Repository")
    assert sorted(repositories) == ["Repositoryordersapi", "Repositoryweb"]
    properties = template.resolver.resolve(repositories["Repositoryordersapi"]["Properties"])
    assert properties == {
        "RepositoryName": "shop-dev/orders-api",
        "Tags": [{"Key": "image", "Value": "orders-api"}, {"Key": "targets", "Value": "yes"}],
    }


def test_a_role_policy_made_by_a_loop_is_part_of_the_function_permissions(loops_path: Path) -> None:
    template = load_template(loops_path, {"Names": "web"})

    statements, complete = policy_statements(template.functions["Worker"].policies)

    assert complete
    assert sorted(statement.resources[0] for statement in statements) == [
        "arn:aws:ecs:us-east-1:123456789012:service/a/one",
        "arn:aws:ecs:us-east-1:123456789012:service/b/two",
    ]


def test_a_role_policy_whose_condition_is_false_grants_nothing(loops_path: Path) -> None:
    template = load_template(loops_path, {"Names": "web", "Targets": "none"})

    statements, _ = policy_statements(template.functions["Worker"].policies)

    assert statements == []
    repository = template.resources_of_type("AWS::ECR::Repository")["Repositoryweb"]
    assert template.resolver.resolve(repository["Properties"])["Tags"] == [{"Key": "image", "Value": "web"}]


def test_a_parameter_without_default_or_value_is_refused(loops_path: Path) -> None:
    with pytest.raises(TemplateError, match="parameter 'Names' has no Default and no value was given"):
        load_template(loops_path)


def test_items_that_differ_only_in_separators_are_refused(loops_path: Path) -> None:
    with pytest.raises(TemplateError, match="generates 'Repositoryordersapi' twice"):
        load_template(loops_path, {"Names": "orders-api,orders.api"})


def test_a_loop_named_like_a_parameter_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(LOOPS.replace("Fn::ForEach::Repositories", "Fn::ForEach::Names"), encoding="utf-8")

    with pytest.raises(TemplateError, match="loop name conflicts"):
        load_template(path, {"Names": "web"})


def test_a_role_over_iams_inline_policy_limit_is_refused(loops_path: Path) -> None:
    targets = ",".join(f"cluster-{n:02d}/service-with-a-long-name-{n:02d}" for n in range(120))

    with pytest.raises(TemplateError, match=r"WorkerRole: its inline policies total \d+ characters, over IAM's limit"):
        load_template(loops_path, {"Names": "web", "Targets": targets})
