"""What a pipeline event is about: the `Subject` (the push and the image) and, for a deployment, the
`Place` (the environment and its target). Part of the event contract of events/pipeline.py."""

from __future__ import annotations

from typing import Any, NamedTuple

from ecr_pipeline.core.naming import build_tag
from ecr_pipeline.events.envelope import MalformedEvent, optional_str, require_str
from ecr_pipeline.records import PushRecord, newest_push

Detail = dict[str, Any]


class Subject(NamedTuple):
    """What an event is about: the push (or, without one, the repository and commit) and the image."""

    repository: str
    commit: str | None
    ecr_repository: str
    push: PushRecord | None = None
    image_digest: str | None = None
    repository_uri: str | None = None

    @classmethod
    def of_push(
        cls, push: PushRecord, ecr_repository: str, image_digest: str | None = None, repository_uri: str | None = None
    ) -> Subject:
        return cls(push.repository, push.commit, ecr_repository, push, image_digest, repository_uri)

    @classmethod
    def of_image(
        cls,
        pushes: list[PushRecord] | tuple[PushRecord, ...],
        repository: str,
        commit: str | None,
        ecr_repository: str,
        image_digest: str,
        repository_uri: str,
    ) -> Subject:
        """An image event speaks for the newest of the image's pushes."""
        return cls(repository, commit, ecr_repository, newest_push(pushes), image_digest, repository_uri)

    def to_detail(self) -> Detail:
        fields: Detail = self.push.as_detail() if self.push else {"repository": self.repository, "commit": self.commit}
        fields["ecr_repository"] = self.ecr_repository
        fields["image_tag"] = build_tag(self.commit) if self.commit else None
        if self.image_digest is not None:
            fields["image_digest"] = self.image_digest
        if self.repository_uri is not None:
            fields["repository_uri"] = self.repository_uri
        return fields


class Place(NamedTuple):
    """Where a deployment goes: the environment, its strategy, its ECS service and (strategy codedeploy)
    its CodeDeploy application and group ("" for strategy ecs)."""

    environment: str
    application: str
    deployment_group: str
    strategy: str = "codedeploy"
    cluster: str = ""
    service: str = ""


def place_from_detail(fields: Detail) -> Place:
    """A Place: the names its strategy has are required, the others are empty."""
    strategy = optional_str(fields, "strategy", "detail") or "codedeploy"
    if strategy not in ("codedeploy", "ecs"):
        raise MalformedEvent("detail.strategy", f"must be codedeploy or ecs, got {strategy[:40]!r}")
    codedeploy = strategy == "codedeploy"
    names = {
        key: require_str(fields, key, "detail") if needed or fields.get(key) not in (None, "") else ""
        for key, needed in (
            ("application", codedeploy),
            ("deployment_group", codedeploy),
            ("cluster", not codedeploy),
            ("service", not codedeploy),
        )
    }
    return Place(environment=require_str(fields, "environment", "detail"), strategy=strategy, **names)
