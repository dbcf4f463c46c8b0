"""The field checks pipeline.yaml is validated with: the error, the shapes of names, the value readers.

Each reader takes the dotted path of the value it checks, so every error names the field that is
wrong. ecr_pipeline.config builds its records with these; this module knows none of them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

# ECR repository names: lowercase, digits, and separators, optionally namespaced with "/".
ECR_NAME = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
CODECOMMIT_NAME = re.compile(r"^[\w.-]{1,100}$")
# IAM role names (no path); a comma would split the stack parameter the name is passed in.
ROLE_NAME = re.compile(r"^[\w+=.@-]{1,64}$")
# ECS cluster and service names.
ECS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
# CodeDeploy application and deployment group names, less the separators of stack parameters.
CODEDEPLOY_NAME = re.compile(r"^[\w.+=@-]{1,100}$")

DEPLOY_FIELDS = {
    "ref",
    "environment",
    "cluster",
    "service",
    "container_name",
    "container_port",
    "codedeploy_application",
    "deployment_group",
    "task_role",
    "execution_role",
    "strategy",
    "traffic",
}
# Names that become parts of ARNs in the stack's IAM policies: each with the shape AWS allows.
DEPLOY_NAME_SHAPES = {
    "cluster": (ECS_NAME, "an ECS cluster name (letters, digits, - and _)"),
    "service": (ECS_NAME, "an ECS service name (letters, digits, - and _)"),
    "codedeploy_application": (CODEDEPLOY_NAME, "a CodeDeploy application name (letters, digits, . _ + = @ -)"),
    "deployment_group": (CODEDEPLOY_NAME, "a CodeDeploy deployment group name (letters, digits, . _ + = @ -)"),
    "task_role": (ROLE_NAME, "an IAM role name without a path (letters, digits, + = . @ _ -)"),
    "execution_role": (ROLE_NAME, "an IAM role name without a path (letters, digits, + = . @ _ -)"),
}


class ConfigError(ValueError):
    """pipeline.yaml is invalid; the message starts with the dotted path of the field."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


def mapping(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(path, f"must be a mapping, got {type(value).__name__}")
    return value


def known_keys(value: dict[str, Any], path: str, allowed: set[str]) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(allowed))})")


def string(value: Any, path: str, *, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, "must be a non-empty string")
    return value


def boolean(value: Any, path: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(path, f"must be true or false, got {value!r}")
    return value


def string_list(value: Any, path: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(path, "must be a list of strings")
    for index, item in enumerate(value):
        string(item, f"{path}[{index}]")
    return tuple(value)


def seconds(value: Any, path: str, default: int, maximum: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
        raise ConfigError(path, f"must be a whole number of seconds from 0 to {maximum}, got {value!r}")
    return value


def port(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ConfigError(path, f"must be a port number 1-65535, got {value!r}")
    return value


def deploy_names(strings: dict[str, str], path: str) -> None:
    """The names of one deploy target (`path`) that end up in ARNs have the shape AWS allows."""
    for name, (shape, what) in DEPLOY_NAME_SHAPES.items():
        if name in strings and not shape.match(strings[name]):
            raise ConfigError(f"{path}.{name}", f"must be {what}, got {strings[name]!r}")


def logical_key(name: str) -> str:
    """A name as CloudFormation's Fn::ForEach `&{...}` puts it in a logical id: letters and digits only."""
    return re.sub(r"[^A-Za-z0-9]", "", name)


# One repository: its name and, for each image, the image's name and its deploy targets as the
# stack's DeployTargets parameter lists them.
RepositoryNames = tuple[str, Sequence[tuple[str, Sequence[str]]]]


def unique_logical_ids(repositories: Iterable[RepositoryNames]) -> None:
    """Repositories, images and deploy targets each become stack resources named by their letters and
    digits only: names that differ only in . _ - / would make the same resource twice."""
    repository_keys: dict[str, str] = {}
    image_keys: dict[str, str] = {}
    target_keys: dict[str, str] = {}
    for repository, images in repositories:
        key = logical_key(repository)
        if key in repository_keys:
            raise ConfigError(
                f"repositories.{repository}", f"differs only in . _ - from repositories.{repository_keys[key]}"
            )
        repository_keys[key] = repository
        for image, targets in images:
            key = logical_key(image)
            if key in image_keys:
                raise ConfigError(
                    f"repositories.{repository}.images.{image}",
                    f"image name already used by repositories.{image_keys[key]}"
                    " (names differing only in . _ - / count as one)",
                )
            image_keys[key] = repository
            for index, item in enumerate(targets):
                key = logical_key(item)
                if target_keys.get(key, item) != item:
                    raise ConfigError(
                        f"repositories.{repository}.images.{image}.deploy[{index}]",
                        f"its names differ only in . _ - from {target_keys[key]!r}",
                    )
                target_keys[key] = item
