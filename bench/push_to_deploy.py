"""Push to deployment created, on the emulator: how long the pipeline's own work takes.

After a warm-up push (the functions' first invocations), each measured push to main changes the
application code; the figure is the time from the push event to the successful CodeDeploy
create_deployment call, minus the time the emulated builds took (the build itself is Docker's
time on AWS, not the pipeline's). Everything in between counts: event routing, every function's
invocations and their AWS calls (moto over loopback HTTP), the scan and the retags.

Usage: python bench/push_to_deploy.py [--pushes N] [--template template.yaml]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.__main__ import run_scenario
from emulator.core import DEFAULT_TEMPLATE, Options
from emulator.output import Printer

DEMO_APP = Path(__file__).resolve().parent.parent / "emulator" / "scenarios" / "demo_app"


def scenario_text(pushes: int) -> str:
    steps = [
        "  - title: warm-up push\n"
        "    commit:\n"
        "      branch: main\n"
        "      message: warm-up\n"
        "      files:\n"
        f"        Dockerfile: {{from: {DEMO_APP / 'Dockerfile'}}}\n"
        f"        app/server.py: {{from: {DEMO_APP / 'app' / 'server.py'}}}\n"
    ]
    for index in range(pushes):
        steps.append(
            f"  - title: measured push {index + 1}\n"
            "    commit:\n"
            "      branch: main\n"
            f"      message: change {index + 1}\n"
            "      files:\n"
            f'        app/version.py: "VERSION = {index + 1}\\n"\n'
        )
    return "name: push-to-deploy\nsteps:\n" + "".join(steps)


def _deployments_created(report: dict[str, Any]) -> list[float]:
    return sorted(
        write["at_seconds"]
        for entry in report["timeline"]
        if entry["kind"] == "delivery"
        for write in entry["writes"]
        if write["operation"] == "CreateDeployment" and 200 <= write["status"] < 300
    )


def measure(report: dict[str, Any], intervals: list[tuple[str, float, float]]) -> list[dict[str, float]]:
    """One measurement per measured push: push event -> deployment created, with build time taken out."""
    pushes = sorted(
        entry["at_seconds"]
        for entry in report["timeline"]
        if entry["kind"] == "event" and entry["event"]["detail-type"] == "CodeCommit Repository State Change"
    )[1:]
    created = _deployments_created(report)
    results = []
    for index, pushed in enumerate(pushes):
        window_end = pushes[index + 1] if index + 1 < len(pushes) else float("inf")
        deployed = next((moment for moment in created if pushed <= moment < window_end), None)
        if deployed is None:
            continue
        build_seconds = sum(
            min(end, deployed) - max(start, pushed)
            for kind, start, end in intervals
            if kind == "build" and end > pushed and start < deployed
        )
        invocations = [
            entry
            for entry in report["timeline"]
            if entry["kind"] == "delivery" and pushed <= entry["at_seconds"] < deployed
        ]
        results.append(
            {
                "invocations": len(invocations),
                "aws_calls": sum(len(entry["writes"]) + entry["reads"] for entry in invocations),
                "total_ms": (deployed - pushed) * 1000,
                "build_ms": build_seconds * 1000,
                "pipeline_ms": (deployed - pushed - build_seconds) * 1000,
            }
        )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pushes", type=int, default=5, help="measured pushes after the warm-up (default 5)")
    parser.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE)
    arguments = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as directory:
        scenario = Path(directory) / "push-to-deploy.yaml"
        scenario.write_text(scenario_text(arguments.pushes), encoding="utf-8")
        options = Options(template=arguments.template, printer=Printer(enabled=False))
        report = run_scenario(scenario, options)
    intervals = [(str(kind), float(start), float(end)) for kind, start, end in report["timing"]["task_intervals"]]
    results = measure(report, intervals)

    print(f"push -> deployment created, on the emulator ({arguments.pushes} pushes after 1 warm-up push)")
    if not results:
        print("  not measured: no deployment was created (does template.yaml wire a deploy function yet?)")
        return 0
    pipeline = [item["pipeline_ms"] for item in results]
    builds = [item["build_ms"] for item in results]
    print(f"  measured pushes that deployed: {len(results)} of {arguments.pushes}")
    print(
        f"  pipeline time (build excluded): median {statistics.median(pipeline):.0f} ms, "
        f"min {min(pipeline):.0f} ms, max {max(pipeline):.0f} ms"
    )
    print(f"  emulated build time taken out: median {statistics.median(builds):.0f} ms")
    invocations = statistics.median(item["invocations"] for item in results)
    calls = statistics.median(item["aws_calls"] for item in results)
    print(
        f"  on the way: median {invocations:.0f} function invocations and {calls:.0f} AWS calls, "
        f"{statistics.median(pipeline) / max(calls, 1):.1f} ms per AWS call"
    )
    timing = report["timing"]
    print(f"  emulator set-up: {timing['setup_seconds']:.1f} s, whole run {timing['wall_seconds']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
