"""Provisioning from the template and pipeline.yaml, before a run: the stack as `make deploy` makes it.

The template read with the parameters the stack is given, the layers as Lambda sees them, the
stack's resources (tables, queues, topics, secrets, event buses, ECR repositories, CodeBuild projects) and
the ops-owned side (ECS services and CodeDeploy groups), made in moto straight (not through the front).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ecr_pipeline.config import PipelineConfig
from ecr_pipeline.stack import stack_parameters
from emulator.builds import Project, project_from_template
from emulator.intrinsics import load_template_document
from emulator.runtime import AwsClients
from emulator.tag_mutability import TagMutability, moto_filter
from emulator.template import ACCOUNT_ID, REGION, FunctionSpec, Template, load_template

# The queue every SNS topic of the stack delivers to: the emulated mailbox the report reads.
INBOX_QUEUE = "emulator-sns-inbox"


def stack_template(
    path: Path, config: PipelineConfig, secret_arn: str, stack_name: str, overrides: Mapping[str, str] | None = None
) -> Template:
    """The template with the parameters `make deploy` gives the stack: pipeline.yaml's applications, the
    webhook, and the run's own values (`--parameter`, checked by template.check_parameter_overrides)."""
    parameters = {"SlackWebhookSecretArn": secret_arn, **stack_parameters(config), **(overrides or {})}
    declared = set((load_template_document(path).get("Parameters") or {}).keys())
    return load_template(
        path, {key: value for key, value in parameters.items() if key in declared}, stack_name=stack_name
    )


def layer_overlays(template: Template, work_dir: Path, config_path: Path) -> dict[Path, Path]:
    """Each layer as Lambda sees it: the source tree, with the chosen pipeline.yaml inside."""
    overlays: dict[Path, Path] = {}
    for spec in template.functions.values():
        for layer in spec.layer_dirs:
            if layer in overlays:
                continue
            target = work_dir / "layers" / layer.name
            shutil.copytree(layer, target, ignore=shutil.ignore_patterns("__pycache__", "pipeline.json"))
            for config in target.glob("*/pipeline.yaml"):
                config.unlink()
                shutil.copyfile(config_path, config)
            overlays[layer] = target
    return overlays


def with_layers(spec: FunctionSpec, overlays: dict[Path, Path]) -> FunctionSpec:
    return replace(spec, layer_dirs=tuple(overlays.get(path, path) for path in spec.layer_dirs))


def create_resources(aws: AwsClients, template: Template, slack_url: str) -> str:
    """The template's tables, queues, topics and secrets; the URL of the SNS inbox queue."""
    resolver = template.resolver
    dynamodb = aws("dynamodb", direct=True)
    for logical_id, resource in template.resources_of_type("AWS::DynamoDB::Table").items():
        properties = resolver.resolve(resource.get("Properties") or {})
        arguments: dict[str, Any] = {
            "TableName": resolver.names.name(logical_id, resolver),
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        if properties.get("GlobalSecondaryIndexes"):
            arguments["GlobalSecondaryIndexes"] = [
                {key: value for key, value in index.items() if key != "ProvisionedThroughput"}
                for index in properties["GlobalSecondaryIndexes"]
            ]
        dynamodb.create_table(**arguments)

    sqs = aws("sqs", direct=True)
    for logical_id, resource in template.resources_of_type("AWS::SQS::Queue").items():
        properties = resolver.resolve(resource.get("Properties") or {})
        attributes = {
            key: str(properties[key]).lower() if isinstance(properties[key], bool) else str(properties[key])
            for key in ("DelaySeconds", "VisibilityTimeout", "MessageRetentionPeriod", "FifoQueue")
            if key in properties
        }
        sqs.create_queue(QueueName=resolver.names.name(logical_id, resolver), Attributes=attributes)
    inbox_url = str(sqs.create_queue(QueueName=INBOX_QUEUE)["QueueUrl"])
    inbox_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{INBOX_QUEUE}"

    sns = aws("sns", direct=True)
    for logical_id in template.resources_of_type("AWS::SNS::Topic"):
        topic_arn = sns.create_topic(Name=resolver.names.name(logical_id, resolver))["TopicArn"]
        # Emulated mailbox: every message published to the topic lands in one queue the report reads.
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=inbox_arn)

    secrets = aws("secretsmanager", direct=True)
    for logical_id in template.resources_of_type("AWS::SecretsManager::Secret"):
        secrets.create_secret(Name=resolver.names.name(logical_id, resolver), SecretString=slack_url)

    events = aws("events", direct=True)
    for logical_id, resource in template.resources_of_type("AWS::Events::EventBus").items():
        # The bus and its resource policy, as DescribeEventBus shows them (the front enforces the policy).
        name = resolver.names.name(logical_id, resolver)
        events.create_event_bus(Name=name)
        policy = resolver.resolve((resource.get("Properties") or {}).get("Policy"))
        if policy:
            events.put_permission(EventBusName=name, Policy=policy if isinstance(policy, str) else json.dumps(policy))

    # The dashboard as CloudWatch keeps it (moto checks that the body is JSON); the template's alarms
    # are not made here: the emulator evaluates no metric.
    dashboards = template.resources_of_type("AWS::CloudWatch::Dashboard")
    if dashboards:
        cloudwatch = aws("cloudwatch", direct=True)
        for logical_id, resource in dashboards.items():
            properties = resolver.resolve(resource.get("Properties") or {})
            name = str(properties.get("DashboardName") or f"{template.resolver.stack_name}-{logical_id}")
            cloudwatch.put_dashboard(DashboardName=name, DashboardBody=str(properties["DashboardBody"]))
    return inbox_url


def codebuild_projects(template: Template) -> dict[str, Project]:
    """The template's CodeBuild projects, by name."""
    projects: dict[str, Project] = {}
    for _logical_id, resource in template.resources_of_type("AWS::CodeBuild::Project").items():
        project = project_from_template(template.resolver.resolve(resource.get("Properties") or {}))
        projects[project.name] = project
    return projects


def create_ecr_repositories(
    aws: AwsClients, template: Template, config: PipelineConfig, mutability: TagMutability, warn: Callable[[str], None]
) -> dict[str, str]:
    """The template's ECR repositories; each repository's scanning ("off", "basic", "enhanced")."""
    resolver = template.resolver
    ecr = aws("ecr", direct=True)
    scanning: dict[str, str] = {}
    created: set[str] = set()
    for logical_id, resource in template.resources_of_type("AWS::ECR::Repository").items():
        properties = resolver.resolve(resource.get("Properties") or {})
        name = resolver.names.name(logical_id, resolver)
        arguments: dict[str, Any] = {
            "repositoryName": name,
            "imageScanningConfiguration": {
                "scanOnPush": bool((properties.get("ImageScanningConfiguration") or {}).get("ScanOnPush", False))
            },
            "imageTagMutability": properties.get("ImageTagMutability", "MUTABLE"),
        }
        wildcards = [
            str(item["ImageTagMutabilityExclusionFilterValue"])
            for item in properties.get("ImageTagMutabilityExclusionFilters") or []
        ]
        if wildcards:
            # Emulated: moto matches these filters as regular expressions, ECR as wildcards.
            arguments["imageTagMutabilityExclusionFilters"] = [
                {"filterType": "WILDCARD", "filter": moto_filter(wildcard)} for wildcard in wildcards
            ]
        ecr.create_repository(**arguments)
        mutability.register(name, arguments["imageTagMutability"], wildcards)
        created.add(name)
        scanning[name] = "basic" if arguments["imageScanningConfiguration"]["scanOnPush"] else "off"
    for name in config.ecr_repositories():
        if name not in created:
            # Not made: on AWS the stack would not have it either, and its pushes would fail.
            warn(f"ECR repository {name} is in pipeline.yaml but the template does not create it")
            continue
        image = config.image(name)
        if image is not None and image.scan.scanning == "enhanced":
            scanning[name] = "enhanced"
    return scanning


# Who may assume the roles a deploy target names (targets/ecs-service/template.yaml's trust policies).
ECS_TASKS = "ecs-tasks.amazonaws.com"
CODEDEPLOY_ROLE = "codedeploy-ecs"
BAKE_TIME_MINUTES = 5


def _trust_policy(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


def target_alarm_names(service: str) -> list[str]:
    """The alarms a target stack wires to rollback, named after its service: target 5xx, unhealthy hosts."""
    return [f"{service}-target-5xx", f"{service}-unhealthy-hosts"]


def _create_alarms(cloudwatch: Any, service: str) -> list[str]:
    names = target_alarm_names(service)
    for name, metric, statistic, threshold in zip(
        names, ("HTTPCode_Target_5XX_Count", "UnHealthyHostCount"), ("Sum", "Maximum"), (5.0, 1.0), strict=True
    ):
        cloudwatch.put_metric_alarm(
            AlarmName=name,
            AlarmDescription=f"{service}: {metric}; stops and rolls back a deployment",
            Namespace="AWS/ApplicationELB",
            MetricName=metric,
            Dimensions=[{"Name": "TargetGroup", "Value": f"targetgroup/{service}-blue/0"}],
            Statistic=statistic,
            Period=60,
            EvaluationPeriods=1,
            Threshold=threshold,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
        )
    return names


def create_deploy_targets(aws: AwsClients, config: PipelineConfig) -> dict[tuple[str, str], tuple[str, str]]:
    """ECS services, their roles and alarms, and CodeDeploy groups for pipeline.yaml's deploy targets (the
    ops-owned side, as targets/ecs-service/template.yaml makes it): (application, group) -> (cluster, service)
    of the codedeploy targets."""
    ecs = aws("ecs", direct=True)
    codedeploy = aws("codedeploy", direct=True)
    iam = aws("iam", direct=True)
    cloudwatch = aws("cloudwatch", direct=True)
    services: dict[tuple[str, str], tuple[str, str]] = {}
    clusters: set[str] = set()
    applications: set[str] = set()
    roles: set[str] = set()

    def role(name: str, service: str) -> str:
        if name not in roles:
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=_trust_policy(service))
            roles.add(name)
        return f"arn:aws:iam::{ACCOUNT_ID}:role/{name}"

    for target in config.deploy_targets():
        if target.cluster not in clusters:
            ecs.create_cluster(clusterName=target.cluster)
            clusters.add(target.cluster)
        task_definition = ecs.register_task_definition(
            family=target.service,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            taskRoleArn=role(target.task_role, ECS_TASKS),
            executionRoleArn=role(target.execution_role, ECS_TASKS),
            containerDefinitions=[
                {
                    "name": target.container_name,
                    "image": "public.ecr.aws/nginx/nginx:stable",
                    "essential": True,
                    "portMappings": [{"containerPort": target.container_port, "protocol": "tcp"}],
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        alarms = _create_alarms(cloudwatch, target.service)
        codedeploy_target = target.strategy == "codedeploy"
        ecs.create_service(
            cluster=target.cluster,
            serviceName=target.service,
            taskDefinition=task_definition,
            desiredCount=1,
            launchType="FARGATE",
            deploymentController={"type": "CODE_DEPLOY" if codedeploy_target else "ECS"},
        )
        if not codedeploy_target:
            # moto 5.2.5 drops deploymentConfiguration on create_service and keeps it on update_service.
            ecs.update_service(
                cluster=target.cluster,
                service=target.service,
                deploymentConfiguration={
                    "strategy": target.ecs_strategy,
                    "bakeTimeInMinutes": BAKE_TIME_MINUTES,
                    "alarms": {"alarmNames": alarms, "enable": True, "rollback": True},
                },
            )
            continue
        if target.codedeploy_application not in applications:
            codedeploy.create_application(applicationName=target.codedeploy_application, computePlatform="ECS")
            applications.add(target.codedeploy_application)
        # moto stores alarmConfiguration but answers GetDeploymentGroup without it: emulator.account fills it in.
        codedeploy.create_deployment_group(
            applicationName=target.codedeploy_application,
            deploymentGroupName=target.deployment_group,
            serviceRoleArn=role(CODEDEPLOY_ROLE, "codedeploy.amazonaws.com"),
            deploymentConfigName="CodeDeployDefault.ECSAllAtOnce",
            deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
            ecsServices=[{"serviceName": target.service, "clusterName": target.cluster}],
            alarmConfiguration={"enabled": True, "alarms": [{"name": name} for name in alarms]},
            autoRollbackConfiguration={"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
        )
        services[(target.codedeploy_application, target.deployment_group)] = (target.cluster, target.service)
    return services
