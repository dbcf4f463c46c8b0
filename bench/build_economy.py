"""Build economy on a bursty monorepo trace, on the emulator: builds started, stopped, missed, waited.

The trace (seeded): one CodeCommit repository with three images, service-a and service-b (whose
paths both include the shared lib/) and worker, plus docs/ that no image reads; bursts of pushes
to main and two feature branches, each push one commit or several (where often only the first
commit touches an image and the later ones only docs). Every push carries a virtual time: pushes
of a burst are seconds apart, bursts are many minutes apart.

Each row replays the whole trace on the emulator with the stock template and its own pipeline.yaml:
- naive: every push builds every image (paths "**", no supersede, no window);
- no coalescing: path filters and supersede, `build_window: 0` (every push builds at once);
- coalescing at each window length: the pipeline as configured by default, at that window.

The emulator has no clock of its own to wait with (a delayed message becomes visible once nothing
else is pending), so the virtual times decide how a run is stepped: pushes of a branch that come
within the window of the previous push are pushed without waiting (their settles all find a newer
head but the last one's); a gap longer than the window lets the pipeline run until it is idle, as
the window ending would. What the pipeline then does (which builds start, stop, and which images
get the branch tags) is the emulator's run; the times are read from the trace: a build started by
a settle starts a window after its push. Builds run to completion between chains, so a longer gap
stops no build that would still be running on AWS: "stopped" is a lower bound for the windowed rows.

Usage: python bench/build_economy.py [--seed N] [--bursts N] [--windows 30,60,120]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.__main__ import run_scenario
from emulator.core import Options
from emulator.output import Printer

REPOSITORY = "mono"
BRANCHES = ("main", "feature/search", "feature/billing")
# Image -> the trace areas its paths select.
IMAGES = {
    "service-a": ("services/a", "lib"),
    "service-b": ("services/b", "lib"),
    "worker": ("services/worker",),
}
AREAS = ("services/a", "services/b", "services/worker", "lib", "docs")
AREA_WEIGHTS = (3, 3, 2, 2, 3)
DOCKERFILE = "FROM python:3.12-slim\nCOPY . /app\n"


@dataclass
class Push:
    branch: str
    at: float  # virtual seconds since the trace began
    commits: list[list[str]]  # per commit, the areas it changes
    creates: bool = False  # the push that creates the branch

    def areas(self) -> set[str]:
        return {area for commit in self.commits for area in commit}


@dataclass
class Trace:
    pushes: list[Push] = field(default_factory=list)

    def touching(self, push: Push) -> list[str]:
        """The images whose paths this push's range changed (all of them for a new branch)."""
        if push.creates:
            return list(IMAGES)
        return [image for image, areas in IMAGES.items() if push.areas() & set(areas)]


def make_trace(seed: int, bursts: int) -> Trace:
    rng = random.Random(seed)
    trace = Trace()
    # The branches, each created with every image's Dockerfile (main first; features from main).
    for offset, branch in enumerate(BRANCHES):
        trace.pushes.append(Push(branch, offset * 600.0, [["setup" if branch == "main" else "docs"]], creates=True))
    moment = len(BRANCHES) * 600.0
    for _ in range(bursts):
        moment += rng.uniform(600, 1800)  # bursts are 10 to 30 minutes apart
        branch = rng.choice(BRANCHES)
        for position in range(rng.randint(1, 5)):
            if position:
                moment += min(120.0, max(3.0, round(rng.expovariate(1 / 25))))
            if rng.random() < 0.3:
                # Several commits; often only the first touches an image, the rest only docs.
                first = rng.choices(AREAS[:4], weights=AREA_WEIGHTS[:4])
                commits = [first] + [["docs"] for _ in range(rng.randint(1, 2))]
            else:
                commits = [sorted(set(rng.choices(AREAS, weights=AREA_WEIGHTS, k=rng.randint(1, 2))))]
            trace.pushes.append(Push(branch, moment, commits))
    return trace


def pipeline_config(window: int | None) -> dict[str, Any]:
    """The monorepo's pipeline.yaml; window None: the naive one (every push builds every image)."""
    images = {}
    for image, areas in IMAGES.items():
        dockerfile = f"services/{image.removeprefix('service-')}/Dockerfile"
        images[image] = {
            "dockerfile": dockerfile,
            "context": ".",
            "paths": ["**"] if window is None else [f"{area}/**" for area in areas],
            "promote": {"branch": True, "branch_sha": False, "latest": True, "semver": False},
        }
    repository: dict[str, Any] = {
        "default_branch": "main",
        "branches": ["main", "feature/**"],
        "supersede": window is not None,
        "build_window": window or 0,
        "notify": {"sns": ["failures"]},
        "images": images,
    }
    return {"version": 1, "repositories": {REPOSITORY: repository}}


def _files(areas: list[str], serial: int) -> dict[str, str]:
    if areas == ["setup"]:
        files = {f"services/{image.removeprefix('service-')}/Dockerfile": DOCKERFILE for image in IMAGES}
        return {**files, **{f"{area}/README.txt": f"{area}\n" for area in AREAS}}
    return {f"{area}/change-{serial}.txt": f"change {serial}\n" for area in areas}


def scenario(trace: Trace, window: int) -> dict[str, Any]:
    """The trace as scenario steps: a push waits for the pipeline to be idle when the next push of
    its branch comes later than `window` seconds after it (or is on another branch)."""
    steps = []
    serial = 0
    for index, push in enumerate(trace.pushes):
        commits = []
        for areas in push.commits:
            serial += 1
            commits.append({"message": f"change {serial}: {', '.join(areas)}", "files": _files(areas, serial)})
        step: dict[str, Any] = {"branch": push.branch, "commits": commits}
        if push.creates and push.branch != "main":
            step["from"] = "main"
        following = trace.pushes[index + 1] if index + 1 < len(trace.pushes) else None
        chained = following is not None and following.branch == push.branch and following.at - push.at <= window
        # Without a window every push of a burst overlaps the builds of the ones before it.
        overlaps = following is not None and following.branch == push.branch and following.at - push.at <= 300
        steps.append(
            {
                "title": f"push {index} to {push.branch} at {push.at:.0f} s",
                "push": step,
                "wait": not (chained if window else overlaps),
            }
        )
    return {"name": "build-economy", "steps": steps}


def replay(trace: Trace, window: int | None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run of the trace on the emulator; returns its report."""
    with tempfile.TemporaryDirectory() as directory:
        config = Path(directory) / "pipeline.yaml"
        config.write_text(yaml.safe_dump(pipeline_config(window)), encoding="utf-8")
        path = Path(directory) / "scenario.yaml"
        path.write_text(yaml.safe_dump(scenario(trace, window or 0), sort_keys=False), encoding="utf-8")
        run_options = Options(config=config, printer=Printer(enabled=False), **(options or {}))
        return run_scenario(path, run_options)


def push_commits(report: dict[str, Any]) -> list[str]:
    """The head commit of each push, in trace order (the steps' recorded commits)."""
    heads = []
    for entry in report["timeline"]:
        if entry["kind"] == "step":
            heads.append(str(entry["commit"]))
    return heads


def measure(trace: Trace, window: int | None, report: dict[str, Any]) -> dict[str, Any]:
    heads = push_commits(report)
    index_of = {(push.branch, heads[number]): number for number, push in enumerate(trace.pushes)}
    builds = report["final_state"]["builds"]
    started: dict[tuple[str, str], list[int]] = {}
    for build in builds:
        image = build["ecr_repository_uri"].rsplit("/", 1)[-1]
        number = index_of.get((build["source_branch"], build["commit"]))
        if number is not None:
            started.setdefault((build["source_branch"], image), []).append(number)
    added: list[float] = []
    missed = []
    checked = 0
    for branch in BRANCHES:
        for image in IMAGES:
            numbers = sorted(started.get((branch, image), []))
            touching = [
                n for n, push in enumerate(trace.pushes) if push.branch == branch and image in trace.touching(push)
            ]
            for number in touching:
                first = next((n for n in numbers if n >= number), None)
                if first is None:
                    continue
                push = trace.pushes[first]
                waited = window if window and not push.creates else 0
                added.append(push.at + waited - trace.pushes[number].at)
            checked += bool(touching)
            if touching and not _branch_tag_holds(report, branch, image, heads, trace, touching[-1]):
                missed.append(f"{branch} {image}")
    return {
        "started": len(builds),
        "stopped": sum(1 for build in builds if build["status"] == "STOPPED"),
        "missed": missed,
        "finals": checked,
        "added_median": statistics.median(added) if added else 0.0,
    }


def _branch_tag_holds(
    report: dict[str, Any], branch: str, image: str, heads: list[str], trace: Trace, last_touch: int
) -> bool:
    """The branch's tag on the image points at a commit of this branch at or after its last change."""
    tag = branch.replace("/", "-")
    later = {heads[n] for n, push in enumerate(trace.pushes) if push.branch == branch and n >= last_touch}
    for repository, images in report["final_state"]["images"].items():
        if repository.rsplit("/", 1)[-1] != image:
            continue
        for stored in images:
            if tag in stored["tags"]:
                return stored["commit"] in later
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument("--windows", default="30,60,120", help="window lengths in seconds, comma-separated")
    arguments = parser.parse_args(argv)
    trace = make_trace(arguments.seed, arguments.bursts)
    windows = [int(text) for text in arguments.windows.split(",") if text.strip()]
    multi = sum(1 for push in trace.pushes if len(push.commits) > 1)
    print(
        f"build economy: {len(trace.pushes)} pushes ({multi} of several commits) in {arguments.bursts} bursts "
        f"over {len(BRANCHES)} branches, {len(IMAGES)} images, seed {arguments.seed}"
    )
    rows = [("naive (every push builds every image)", None), ("no coalescing (build_window: 0)", 0)]
    rows += [(f"coalescing, build_window: {window}", window) for window in windows]
    results = []
    for label, window in rows:
        results.append((label, measure(trace, window, replay(trace, window))))
    naive = results[0][1]["started"]
    print(f"| {'trigger':<40} | builds started | fewer than naive | stopped | final changes missed | added median |")
    print(f"| {'-' * 40} | --- | --- | --- | --- | --- |")
    for label, result in results:
        fewer = 1 - result["started"] / naive
        print(
            f"| {label:<40} | {result['started']} | {fewer:.0%} | {result['stopped']} | "
            f"{len(result['missed'])} of {result['finals']} | {result['added_median']:.0f} s |"
        )
        for miss in result["missed"]:
            print(f"    missed: {miss}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
