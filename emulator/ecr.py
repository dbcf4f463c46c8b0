"""ECR's events for the emulator: image pushes and scan results.

Emulated: moto stores images but emits no events and does not scan on push. The front shows
this module every ECR call; it emits "ECR Image Action" PUSH for every put_image that stored a
tag (retags included, as AWS does) and DELETE for deleted images, then scans: for a repository
with scan-on-push a new image is scanned ("ECR Image Scan"), an enhanced repository reports
through Inspector ("Inspector2 Scan", repository named by its ARN), and a start_image_scan is
answered by a scan event too. The findings are the ones the scenario chose (none by default),
stored in moto through its /moto-api/static/ecr/scan-finding-results endpoint so that
describe_image_scan_findings returns them.
"""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ecr_pipeline.core.naming import commit_of_build_tag
from emulator.front import ApiCall
from emulator.moto_internals import forget_scan_findings
from emulator.template import ACCOUNT_ID, REGION

if TYPE_CHECKING:
    from emulator.runtime import Runtime

SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED")
# moto keys a stored result by the exact imageId of each describe call; one copy per way of asking.
_RESULT_COPIES = 4


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    package: str = "openssl"
    version: str = "3.0.7"
    fixed_in: str = ""
    description: str = ""

    @property
    def url(self) -> str:
        return f"https://nvd.nist.gov/vuln/detail/{self.id}"


@dataclass
class ScanResult:
    status: str = "COMPLETE"  # COMPLETE or FAILED
    findings: list[Finding] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for finding in self.findings:
            counts[finding.severity] = counts.get(finding.severity, 0) + 1
        return counts


class EcrEvents:
    def __init__(self, runtime: Runtime, scanning: dict[str, str]) -> None:
        self._runtime = runtime
        self.scanning = scanning  # ECR repository -> "basic" (scan on push), "enhanced" or "off"
        self.by_commit: dict[str, ScanResult] = {}
        # Images pushed by hand (a scenario's push_image) with no build tag: digest -> the commit they were made like.
        self.commit_of_digest: dict[str, str] = {}
        self.next_results: list[ScanResult] = []
        self._scanned: set[tuple[str, str]] = set()
        self.scans: list[dict[str, Any]] = []

    def observe(self, call: ApiCall) -> None:
        if call.service != "ecr" or not call.succeeded:
            return
        if call.operation == "PutImage":
            image = call.response.get("image") or {}
            repository = str(image.get("repositoryName") or call.params.get("repositoryName"))
            digest = str((image.get("imageId") or {}).get("imageDigest", ""))
            tag = (image.get("imageId") or {}).get("imageTag") or call.params.get("imageTag")
            self._push_event(repository, digest, tag)
            if (repository, digest) not in self._scanned and self.scanning.get(repository, "off") != "off":
                self._scanned.add((repository, digest))
                # The scan starts with the push: a start_image_scan now gets LimitExceededException, as on AWS.
                self._begin_scan(repository, digest)
                self._schedule_scan(repository, digest, str(tag or ""), self.scanning[repository])
        elif call.operation == "StartImageScan":
            repository = str(call.response.get("repositoryName") or call.params.get("repositoryName"))
            image_id = call.response.get("imageId") or {}
            self._scanned.add((repository, str(image_id.get("imageDigest"))))
            self._schedule_scan(
                repository, str(image_id.get("imageDigest")), str(image_id.get("imageTag") or ""), "basic"
            )
        elif call.operation == "BatchDeleteImage":
            repository = str(call.params.get("repositoryName"))
            for image_id in call.response.get("imageIds") or []:
                detail: dict[str, Any] = {
                    "result": "SUCCESS",
                    "repository-name": repository,
                    "image-digest": image_id.get("imageDigest"),
                    "action-type": "DELETE",
                }
                if image_id.get("imageTag"):
                    detail["image-tag"] = image_id["imageTag"]
                self._runtime.emit("aws.ecr", "ECR Image Action", detail, [])

    def _push_event(self, repository: str, digest: str, tag: str | None) -> None:
        detail: dict[str, Any] = {
            "result": "SUCCESS",
            "repository-name": repository,
            "image-digest": digest,
            "action-type": "PUSH",
        }
        if tag:
            detail["image-tag"] = tag
        self._runtime.emit("aws.ecr", "ECR Image Action", detail, [])

    def _begin_scan(self, repository: str, digest: str) -> None:
        ecr = self._runtime.aws("ecr", caller="ecr-scanner", direct=True)
        try:
            ecr.start_image_scan(repositoryName=repository, imageId={"imageDigest": digest})
        except ClientError as error:
            if error.response["Error"]["Code"] != "LimitExceededException":
                raise

    def _schedule_scan(self, repository: str, digest: str, tag: str, scanning: str) -> None:
        label = f"scan {repository}@{digest[7:19]} ({scanning})"
        self._runtime.schedule("scan", label, lambda: self._scan(repository, digest, tag, scanning))

    def result_for(self, commit: str) -> ScanResult:
        if commit in self.by_commit:
            return self.by_commit[commit]
        if self.next_results:
            return self.next_results.pop(0)
        return ScanResult()

    def _scan(self, repository: str, digest: str, tag: str, scanning: str) -> None:
        ecr = self._runtime.aws("ecr", caller="ecr-scanner", direct=True)
        tags = ecr.describe_images(repositoryName=repository, imageIds=[{"imageDigest": digest}])["imageDetails"][
            0
        ].get("imageTags", [])
        # The build tag (`sha-<commit>`) says which commit's findings the scenario chose.
        commit = next((found for found in map(commit_of_build_tag, [tag, *tags]) if found), None)
        commit = commit or self.commit_of_digest.get(digest, tag)
        result = self.result_for(commit)
        self._store_findings(repository, digest, tags, result, scanning)
        counts = result.counts()
        self.scans.append(
            {"repository": repository, "digest": digest, "tags": tags, "status": result.status, "counts": counts}
        )
        if scanning == "enhanced":
            detail: dict[str, Any] = {
                "scan-status": "INITIAL_SCAN_COMPLETE" if result.status == "COMPLETE" else "FAILED",
                "repository-name": f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{repository}",
                "finding-severity-counts": {**counts, "TOTAL": sum(counts.values())},
                "image-digest": digest,
                "image-tags": tags,
            }
            self._runtime.emit(
                "aws.inspector2",
                "Inspector2 Scan",
                detail,
                [f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{repository}/{digest}"],
            )
        else:
            detail = {
                "scan-status": result.status,
                "repository-name": repository,
                "finding-severity-counts": counts,
                "image-digest": digest,
                "image-tags": tags,
            }
            self._runtime.emit(
                "aws.ecr", "ECR Image Scan", detail, [f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{repository}"]
            )
        summary = ", ".join(f"{severity} {count}" for severity, count in counts.items()) or "no findings"
        self._runtime.record_task(f"scan of {repository}:{commit[:12]} {result.status}: {summary}", digest=digest)

    def store_findings(self, repository: str, digest: str, tags: list[str], result: ScanResult) -> None:
        """Findings that grew after the scan (Inspector found more; no new scan event): what ECR answers now."""
        forget_scan_findings(repository, digest)
        scanning = self.scanning.get(repository, "basic")
        self._store_findings(repository, digest, tags, result, "enhanced" if scanning == "enhanced" else "basic")

    def _store_findings(self, repository: str, digest: str, tags: list[str], result: ScanResult, scanning: str) -> None:
        now = datetime.now(UTC).timestamp()
        findings: dict[str, Any] = {
            "imageScanCompletedAt": now,
            "vulnerabilitySourceUpdatedAt": now,
            "findingSeverityCounts": result.counts(),
        }
        if scanning == "enhanced":
            findings["enhancedFindings"] = [_enhanced(finding, repository, digest, now) for finding in result.findings]
        else:
            findings["findings"] = [_basic(finding) for finding in result.findings]
        response = {
            "registryId": ACCOUNT_ID,
            "repositoryName": repository,
            "imageId": {"imageDigest": digest, **({"imageTag": tags[0]} if tags else {})},
            "imageScanStatus": {
                "status": result.status
                if scanning == "basic"
                else ("ACTIVE" if result.status == "COMPLETE" else "FAILED"),
                "description": "The scan was completed successfully."
                if result.status == "COMPLETE"
                else "UnsupportedImageError: The operating system and/or package manager are not supported.",
            },
            "imageScanFindings": findings,
        }
        body = json.dumps({"results": [response] * _RESULT_COPIES, "region": REGION, "account_id": ACCOUNT_ID}).encode()
        request = urllib.request.Request(
            f"{self._runtime.moto_url}/moto-api/static/ecr/scan-finding-results",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()


def _basic(finding: Finding) -> dict[str, Any]:
    attributes = [
        {"key": "package_version", "value": finding.version},
        {"key": "package_name", "value": finding.package},
        {"key": "CVSS2_VECTOR", "value": "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
        {"key": "CVSS2_SCORE", "value": "7.5"},
    ]
    return {
        "name": finding.id,
        "description": finding.description or f"{finding.id} in {finding.package} {finding.version}",
        "uri": finding.url,
        "severity": finding.severity,
        "attributes": attributes,
    }


def _enhanced(finding: Finding, repository: str, digest: str, now: float) -> dict[str, Any]:
    package: dict[str, Any] = {
        "name": finding.package,
        "version": finding.version,
        "packageManager": "OS",
        "arch": "aarch64",
        "epoch": 0,
        "release": "",
        "sourceLayerHash": digest,
    }
    if finding.fixed_in:
        package["fixedInVersion"] = finding.fixed_in
    return {
        "awsAccountId": ACCOUNT_ID,
        "description": finding.description or f"{finding.id} in {finding.package} {finding.version}",
        "findingArn": f"arn:aws:inspector2:{REGION}:{ACCOUNT_ID}:finding/{finding.id.lower()}-{digest[7:19]}",
        "firstObservedAt": now,
        "lastObservedAt": now,
        "updatedAt": now,
        "packageVulnerabilityDetails": {
            "vulnerabilityId": finding.id,
            "source": "NVD",
            "sourceUrl": finding.url,
            "vendorSeverity": finding.severity,
            "vulnerablePackages": [package],
            "referenceUrls": [finding.url],
        },
        "remediation": {
            "recommendation": {"text": f"Upgrade {finding.package} to {finding.fixed_in or 'a fixed version'}"}
        },
        "resources": [
            {
                "id": f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{repository}/{digest}",
                "type": "AWS_ECR_CONTAINER_IMAGE",
                "details": {"awsEcrContainerImage": {"repositoryName": repository, "imageHash": digest}},
            }
        ],
        "score": 9.8 if finding.severity == "CRITICAL" else 7.5,
        "severity": finding.severity,
        "status": "ACTIVE",
        "title": f"{finding.id} - {finding.package}",
        "type": "PACKAGE_VULNERABILITY",
    }
