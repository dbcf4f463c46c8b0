"""The run's report: the timeline of deliveries and the final state, as JSON and as a summary.

The JSON format is documented in docs/emulator.md ("The report").
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from botocore.exceptions import ClientError

from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.config import DeployTarget
from ecr_pipeline.core.naming import commit_of_build_tag
from emulator.core import Emulator
from emulator.push_messages import messages_by_push

REPORT_FORMAT = 1


def _all_images(emulator: Emulator, repository: str) -> list[dict[str, Any]]:
    ecr = emulator.aws("ecr", direct=True)
    images: list[dict[str, Any]] = []
    for page in ecr.get_paginator("describe_images").paginate(repositoryName=repository):
        images.extend(page.get("imageDetails", []))
    return images


def _commit_tag(tags: list[str]) -> str | None:
    """The commit of the image's build tag (`sha-<commit>`), if it has one."""
    return next((commit for commit in map(commit_of_build_tag, tags) if commit), None)


def images_state(emulator: Emulator) -> dict[str, list[dict[str, Any]]]:
    """Each repository's images in push order (the first push of their commit the ledger recorded, then
    ECR's push time), with their tags, their scan and the verdict the ledger holds."""
    assert emulator.ecr_events is not None
    scans = {(scan["repository"], scan["digest"]): scan for scan in emulator.ecr_events.scans}
    ledger = _ledger(emulator)
    state: dict[str, list[dict[str, Any]]] = {}
    for repository in sorted(emulator.ecr_events.scanning):
        image_config = emulator.config.image(repository)
        entries: list[tuple[tuple[str, str, str], dict[str, Any]]] = []
        for image in _all_images(emulator, repository):
            tags = sorted(image.get("imageTags", []))
            scan = scans.get((repository, image["imageDigest"]))
            commit = _commit_tag(tags)
            recorded = ledger.get_image(repository, image["imageDigest"])
            pushes = (
                ledger.pushes_of_commit(image_config.codecommit_repository, commit) if commit and image_config else []
            )
            pushed = min((push.push_time for push in pushes), default=None)
            entry = {
                "digest": image["imageDigest"],
                "commit": commit,
                "tags": tags,
                "scan": None if scan is None else {"status": scan["status"], "counts": scan["counts"]},
                "verdict": recorded.verdict if recorded else None,
                "pushed": pushed,
            }
            entries.append(((pushed or "~", str(image.get("imagePushedAt", "")), image["imageDigest"]), entry))
        state[repository] = [entry for _key, entry in sorted(entries, key=lambda pair: pair[0])]
    return state


def _ledger(emulator: Emulator) -> Ledger:
    assert emulator.template is not None
    table = emulator.template.resolver.names.name("LedgerTable", emulator.template.resolver)
    return Ledger(table, emulator.aws("dynamodb", direct=True))


def builds_state(emulator: Emulator) -> list[dict[str, Any]]:
    assert emulator.codebuild is not None
    return [
        {
            "id": build.id,
            "number": build.number,
            "status": build.status,
            "reason": build.reason,
            "commit": build.resolved_commit or build.source_version,
            "source_branch": build.variable("SOURCE_BRANCH"),
            "image_tag": build.variable("IMAGE_TAG"),
            "ecr_repository_uri": build.variable("ECR_REPOSITORY_URI"),
            "image_digest": build.image_digest,
            **(
                {"log": build.log_path, "seconds": round(build.ended - build.started, 2)}
                if build.log_path is not None and build.ended is not None
                else {}
            ),
        }
        for build in emulator.codebuild.builds.values()
    ]


def _serving(emulator: Emulator, service: str, by_digest: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Docker mode: what the environment's endpoint answers now, and the commit of the image behind it."""
    if emulator.docker is None:
        return None
    environment = emulator.ecs_tasks.environment(service) if emulator.ecs_tasks is not None else None
    if environment is None or environment.current is None:
        return {"endpoint": None, "answer": None, "commit": None, "digest": None}
    digest = environment.current.image.rsplit("@", 1)[-1] if "@" in environment.current.image else None
    image = by_digest.get(digest or "")
    return {
        "endpoint": environment.endpoint,
        "answer": environment.serving(),
        "commit": None if image is None else image["commit"],
        "digest": digest,
        "container": environment.current.container_id[:12],
    }


def environments_state(emulator: Emulator, images: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    assert emulator.codedeploy is not None
    ecs = emulator.aws("ecs", direct=True)
    by_digest = {image["digest"]: image for entries in images.values() for image in entries}
    by_tag = {
        (repository, tag): image for repository, entries in images.items() for image in entries for tag in image["tags"]
    }
    environments = []
    for repository in emulator.config.repositories.values():
        for image_config in repository.images:
            for target in image_config.deploy:
                service = ecs.describe_services(cluster=target.cluster, services=[target.service])["services"][0]
                definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
                container: dict[str, Any] = next(
                    (item for item in definition["containerDefinitions"] if item["name"] == target.container_name), {}
                )
                image_uri = str(container.get("image", ""))
                image = None
                if "@" in image_uri:
                    image = by_digest.get(image_uri.rsplit("@", 1)[1])
                elif ":" in image_uri.rsplit("/", 1)[-1]:
                    image = by_tag.get((image_config.ecr_repository, image_uri.rsplit(":", 1)[1]))
                deployments, refused = _deployments(emulator, target)
                for item in deployments:
                    item["image"] = _container_image(ecs, item["task_definition"], target.container_name)
                serving = _serving(emulator, f"{target.cluster}/{target.service}", by_digest)
                environments.append(
                    {
                        **({"serving": serving} if serving is not None else {}),
                        "environment": target.environment,
                        "ref": target.ref,
                        "cluster": target.cluster,
                        "service": target.service,
                        "task_definition": service["taskDefinition"],
                        "image": image_uri,
                        "commit": None if image is None else image["commit"],
                        "digest": None if image is None else image["digest"],
                        "strategy": target.strategy,
                        "deployments": deployments,
                        "deployments_refused": refused,
                        "ledger": _ledger_environment(emulator, image_config.ecr_repository, target.environment),
                    }
                )
    return environments


# A deployment's end, the same words for both strategies: CodeDeploy's statuses and ECS's.
_OUTCOMES = {
    "Succeeded": "Succeeded",
    "SUCCESSFUL": "Succeeded",
    "Failed": "Failed",
    "Stopped": "Failed",
    "STOPPED": "Failed",
    "ROLLBACK_SUCCESSFUL": "Failed",
    "ROLLBACK_FAILED": "Failed",
}


def _deployments(emulator: Emulator, target: DeployTarget) -> tuple[list[dict[str, Any]], int]:
    """The target's deployments (CodeDeploy's, or the ECS service's own), and how many times the busy
    target turned the pipeline's deployment away (a refused CreateDeployment; a lookup that met another's)."""
    assert emulator.codedeploy is not None and emulator.ecs_deployments is not None
    found: list[dict[str, Any]]
    if target.strategy == "ecs":
        key = (target.cluster, target.service)
        found = [
            {"id": item.arn, "status": item.status, "task_definition": item.task_definition, "caller": item.caller}
            for item in emulator.ecs_deployments.deployments.values()
            if (item.cluster, item.service) == key
        ]
        refused = emulator.ecs_deployments.turned_away.get(key, 0)
    else:
        group = (target.codedeploy_application, target.deployment_group)
        found = [
            {"id": item.id, "status": item.status, "task_definition": item.task_definition, "caller": item.caller}
            for item in emulator.codedeploy.deployments.values()
            if (item.application, item.group) == group
        ]
        refused = len(
            [item for item in emulator.codedeploy.rejected if (item["application"], item["deployment_group"]) == group]
        )
    for item in found:
        item["outcome"] = _OUTCOMES.get(str(item["status"]), "In progress")
    return found, refused


def _ledger_environment(emulator: Emulator, ecr_repository: str, environment: str) -> dict[str, Any]:
    """What the ledger says of the environment: its newest candidate (and how its deployment ended) and
    what it serves (the candidate of its last successful deployment)."""
    ledger = _ledger(emulator)
    candidate = ledger.get_environment(ecr_repository, environment)
    serving = ledger.get_serving(ecr_repository, environment)
    history = sorted(ledger.deployment_history(ecr_repository, environment), key=lambda record: str(record.ended_at))
    return {
        "candidate": candidate._asdict() if candidate else None,
        "serving": serving._asdict() if serving else None,
        "history": [record._asdict() for record in history],
    }


def _container_image(ecs: Any, task_definition: str | None, container_name: str) -> str | None:
    if not task_definition:
        return None
    try:
        definition = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    except ClientError:
        return None
    for container in definition["containerDefinitions"]:
        if container["name"] == container_name:
            return str(container.get("image", ""))
    return None


def _drain(emulator: Emulator, queue_url: str) -> list[dict[str, Any]]:
    sqs = emulator.aws("sqs", direct=True)
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=300).get(
            "Messages", []
        )
        if not messages:
            return bodies
        for message in messages:
            try:
                bodies.append(json.loads(message["Body"]))
            except ValueError:
                bodies.append({"Message": message["Body"]})


def sns_messages(emulator: Emulator) -> list[dict[str, Any]]:
    return [
        {
            "topic": item.get("TopicArn"),
            "subject": item.get("Subject"),
            "message": item.get("Message"),
            "attributes": {key: value.get("Value") for key, value in (item.get("MessageAttributes") or {}).items()},
        }
        for item in _drain(emulator, emulator.inbox_url)
    ]


def slack_messages(emulator: Emulator) -> list[dict[str, Any]]:
    messages = []
    for message in emulator.slack.messages:
        header = next(
            (
                block.get("text", {}).get("text")
                for block in message.payload.get("blocks") or []
                if block.get("type") == "header"
            ),
            None,
        )
        messages.append(
            {
                "accepted": message.accepted,
                "error": message.error,
                "text": message.payload.get("text"),
                "header": header,
                "blocks": len(message.payload.get("blocks") or []),
                "payload": message.payload,
                # webhook, or the Web API's chat.postMessage / chat.update with the message's place.
                "method": message.method,
                "channel": message.channel,
                "ts": message.ts,
                "thread_ts": message.thread_ts,
                "at": message.at,
            }
        )
    return messages


def failed_invocations(emulator: Emulator) -> list[dict[str, Any]]:
    sqs = emulator.aws("sqs", direct=True)
    failed = []
    for destination in sorted(set(emulator.failure_destinations.values())):
        if not destination.startswith("arn:aws:sqs:"):
            continue
        url = sqs.get_queue_url(QueueName=destination.rsplit(":", 1)[-1])["QueueUrl"]
        for record in _drain(emulator, url):
            failed.append(
                {
                    "queue": destination,
                    "function": str((record.get("requestContext") or {}).get("functionArn", "")),
                    "detail_type": (record.get("requestPayload") or {}).get("detail-type"),
                    "error": record.get("responsePayload"),
                }
            )
    return failed


def final_state(emulator: Emulator) -> dict[str, Any]:
    images = images_state(emulator)
    return {
        "images": images,
        "builds": builds_state(emulator),
        "environments": environments_state(emulator, images),
        "sns_messages": sns_messages(emulator),
        "slack_messages": slack_messages(emulator),
        "failed_invocations": failed_invocations(emulator),
    }


def build_report(emulator: Emulator, scenario: str, wall_seconds: float) -> dict[str, Any]:
    assert emulator.template is not None and emulator.functions is not None
    deliveries = [entry for entry in emulator.timeline if entry["kind"] == "delivery"]
    return {
        "format": REPORT_FORMAT,
        "scenario": scenario,
        "options": {
            "template": str(emulator.options.template),
            "config": str(emulator.options.config),
            "duplicate": emulator.options.duplicate,
            "shuffle_seed": emulator.options.shuffle_seed,
            "permissions": emulator.options.permissions,
        },
        "timing": {
            "setup_seconds": round(emulator.setup_seconds, 3),
            "wall_seconds": round(wall_seconds, 3),
            "task_intervals": [list(interval) for interval in emulator.task_intervals],
            "emulated_seconds": {
                kind: round(
                    sum(end - start for task_kind, start, end in emulator.task_intervals if task_kind == kind), 3
                )
                for kind in sorted({interval[0] for interval in emulator.task_intervals})
            },
        },
        "functions": {
            logical_id: {
                "name": spec.name,
                "rules": [{"name": rule.name, "bus": rule.bus, "pattern": rule.pattern} for rule in spec.rules],
                "cold_starts": emulator.functions.workers[logical_id].cold_starts,
                "init_error": emulator.functions.workers[logical_id].init_error,
            }
            for logical_id, spec in emulator.template.functions.items()
        },
        "outcomes": dict(Counter(f"{entry['function']}:{entry['outcome']}" for entry in deliveries)),
        "timeline": emulator.timeline,
        "emulator_faults": list(emulator.front.faults) if emulator.front is not None else [],
        "permission_gaps": emulator.permission_gaps,
        "permissions_unchecked": sorted(emulator.unchecked_policies),
        "final_state": final_state(emulator),
    }


def _scan_words(scan: dict[str, Any] | None) -> str:
    """A scan as the summary says it: its findings, or that it failed (a failed scan has no findings to count)."""
    if scan is None:
        return "none"
    if scan["status"] != "COMPLETE":
        return f"{scan['status']} (no result: the image could not be scanned)"
    counts = ", ".join(f"{key} {value}" for key, value in (scan.get("counts") or {}).items())
    return f"COMPLETE ({counts or 'clean'})"


def print_summary(emulator: Emulator, report: dict[str, Any], report_path: str | None) -> None:
    printer = emulator.printer
    state = report["final_state"]
    printer.line()
    printer.line("=" * 72)
    printer.line(f"Summary of {report['scenario']}")
    printer.line("Images (in push order)")
    built_from = {
        build["commit"]: build["source_branch"] for build in state["builds"] if build["status"] == "SUCCEEDED"
    }
    for repository, images in state["images"].items():
        for image in images:
            others = [tag for tag in image["tags"] if commit_of_build_tag(tag) is None]
            source = built_from.get(image["commit"], "?")
            printer.line(
                f"  {repository}:{(image['commit'] or image['digest'])[:12]} (built from {source})"
                f"  {image['verdict'] or 'no verdict'}"
                f"  tags: {', '.join(others) or '(build tag only)'}"
                f"  scan: {_scan_words(image['scan'])}"
            )
    printer.line("Builds")
    statuses = Counter(build["status"] for build in state["builds"])
    printer.line("  " + (", ".join(f"{count} {status}" for status, count in sorted(statuses.items())) or "none"))
    printer.line("Environments")
    for environment in state["environments"]:
        commit = (environment["commit"] or "")[:12] or environment["image"]
        done = Counter(item["status"] for item in environment["deployments"])
        printer.line(
            f"  {environment['environment']} ({environment['service']}): {commit}"
            f"  deployments: {', '.join(f'{n} {s}' for s, n in done.items()) or 'none'}"
        )
        serving = environment.get("serving")
        if serving is not None:
            printer.line(
                f"    serving on {serving['endpoint'] or '(nothing)'}: {serving['answer']!r}"
                f" (commit {(serving['commit'] or '?')[:12]}); curl it while --keep-running holds the emulator up"
            )
    printer.line("Messages")
    printer.line(f"  SNS: {len(state['sns_messages'])}")
    accepted = [message for message in state["slack_messages"] if message["accepted"]]
    printer.line(f"  Slack: {len(accepted)} accepted, {len(state['slack_messages']) - len(accepted)} refused")
    # Grouped by the push they tell of, in push order (emulator/push_messages.py).
    for group in messages_by_push(report["timeline"], state["sns_messages"], state["slack_messages"]):
        printer.line(f"  {group['title']}")
        for subject in group["sns"]:
            printer.line(f"    SNS   - {subject}")
        for text, count in Counter(group["slack"]).items():
            printer.line(f"    Slack - {text}" + (f"  (x{count})" if count > 1 else ""))
    if state["failed_invocations"]:
        printer.line(f"Failed invocations (dead-letter): {len(state['failed_invocations'])}")
    if report.get("permission_gaps"):
        handling = "let through" if emulator.options.permissions == "report" else "refused"
        printer.line(f"IAM: {len(report['permission_gaps'])} call(s) the template's policies do not allow ({handling})")
        for gap in report["permission_gaps"]:
            printer.line(f"  {gap['function']}: {gap['action']} on {gap['resource'] or '(any resource)'}")
    if report.get("emulator_faults"):
        printer.line(f"Emulator faults: {len(report['emulator_faults'])} (see the report's emulator_faults)")
    if report.get("checks"):
        failed = [check for check in report["checks"] if not check["passed"]]
        printer.line(f"Checks: {len(report['checks']) - len(failed)} of {len(report['checks'])} expectations met")
        for check in report["checks"]:
            mark = "ok  " if check["passed"] else "FAIL"
            detail = f"  ({check['detail']})" if check["detail"] and not check["passed"] else ""
            where = f"step {check['step']}" if check["step"] else "run"
            printer.line(f"  {mark} {where}: {check['expectation']}{detail}")
    outcomes = Counter(entry["outcome"] for entry in report["timeline"] if entry["kind"] == "delivery")
    printer.line("Deliveries: " + ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items())))
    printer.line(
        f"Wall time {report['timing']['wall_seconds']:.1f} s (set-up {report['timing']['setup_seconds']:.1f} s)"
    )
    if emulator.options.work_dir is not None:
        printer.line(f"Git repositories and function logs kept in {emulator.options.work_dir}")
    if report_path:
        printer.line(f"Report written to {report_path}")
