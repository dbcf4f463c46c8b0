"""Print `sam deploy --parameter-overrides` for one samconfig.toml environment.

An environment's own overrides (Stage, LogLevel, ...) come from samconfig.toml; the applications
come from pipeline.yaml (ecr_pipeline.stack). SAM CLI replaces, not merges, the overrides given on
its command line, so both are printed together.

    python scripts/deploy_parameters.py [ENV]     # ENV: a samconfig.toml environment, default "default"
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from ecr_pipeline.config import ConfigError, load_config
from ecr_pipeline.stack import parameter_overrides

ROOT = Path(__file__).resolve().parent.parent


def environment_overrides(samconfig: Path, environment: str) -> str:
    document = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    if environment not in document:
        raise SystemExit(f"samconfig.toml has no environment {environment!r} (has: {', '.join(sorted(document))})")
    deploy = ((document[environment].get("deploy") or {}).get("parameters")) or {}
    return str(deploy.get("parameter_overrides", ""))


def stack_name(samconfig: Path, environment: str) -> str:
    document = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    section = document.get(environment) or {}
    for command in ("global", "deploy"):
        name = ((section.get(command) or {}).get("parameters") or {}).get("stack_name")
        if name:
            return str(name)
    return ""


def main(argv: list[str]) -> int:
    environment = argv[1] if len(argv) > 1 else "default"
    samconfig = ROOT / "samconfig.toml"
    name = stack_name(samconfig, environment)
    # The stack's name prefixes its ECR repositories, whose names ECR wants in lowercase.
    if name != name.lower():
        raise SystemExit(
            f"samconfig.toml: {environment}.stack_name {name!r} must be lowercase (it names ECR repositories)"
        )
    try:
        derived = parameter_overrides(load_config(ROOT / "pipeline.yaml"))
    except ConfigError as error:
        raise SystemExit(f"pipeline.yaml is invalid: {error}") from None
    print(f"{environment_overrides(samconfig, environment)} {derived}".strip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
