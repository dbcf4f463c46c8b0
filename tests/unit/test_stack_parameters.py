"""The template parameters that follow from pipeline.yaml, and what `make deploy` passes."""

from __future__ import annotations

import shlex
import subprocess
import sys

from ecr_pipeline.config import load_config, parse_config
from ecr_pipeline.stack import parameter_overrides, stack_parameters
from tests.stack import ROOT, SHIPPED_CONFIG, TWO_APPLICATIONS


def test_each_list_names_every_configured_thing_once() -> None:
    parameters = stack_parameters(load_config(TWO_APPLICATIONS))

    assert parameters["SourceRepositories"].split(",") == ["demo-app", "orders"]
    assert parameters["ImageRepositories"].split(",") == ["demo-app", "orders-api", "orders-worker"]
    targets = parameters["DeployTargets"].split(",")
    assert len(targets) == 2
    assert "orders/orders-api-staging/orders/orders-api-staging/orders-api-task/orders-task-execution" in targets
    # The worker deploys with strategy ecs: its own list, without CodeDeploy names.
    assert parameters["EcsDeployTargets"] == "orders/orders-worker-staging/orders-worker-task/orders-task-execution"


def test_a_configuration_without_deploy_targets_says_none() -> None:
    config = parse_config({"version": 1, "repositories": {"app": {"images": {"app": {}}}}})

    assert stack_parameters(config)["DeployTargets"] == "none"


def test_overrides_are_shell_words_sam_reads_as_name_value_pairs() -> None:
    words = shlex.split(parameter_overrides(load_config(SHIPPED_CONFIG)))

    assert [word.split("=", 1)[0] for word in words] == [
        "SourceRepositories",
        "ImageRepositories",
        "DeployTargets",
        "EcsDeployTargets",
    ]


def test_deploy_parameters_add_pipeline_yaml_to_the_environments_own() -> None:
    printed = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy_parameters.py"), "prod"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()

    assert printed[:2] == ["Stage=prod", "LogLevel=INFO"]
    assert printed[2:] == shlex.split(parameter_overrides(load_config(SHIPPED_CONFIG)))


def test_deploy_parameters_refuse_an_unknown_environment() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "deploy_parameters.py"), "staging"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode != 0 and "samconfig.toml has no environment 'staging'" in result.stderr
