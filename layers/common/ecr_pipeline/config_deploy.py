"""pipeline.yaml's deploy targets: where a promoted image goes, and by which deployment strategy.

Two strategies: `codedeploy` (CodeDeploy blue/green for ECS; the target names its CodeDeploy
application and deployment group) and `ecs` (ECS's own blue/green, with `traffic` linear or
canary; the service itself holds the deployment, so no CodeDeploy names). Both share the
ordering guard, the busy-target queue and the messages (core/deploy.py).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ecr_pipeline import config_fields as fields
from ecr_pipeline.config_fields import ConfigError

STRATEGIES = ("codedeploy", "ecs")
# ECS's traffic shifts (DeploymentConfiguration.strategy), as pipeline.yaml spells them.
TRAFFIC = {"blue_green": "BLUE_GREEN", "linear": "LINEAR", "canary": "CANARY"}
# The names only a codedeploy target has.
CODEDEPLOY_FIELDS = ("codedeploy_application", "deployment_group")


class DeployTarget(NamedTuple):
    ref: str
    environment: str
    cluster: str
    service: str
    container_name: str
    container_port: int
    codedeploy_application: str = ""
    deployment_group: str = ""
    # IAM role names the deployed tasks get (taskRoleArn) and start with (executionRoleArn).
    task_role: str = ""
    execution_role: str = ""
    strategy: str = "codedeploy"
    # ecs only: how production traffic moves (blue_green all at once, linear or canary).
    traffic: str = ""

    @property
    def ecs_strategy(self) -> str:
        """ECS's DeploymentConfiguration.strategy for an ecs target."""
        return TRAFFIC[self.traffic or "blue_green"]


def parse_deploy(value: Any, path: str) -> tuple[DeployTarget, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(path, "must be a list of deploy targets")
    return tuple(_target(raw, f"{path}[{index}]") for index, raw in enumerate(value))


def _target(raw: Any, path: str) -> DeployTarget:
    item = fields.mapping(raw, path)
    fields.known_keys(item, path, fields.DEPLOY_FIELDS)
    port = fields.port(item.get("container_port"), f"{path}.container_port")
    strategy = fields.string(item.get("strategy"), f"{path}.strategy", default="codedeploy")
    if strategy not in STRATEGIES:
        raise ConfigError(f"{path}.strategy", f"must be codedeploy or ecs, got {strategy!r}")
    if strategy == "ecs":
        for name in CODEDEPLOY_FIELDS:
            if name in item:
                raise ConfigError(
                    f"{path}.{name}", "is for strategy codedeploy: an ecs target deploys without CodeDeploy"
                )
        traffic = fields.string(item.get("traffic"), f"{path}.traffic", default="blue_green")
        if traffic not in TRAFFIC:
            raise ConfigError(f"{path}.traffic", f"must be one of {', '.join(TRAFFIC)}, got {traffic!r}")
    else:
        if "traffic" in item:
            raise ConfigError(
                f"{path}.traffic", "is for strategy ecs: a CodeDeploy group's deployment configuration sets its traffic"
            )
        traffic = ""
    # In the order of DeployTarget's fields, so that the first missing field is the one an error names.
    names = [
        name
        for name in DeployTarget._fields
        if name in fields.DEPLOY_FIELDS - {"container_port", "strategy", "traffic"}
        and not (strategy == "ecs" and name in CODEDEPLOY_FIELDS)
    ]
    strings = {name: fields.string(item.get(name), f"{path}.{name}") for name in names}
    fields.deploy_names(strings, path)
    return DeployTarget(
        container_port=port,
        strategy=strategy,
        traffic=traffic,
        **strings,
    )


def deploy_target_item(target: DeployTarget) -> str:
    """One deploy target as the stack lists it: DeployTargets (codedeploy) lists
    cluster/service/application/group/task-role/execution-role, EcsDeployTargets (ecs)
    cluster/service/task-role/execution-role."""
    if target.strategy == "ecs":
        names: tuple[str, ...] = (target.cluster, target.service, target.task_role, target.execution_role)
    else:
        names = (
            target.cluster,
            target.service,
            target.codedeploy_application,
            target.deployment_group,
            target.task_role,
            target.execution_role,
        )
    return "/".join(names)
