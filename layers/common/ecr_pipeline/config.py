"""pipeline.yaml: read once, validated into typed objects.

Every error names the field that is wrong, as a dotted path from the top of the file,
so a bad configuration fails a function's start-up with a message an operator can act on.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED")
NOTIFY_KINDS = ("all", "build", "skipped", "verdict", "blocked", "promoted", "deployment", "failures")
CHANNELS = ("sns", "slack")
# ECR repository names: lowercase, digits, and separators, optionally namespaced with "/".
_ECR_NAME = re.compile(r"^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_CODECOMMIT_NAME = re.compile(r"^[\w.-]{1,100}$")
# IAM role names (no path); a comma would split the stack parameter the name is passed in.
_ROLE_NAME = re.compile(r"^[\w+=.@-]{1,64}$")
# ECS cluster and service names.
_ECS_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
# CodeDeploy application and deployment group names, less the separators of stack parameters.
_CODEDEPLOY_NAME = re.compile(r"^[\w.+=@-]{1,100}$")


class ConfigError(ValueError):
    """pipeline.yaml is invalid; the message starts with the dotted path of the field."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem


class AllowlistEntry(NamedTuple):
    cve: str
    expires: dt.date
    reason: str

    def active_on(self, day: dt.date) -> bool:
        return day <= self.expires


class ScanPolicy(NamedTuple):
    gate: bool = True
    scanning: str = "basic"
    # Maximum count per severity; a severity not named here is unlimited.
    max_findings: Mapping[str, int] = MappingProxyType({})
    allowlist: tuple[AllowlistEntry, ...] = ()


class PromoteRules(NamedTuple):
    branch: bool = True
    branch_sha: bool = True
    latest: bool = True
    semver: bool = True


class DeployTarget(NamedTuple):
    ref: str
    environment: str
    cluster: str
    service: str
    container_name: str
    container_port: int
    codedeploy_application: str
    deployment_group: str
    # IAM role names the deployed tasks get (taskRoleArn) and start with (executionRoleArn).
    task_role: str = ""
    execution_role: str = ""


class ImageConfig(NamedTuple):
    # The ECR repository the stack made for this image: its name in pipeline.yaml under the stack's prefix.
    ecr_repository: str
    codecommit_repository: str
    dockerfile: str = "Dockerfile"
    context: str = "."
    buildspec: str | None = None
    paths: tuple[str, ...] = ("**",)
    paths_ignore: tuple[str, ...] = ()
    promote: PromoteRules = PromoteRules()
    scan: ScanPolicy = ScanPolicy()
    deploy: tuple[DeployTarget, ...] = ()
    # The image's key in pipeline.yaml (ecr_repository without the stack's prefix).
    name: str = ""


class RepositoryConfig(NamedTuple):
    name: str
    default_branch: str = "main"
    branches: tuple[str, ...] = ("**",)
    branches_ignore: tuple[str, ...] = ()
    tags: tuple[str, ...] = ("v*",)
    supersede: bool = True
    notify: Mapping[str, tuple[str, ...]] = MappingProxyType({"sns": ("all",)})
    images: tuple[ImageConfig, ...] = ()


class PipelineConfig(NamedTuple):
    repositories: dict[str, RepositoryConfig]
    # Prepended to every image name to make its ECR repository name: "<stack name>/" in a stack.
    ecr_repository_prefix: str = ""

    def repository(self, codecommit_repository: str) -> RepositoryConfig | None:
        return self.repositories.get(codecommit_repository)

    def image(self, ecr_repository: str) -> ImageConfig | None:
        """The image config for an ECR repository name, or None if it is not configured."""
        for repo in self.repositories.values():
            for image in repo.images:
                if image.ecr_repository == ecr_repository:
                    return image
        return None

    def ecr_repositories(self) -> list[str]:
        return [image.ecr_repository for repo in self.repositories.values() for image in repo.images]

    def images(self) -> list[ImageConfig]:
        return [image for repo in self.repositories.values() for image in repo.images]

    def deploy_targets(self) -> list[DeployTarget]:
        return [target for image in self.images() for target in image.deploy]


# --- validation helpers: each takes the dotted path of the value it checks ---------------


def _mapping(value: Any, path: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(path, f"must be a mapping, got {type(value).__name__}")
    return value


def _known_keys(value: dict[str, Any], path: str, allowed: set[str]) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"{path}.{unknown[0]}", f"unknown field (allowed: {', '.join(sorted(allowed))})")


def _string(value: Any, path: str, *, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(path, "must be a non-empty string")
    return value


def _bool(value: Any, path: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(path, f"must be true or false, got {value!r}")
    return value


def _string_list(value: Any, path: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None:
        return default
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ConfigError(path, "must be a list of strings")
    for index, item in enumerate(value):
        _string(item, f"{path}[{index}]")
    return tuple(value)


def _allowlist(value: Any, path: str) -> tuple[AllowlistEntry, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(path, "must be a list of {cve, expires, reason}")
    entries = []
    for index, raw in enumerate(value):
        item_path = f"{path}[{index}]"
        item = _mapping(raw, item_path)
        _known_keys(item, item_path, {"cve", "expires", "reason"})
        expires = item.get("expires")
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                raise ConfigError(f"{item_path}.expires", f"must be a date YYYY-MM-DD, got {expires!r}") from None
        if not isinstance(expires, dt.date):
            raise ConfigError(f"{item_path}.expires", "is required: a date YYYY-MM-DD")
        entries.append(
            AllowlistEntry(
                cve=_string(item.get("cve"), f"{item_path}.cve"),
                expires=expires,
                reason=_string(item.get("reason"), f"{item_path}.reason"),
            )
        )
    return tuple(entries)


def _scan(value: Any, path: str) -> ScanPolicy:
    raw = _mapping(value, path)
    _known_keys(raw, path, {"gate", "scanning", "max_findings", "allowlist"})
    scanning = _string(raw.get("scanning"), f"{path}.scanning", default="basic")
    if scanning not in ("basic", "enhanced"):
        raise ConfigError(f"{path}.scanning", f"must be basic or enhanced, got {scanning!r}")
    max_findings: dict[str, int] = {}
    for severity, limit in _mapping(raw.get("max_findings"), f"{path}.max_findings").items():
        field_path = f"{path}.max_findings.{severity}"
        if severity not in SEVERITIES:
            raise ConfigError(field_path, f"unknown severity (one of {', '.join(SEVERITIES)})")
        if limit is None:
            continue  # unlimited
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ConfigError(field_path, f"must be a whole number >= 0 or null for unlimited, got {limit!r}")
        max_findings[severity] = limit
    return ScanPolicy(
        gate=_bool(raw.get("gate"), f"{path}.gate", True),
        scanning=scanning,
        max_findings=max_findings,
        allowlist=_allowlist(raw.get("allowlist"), f"{path}.allowlist"),
    )


def _promote(value: Any, path: str) -> PromoteRules:
    raw = _mapping(value, path)
    _known_keys(raw, path, {"branch", "branch_sha", "latest", "semver"})
    return PromoteRules(
        branch=_bool(raw.get("branch"), f"{path}.branch", True),
        branch_sha=_bool(raw.get("branch_sha"), f"{path}.branch_sha", True),
        latest=_bool(raw.get("latest"), f"{path}.latest", True),
        semver=_bool(raw.get("semver"), f"{path}.semver", True),
    )


_DEPLOY_FIELDS = {
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
}
# Names that become parts of ARNs in the stack's IAM policies: each with the shape AWS allows.
_DEPLOY_NAME_SHAPES = {
    "cluster": (_ECS_NAME, "an ECS cluster name (letters, digits, - and _)"),
    "service": (_ECS_NAME, "an ECS service name (letters, digits, - and _)"),
    "codedeploy_application": (_CODEDEPLOY_NAME, "a CodeDeploy application name (letters, digits, . _ + = @ -)"),
    "deployment_group": (_CODEDEPLOY_NAME, "a CodeDeploy deployment group name (letters, digits, . _ + = @ -)"),
    "task_role": (_ROLE_NAME, "an IAM role name without a path (letters, digits, + = . @ _ -)"),
    "execution_role": (_ROLE_NAME, "an IAM role name without a path (letters, digits, + = . @ _ -)"),
}


def _deploy(value: Any, path: str) -> tuple[DeployTarget, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(path, "must be a list of deploy targets")
    targets = []
    for index, raw in enumerate(value):
        item_path = f"{path}[{index}]"
        item = _mapping(raw, item_path)
        _known_keys(item, item_path, _DEPLOY_FIELDS)
        port = item.get("container_port")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ConfigError(f"{item_path}.container_port", f"must be a port number 1-65535, got {port!r}")
        strings = {name: _string(item.get(name), f"{item_path}.{name}") for name in _DEPLOY_FIELDS - {"container_port"}}
        for name, (shape, what) in _DEPLOY_NAME_SHAPES.items():
            if not shape.match(strings[name]):
                raise ConfigError(f"{item_path}.{name}", f"must be {what}, got {strings[name]!r}")
        targets.append(DeployTarget(container_port=port, **strings))
    return tuple(targets)


def _notify(value: Any, path: str) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {"sns": ("all",)}
    raw = _mapping(value, path)
    _known_keys(raw, path, set(CHANNELS))
    routes: dict[str, tuple[str, ...]] = {}
    for channel, kinds in raw.items():
        kinds_tuple = _string_list(kinds, f"{path}.{channel}", ())
        for index, kind in enumerate(kinds_tuple):
            if kind not in NOTIFY_KINDS:
                raise ConfigError(
                    f"{path}.{channel}[{index}]", f"unknown event kind {kind!r} (one of {', '.join(NOTIFY_KINDS)})"
                )
        routes[channel] = kinds_tuple
    return routes


def _image(name: str, value: Any, path: str, codecommit_repository: str, prefix: str) -> ImageConfig:
    if not _ECR_NAME.match(name) or len(prefix + name) > 256:
        raise ConfigError(path, "is not a valid ECR repository name (lowercase letters, digits, . _ - /)")
    raw = _mapping(value, path)
    _known_keys(raw, path, {"dockerfile", "context", "buildspec", "paths", "paths_ignore", "promote", "scan", "deploy"})
    buildspec = raw.get("buildspec")
    return ImageConfig(
        ecr_repository=prefix + name,
        name=name,
        codecommit_repository=codecommit_repository,
        dockerfile=_string(raw.get("dockerfile"), f"{path}.dockerfile", default="Dockerfile"),
        context=_string(raw.get("context"), f"{path}.context", default="."),
        buildspec=None if buildspec is None else _string(buildspec, f"{path}.buildspec"),
        paths=_string_list(raw.get("paths"), f"{path}.paths", ("**",)),
        paths_ignore=_string_list(raw.get("paths_ignore"), f"{path}.paths_ignore", ()),
        promote=_promote(raw.get("promote"), f"{path}.promote"),
        scan=_scan(raw.get("scan"), f"{path}.scan"),
        deploy=_deploy(raw.get("deploy"), f"{path}.deploy"),
    )


def _repository(name: str, value: Any, path: str, prefix: str) -> RepositoryConfig:
    if not _CODECOMMIT_NAME.match(name):
        raise ConfigError(path, "is not a valid CodeCommit repository name")
    raw = _mapping(value, path)
    _known_keys(raw, path, {"default_branch", "branches", "branches_ignore", "tags", "supersede", "notify", "images"})
    images_raw = _mapping(raw.get("images"), f"{path}.images")
    if not images_raw:
        raise ConfigError(f"{path}.images", "must name at least one ECR repository")
    return RepositoryConfig(
        name=name,
        default_branch=_string(raw.get("default_branch"), f"{path}.default_branch", default="main"),
        branches=_string_list(raw.get("branches"), f"{path}.branches", ("**",)),
        branches_ignore=_string_list(raw.get("branches_ignore"), f"{path}.branches_ignore", ()),
        tags=_string_list(raw.get("tags"), f"{path}.tags", ("v*",)),
        supersede=_bool(raw.get("supersede"), f"{path}.supersede", True),
        notify=_notify(raw.get("notify"), f"{path}.notify"),
        images=tuple(
            _image(str(image_name), image_raw, f"{path}.images.{image_name}", name, prefix)
            for image_name, image_raw in images_raw.items()
        ),
    )


def parse_config(document: Any, ecr_repository_prefix: str = "") -> PipelineConfig:
    """Validate a parsed pipeline.yaml document; images live in ECR under `ecr_repository_prefix`."""
    if ecr_repository_prefix and not _ECR_NAME.match(ecr_repository_prefix + "x"):
        raise ConfigError("ecr_repository_prefix", f"is not a valid ECR name prefix: {ecr_repository_prefix!r}")
    raw = _mapping(document, "pipeline.yaml")
    _known_keys(raw, "pipeline.yaml", {"version", "repositories"})
    if raw.get("version") != 1:
        raise ConfigError("version", f"must be 1, got {raw.get('version')!r}")
    repositories_raw = _mapping(raw.get("repositories"), "repositories")
    if not repositories_raw:
        raise ConfigError("repositories", "must name at least one CodeCommit repository")
    repositories = {
        str(name): _repository(str(name), value, f"repositories.{name}", ecr_repository_prefix)
        for name, value in repositories_raw.items()
    }
    _unique_logical_ids(repositories)
    return PipelineConfig(repositories=repositories, ecr_repository_prefix=ecr_repository_prefix)


def logical_key(name: str) -> str:
    """A name as CloudFormation's Fn::ForEach `&{...}` puts it in a logical id: letters and digits only."""
    return re.sub(r"[^A-Za-z0-9]", "", name)


def _unique_logical_ids(repositories: dict[str, RepositoryConfig]) -> None:
    """Repositories, images and deploy targets each become stack resources named by their letters and
    digits only: names that differ only in . _ - / would make the same resource twice."""
    repository_keys: dict[str, str] = {}
    image_keys: dict[str, str] = {}
    target_keys: dict[str, str] = {}
    for repo in repositories.values():
        key = logical_key(repo.name)
        if key in repository_keys:
            raise ConfigError(
                f"repositories.{repo.name}", f"differs only in . _ - from repositories.{repository_keys[key]}"
            )
        repository_keys[key] = repo.name
        for image in repo.images:
            key = logical_key(image.name)
            if key in image_keys:
                raise ConfigError(
                    f"repositories.{repo.name}.images.{image.name}",
                    f"image name already used by repositories.{image_keys[key]}"
                    " (names differing only in . _ - / count as one)",
                )
            image_keys[key] = repo.name
            for index, target in enumerate(image.deploy):
                item = deploy_target_item(target)
                key = logical_key(item)
                if target_keys.get(key, item) != item:
                    raise ConfigError(
                        f"repositories.{repo.name}.images.{image.name}.deploy[{index}]",
                        f"its names differ only in . _ - from {target_keys[key]!r}",
                    )
                target_keys[key] = item


def deploy_target_item(target: DeployTarget) -> str:
    """One deploy target as the stack's DeployTargets parameter lists it: cluster/service/application/group/roles."""
    return "/".join(
        (
            target.cluster,
            target.service,
            target.codedeploy_application,
            target.deployment_group,
            target.task_role,
            target.execution_role,
        )
    )


def read_document(path: str | Path) -> Any:
    """The raw document of a pipeline.yaml, or of the pipeline.json that `sam build` compiles from it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError("pipeline.yaml", f"cannot be read from {path}: {error.strerror}") from None
    if str(path).endswith(".json"):
        return json.loads(text)
    # PyYAML is needed only where the YAML itself is read: the layer ships the compiled JSON.
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError("pipeline.yaml", f"is not valid YAML: {error}") from None


def load_config(path: str | Path, ecr_repository_prefix: str = "") -> PipelineConfig:
    return parse_config(read_document(path), ecr_repository_prefix)


def compile_config(source: str | Path, destination: str | Path) -> PipelineConfig:
    """Validate pipeline.yaml and write it as JSON: done at build time, so a bad file fails `sam build`."""
    document = read_document(source)
    config = parse_config(document)
    Path(destination).write_text(json.dumps(document, default=str, indent=1, sort_keys=True), encoding="utf-8")
    return config


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m ecr_pipeline.config PIPELINE_YAML PIPELINE_JSON")
    try:
        compiled = compile_config(sys.argv[1], sys.argv[2])
    except ConfigError as error:
        raise SystemExit(f"pipeline.yaml is invalid: {error}") from None
    print(f"pipeline.yaml: {len(compiled.repositories)} repositories, {len(compiled.ecr_repositories())} images")
