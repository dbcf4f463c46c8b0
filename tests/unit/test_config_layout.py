"""ecr_pipeline.config keeps the records and the parsing; its field checks live beside it, importing none of it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ecr_pipeline.config

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "common" / "ecr_pipeline"
# No module of the layer grows past this: past it, a module holds more than one idea.
MAX_LINES = 350


def imported_from_config() -> set[str]:
    """Every name some module of the project imports from ecr_pipeline.config."""
    names: set[str] = set()
    for folder in ("layers", "functions", "emulator", "scripts", "tests", "bench"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module == "ecr_pipeline.config":
                    names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("module", ["config.py", "config_fields.py"])
def test_config_modules_stay_within_the_layers_size(module: str) -> None:
    assert len((PACKAGE / module).read_text(encoding="utf-8").splitlines()) <= MAX_LINES


def test_the_field_checks_import_nothing_of_the_package() -> None:
    # config imports config_fields: the other way round would be a cycle.
    tree = ast.parse((PACKAGE / "config_fields.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not [name for name in imported if name and name.split(".")[0] == "ecr_pipeline"]


def test_every_name_the_project_imports_from_config_is_there() -> None:
    names = imported_from_config()
    assert {"ConfigError", "PipelineConfig", "load_config", "parse_config"} <= names
    assert [name for name in sorted(names) if not hasattr(ecr_pipeline.config, name)] == []


def test_config_error_raised_by_a_field_check_is_configs_own() -> None:
    with pytest.raises(ecr_pipeline.config.ConfigError) as raised:
        ecr_pipeline.config.parse_config({"version": 1, "repositories": {"app": {"images": {"app": {"paths": 3}}}}})
    assert raised.value.path == "repositories.app.images.app.paths"
