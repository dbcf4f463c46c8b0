"""Provisioning from the template and pipeline.yaml: the ECR repositories and the deploy targets.

The ops-owned side of the stack, made in moto straight (not through the front) before a run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ecr_pipeline.config import PipelineConfig
from emulator.tag_mutability import TagMutability, moto_filter
from emulator.template import ACCOUNT_ID, Template

# The emulator's AWS client factory: aws(service, caller=..., direct=...).
AwsClients = Callable[..., Any]


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


def create_deploy_targets(aws: AwsClients, config: PipelineConfig) -> dict[tuple[str, str], tuple[str, str]]:
    """ECS services and CodeDeploy groups for pipeline.yaml's deploy targets (the ops-owned side):
    (application, group) -> (cluster, service)."""
    ecs = aws("ecs", direct=True)
    codedeploy = aws("codedeploy", direct=True)
    services: dict[tuple[str, str], tuple[str, str]] = {}
    clusters: set[str] = set()
    applications: set[str] = set()
    for repository in config.repositories.values():
        for image in repository.images:
            for target in image.deploy:
                if target.cluster not in clusters:
                    ecs.create_cluster(clusterName=target.cluster)
                    clusters.add(target.cluster)
                task_definition = ecs.register_task_definition(
                    family=target.service,
                    networkMode="awsvpc",
                    requiresCompatibilities=["FARGATE"],
                    cpu="256",
                    memory="512",
                    taskRoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{target.task_role}",
                    executionRoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{target.execution_role}",
                    containerDefinitions=[
                        {
                            "name": target.container_name,
                            "image": "public.ecr.aws/nginx/nginx:stable",
                            "essential": True,
                            "portMappings": [{"containerPort": target.container_port, "protocol": "tcp"}],
                        }
                    ],
                )["taskDefinition"]["taskDefinitionArn"]
                ecs.create_service(
                    cluster=target.cluster,
                    serviceName=target.service,
                    taskDefinition=task_definition,
                    desiredCount=1,
                    launchType="FARGATE",
                    deploymentController={"type": "CODE_DEPLOY"},
                )
                if target.codedeploy_application not in applications:
                    codedeploy.create_application(applicationName=target.codedeploy_application, computePlatform="ECS")
                    applications.add(target.codedeploy_application)
                codedeploy.create_deployment_group(
                    applicationName=target.codedeploy_application,
                    deploymentGroupName=target.deployment_group,
                    serviceRoleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/codedeploy-ecs",
                    deploymentConfigName="CodeDeployDefault.ECSAllAtOnce",
                    deploymentStyle={"deploymentType": "BLUE_GREEN", "deploymentOption": "WITH_TRAFFIC_CONTROL"},
                    ecsServices=[{"serviceName": target.service, "clusterName": target.cluster}],
                )
                services[(target.codedeploy_application, target.deployment_group)] = (
                    target.cluster,
                    target.service,
                )
    return services
