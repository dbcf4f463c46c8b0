"""Amazon ECR: finding images by tag (start_build); registering, scanning and retagging (tag_image, scan_check)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from ecr_pipeline.adapters.clients import client

# What batch_get_image may return for an image: single-platform and multi-platform manifests.
MANIFEST_MEDIA_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
# How long a repository's scan-on-push answer is reused within one process. Ops may change the
# setting at any time (it is not the configuration's to decide), so it is asked again after this;
# a push within that window of a change is handled as before the change.
SCAN_SETTING_TTL_SECONDS = 300.0


class ImageNotFound(LookupError):
    """The image (repository@digest) is not in the registry."""


class TagConflict(RuntimeError):
    """An immutable tag is already on another image; retrying cannot change that."""

    def __init__(self, tag: str, holder_digest: str | None, message: str) -> None:
        super().__init__(f"tag {tag!r} is immutable and already on {holder_digest or 'another image'}: {message}")
        self.tag = tag
        self.holder_digest = holder_digest


class ImageManifest(NamedTuple):
    manifest: str
    media_type: str


class ScanFindings(NamedTuple):
    found: bool
    status: str
    description: str = ""
    has_result: bool = False
    severity_counts: Mapping[str, int] = MappingProxyType({})
    findings: tuple[dict[str, Any], ...] = ()
    enhanced_findings: tuple[dict[str, Any], ...] = ()


class Ecr:
    def __init__(self, ecr_client: Any = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._client = ecr_client or client("ecr")
        self._clock = clock
        # repository name -> (when asked, scanOnPush)
        self._scan_on_push: dict[str, tuple[float, bool]] = {}

    def find_image_digest(self, repository: str, tag: str) -> str | None:
        """The digest of the image tagged `tag`, or None if there is no such image."""
        try:
            response = self._client.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        except ClientError as error:
            if error.response["Error"]["Code"] == "ImageNotFoundException":
                return None
            raise
        details = response.get("imageDetails", [])
        return str(details[0]["imageDigest"]) if details else None

    # --- tag_image: registering, scanning and retagging images ----------------------------

    def scan_on_push(self, repository: str) -> bool:
        """Whether the repository scans every pushed image itself (basic scanning); asked at most
        once per SCAN_SETTING_TTL_SECONDS per repository."""
        now = self._clock()
        known = self._scan_on_push.get(repository)
        if known is not None and now - known[0] < SCAN_SETTING_TTL_SECONDS:
            return known[1]
        response = self._client.describe_repositories(repositoryNames=[repository])
        config = response["repositories"][0].get("imageScanningConfiguration", {})
        scans = bool(config.get("scanOnPush"))
        self._scan_on_push[repository] = (now, scans)
        return scans

    def start_scan(self, repository: str, image_digest: str) -> bool:
        """Start a basic scan; False when ECR refuses because the image was scanned today already."""
        try:
            self._client.start_image_scan(repositoryName=repository, imageId={"imageDigest": image_digest})
        except ClientError as error:
            if error.response["Error"]["Code"] == "LimitExceededException":
                return False
            raise
        return True

    def image_tags(self, repository: str, image_digest: str) -> list[str]:
        """The tags now on an image (empty when the image is gone)."""
        try:
            response = self._client.describe_images(repositoryName=repository, imageIds=[{"imageDigest": image_digest}])
        except ClientError as error:
            if error.response["Error"]["Code"] == "ImageNotFoundException":
                return []
            raise
        details = response.get("imageDetails", [])
        return [str(tag) for tag in details[0].get("imageTags", [])] if details else []

    def get_manifest(self, repository: str, image_digest: str) -> ImageManifest:
        """The image's manifest exactly as stored, so a retag adds a tag without changing the digest."""
        response = self._client.batch_get_image(
            repositoryName=repository,
            imageIds=[{"imageDigest": image_digest}],
            acceptedMediaTypes=list(MANIFEST_MEDIA_TYPES),
        )
        images = response.get("images", [])
        if not images:
            failure = (response.get("failures") or [{}])[0]
            raise ImageNotFound(f"{repository}@{image_digest}: {failure.get('failureReason', 'not found')}")
        image = images[0]
        return ImageManifest(
            manifest=str(image["imageManifest"]),
            media_type=str(image.get("imageManifestMediaType") or ""),
        )

    def put_tag(self, repository: str, image_digest: str, tag: str, manifest: ImageManifest) -> bool:
        """Add `tag` to the image; True if added, False if it was already there.

        Raises TagConflict when the tag is immutable and held by another image.
        """
        request: dict[str, Any] = {
            "repositoryName": repository,
            "imageManifest": manifest.manifest,
            "imageTag": tag,
            "imageDigest": image_digest,
        }
        if manifest.media_type:
            request["imageManifestMediaType"] = manifest.media_type
        try:
            self._client.put_image(**request)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "ImageTagAlreadyExistsException":
                raise TagConflict(tag, self.find_image_digest(repository, tag), str(error)) from None
            if code == "ImageAlreadyExistsException":
                # Success only when the tag is on this very image; some registries report an
                # immutable tag held by another image with this code too.
                holder = self.find_image_digest(repository, tag)
                if holder == image_digest:
                    return False
                raise TagConflict(tag, holder, str(error)) from None
            raise
        return True

    def scan_findings(self, repository: str, image_digest: str) -> ScanFindings:
        """Every page of describe_image_scan_findings; `found` is False when there is no scan at all."""
        paginator = self._client.get_paginator("describe_image_scan_findings")
        status: dict[str, Any] = {}
        counts: dict[str, int] = {}
        findings: list[dict[str, Any]] = []
        enhanced: list[dict[str, Any]] = []
        has_result = False
        try:
            for page in paginator.paginate(repositoryName=repository, imageId={"imageDigest": image_digest}):
                status = page.get("imageScanStatus") or status
                result = page.get("imageScanFindings")
                if result is None:
                    continue
                has_result = True
                counts.update(
                    {str(key): int(value) for key, value in (result.get("findingSeverityCounts") or {}).items()}
                )
                findings.extend(result.get("findings") or [])
                enhanced.extend(result.get("enhancedFindings") or [])
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ScanNotFoundException", "ImageNotFoundException"):
                return ScanFindings(found=False, status="", description=error.response["Error"].get("Message", ""))
            raise
        return ScanFindings(
            found=True,
            status=str(status.get("status", "")),
            description=str(status.get("description", "")),
            has_result=has_result,
            severity_counts=counts,
            findings=tuple(findings),
            enhanced_findings=tuple(enhanced),
        )


def repository_uri(account: str, region: str, repository: str) -> str:
    """The registry address of a private repository: <account>.dkr.ecr.<region>.amazonaws.com/<name>."""
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}"
