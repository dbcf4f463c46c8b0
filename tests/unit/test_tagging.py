"""Which ECR pushes tag_image acts on, and which promotion tags a push earns (core/tagging.py)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecr_pipeline.config import PipelineConfig, PromoteRules
from ecr_pipeline.core.naming import BUILD_TAG_FILTER, build_tag, commit_of_build_tag, is_build_tag
from ecr_pipeline.core.tagging import (
    REASON_DELETE,
    REASON_NO_TAG,
    REASON_NOT_BUILD_TAG,
    REASON_UNCONFIGURED,
    action_ignore_reason,
    promotion_tags,
    semver_tags,
)
from ecr_pipeline.events.ecr import parse_image_action
from ecr_pipeline.records import PushRecord
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
    assert action_ignore_reason(parse_image_action(load_event("ecr_push_build_tag")), config()) is None


def test_retag_push_is_ignored_as_not_a_build_tag() -> None:
    assert action_ignore_reason(parse_image_action(load_event("ecr_push_retag")), config()) == REASON_NOT_BUILD_TAG


def test_push_without_tag_is_ignored() -> None:
    assert action_ignore_reason(parse_image_action(load_event("ecr_push_no_tag")), config()) == REASON_NO_TAG


def test_delete_is_ignored() -> None:
    assert action_ignore_reason(parse_image_action(load_event("ecr_delete")), config()) == REASON_DELETE


def test_push_to_an_unconfigured_repository_is_ignored() -> None:
    event = load_event("ecr_push_build_tag", **{"repository-name": "other-app"})

    assert action_ignore_reason(parse_image_action(event), config()) == REASON_UNCONFIGURED


def test_build_tag_names_its_commit_and_back() -> None:
    tag = build_tag(COMMIT)

    assert tag == f"sha-{COMMIT}" and is_build_tag(tag)
    assert commit_of_build_tag(tag) == COMMIT
    assert fnmatch.fnmatchcase(tag, BUILD_TAG_FILTER)


@given(st.text(alphabet="0123456789abcdef", min_size=40, max_size=40))
def test_every_commit_id_round_trips_through_its_build_tag(commit: str) -> None:
    tag = build_tag(commit)

    assert commit_of_build_tag(tag) == commit and ECR_TAG.match(tag)


def test_bare_short_or_uppercase_commit_ids_are_not_build_tags() -> None:
    assert not is_build_tag(COMMIT)
    assert not is_build_tag(build_tag(COMMIT[:7]))
    assert not is_build_tag(build_tag(COMMIT.upper()))
    assert commit_of_build_tag("main") is None and commit_of_build_tag(None) is None


def test_a_push_with_the_bare_commit_id_as_tag_is_not_registered() -> None:
    event = load_event("ecr_push_build_tag", **{"image-tag": COMMIT})

    assert action_ignore_reason(parse_image_action(event), config()) == REASON_NOT_BUILD_TAG


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


@pytest.mark.parametrize(
    ("ref_type", "ref", "expected"),
    [
        ("branch", "sha-fix", ["branch-sha-fix", "branch-sha-fix-a3b2c1d"]),
        ("branch", "SHA-Fix", ["branch-sha-fix", "branch-sha-fix-a3b2c1d"]),
        ("branch", "sha/fix", ["branch-sha-fix", "branch-sha-fix-a3b2c1d"]),
        ("branch", "shallow", ["shallow", "shallow-a3b2c1d"]),
        ("branch", "sha", ["branch-sha", "branch-sha-a3b2c1d"]),
        ("tag", "sha-" + COMMIT, ["tag-sha-" + COMMIT]),
    ],
)
def test_ref_whose_tag_would_look_like_a_build_tag_gets_its_ref_type_in_front(
    ref_type: str, ref: str, expected: list[str]
) -> None:
    assert promotion_tags(ALL, "main", push(ref_type, ref)) == expected


def test_semver_build_metadata_is_made_a_valid_tag() -> None:
    assert semver_tags("v2.0.0+build.7") == ["2.0.0-build.7"]


@given(st.text(min_size=1, max_size=300))
def test_every_branch_name_gives_valid_unique_ecr_tags(branch: str) -> None:
    tags = promotion_tags(ALL, "main", push("branch", branch))

    assert tags and all(ECR_TAG.match(tag) for tag in tags)
    assert len(tags) == len(set(tags))


REF_NAMES = st.one_of(
    st.text(max_size=300),
    st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(["sha-", "SHA-", "sha/", "sha_", "v"]), st.text()),
)
RULES = st.builds(
    PromoteRules, branch=st.booleans(), branch_sha=st.booleans(), latest=st.booleans(), semver=st.booleans()
)


@given(RULES, st.sampled_from(["branch", "tag"]), REF_NAMES.filter(bool), st.sampled_from(["main", "sha-main"]))
def test_no_promotion_tag_ever_falls_under_the_build_tag_filter(
    rules: PromoteRules, ref_type: str, ref: str, default_branch: str
) -> None:
    tags = promotion_tags(rules, default_branch, push(ref_type, ref))

    assert all(ECR_TAG.match(tag) for tag in tags)
    assert not [tag for tag in tags if fnmatch.fnmatchcase(tag, BUILD_TAG_FILTER)]
