from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ecr_pipeline.core.naming import tag_part

DOCKER_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@pytest.mark.parametrize(
    ("branch", "tag"),
    [
        ("feature/Login", "feature-login"),
        ("main", "main"),
        ("release/1.2", "release-1.2"),
        ("fix//double--dash", "fix-double-dash"),
        ("-leading.dot", "leading.dot"),
        ("Ünïcode/ブランチ", "n-code"),
    ],
)
def test_branch_name_becomes_tag_part(branch: str, tag: str) -> None:
    assert tag_part(branch) == tag


def test_name_with_no_valid_character_still_gives_a_tag() -> None:
    assert DOCKER_TAG.match(tag_part("////"))
    assert tag_part("////") != tag_part("\\\\")


def test_long_names_that_share_a_prefix_get_different_tags() -> None:
    first, second = "feature/" + "a" * 200 + "1", "feature/" + "a" * 200 + "2"
    assert tag_part(first) != tag_part(second)
    assert len(tag_part(first)) == 128


def test_tag_part_respects_a_smaller_budget() -> None:
    assert len(tag_part("x" * 500, max_length=119)) == 119


@given(st.text(max_size=400))
def test_tag_part_is_always_a_valid_deterministic_tag(branch: str) -> None:
    tag = tag_part(branch)
    assert DOCKER_TAG.match(tag), tag
    assert tag == tag_part(branch)
    assert len(tag) <= 128


@given(st.text(max_size=300), st.integers(min_value=10, max_value=128))
def test_tag_part_never_exceeds_its_budget(branch: str, budget: int) -> None:
    assert 0 < len(tag_part(branch, max_length=budget)) <= budget
