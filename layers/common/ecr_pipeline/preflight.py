"""Preflight: check a pipeline.yaml against an account before deploying the stack, with read-only calls.

    python -m ecr_pipeline.preflight --config pipeline.yaml --stack-prefix ecr-pipeline/ --slack-secret NAME

One line per finding, naming the pipeline.yaml field it is about; exit 0 (no findings), 1 (findings)
or 2 (pipeline.yaml invalid). A call the caller may not make is a finding naming the permission.
Not imported by the functions: a tool for ops, shipped beside the configuration it checks.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from ecr_pipeline.config import ImageConfig, PipelineConfig, RepositoryConfig, load_config
from ecr_pipeline.config_fields import ConfigError
from ecr_pipeline.preflight_checks import (
    Account,
    Check,
    Clients,
    Finding,
    Refused,
    TargetChecks,
    ecr_filter_matches,
    read,
)

# The scan frequencies that scan a pushed image without anyone asking (MANUAL does not).
AUTOMATIC_SCANS = {"SCAN_ON_PUSH", "CONTINUOUS_SCAN"}
# The stack parameter that names the Slack webhook's secret (template.yaml).
SLACK_PARAMETER = "SlackWebhookSecretArn"


def run_checks(checks: Iterable[Check]) -> list[Finding]:
    """Every check's findings; a refused or failed read is a finding of its own, and the other checks still run."""
    found: list[Finding] = []
    for field, check in checks:
        try:
            found.extend(check())
        except Refused as refused:
            found.append(Finding(field, f"cannot be checked: access denied for {refused.permission}"))
        except ClientError as error:
            reason = error.response.get("Error", {})
            found.append(Finding(field, f"cannot be checked: {reason.get('Code')}: {reason.get('Message')}"))
    return found


class Preflight:
    """The checks of one configuration, each reading what it needs once (the registry's scanning, a role)."""

    def __init__(self, config: PipelineConfig, clients: Clients, region: str, slack_secret: str | None) -> None:
        self._config = config
        self._account = Account(clients)
        self._region = region
        self._slack_secret = slack_secret

    def findings(self) -> list[Finding]:
        return run_checks(self._checks())

    def _checks(self) -> Iterator[Check]:
        for repository in self._config.repositories.values():
            path = f"repositories.{repository.name}"
            yield path, partial(self._codecommit, repository, path)
            for image in repository.images:
                image_path = f"{path}.images.{image.name}"
                yield image_path, partial(self._ecr, image, image_path)
                for index, target in enumerate(image.deploy):
                    yield from TargetChecks(self._account, target, f"{image_path}.deploy[{index}]").checks()
            if repository.notify.get("slack"):
                field = f"{path}.notify.slack"
                yield field, partial(self._slack, field)
        yield "region", self._arm_builds

    def _codecommit(self, repository: RepositoryConfig, path: str) -> Iterator[Finding]:
        found = read(
            self._account.client("codecommit"),
            "GetRepository",
            "RepositoryDoesNotExistException",
            repositoryName=repository.name,
        )
        if found is None:
            yield Finding(path, f"CodeCommit repository {repository.name} does not exist")

    def _ecr(self, image: ImageConfig, path: str) -> Iterator[Finding]:
        ecr = self._account.client("ecr")
        name = image.ecr_repository
        found = read(ecr, "DescribeRepositories", "RepositoryNotFoundException", repositoryNames=[name])
        if found is None:
            yield Finding(path, f"ECR repository {name} does not exist")
            return
        scan_on_push = bool(found["repositories"][0].get("imageScanningConfiguration", {}).get("scanOnPush"))
        registry = self._account.cached(("registry",), lambda: read(ecr, "GetRegistryScanningConfiguration"))
        yield from scanning_findings(image.scan.scanning, name, scan_on_push, registry, f"{path}.scan.scanning")

    def _slack(self, field: str) -> Iterator[Finding]:
        secret = self._slack_secret
        if not secret:
            yield Finding(field, "routes to slack, but no webhook secret was given (--slack-secret or --stack)")
            return
        answer = self._account.cached(
            ("secret", secret),
            lambda: read(
                self._account.client("secretsmanager"), "DescribeSecret", "ResourceNotFoundException", SecretId=secret
            ),
        )
        if answer is None:
            yield Finding(field, f"Slack webhook secret {secret} does not exist")
        elif answer.get("DeletedDate"):
            yield Finding(field, f"Slack webhook secret {secret} is scheduled for deletion")

    def _arm_builds(self) -> Iterator[Finding]:
        answer = read(self._account.client("codebuild"), "ListCuratedEnvironmentImages") or {}
        images = [
            str(image.get("name", ""))
            for platform in answer.get("platforms") or []
            for language in platform.get("languages") or []
            for image in language.get("images") or []
        ]
        if not any("aarch64" in image for image in images):
            yield Finding("region", f"CodeBuild in {self._region} offers no ARM (aarch64) image for the arm64 builds")


def scanning_findings(
    wanted: str, repository: str, scan_on_push: bool, registry: dict[str, Any] | None, field: str
) -> Iterator[Finding]:
    """Whether ECR scans `repository` the way pipeline.yaml's scan.scanning (`wanted`) expects."""
    scanning = (registry or {}).get("scanningConfiguration") or {}
    scan_type = str(scanning.get("scanType") or "BASIC")
    matched = any(
        rule.get("scanFrequency") in AUTOMATIC_SCANS
        and any(
            ecr_filter_matches(str(item.get("filter", "")), repository) for item in rule.get("repositoryFilters", [])
        )
        for rule in scanning.get("rules") or []
    )
    if wanted == "basic" and scan_type != "BASIC":
        yield Finding(field, f"basic, but the registry's scan type is {scan_type}, so ECR sends no basic scans")
    elif wanted == "basic" and not (scan_on_push or matched):
        yield Finding(
            field,
            f"basic, but ECR repository {repository} has scanOnPush false and no registry scan-on-push rule matches it",
        )
    elif wanted == "enhanced" and scan_type != "ENHANCED":
        yield Finding(field, f"enhanced, but the registry's scan type is {scan_type}, not ENHANCED")
    elif wanted == "enhanced" and not matched:
        yield Finding(
            field, f"enhanced, but no rule of the registry's ENHANCED scanning matches ECR repository {repository}"
        )


def stack_slack_secret(cloudformation: Any, stack: str) -> str | None:
    """The SlackWebhookSecretArn parameter a deployed stack was given, or None."""
    answer = read(cloudformation, "DescribeStacks", "ValidationError", StackName=stack) or {}
    for found in answer.get("Stacks") or []:
        for parameter in found.get("Parameters") or []:
            if parameter.get("ParameterKey") == SLACK_PARAMETER and parameter.get("ParameterValue"):
                return str(parameter["ParameterValue"])
    return None


def check(config: PipelineConfig, clients: Clients, region: str, slack_secret: str | None = None) -> list[Finding]:
    return Preflight(config, clients, region, slack_secret).findings()


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m ecr_pipeline.preflight", description="Check pipeline.yaml against an account (read-only)."
    )
    parser.add_argument("--config", default="pipeline.yaml", help="the pipeline.yaml to check (./pipeline.yaml)")
    parser.add_argument(
        "--stack-prefix", default="ecr-pipeline/", help="the ECR repositories' prefix: '<stack name>/' (ecr-pipeline/)"
    )
    parser.add_argument("--region", help="the region (default: the environment's)")
    parser.add_argument("--slack-secret", help="the Slack webhook secret's name or ARN")
    parser.add_argument("--stack", help=f"read the Slack secret from this deployed stack's {SLACK_PARAMETER}")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _arguments(argv)
    try:
        config = load_config(arguments.config, arguments.stack_prefix)
    except ConfigError as error:
        print(f"pipeline.yaml is invalid: {error}", file=sys.stderr)
        return 2
    import boto3  # only here: the functions never import this module, and the checks take injected clients

    session = boto3.session.Session(region_name=arguments.region)
    region = session.region_name
    if not region:
        print("no region: give --region or set AWS_REGION", file=sys.stderr)
        return 2
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in clients:
            clients[service] = session.client(service)
        return clients[service]

    findings: list[Finding] = []
    secret = arguments.slack_secret
    if not secret and arguments.stack:
        try:
            secret = stack_slack_secret(client("cloudformation"), arguments.stack)
        except Refused as refused:
            findings.append(Finding("--stack", f"cannot be read: access denied for {refused.permission}"))
        except ClientError as error:
            findings.append(Finding("--stack", f"cannot be read: {error.response.get('Error', {}).get('Code')}"))
    findings += check(config, client, region, secret)
    if arguments.json:
        print(json.dumps({"findings": [finding._asdict() for finding in findings]}, indent=1))
    else:
        print("\n".join(str(finding) for finding in findings) or "no findings")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
