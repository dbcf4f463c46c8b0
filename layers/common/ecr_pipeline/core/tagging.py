"""tag_image's decisions: which ECR pushes it acts on and which promotion tags a push earns.

The promotion tags follow docker/metadata-action's habits: `{branch}`, `{branch}-{short sha}`,
`latest` for the default branch, and `1.2.3`, `1.2`, `1` for a git tag `v1.2.3` (a pre-release
only gets its full version, so it never moves `1.2`, `1` or `latest`). No promotion tag ever
has the build tag's shape (core/naming.py), so build tags alone are immutable and the rest can move.
"""

from __future__ import annotations

from ecr_pipeline.config import PipelineConfig, PromoteRules
from ecr_pipeline.core.naming import MAX_TAG_LENGTH, is_build_tag, promotion_tag_part, tag_part
from ecr_pipeline.events.ecr import ImageAction
from ecr_pipeline.records import PushRecord

SHORT_SHA_LENGTH = 7

REASON_NOT_SUCCESS = "the ECR action did not succeed"
REASON_DELETE = "an image deletion needs no tagging"
REASON_NO_TAG = "the push carries no image tag"
REASON_NOT_BUILD_TAG = "not a build tag (a retag or a tag pushed by hand)"
REASON_UNCONFIGURED = "the ECR repository is not in pipeline.yaml"


def action_ignore_reason(action: ImageAction, config: PipelineConfig) -> str | None:
    """Why tag_image leaves this ECR action alone, or None when it is a build push to register.

    Acting only on build tags is what keeps retagging from looping: every put_image of a
    promotion tag comes back as a PUSH with a tag that is not a build tag (`sha-<commit>`).
    """
    if action.result != "SUCCESS":
        return REASON_NOT_SUCCESS
    if action.action_type != "PUSH":
        return REASON_DELETE
    if not action.image_tag:
        return REASON_NO_TAG
    if not is_build_tag(action.image_tag):
        return REASON_NOT_BUILD_TAG
    if config.image(action.ecr_repository) is None:
        return REASON_UNCONFIGURED
    return None


def semver_tags(git_tag: str) -> list[str] | None:
    """`v1.2.3` -> [1.2.3, 1.2, 1]; `v1.2.3-rc.1` -> [1.2.3-rc.1]; None when not a semantic version."""
    # Imported here: only git-tag pushes need it, and it costs milliseconds at every cold start.
    import semver

    text = git_tag[1:] if git_tag[:1] in ("v", "V") else git_tag
    try:
        version = semver.Version.parse(text)
    except ValueError:
        return None
    full = tag_part(str(version))
    if version.prerelease or version.build:
        return [full]
    return [full, f"{version.major}.{version.minor}", str(version.major)]


def promotion_tags(rules: PromoteRules, default_branch: str, push: PushRecord) -> list[str]:
    """The tags a PASSED image gets for one push of a ref, in a stable order without repeats."""
    tags: list[str] = []
    if push.ref_type == "branch":
        if rules.branch:
            tags.append(promotion_tag_part(push.ref_name, push.ref_type))
        if rules.branch_sha:
            short_sha = push.commit[:SHORT_SHA_LENGTH]
            branch = promotion_tag_part(push.ref_name, push.ref_type, MAX_TAG_LENGTH - SHORT_SHA_LENGTH - 1)
            tags.append(f"{branch}-{short_sha}")
        if rules.latest and push.ref_name == default_branch:
            tags.append("latest")
    else:
        versions = semver_tags(push.ref_name) if rules.semver else None
        tags.extend(versions if versions is not None else [promotion_tag_part(push.ref_name, push.ref_type)])
    return list(dict.fromkeys(tags))
