"""The pipeline's own event contract (events/pipeline.py) against docs/events.md, the samples in
events/, notify's lenient reading, and a round trip of every record."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from ecr_pipeline.events.envelope import MalformedEvent
from ecr_pipeline.events.pipeline import CONTRACT, Record, detail_type, from_detail, parse_pipeline_event, to_detail
from ecr_pipeline.notify.readers import read_pipeline_detail

ROOT = Path(__file__).resolve().parents[2]
COMMON = {"repository", "ref_type", "ref", "commit", "push_time", "push_id", "author", "message"}
IMAGE = {"ecr_repository", "image_tag"}
EMPTY: tuple[Any, ...] = (None, [], "", {})


def samples() -> dict[str, list[dict[str, Any]]]:
    """Every sample event of source ecr-pipeline in events/, by detail-type."""
    found: dict[str, list[dict[str, Any]]] = {}
    for path in sorted((ROOT / "events").glob("*.json")):
        event = json.loads(path.read_text())
        if event.get("source") == "ecr-pipeline":
            found.setdefault(event["detail-type"], []).append(event)
    return found


SAMPLES = samples()
ALL_SAMPLES = [event for events in SAMPLES.values() for event in events]


def documented_fields() -> dict[str, set[str]]:
    """The extra fields docs/events.md lists per detail-type: the backticked names outside parentheses."""
    rows: dict[str, set[str]] = {}
    for line in (ROOT / "docs" / "events.md").read_text().splitlines():
        match = re.match(r"\| `([A-Z][A-Za-z ]+)` \| [^|]+ \| (.+) \|$", line)
        if match:
            fields = re.sub(r"\([^()]*\)", "", match.group(2)).split(":")[0]
            rows[match.group(1)] = set(re.findall(r"`([a-z_]+)`", fields))
    return rows


def record_of(event: dict[str, Any]) -> Record:
    return parse_pipeline_event(event, CONTRACT[event["detail-type"]]).record


def test_every_detail_type_has_a_record_a_sample_and_a_row_in_the_docs() -> None:
    assert set(CONTRACT) == set(SAMPLES) == set(documented_fields())


@pytest.mark.parametrize("kind", sorted(CONTRACT))
def test_the_docs_list_exactly_the_fields_the_record_writes(kind: str) -> None:
    written = set(to_detail(record_of(SAMPLES[kind][0])))

    assert written >= COMMON | IMAGE
    assert documented_fields()[kind] == written - COMMON - IMAGE


@pytest.mark.parametrize("event", ALL_SAMPLES, ids=lambda event: str(event["id"]))
def test_every_sample_is_what_its_record_writes(event: dict[str, Any]) -> None:
    record = record_of(event)
    written = to_detail(record)
    sample = {key: value for key, value in event["detail"].items() if key != "stack"}

    assert detail_type(record) == event["detail-type"]
    assert {key: written[key] for key in sample} == sample
    assert all(written[key] in EMPTY for key in set(written) - set(sample))


@pytest.mark.parametrize("event", ALL_SAMPLES, ids=lambda event: str(event["id"]))
def test_a_written_detail_reads_back_as_the_same_record(event: dict[str, Any]) -> None:
    record = record_of(event)

    assert from_detail(type(record), to_detail(record)) == record


@pytest.mark.parametrize("event", ALL_SAMPLES, ids=lambda event: str(event["id"]))
def test_notify_reads_leniently_what_the_record_says(event: dict[str, Any]) -> None:
    written = to_detail(record_of(event))
    read = read_pipeline_detail(written)._asdict()
    same_name = {"repository", "ref_type", "ref", "commit", "author", "ecr_repository", "image_digest", "tag"}
    same_name |= {"environment", "application", "deployment_group", "deployment_id", "build_id", "reason", "verdict"}

    for key in same_name & set(written):
        assert read[key] == (str(written[key]) if written[key] is not None else ""), key
    assert read["commit_message"] == written["message"].splitlines()[0]


@pytest.mark.parametrize("event", ALL_SAMPLES, ids=lambda event: str(event["id"]))
def test_a_missing_required_field_is_named(event: dict[str, Any]) -> None:
    record_type = CONTRACT[event["detail-type"]]
    required = [key for key in ("repository", "ecr_repository", "push_id", "reason", "tag") if key in event["detail"]]
    for key in required:
        broken = {**event, "detail": {k: v for k, v in event["detail"].items() if k != key}}
        if key == "reason" and "reason" in record_type._field_defaults:
            continue
        with pytest.raises(MalformedEvent) as raised:
            parse_pipeline_event(broken, record_type)
        assert raised.value.field == f"detail.{key}"


def test_a_record_of_another_detail_type_is_refused_by_name() -> None:
    (event, *_) = SAMPLES["Scan Verdict"]
    with pytest.raises(MalformedEvent) as raised:
        parse_pipeline_event(event, CONTRACT["Image Promoted"])

    assert raised.value.field == "detail-type"


def test_an_image_tag_that_is_not_the_commits_build_tag_is_refused() -> None:
    (event, *_) = SAMPLES["Image Promoted"]
    forged = {**event, "detail": {**event["detail"], "image_tag": "sha-" + "0" * 40}}

    with pytest.raises(MalformedEvent) as raised:
        parse_pipeline_event(forged, CONTRACT["Image Promoted"])

    assert raised.value.field == "detail.image_tag"
