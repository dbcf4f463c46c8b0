"""Which ECR pushes tag_image acts on, and which promotion tags a push earns (core/tagging.py)."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ecr_pipeline.adapters.ledger import PushRecord
from ecr_pipeline.config import PipelineConfig, PromoteRules
from ecr_pipeline.core.tagging import (
    REASON_DELETE,
    REASON_NO_TAG,
    REASON_NOT_BUILD_TAG,
    REASON_UNCONFIGURED,
    ignore_reason,
    is_build_tag,
    promotion_tags,
    semver_tags,
)
from ecr_pipeline.events.ecr import parse_image_action
from ecr_pipeline.settings import load_pipeline_config
from tests.events import load_event

COMMIT = "a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4"
ALL = PromoteRules()
ECR_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def config() -> PipelineConfig:
    return load_pipeline_config(str(Path(__file__).resolve().parents[2] / "pipeline.yaml"))


def push(ref_type: str, ref: str, commit: str = COMMIT) -> PushRecord:
    return PushRecord("demo-app", ref_type, ref, commit, "2026-11-28T10:05:00.000000Z", "id#" + ref)


def test_build_tag_push_is_acted_on() -> None:
    assert ignore_reason(parse_image_action(load_event("ecr_push_build_tag")), config()) is None


def test_retag_push_is_ignored_as_not_a_build_tag() -> None:
    assert ignore_reason(parse_image_action(load_event("ecr_push_retag")), config()) == REASON_NOT_BUILD_TAG


def test_push_without_tag_is_ignored() -> None:
    assert ignore_reason(parse_image_action(load_event("ecr_push_no_tag")), config()) == REASON_NO_TAG


def test_delete_is_ignored() -> None:
    assert ignore_reason(parse_image_action(load_event("ecr_delete")), config()) == REASON_DELETE


def test_push_to_an_unconfigured_repository_is_ignored() -> None:
    event = load_event("ecr_push_build_tag", **{"repository-name": "other-app"})

    assert ignore_reason(parse_image_action(event), config()) == REASON_UNCONFIGURED


def test_short_or_uppercase_commit_ids_are_not_build_tags() -> None:
    assert is_build_tag(COMMIT)
    assert not is_build_tag(COMMIT[:7])
    assert not is_build_tag(COMMIT.upper())


def test_default_branch_gets_branch_branch_sha_and_latest() -> None:
    assert promotion_tags(ALL, "main", push("branch", "main")) == ["main", "main-a3b2c1d", "latest"]


def test_other_branch_never_gets_latest() -> None:
    assert promotion_tags(ALL, "main", push("branch", "feature/Login")) == ["feature-login", "feature-login-a3b2c1d"]


def test_release_tag_gets_full_minor_and_major_versions() -> None:
    assert promotion_tags(ALL, "main", push("tag", "v1.2.3")) == ["1.2.3", "1.2", "1"]


def test_pre_release_tag_moves_only_its_full_version() -> None:
    assert promotion_tags(ALL, "main", push("tag", "v1.2.3-rc.1")) == ["1.2.3-rc.1"]


def test_git_tag_that_is_not_a_version_becomes_one_tag_part() -> None:
    assert promotion_tags(ALL, "main", push("tag", "Release/2026")) == ["release-2026"]


def test_rules_turned_off_add_no_tags() -> None:
    rules = PromoteRules(branch=False, branch_sha=False, latest=False, semver=False)

    assert promotion_tags(rules, "main", push("branch", "main")) == []


def test_semver_build_metadata_is_made_a_valid_tag() -> None:
    assert semver_tags("v2.0.0+build.7") == ["2.0.0-build.7"]


@given(st.text(min_size=1, max_size=300))
def test_every_branch_name_gives_valid_unique_ecr_tags(branch: str) -> None:
    tags = promotion_tags(ALL, "main", push("branch", branch))

    assert tags and all(ECR_TAG.match(tag) for tag in tags)
    assert len(tags) == len(set(tags))
