"""The stack template.yaml makes for a pipeline.yaml: loops expanded and every intrinsic resolved.

Tests read the template the way CloudFormation would create it for a given configuration, so a
check that "the permissions name exactly the configured applications" is made against what an
account would really get, for the shipped pipeline.yaml and for one with a second application.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from ecr_pipeline.config import PipelineConfig, load_config
from ecr_pipeline.stack import stack_parameters
from emulator.template import Template, build_role_policies, load_template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_PATH = ROOT / "template.yaml"
SHIPPED_CONFIG = ROOT / "pipeline.yaml"
TWO_APPLICATIONS = ROOT / "emulator" / "scenarios" / "applications.pipeline.yaml"
CONFIGS = {"shipped": SHIPPED_CONFIG, "two-applications": TWO_APPLICATIONS}


@cache
def stack(config_path: Path = SHIPPED_CONFIG, stack_name: str = "ecr-pipeline-dev") -> Template:
    return load_template(TEMPLATE_PATH, stack_parameters(load_config(config_path)), stack_name=stack_name)


def stack_config(config_path: Path, stack_name: str = "ecr-pipeline-dev") -> PipelineConfig:
    return load_config(config_path, f"{stack_name}/")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _statements_of(policies: Any) -> Iterator[dict[str, Any]]:
    for document in policies or []:
        if isinstance(document, dict):
            yield from as_list(document.get("Statement") or [])


def function_statements(template: Template, function: str) -> list[dict[str, Any]]:
    return list(_statements_of(template.functions[function].policies))


def build_statements(template: Template) -> list[dict[str, Any]]:
    return list(_statements_of(build_role_policies(template)))


def resources_for(statements: list[dict[str, Any]], action: str) -> set[str]:
    """Every resource the statements allow `action` on."""
    return {
        str(resource)
        for statement in statements
        if statement.get("Effect", "Allow") == "Allow" and action in as_list(statement["Action"])
        for resource in as_list(statement.get("Resource"))
    }


def resolved_resources(template: Template, resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: template.resolver.resolve(resource.get("Properties") or {})
        for logical_id, resource in template.resources_of_type(resource_type).items()
    }
