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
from typing import Any

from ecr_pipeline.config import ConfigError, load_config
from ecr_pipeline.stack import parameter_overrides

ROOT = Path(__file__).resolve().parent.parent


def environment_section(samconfig: Path, environment: str) -> dict[str, Any]:
    document = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    if environment not in document:
        raise SystemExit(f"samconfig.toml has no environment {environment!r} (has: {', '.join(sorted(document))})")
    return dict(document[environment])


def parameters_of(section: dict[str, Any], command: str) -> dict[str, Any]:
    return dict(((section.get(command) or {}).get("parameters")) or {})


def main(argv: list[str]) -> int:
    environment = argv[1] if len(argv) > 1 else "default"
    section = environment_section(ROOT / "samconfig.toml", environment)
    deploy = parameters_of(section, "deploy")
    name = str(deploy.get("stack_name") or parameters_of(section, "global").get("stack_name") or "")
    # The stack's name prefixes its ECR repositories, whose names ECR wants in lowercase.
    if name != name.lower():
        raise SystemExit(
            f"samconfig.toml: {environment}.stack_name {name!r} must be lowercase (it names ECR repositories)"
        )
    try:
        derived = parameter_overrides(load_config(ROOT / "pipeline.yaml"))
    except ConfigError as error:
        raise SystemExit(f"pipeline.yaml is invalid: {error}") from None
    print(f"{deploy.get('parameter_overrides', '')} {derived}".strip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
