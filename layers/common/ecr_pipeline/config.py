"""pipeline.yaml: read once, validated into typed objects.

Every error names the field that is wrong, as a dotted path from the top of the file,
so a bad configuration fails a function's start-up with a message an operator can act on.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from ecr_pipeline import config_fields as fields
from ecr_pipeline.config_deploy import DeployTarget as DeployTarget  # re-exported: a public name of this module
from ecr_pipeline.config_deploy import deploy_target_item as deploy_target_item
from ecr_pipeline.config_deploy import parse_deploy
from ecr_pipeline.config_fields import ConfigError
from ecr_pipeline.config_fields import logical_key as logical_key  # re-exported: a public name of this module

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED")
NOTIFY_KINDS = ("all", "build", "skipped", "verdict", "blocked", "promoted", "deployment", "failures")
CHANNELS = ("sns", "slack")
# A branch push's quiet window (docs/configuration.md: the default's measurement); SQS delays ≤ 15 min.
DEFAULT_BUILD_WINDOW_SECONDS = 60
MAX_BUILD_WINDOW_SECONDS = 900


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
    build_window: int = DEFAULT_BUILD_WINDOW_SECONDS
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

    def deploy_target(self, **names: str) -> tuple[ImageConfig, DeployTarget] | None:
        """The image and deploy target whose fields have these values (strategy="ecs", cluster=...), if any."""
        for image in self.images():
            for target in image.deploy:
                if all(getattr(target, field) == value for field, value in names.items()):
                    return image, target
        return None


# --- the sections of pipeline.yaml: each reader takes the dotted path of its value ---------


def _allowlist(value: Any, path: str) -> tuple[AllowlistEntry, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(path, "must be a list of {cve, expires, reason}")
    entries = []
    for index, raw in enumerate(value):
        item_path = f"{path}[{index}]"
        item = fields.mapping(raw, item_path)
        fields.known_keys(item, item_path, {"cve", "expires", "reason"})
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
                cve=fields.string(item.get("cve"), f"{item_path}.cve"),
                expires=expires,
                reason=fields.string(item.get("reason"), f"{item_path}.reason"),
            )
        )
    return tuple(entries)


def _scan(value: Any, path: str) -> ScanPolicy:
    raw = fields.mapping(value, path)
    fields.known_keys(raw, path, {"gate", "scanning", "max_findings", "allowlist"})
    scanning = fields.string(raw.get("scanning"), f"{path}.scanning", default="basic")
    if scanning not in ("basic", "enhanced"):
        raise ConfigError(f"{path}.scanning", f"must be basic or enhanced, got {scanning!r}")
    max_findings: dict[str, int] = {}
    for severity, limit in fields.mapping(raw.get("max_findings"), f"{path}.max_findings").items():
        field_path = f"{path}.max_findings.{severity}"
        if severity not in SEVERITIES:
            raise ConfigError(field_path, f"unknown severity (one of {', '.join(SEVERITIES)})")
        if limit is None:
            continue  # unlimited
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ConfigError(field_path, f"must be a whole number >= 0 or null for unlimited, got {limit!r}")
        max_findings[severity] = limit
    return ScanPolicy(
        gate=fields.boolean(raw.get("gate"), f"{path}.gate", True),
        scanning=scanning,
        max_findings=max_findings,
        allowlist=_allowlist(raw.get("allowlist"), f"{path}.allowlist"),
    )


def _promote(value: Any, path: str) -> PromoteRules:
    raw = fields.mapping(value, path)
    fields.known_keys(raw, path, {"branch", "branch_sha", "latest", "semver"})
    return PromoteRules(
        branch=fields.boolean(raw.get("branch"), f"{path}.branch", True),
        branch_sha=fields.boolean(raw.get("branch_sha"), f"{path}.branch_sha", True),
        latest=fields.boolean(raw.get("latest"), f"{path}.latest", True),
        semver=fields.boolean(raw.get("semver"), f"{path}.semver", True),
    )


def _notify(value: Any, path: str) -> dict[str, tuple[str, ...]]:
    if value is None:
        return {"sns": ("all",)}
    raw = fields.mapping(value, path)
    fields.known_keys(raw, path, set(CHANNELS))
    routes: dict[str, tuple[str, ...]] = {}
    for channel, kinds in raw.items():
        kinds_tuple = fields.string_list(kinds, f"{path}.{channel}", ())
        for index, kind in enumerate(kinds_tuple):
            if kind not in NOTIFY_KINDS:
                raise ConfigError(
                    f"{path}.{channel}[{index}]", f"unknown event kind {kind!r} (one of {', '.join(NOTIFY_KINDS)})"
                )
        routes[channel] = kinds_tuple
    return routes


def _image(name: str, value: Any, path: str, codecommit_repository: str, prefix: str) -> ImageConfig:
    if not fields.ECR_NAME.match(name) or len(prefix + name) > 256:
        raise ConfigError(path, "is not a valid ECR repository name (lowercase letters, digits, . _ - /)")
    raw = fields.mapping(value, path)
    fields.known_keys(
        raw, path, {"dockerfile", "context", "buildspec", "paths", "paths_ignore", "promote", "scan", "deploy"}
    )
    buildspec = raw.get("buildspec")
    return ImageConfig(
        ecr_repository=prefix + name,
        name=name,
        codecommit_repository=codecommit_repository,
        dockerfile=fields.string(raw.get("dockerfile"), f"{path}.dockerfile", default="Dockerfile"),
        context=fields.string(raw.get("context"), f"{path}.context", default="."),
        buildspec=None if buildspec is None else fields.string(buildspec, f"{path}.buildspec"),
        paths=fields.string_list(raw.get("paths"), f"{path}.paths", ("**",)),
        paths_ignore=fields.string_list(raw.get("paths_ignore"), f"{path}.paths_ignore", ()),
        promote=_promote(raw.get("promote"), f"{path}.promote"),
        scan=_scan(raw.get("scan"), f"{path}.scan"),
        deploy=parse_deploy(raw.get("deploy"), f"{path}.deploy"),
    )


def _repository(name: str, value: Any, path: str, prefix: str) -> RepositoryConfig:
    if not fields.CODECOMMIT_NAME.match(name):
        raise ConfigError(path, "is not a valid CodeCommit repository name")
    raw = fields.mapping(value, path)
    fields.known_keys(
        raw,
        path,
        {"default_branch", "branches", "branches_ignore", "tags", "supersede", "build_window", "notify", "images"},
    )
    images_raw = fields.mapping(raw.get("images"), f"{path}.images")
    if not images_raw:
        raise ConfigError(f"{path}.images", "must name at least one ECR repository")
    return RepositoryConfig(
        name=name,
        default_branch=fields.string(raw.get("default_branch"), f"{path}.default_branch", default="main"),
        branches=fields.string_list(raw.get("branches"), f"{path}.branches", ("**",)),
        branches_ignore=fields.string_list(raw.get("branches_ignore"), f"{path}.branches_ignore", ()),
        tags=fields.string_list(raw.get("tags"), f"{path}.tags", ("v*",)),
        supersede=fields.boolean(raw.get("supersede"), f"{path}.supersede", True),
        build_window=fields.seconds(
            raw.get("build_window"), f"{path}.build_window", DEFAULT_BUILD_WINDOW_SECONDS, MAX_BUILD_WINDOW_SECONDS
        ),
        notify=_notify(raw.get("notify"), f"{path}.notify"),
        images=tuple(
            _image(str(image_name), image_raw, f"{path}.images.{image_name}", name, prefix)
            for image_name, image_raw in images_raw.items()
        ),
    )


def parse_config(document: Any, ecr_repository_prefix: str = "") -> PipelineConfig:
    """Validate a parsed pipeline.yaml document; images live in ECR under `ecr_repository_prefix`."""
    if ecr_repository_prefix and not fields.ECR_NAME.match(ecr_repository_prefix + "x"):
        raise ConfigError("ecr_repository_prefix", f"is not a valid ECR name prefix: {ecr_repository_prefix!r}")
    raw = fields.mapping(document, "pipeline.yaml")
    fields.known_keys(raw, "pipeline.yaml", {"version", "repositories"})
    if raw.get("version") != 1:
        raise ConfigError("version", f"must be 1, got {raw.get('version')!r}")
    repositories_raw = fields.mapping(raw.get("repositories"), "repositories")
    if not repositories_raw:
        raise ConfigError("repositories", "must name at least one CodeCommit repository")
    repositories = {
        str(name): _repository(str(name), value, f"repositories.{name}", ecr_repository_prefix)
        for name, value in repositories_raw.items()
    }
    fields.unique_logical_ids(
        (repo.name, [(image.name, [deploy_target_item(t) for t in image.deploy]) for image in repo.images])
        for repo in repositories.values()
    )
    return PipelineConfig(repositories=repositories, ecr_repository_prefix=ecr_repository_prefix)


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
