"""emulator/tag_mutability.py: ECR's tag immutability where moto 5.2.5 differs (wildcards, error code)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from ecr_pipeline.core.naming import BUILD_TAG_FILTER, build_tag
from emulator.front import ApiCall, ApiError
from emulator.tag_mutability import (
    IMMUTABLE,
    IMMUTABLE_WITH_EXCLUSION,
    MUTABLE,
    MUTABLE_WITH_EXCLUSION,
    TagMutability,
    is_immutable,
    moto_filter,
    wildcard_matches,
)
from tests.events import oci_manifest

pytestmark = pytest.mark.e2e

REPOSITORY = "ecr-pipeline/demo-app"
COMMIT = "a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4"


@pytest.mark.parametrize(
    ("tag", "wildcard", "matches"),
    [
        (build_tag(COMMIT), BUILD_TAG_FILTER, True),
        ("sha-", BUILD_TAG_FILTER, True),
        ("sha", BUILD_TAG_FILTER, False),
        ("shallow", BUILD_TAG_FILTER, False),
        ("branch-sha-fix", BUILD_TAG_FILTER, False),
        ("feature-login", "*-*", True),
        ("1.2", "*.*", True),
        ("1", "*.*", False),
        ("latest", "latest", True),
        ("latest-2", "latest", False),
    ],
)
def test_a_wildcard_filter_matches_the_whole_tag(tag: str, wildcard: str, matches: bool) -> None:
    assert wildcard_matches(tag, wildcard) is matches


def test_moto_filter_is_a_regex_for_the_same_tags() -> None:
    assert moto_filter(BUILD_TAG_FILTER) == r"^sha\-.*$"


@pytest.mark.parametrize(
    ("mutability", "wildcards", "immutable"),
    [
        (MUTABLE_WITH_EXCLUSION, (BUILD_TAG_FILTER,), {build_tag(COMMIT)}),
        (IMMUTABLE_WITH_EXCLUSION, ("latest", "*-*", "*.*"), {"1", "develop"}),
        (MUTABLE, (), set()),
        (IMMUTABLE, (), {build_tag(COMMIT), "1", "1.1", "develop", "latest", "main-a3b2c1d"}),
    ],
)
def test_which_tags_a_setting_keeps_in_place(mutability: str, wildcards: tuple[str, ...], immutable: set[str]) -> None:
    tags = {build_tag(COMMIT), "1", "1.1", "develop", "latest", "main-a3b2c1d"}

    assert {tag for tag in tags if is_immutable(tag, mutability, wildcards)} == immutable


# --- the guard against moto -------------------------------------------------------------------------


def manifest(layer: str) -> str:
    return oci_manifest(f"sha256:{layer * 64}")


@pytest.fixture
def ecr() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("ecr", region_name="us-east-1")
        client.create_repository(
            repositoryName=REPOSITORY,
            imageTagMutability=MUTABLE_WITH_EXCLUSION,
            imageTagMutabilityExclusionFilters=[{"filterType": "WILDCARD", "filter": moto_filter(BUILD_TAG_FILTER)}],
        )
        yield client


def put(ecr: Any, guard: TagMutability, tag: str, layer: str) -> str:
    """PutImage as the front would make it: the guard first, then moto; the answer's code or 'ok'."""
    params = {"repositoryName": REPOSITORY, "imageManifest": manifest(layer), "imageTag": tag}
    try:
        guard.guard(ApiCall(caller="codebuild", service="ecr", operation="PutImage", params=params))
        ecr.put_image(**params)
    except ApiError as error:
        return error.code
    except ClientError as error:
        return str(error.response["Error"]["Code"])
    return "ok"


def test_moving_a_build_tag_to_another_image_is_refused_as_ecr_refuses_it(ecr: Any) -> None:
    guard = TagMutability(ecr)
    guard.register(REPOSITORY, MUTABLE_WITH_EXCLUSION, [BUILD_TAG_FILTER])
    tag = build_tag(COMMIT)

    assert put(ecr, guard, tag, "a") == "ok"
    assert put(ecr, guard, tag, "b") == "ImageTagAlreadyExistsException"
    assert put(ecr, guard, tag, "a") == "ImageAlreadyExistsException"  # the same image again, as ECR says


def test_promotion_tags_move_freely_beside_immutable_build_tags(ecr: Any) -> None:
    guard = TagMutability(ecr)
    guard.register(REPOSITORY, MUTABLE_WITH_EXCLUSION, [BUILD_TAG_FILTER])

    outcomes = [put(ecr, guard, tag, layer) for tag in ("1", "develop", "sha", "shallow") for layer in ("a", "b")]

    assert outcomes == ["ok"] * 8


def test_an_unregistered_repository_is_left_to_moto(ecr: Any) -> None:
    guard = TagMutability(ecr)
    tag = build_tag(COMMIT)

    assert put(ecr, guard, tag, "a") == "ok"
    # moto's own answer, with its own code: the guard only answers for repositories it knows.
    assert put(ecr, guard, tag, "b") == "ImageAlreadyExistsException"
