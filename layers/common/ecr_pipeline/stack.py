"""What a stack's template needs to know of pipeline.yaml: its parameters, derived, never written by hand.

template.yaml names no application. `make deploy` passes these parameters (and the emulator
resolves the template with the same ones), and the template's `Fn::ForEach` loops turn each
list into the ECR repositories, the IAM statements and the rule patterns of exactly the
configured applications. Adding an application is an edit of pipeline.yaml alone.

    python -m ecr_pipeline.stack pipeline.yaml    # prints Name=value pairs for --parameter-overrides
"""

from __future__ import annotations

import shlex

from ecr_pipeline.config import PipelineConfig, deploy_target_item

# Template parameter -> what it lists (one comma-separated item per thing).
PARAMETERS = {
    "SourceRepositories": "CodeCommit repositories that feed the pipeline",
    "ImageRepositories": "images, one ECR repository each (named <stack>/<image>)",
    "DeployTargets": "codedeploy targets as cluster/service/application/deployment-group/task-role/execution-role",
    "EcsDeployTargets": "ecs targets as cluster/service/task-role/execution-role",
}


def stack_parameters(config: PipelineConfig) -> dict[str, str]:
    """The template parameters that follow from pipeline.yaml, each a CommaDelimitedList value."""
    images = [image.name for image in config.images()]
    targets = config.deploy_targets()
    codedeploy = list(dict.fromkeys(deploy_target_item(t) for t in targets if t.strategy == "codedeploy"))
    ecs = list(dict.fromkeys(deploy_target_item(t) for t in targets if t.strategy == "ecs"))
    return {
        "SourceRepositories": ",".join(config.repositories),
        "ImageRepositories": ",".join(images),
        # Fn::ForEach needs a non-empty collection: "none" stands for no target and makes no resource.
        "DeployTargets": ",".join(codedeploy) or "none",
        "EcsDeployTargets": ",".join(ecs) or "none",
    }


def parameter_overrides(config: PipelineConfig) -> str:
    """`sam deploy --parameter-overrides` syntax: Name=value, each quoted for the shell."""
    return " ".join(f"{name}={shlex.quote(value)}" for name, value in stack_parameters(config).items())


if __name__ == "__main__":
    import sys

    from ecr_pipeline.config import ConfigError, load_config

    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m ecr_pipeline.stack PIPELINE_YAML")
    try:
        print(parameter_overrides(load_config(sys.argv[1])))
    except ConfigError as error:
        raise SystemExit(f"pipeline.yaml is invalid: {error}") from None
