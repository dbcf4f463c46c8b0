from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from ecr_pipeline.config import ConfigError, compile_config, load_config, parse_config

PIPELINE_YAML = Path(__file__).resolve().parents[2] / "pipeline.yaml"


def minimal(**repository: Any) -> dict[str, Any]:
    return {"version": 1, "repositories": {"demo-app": {"images": {"demo-app": {}}, **repository}}}


def test_shipped_pipeline_yaml_is_valid() -> None:
    config = load_config(PIPELINE_YAML)
    image = config.image("demo-app")
    assert image is not None and image.codecommit_repository == "demo-app"
    assert image.scan.max_findings == {"CRITICAL": 0, "HIGH": 0}
    assert image.deploy[0].environment == "dev"


def test_defaults_apply_when_fields_are_left_out() -> None:
    config = parse_config(minimal())
    repository = config.repository("demo-app")
    assert repository is not None
    assert repository.default_branch == "main" and repository.supersede is True
    assert repository.images[0].paths == ("**",) and repository.images[0].scan.gate is True


def test_allowlist_expiry_is_parsed_as_date() -> None:
    document = minimal()
    document["repositories"]["demo-app"]["images"]["demo-app"]["scan"] = {
        "allowlist": [{"cve": "CVE-2024-1", "expires": "2027-01-31", "reason": "not reachable"}]
    }
    entry = parse_config(document).repositories["demo-app"].images[0].scan.allowlist[0]
    assert entry.expires == dt.date(2027, 1, 31)
    assert entry.active_on(dt.date(2027, 1, 31)) and not entry.active_on(dt.date(2027, 2, 1))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"branches": "main", "supersede": "yes"}, "repositories.demo-app.supersede"),
        ({"images": {"Demo_App": {}}}, "repositories.demo-app.images.Demo_App"),
        ({"images": {"demo-app": {"scan": {"max_findings": {"SEVERE": 1}}}}}, "max_findings.SEVERE"),
        ({"images": {"demo-app": {"scan": {"max_findings": {"HIGH": -1}}}}}, "max_findings.HIGH"),
        ({"images": {"demo-app": {"scan": {"scanning": "deep"}}}}, "scan.scanning"),
        ({"images": {"demo-app": {"deploy": [{"ref": "main"}]}}}, "deploy[0].container_port"),
        ({"notify": {"slack": ["everything"]}}, "notify.slack[0]"),
        ({"images": {}}, "repositories.demo-app.images"),
        ({"bogus": 1}, "repositories.demo-app.bogus"),
    ],
)
def test_invalid_configuration_names_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(minimal(**change))
    assert field in str(raised.value)


def test_same_ecr_repository_in_two_repositories_is_rejected() -> None:
    document = minimal()
    document["repositories"]["other"] = {"images": {"demo-app": {}}}
    with pytest.raises(ConfigError, match=r"already used by repositories\.demo-app"):
        parse_config(document)


def test_unreadable_yaml_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "pipeline.yaml"
    broken.write_text("version: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)


def test_wrong_version_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"^version"):
        parse_config({**minimal(), "version": 2})


def test_shipped_file_round_trips_through_yaml() -> None:
    # The layer ships the same file: a symlink resolved by `sam build`.
    layer_copy = Path(__file__).resolve().parents[2] / "layers/common/ecr_pipeline/pipeline.yaml"
    assert yaml.safe_load(layer_copy.read_text()) == yaml.safe_load(PIPELINE_YAML.read_text())


def test_compiled_json_gives_the_same_configuration(tmp_path: Path) -> None:
    compiled = tmp_path / "pipeline.json"
    config = compile_config(PIPELINE_YAML, compiled)
    assert load_config(compiled) == config == load_config(PIPELINE_YAML)


def test_compiling_an_invalid_file_fails_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "pipeline.yaml"
    bad.write_text(PIPELINE_YAML.read_text().replace("container_port: 8080", "container_port: http"))
    with pytest.raises(ConfigError, match=r"deploy\[0\]\.container_port"):
        compile_config(bad, tmp_path / "pipeline.json")
    assert not (tmp_path / "pipeline.json").exists()


def deploy_target(**changes: Any) -> dict[str, Any]:
    target = {
        "ref": "main",
        "environment": "dev",
        "cluster": "demo-cluster",
        "service": "demo-app-dev",
        "container_name": "web",
        "container_port": 8080,
        "codedeploy_application": "demo-app",
        "deployment_group": "demo-app-dev",
        "task_role": "demo-app-task",
        "execution_role": "demo-app-task-execution",
    }
    return {**target, **changes}


def with_target(target: dict[str, Any]) -> dict[str, Any]:
    document = minimal()
    document["repositories"]["demo-app"]["images"]["demo-app"]["deploy"] = [target]
    return document


def test_a_deploy_target_names_the_roles_its_tasks_run_with() -> None:
    (target,) = parse_config(with_target(deploy_target())).deploy_targets()
    assert (target.task_role, target.execution_role) == ("demo-app-task", "demo-app-task-execution")


@pytest.mark.parametrize("field", ["task_role", "execution_role"])
def test_a_deploy_target_without_its_roles_is_rejected(field: str) -> None:
    target = deploy_target()
    del target[field]
    with pytest.raises(ConfigError, match=rf"deploy\[0\]\.{field}: must be a non-empty string"):
        parse_config(with_target(target))


@pytest.mark.parametrize(
    ("field", "value"),
    [("task_role", "path/role"), ("execution_role", "a,b"), ("cluster", "c/d"), ("deployment_group", "g/h")],
)
def test_names_that_would_break_the_stack_parameters_are_rejected(field: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"deploy\[0\]\.{field}: must be"):
        parse_config(with_target(deploy_target(**{field: value})))


def test_images_live_under_the_stacks_prefix_and_keep_their_name() -> None:
    (image,) = parse_config(minimal(), "ecr-pipeline-dev/").images()
    assert (image.name, image.ecr_repository) == ("demo-app", "ecr-pipeline-dev/demo-app")


def test_image_names_that_differ_only_in_separators_are_rejected() -> None:
    document = minimal()
    document["repositories"]["demo-app"]["images"]["demoapp"] = {}
    with pytest.raises(ConfigError, match=r"images\.demoapp: image name already used"):
        parse_config(document)
