"""Stand-ins shared by notify's tests: a ledger that answers from memory, and the pipeline config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ecr_pipeline.config import PipelineConfig, load_config
from ecr_pipeline.notify.model import Message
from ecr_pipeline.records import BuildRecord, PushRecord
from tests.events import load_event

PIPELINE_YAML = Path(__file__).resolve().parent.parent / "pipeline.yaml"
COMMIT = "a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4"
BUILD_ID = "ecr-pipeline-image-build:8745a7a9-c340-456a-9166-edf953571bef"
NEWER_BUILD_ID = "ecr-pipeline-image-build:0f9e8d7c-6b5a-4f3e-9d2c-1b0a9f8e7d6c"
DIGEST = "sha256:4f1e9b7c2d8a6e3f5b0c9d7a1e2f3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a"


def push_record(**overrides: Any) -> PushRecord:
    values: dict[str, Any] = {
        "repository": "demo-app",
        "ref_type": "branch",
        "ref_name": "main",
        "commit": COMMIT,
        "push_time": "2026-11-28T10:05:00.000000Z",
        "push_id": "7a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d#branch#main",
        "author": "Ada Lovelace",
        "message": "Add login page\n\nA longer body that the message shows no line of.",
    }
    values.update(overrides)
    return PushRecord(**values)


@dataclass
class MemoryLedger:
    builds: dict[str, BuildRecord] = field(default_factory=dict)
    pushes: list[PushRecord] = field(default_factory=list)

    def get_build(self, build_id: str) -> BuildRecord | None:
        return self.builds.get(build_id)

    def pushes_of_commit(self, repository: str, commit: str) -> list[PushRecord]:
        return [push for push in self.pushes if push.repository == repository and push.commit == commit]


def pipeline_config() -> PipelineConfig:
    return load_config(PIPELINE_YAML)


def ledger_for(event_name: str) -> MemoryLedger:
    """The ledger as the stages leave it for the sample events: the stopped build was superseded."""
    record = BuildRecord(
        BUILD_ID,
        repository="demo-app",
        ref_type="branch",
        ref_name="main",
        commit=COMMIT,
        ecr_repository="demo-app",
        superseded_by=NEWER_BUILD_ID if event_name == "codebuild_stopped" else None,
    )
    return MemoryLedger(builds={BUILD_ID: record}, pushes=[push_record()])


def message_for(event_name: str, ledger: MemoryLedger | None = None, **detail_overrides: Any) -> Message:
    # Imported on use: the core creates the shared Metrics, which must not happen before the test environment is set.
    from ecr_pipeline.notify.notifier import parse_notification, to_message

    event = load_event(event_name, **detail_overrides)
    message = to_message(parse_notification(event), ledger if ledger is not None else ledger_for(event_name), "dev")
    assert message is not None
    return message
