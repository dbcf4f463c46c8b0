"""Docker mode's layer cache through ECR: the demo's builds timed, a cold one against the warm ones.

Runs the demo scenario with `--builds docker` once. Every build starts on a clean engine (no build
cache, no images but the base image), as a fresh CodeBuild host does, so the only cache a build
can use is the previous image in ECR (`--cache-from <repository>:buildcache`, inline cache). The
first build finds none (cold); the later ones find the previous image's (warm). For each build
it prints the buildspec's BUILD phase (the `docker build`, from the build log's own timestamps)
and the whole build (login, build, push), and the ratios of each warm build to the cold one, all
from this one run.

Usage: python bench/docker_build_cache.py  (needs docker mode's packages: docs/emulator.md)
"""

from __future__ import annotations

import re
import sys
import tempfile
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.__main__ import DEMO_SCENARIO, run_scenario
from emulator.core import Options
from emulator.docker_engine import available, missing_message
from emulator.output import Printer

_STAMP = r"\[Container\] (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d\.\d+)"


def phase_seconds(log: str, phase: str) -> float:
    """The phase's duration from the log's `Entering phase` and `Phase complete` lines."""
    entered = re.search(_STAMP + rf" Entering phase {phase}$", log, re.MULTILINE)
    completed = re.search(_STAMP + rf" Phase complete: {phase} ", log, re.MULTILINE)
    if entered is None or completed is None:
        raise ValueError(f"the log has no complete {phase} phase")

    def moment(match: re.Match[str]) -> datetime:
        return datetime.strptime(match.group(1), "%Y/%m/%d %H:%M:%S.%f")

    return (moment(completed) - moment(entered)).total_seconds()


def main() -> int:
    if not available():
        print(f"docker mode is not available: {missing_message()}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="docker-build-cache-") as work:
        report = run_scenario(
            DEMO_SCENARIO, Options(printer=Printer(enabled=False), builds="docker", work_dir=Path(work))
        )
        builds = [build for build in report["final_state"]["builds"] if build["status"] == "SUCCEEDED"]
        rows = []
        for build in builds:
            log = Path(build["log"]).read_text(encoding="utf-8")
            cached = len(re.findall(r"^#\d+ CACHED$", log, re.MULTILINE))
            rows.append((build, phase_seconds(log, "BUILD"), float(build["seconds"]), cached))
    if len(rows) < 2:
        print("the demo made fewer than two builds", file=sys.stderr)
        return 1
    cold_build, cold_total = rows[0][1], rows[0][2]
    print("build  source branch       docker build (s)  whole build (s)  cached steps  vs cold (build / whole)")
    for index, (build, build_seconds, total, cached) in enumerate(rows):
        label = "cold" if index == 0 else f"{build_seconds / cold_build:.2f}x / {total / cold_total:.2f}x"
        print(
            f"#{build['number']:<5} {build['source_branch'][:18]:<19} {build_seconds:>16.2f}"
            f" {total:>16.2f} {cached:>13}  {label}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
