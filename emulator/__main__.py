"""`python -m emulator run SCENARIO.yaml [options]` and `python -m emulator demo`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ecr_pipeline.config import ConfigError
from emulator.core import DEFAULT_CONFIG, DEFAULT_TEMPLATE, REPO_ROOT, Emulator, Options
from emulator.docker_engine import EngineError
from emulator.operator_role import operator_shell, story_options
from emulator.output import Printer
from emulator.report import build_report, print_summary
from emulator.scenario import ScenarioError, ScenarioRunner, load_scenario
from emulator.template import TemplateError, check_parameter_overrides

DEMO_SCENARIO = Path(__file__).resolve().parent / "scenarios" / "demo.yaml"
DEMO_REPORT = REPO_ROOT / "reports" / "demo-report.json"


def _keep_running(emulator: Emulator) -> None:
    """Hold the emulator (its endpoints, containers and registry) up until Ctrl-C."""
    print("The emulator keeps running; press Ctrl-C to stop it.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping", flush=True)


def tell_last_push(emulator: Emulator, report: dict[str, Any]) -> None:
    """The demo's last word: the story of its last push, told by `ecr-pipeline status` (read-only, as an
    operator would run it) against the still-running emulator."""
    from ecr_pipeline.cli import main as ecr_pipeline

    steps = [entry for entry in report["timeline"] if entry["kind"] == "step" and entry.get("commit")]
    if not steps:
        return
    commit = str(steps[-1]["commit"])
    print(f"\nThe story of the last push, by `ecr-pipeline status --commit {commit}`:", flush=True)
    with operator_shell(emulator):
        ecr_pipeline(["status", "--commit", commit, *story_options(emulator)])
    sys.stdout.flush()


def run_scenario(
    scenario_path: Path,
    options: Options,
    report_path: Path | None = None,
    keep_running: bool = False,
    while_running: Callable[[Emulator, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run a scenario from start to finish and return its report (also written to `report_path`).

    The template's parameters are the scenario's `parameters`, then the options' (the command line wins).
    `while_running` sees the emulator and the report before the emulator stops (tests look at docker mode's
    registry and containers there)."""
    started = time.monotonic()
    scenario = load_scenario(scenario_path)
    parameters = check_parameter_overrides(options.template, {**scenario.parameters, **options.parameters})
    options.printer.line(f"Scenario {scenario.name}: {scenario.description}".rstrip(": "))
    builds = "docker" if scenario.builds == "docker" else options.builds
    base_images = tuple(dict.fromkeys((*options.base_images, *scenario.base_images)))
    run_options = dataclasses.replace(options, parameters=parameters, builds=builds, base_images=base_images)
    with Emulator(run_options) as emulator:
        runner = ScenarioRunner(emulator, scenario)
        runner.run()
        report = build_report(emulator, scenario.name, time.monotonic() - started)
        report["options"]["parameters"] = parameters
        report["checks"] = [check.as_dict() for check in runner.check(report)]
        if report_path is not None:
            report_path.parent.mkdir(parents=True, exist_ok=True)
            report_path.write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        print_summary(emulator, report, str(report_path) if report_path else None)
        if while_running is not None:
            while_running(emulator, report)
        if keep_running:
            _keep_running(emulator)
    return report


def _parameter(text: str) -> tuple[str, str]:
    name, equals, value = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not Key=Value")
    return name.strip(), value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulator", description="Run the pipeline on the embedded AWS stand-in."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a scenario file")
    run.add_argument("scenario", type=Path, help="the scenario YAML file (docs/emulator.md describes its steps)")
    run.add_argument(
        "--config", type=Path, metavar="PIPELINE_YAML", default=DEFAULT_CONFIG, help="pipeline.yaml to use"
    )
    run.add_argument("--template", type=Path, metavar="TEMPLATE_YAML", default=DEFAULT_TEMPLATE, help="the wiring")
    run.add_argument("--duplicate", action="store_true", help="deliver every event twice")
    run.add_argument("--shuffle", type=int, metavar="SEED", help="deliver pending work in a seeded random order")
    run.add_argument("--report", type=Path, metavar="PATH", help="write the JSON report here")
    run.add_argument("--quiet", action="store_true", help="print deliveries, not every event")
    run.add_argument(
        "--permissions",
        choices=("enforce", "report"),
        default="enforce",
        help="enforce (default): refuse a call the template's policies do not allow, as AWS does;"
        " report: let it through and only report it (for exploring). Either way a gap fails the run",
    )
    run.add_argument(
        "--parameter",
        type=_parameter,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter's value for the run (repeatable); wins over the scenario's `parameters`",
    )
    run.add_argument(
        "--work-dir",
        type=Path,
        metavar="PATH",
        help="keep the git repositories and the functions' logs here (default: a temporary directory)",
    )
    demo = commands.add_parser("demo", help="run the built-in demo scenario")
    demo.add_argument("--report", type=Path, metavar="PATH", default=DEMO_REPORT, help=f"default: {DEMO_REPORT}")
    for command in (run, demo):
        command.add_argument(
            "--builds",
            choices=("embedded", "docker"),
            default="embedded",
            help="embedded (default): builds push a made-up image, no Docker needed; docker: the buildspec runs"
            " against the emulator's own dockerd, ECR's registry is real, deployed images run (docs/emulator.md)",
        )
        command.add_argument(
            "--slack",
            choices=("webhook", "threads"),
            default="webhook",
            help="webhook (default): each message on its own; threads: a bot token, one Slack thread per push"
            " on the stand-in's Web API (chat.postMessage, chat.update)",
        )
        command.add_argument(
            "--keep-running",
            action="store_true",
            help="after the scenario, keep the emulator up (endpoints, containers) until Ctrl-C",
        )
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "demo":
        scenario, report = DEMO_SCENARIO, arguments.report
        options = Options(printer=Printer(events=False), builds=arguments.builds, slack=arguments.slack)
    else:
        scenario, report = arguments.scenario, arguments.report
        if arguments.work_dir is not None and arguments.work_dir.exists() and any(arguments.work_dir.iterdir()):
            print(f"error: --work-dir {arguments.work_dir} must be empty or not exist yet", file=sys.stderr)
            return 2
        options = Options(
            template=arguments.template,
            config=arguments.config,
            duplicate=arguments.duplicate,
            shuffle_seed=arguments.shuffle,
            work_dir=arguments.work_dir,
            printer=Printer(enabled=True, events=not arguments.quiet),
            permissions=arguments.permissions,
            parameters=dict(arguments.parameter),
            builds=arguments.builds,
            slack=arguments.slack,
        )
    try:
        told = tell_last_push if arguments.command == "demo" else None
        result = run_scenario(scenario, options, report, arguments.keep_running, while_running=told)
    except (ScenarioError, ConfigError, TemplateError, EngineError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 1 if any(not check["passed"] for check in result["checks"]) else 0


if __name__ == "__main__":
    sys.exit(main())
