"""ECR's tag immutability for PutImage, where moto 5.2.5 differs from ECR.

moto knows the four `imageTagMutability` settings and their exclusion filters, but:
- it matches an exclusion filter as a regular expression (`re.match`, anchored at the start only),
  where ECR matches a wildcard (`*` any run of characters) against the whole tag: moto must be
  given the filter as a regex (`sha-*` -> `^sha\\-.*$`, see `moto_filter`), or `sha-*` would also
  make `sha` and `shallow` immutable;
- it refuses to move an immutable tag to another image with ImageAlreadyExistsException, where ECR
  answers ImageTagAlreadyExistsException. ECR says ImageAlreadyExistsException only when the tag
  is already on that very image, whatever the mutability.

`TagMutability.guard` answers as ECR does before moto sees the call; moto answers the rest
(same image again, a mutable tag, a new tag). The emulator registers each repository it creates
with the template's own wildcard filters.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any

from emulator.front import ApiCall, ApiError

MUTABLE = "MUTABLE"
IMMUTABLE = "IMMUTABLE"
MUTABLE_WITH_EXCLUSION = "MUTABLE_WITH_EXCLUSION"
IMMUTABLE_WITH_EXCLUSION = "IMMUTABLE_WITH_EXCLUSION"


def wildcard_matches(tag: str, wildcard: str) -> bool:
    """ECR's WILDCARD filter: `*` matches any run of characters (none included), the rest is literal."""
    return re.fullmatch(moto_filter(wildcard), tag) is not None


def moto_filter(wildcard: str) -> str:
    """The regex to give moto for an ECR wildcard filter, so that both match the same tags."""
    return "^" + ".*".join(re.escape(part) for part in wildcard.split("*")) + "$"


def is_immutable(tag: str, mutability: str, wildcards: tuple[str, ...]) -> bool:
    """Whether ECR keeps `tag` where it is under this repository setting."""
    excluded = any(wildcard_matches(tag, wildcard) for wildcard in wildcards)
    if mutability == MUTABLE_WITH_EXCLUSION:
        return excluded
    if mutability == IMMUTABLE_WITH_EXCLUSION:
        return not excluded
    return mutability == IMMUTABLE


@dataclass(frozen=True)
class RepositoryMutability:
    mutability: str
    wildcards: tuple[str, ...] = ()


def refusal(
    repository: str, tag: str, setting: RepositoryMutability, holder_digest: str | None, same_image: bool
) -> ApiError | None:
    """ECR's answer to a PutImage of `tag` when another image may hold it, or None to let it through."""
    if holder_digest is None or same_image or not is_immutable(tag, setting.mutability, setting.wildcards):
        return None
    return ApiError(
        "ImageTagAlreadyExistsException",
        f"The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten "
        "because the tag is immutable.",
    )


class TagMutability:
    """The repositories' settings as the template gave them, and the PutImage guard that applies them."""

    def __init__(self, ecr: Any) -> None:
        # A client straight to moto (not through the front): the guard runs inside the front.
        self._ecr = ecr
        self._settings: dict[str, RepositoryMutability] = {}
        self._lock = threading.Lock()

    def register(self, repository: str, mutability: str, wildcards: list[str] | tuple[str, ...] = ()) -> None:
        with self._lock:
            self._settings[repository] = RepositoryMutability(mutability, tuple(wildcards))

    def setting(self, repository: str) -> RepositoryMutability | None:
        with self._lock:
            return self._settings.get(repository)

    def guard(self, call: ApiCall) -> None:
        """A front guard: raise ECR's ImageTagAlreadyExistsException where moto would say otherwise."""
        if call.service != "ecr" or call.operation != "PutImage":
            return
        repository, tag = str(call.params.get("repositoryName") or ""), call.params.get("imageTag")
        setting = self.setting(repository)
        if setting is None or not tag or setting.mutability == MUTABLE:
            return
        holder = self._holder(repository, str(tag))
        if holder is None:
            return
        holder_digest, holder_manifest = holder
        # moto's rule for "the same image": the same manifest text (or the digest the caller named).
        same_image = call.params.get("imageManifest") == holder_manifest or (
            call.params.get("imageDigest") == holder_digest
        )
        error = refusal(repository, str(tag), setting, holder_digest, same_image)
        if error is not None:
            raise error

    def _holder(self, repository: str, tag: str) -> tuple[str, str] | None:
        answer = self._ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": tag}])
        images = answer.get("images") or []
        if not images:
            return None
        return str(images[0]["imageId"]["imageDigest"]), str(images[0].get("imageManifest") or "")
