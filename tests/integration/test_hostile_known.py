"""Hostile-input defects the fuzz test (tests/fuzz.py) found in the handlers' shared code, each with
the smallest event that showed it (seeds '1010:codecommit_branch_deleted:173' and '1010:ecr_delete:60'):
a deeply nested event id once broke every log line, and a nested detail-type tag_image's error."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from moto import mock_aws

from tests.events import load_event
from tests.fuzz import HANDLERS, build_world


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


def nested(depth: int) -> Any:
    value: Any = "id"
    for _ in range(depth):
        value = [value]
    return value


SAMPLES = {
    "start_build": "codecommit_branch_updated",
    "tag_image": "ecr_push_build_tag",
    "scan_check": "ecr_scan_complete_clean",
    "deploy": "image_promoted",
    "notify": "codebuild_failed",
}


@pytest.mark.parametrize("handler", HANDLERS)
def test_an_event_whose_id_nests_deeply_is_rejected_naming_the_id(
    handler: str, aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    function = build_world(handler, monkeypatch)
    event = load_event(SAMPLES[handler])
    event["id"] = nested(5000)
    result = function.invoke(event)
    assert result["status"] == "rejected" and result["field"].startswith("id")


def test_a_deeply_nested_detail_type_is_rejected_by_tag_image(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    function = build_world("tag_image", monkeypatch)
    event = load_event("ecr_delete")
    event["detail-type"] = nested(5000)
    result = function.invoke(event)
    assert result["status"] == "rejected" and result["field"] == "detail-type"
