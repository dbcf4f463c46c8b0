"""Delivery metrics from the ledger, read-only: `python -m ecr_pipeline.status --metrics` (`make status`).

    python -m ecr_pipeline.status --metrics --ledger-table TABLE [--config pipeline.yaml]
        [--stack-prefix <stack name>/] [--since 30d] [--json]

For each deploy target of pipeline.yaml: its environment's deployments that ended in the window,
deployment frequency, lead time from push to deployed (median, p90), change failure rate and time
to restore, from the ledger's deployment history; for each source repository: builds started per
push and the builds saved by path filters, supersede and the quiet window's coalescing; for each
image: the images the scan gate blocked and the CVEs that blocked them (ecr_pipeline.delivery_metrics).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from ecr_pipeline.config import ConfigError, load_config
from ecr_pipeline.delivery_metrics import (
    BlockedImages,
    BuildEconomy,
    EnvironmentMetrics,
    blocked_by_cves,
    build_economy,
    environment_metrics,
)

_DURATION = re.compile(r"([0-9]+)([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def window(since: str) -> dt.timedelta:
    """`30d`, `12h` or `90m` as a duration; ValueError naming the option otherwise."""
    match = _DURATION.fullmatch(since.strip())
    if not match:
        raise ValueError(f"--since: must be a number of days, hours or minutes (30d, 12h, 90m), got {since!r}")
    return dt.timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    minutes = seconds / 60
    return f"{minutes:.0f}m" if abs(minutes) < 120 else f"{minutes / 60:.1f}h"


def line(target: str, metrics: EnvironmentMetrics) -> str:
    rate = "-" if metrics.change_failure_rate is None else f"{metrics.change_failure_rate:.0%}"
    return (
        f"{metrics.environment} ({target}): {metrics.ended} deployment(s) ended"
        f" ({metrics.succeeded} succeeded, {metrics.failed} failed or rolled back), {metrics.per_day:.2f}/day;"
        f" lead time median {_duration(metrics.lead_time_median_seconds)}"
        f" p90 {_duration(metrics.lead_time_p90_seconds)}; change failure rate {rate};"
        f" time to restore {_duration(metrics.time_to_restore_median_seconds)}"
    )


def economy_line(repository: str, economy: BuildEconomy) -> str:
    per_push = "-" if economy.builds_per_push is None else f"{economy.builds_per_push:.2f}"
    return (
        f"{repository}: {economy.pushes} push(es), {economy.builds_started} build(s) started ({per_push} per push);"
        f" saved: {economy.saved_by_filter} by path filters, {economy.saved_by_supersede} by supersede,"
        f" {economy.saved_by_coalescing} by coalescing; {economy.reused} promoted without a build,"
        f" {economy.waiting} waiting for a quiet window"
    )


def blocked_line(ecr_repository: str, blocked: BlockedImages) -> str:
    cves = ", ".join(f"{cve} ({count})" for cve, count in blocked.cves.items()) or "none"
    return f"{ecr_repository}: {len(blocked.blocked)} of {blocked.judged} image(s) blocked; CVEs that blocked: {cves}"


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ecr_pipeline.status", description=__doc__.split("\n")[0])
    parser.add_argument("--metrics", action="store_true", required=True, help="print the delivery metrics")
    parser.add_argument("--ledger-table", required=True, help="the stack's ledger table (output LedgerTableName)")
    parser.add_argument("--config", default="pipeline.yaml", help="the pipeline.yaml the stack was made from")
    parser.add_argument("--stack-prefix", default="ecr-pipeline/", help="'<stack name>/': the ECR repositories' prefix")
    parser.add_argument("--since", default="30d", help="the window: 30d (default), 12h, 90m")
    parser.add_argument("--region", help="the region (default: the environment's)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _arguments(argv)
    try:
        config = load_config(arguments.config, arguments.stack_prefix)
        length = window(arguments.since)
    except (ConfigError, ValueError) as error:
        print(f"status: {error}", file=sys.stderr)
        return 2
    import boto3  # only here: no function of the layer imports this module

    from ecr_pipeline.adapters.ledger import Ledger

    ledger = Ledger(arguments.ledger_table, boto3.session.Session(region_name=arguments.region).client("dynamodb"))
    until = dt.datetime.now(dt.UTC)
    since = until - length
    found: list[dict[str, Any]] = []
    for image in config.images():
        for target in image.deploy:
            history = ledger.deployment_history(image.ecr_repository, target.environment)
            metrics = environment_metrics(target.environment, history, since, until)
            found.append({"target": f"{target.cluster}/{target.service}", "metrics": metrics})
    # The ledger's sort keys start with ISO times: the window's start as a prefix bounds each Query. A
    # push or verdict stamped after now (an event source's clock ahead of this one's) still counts.
    start = since.strftime("%Y-%m-%dT%H:%M:%S")
    open_end = dt.datetime.max.replace(tzinfo=dt.UTC)
    economies = {
        name: build_economy(ledger.build_decisions(name, start), since, open_end) for name in config.repositories
    }
    blocked = {
        image.ecr_repository: blocked_by_cves(ledger.verdict_history(image.ecr_repository, start), since, open_end)
        for image in config.images()
    }
    if arguments.json:
        document: dict[str, Any] = {"since": since.isoformat(), "until": until.isoformat()}
        document["environments"] = [{"target": item["target"], **item["metrics"]._asdict()} for item in found]
        document["build_economy"] = [{"repository": name, **economy._asdict()} for name, economy in economies.items()]
        document["blocked_images"] = [
            {"ecr_repository": name, "judged": images.judged, "blocked": list(images.blocked), "cves": images.cves}
            for name, images in blocked.items()
        ]
        print(json.dumps(document, indent=1))
    else:
        print(f"Delivery metrics, {arguments.since} to now:")
        print("\n".join(line(item["target"], item["metrics"]) for item in found) or "no deploy targets")
        print("Build economy:")
        print("\n".join(economy_line(name, economy) for name, economy in economies.items()) or "no repositories")
        print("Blocked images:")
        print("\n".join(blocked_line(name, images) for name, images in blocked.items()) or "no images")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
