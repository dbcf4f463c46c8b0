"""Docker mode's layer cache through ECR: which buildspec keeps a dependency layer cached, measured.

Each variant runs the same scenario in docker mode: four pushes to main of an application whose
Dockerfile has a dependency step (`RUN sleep 2`, standing for a dependency install such as
`pip install`) before its code, and whose pushes change only the code. Every build starts on a
clean engine (no build cache, no images but the base image), as a fresh CodeBuild host does, so
the only cache a build can use is what is in ECR. The variants are the template's own buildspec
and two edits of it, given to the builds through pipeline.yaml's `buildspec` (a file in the
repository):
- no cache: the template's buildspec without the cache pull and without `--cache-from`;
- inline cache: without the cache pull (`--build-arg BUILDKIT_INLINE_CACHE=1 --cache-from
  <repository>:buildcache` only);
- pull, then inline cache: the template's buildspec as it is (`docker pull <repository>:buildcache`
  first).
For each it prints the BUILD phase (`docker build` and tags, from the build log's timestamps) and
the whole build, per push, and the ratio of the warm pushes' mean to the no-cache variant's, all
from this one command.

Usage: python bench/docker_build_cache.py  (needs docker mode's packages: docs/emulator.md)
"""

from __future__ import annotations

import re
import statistics
import sys
import tempfile
from datetime import datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.__main__ import run_scenario
from emulator.core import DEFAULT_TEMPLATE, Options
from emulator.docker_engine import available, missing_message
from emulator.intrinsics import load_template_document
from emulator.output import Printer

PUSHES = 4
_STAMP = r"\[Container\] (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+)"
DOCKERFILE = """FROM public.ecr.aws/docker/library/python:3.12-slim
WORKDIR /app
COPY requirements.txt ./
# Stands for a dependency install (pip install -r requirements.txt): two seconds of work, one layer.
RUN sleep 2 && mkdir -p /opt/deps && cp requirements.txt /opt/deps/
COPY app/ ./app/
CMD ["python", "-m", "app.server"]
"""
PIPELINE = {
    "version": 1,
    "repositories": {
        "bench-app": {
            "default_branch": "main",
            "build_window": 0,
            "supersede": False,
            "images": {"bench-app": {"dockerfile": "Dockerfile", "context": ".", "buildspec": "ci/buildspec.yml"}},
        }
    },
}


def template_buildspec() -> str:
    resources = load_template_document(DEFAULT_TEMPLATE)["Resources"]
    project = next(
        body for body in resources.values() if isinstance(body, dict) and body.get("Type") == "AWS::CodeBuild::Project"
    )
    return str(project["Properties"]["Source"]["BuildSpec"])


def variants() -> dict[str, str]:
    template = template_buildspec()
    cache_from = '        --cache-from "$ECR_REPOSITORY_URI:$CACHE_TAG"\n'
    pull = '      - docker pull --quiet "$ECR_REPOSITORY_URI:$CACHE_TAG" || echo "no layer cache yet"\n'
    if cache_from not in template or pull not in template:
        raise SystemExit("template.yaml's buildspec changed: this bench edits its cache pull and --cache-from lines")
    inline = template.replace(pull, "")
    return {
        "no cache": inline.replace(cache_from, ""),
        "inline cache": inline,
        "pull, then inline cache (the template's)": template,
    }


def scenario(directory: Path, buildspec: str) -> Path:
    files = {
        "Dockerfile": DOCKERFILE,
        "requirements.txt": "# pinned dependencies\n",
        "ci/buildspec.yml": buildspec,
        "app/__init__.py": "",
        "app/server.py": "print('version 0')\n",
    }
    steps = [{"commit": {"branch": "main", "message": "First version", "files": files}}]
    steps += [
        {"commit": {"branch": "main", "message": f"Version {n}", "files": {"app/server.py": f"print('version {n}')\n"}}}
        for n in range(1, PUSHES)
    ]
    path = directory / "scenario.yaml"
    path.write_text(yaml.safe_dump({"name": "cache", "steps": steps}), encoding="utf-8")
    return path


def phase_seconds(log: str, phase: str) -> float:
    """The phase's duration from the log's `Entering phase` and `Phase complete` lines."""
    entered = re.search(_STAMP + rf" Entering phase {phase}$", log, re.MULTILINE)
    completed = re.search(_STAMP + rf" Phase complete: {phase} ", log, re.MULTILINE)
    if entered is None or completed is None:
        raise ValueError(f"the log has no complete {phase} phase")

    def moment(match: re.Match[str]) -> datetime:
        return datetime.strptime(match.group(1), "%Y/%m/%d %H:%M:%S.%f")

    return (moment(completed) - moment(entered)).total_seconds()


def run_variant(buildspec: str) -> list[tuple[float, float, int]]:
    """(BUILD phase seconds, whole build seconds, cached steps) of each push's build."""
    with tempfile.TemporaryDirectory(prefix="docker-build-cache-") as work:
        directory = Path(work)
        config = directory / "pipeline.yaml"
        config.write_text(yaml.safe_dump(PIPELINE), encoding="utf-8")
        report = run_scenario(
            scenario(directory, buildspec),
            Options(printer=Printer(enabled=False), builds="docker", work_dir=directory / "run", config=config),
        )
        builds = sorted(report["final_state"]["builds"], key=lambda build: build["number"])
        if [build["status"] for build in builds] != ["SUCCEEDED"] * PUSHES:
            raise SystemExit(f"expected {PUSHES} successful builds, got {[build['status'] for build in builds]}")
        rows = []
        for build in builds:
            log = Path(build["log"]).read_text(encoding="utf-8")
            cached = len(re.findall(r"^#\d+ CACHED$", log, re.MULTILINE))
            rows.append((phase_seconds(log, "BUILD"), float(build["seconds"]), cached))
        return rows


def main() -> int:
    if not available():
        print(f"docker mode is not available: {missing_message()}", file=sys.stderr)
        return 2
    results = {name: run_variant(buildspec) for name, buildspec in variants().items()}
    baseline = results["no cache"]
    base_build = statistics.mean(row[0] for row in baseline[1:])
    base_whole = statistics.mean(row[1] for row in baseline[1:])
    print(f"{PUSHES} pushes to main, code changes only; each build on a clean engine (cache only in ECR)")
    print(f"{'variant':<42} {'BUILD phase per push (s)':<26} {'cached steps':<14} warm pushes vs no cache")
    for name, rows in results.items():
        phases = " ".join(f"{row[0]:5.2f}" for row in rows)
        cached = " ".join(str(row[2]) for row in rows)
        build = statistics.mean(row[0] for row in rows[1:]) / base_build
        whole = statistics.mean(row[1] for row in rows[1:]) / base_whole
        print(f"{name:<42} {phases:<26} {cached:<14} BUILD {build:.2f}x, whole build {whole:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
