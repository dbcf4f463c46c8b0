"""The reads of `ecr-pipeline status`: what the ledger and the services hold about a commit, read-only.

Only GetItem and Query on the ledger table, and Describe/List/Get/BatchGet calls on CodeBuild, ECR,
CodeCommit and CloudFormation: the story's command never writes. What it reads becomes the pure
facts of story.py.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from ecr_pipeline.adapters.ecr import Ecr
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.adapters.ledger_table import from_item, to_item
from ecr_pipeline.config import ImageConfig, PipelineConfig
from ecr_pipeline.core.naming import build_tag
from ecr_pipeline.core.scan_policy import finding_from_basic, finding_from_enhanced
from ecr_pipeline.core.tagging import promotion_tags
from ecr_pipeline.notify.notices import NoticeLedger
from ecr_pipeline.notify.urls import build_url
from ecr_pipeline.records import PushRecord
from ecr_pipeline.story import BuildFacts, CommitFacts, EnvironmentFacts, ImageFacts

# CodeBuild answers at most 100 builds per BatchGetBuilds; the listing is read newest first and stops at
# builds older than the commit's first push (none of its builds can start before it), or after this many.
_BUILDS_PER_BATCH = 100
_MAX_BUILDS_READ = 2000
# Clocks of CodeCommit's events and CodeBuild's start times may differ a little.
_CLOCK_SLACK = dt.timedelta(minutes=5)


class StoryClients(NamedTuple):
    dynamodb: Any
    ecr: Any
    codebuild: Any
    codecommit: Any


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    """The stack's outputs by name (DescribeStacks)."""
    answer = cloudformation.describe_stacks(StackName=stack)
    stacks = answer.get("Stacks") or [{}]
    return {str(item["OutputKey"]): str(item.get("OutputValue", "")) for item in stacks[0].get("Outputs") or []}


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, int | float):
        return dt.datetime.fromtimestamp(value, dt.UTC).isoformat().replace("+00:00", "Z")
    return None if value is None else str(value)


def _epoch(value: Any) -> float | None:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    return float(value) if isinstance(value, int | float) else None


def _variables(build: dict[str, Any]) -> dict[str, str]:
    return {
        str(item.get("name")): str(item.get("value", ""))
        for item in (build.get("environment") or {}).get("environmentVariables") or []
    }


class StoryReader:
    def __init__(
        self, config: PipelineConfig, ledger_table: str, clients: StoryClients, build_project: str | None = None
    ) -> None:
        self.config = config
        self.table = ledger_table
        self.clients = clients
        self.build_project = build_project
        self.ledger = Ledger(ledger_table, clients.dynamodb)
        self.notices = NoticeLedger(ledger_table, clients.dynamodb)

    # --- finding the commit ---------------------------------------------------------------------

    def repositories_with_commit(self, commit: str, repository: str | None = None) -> list[str]:
        """The configured repositories whose ledger records a push of `commit`."""
        names = [repository] if repository else sorted(self.config.repositories)
        return [name for name in names if self.ledger.pushes_of_commit(name, commit)]

    def branch_commit(self, repository: str, branch: str) -> str | None:
        """The branch's newest commit: CodeCommit's answer (the ledger holds a head only for windowed branches)."""
        try:
            answer = self.clients.codecommit.get_branch(repositoryName=repository, branchName=branch)
        except ClientError as error:
            if error.response["Error"]["Code"] in ("BranchDoesNotExistException", "RepositoryDoesNotExistException"):
                return self._ledger_branch_head(repository, branch)
            raise
        return str((answer.get("branch") or {}).get("commitId") or "") or None

    def _ledger_branch_head(self, repository: str, branch: str) -> str | None:
        values = self._get({"pk": f"REF#{repository}#branch#{branch}", "sk": "HEAD"})
        return None if values is None else str(values.get("commit") or "") or None

    def tag_commit(self, repository: str, git_tag: str) -> str | None:
        """The commit of a git tag, from the promotion tag its push gave (CodeCommit's API lists no tags)."""
        config = self.config.repository(repository)
        for image in config.images if config else ():
            push = PushRecord(repository, "tag", git_tag, "", "", "")
            for tag in promotion_tags(image.promote, config.default_branch if config else "", push)[:1]:
                values = self._get({"pk": f"TAG#{image.ecr_repository}#{tag}", "sk": "TAG"})
                if values and values.get("ref_type") == "tag" and values.get("ref_name") == git_tag:
                    return str(values["commit"])
        return None

    def digest_commit(self, image_digest: str) -> list[tuple[str, str]]:
        """(repository, commit) of each configured image with this digest in the ledger."""
        found = []
        for image in self.config.images():
            record = self.ledger.get_image(image.ecr_repository, image_digest)
            if record is not None and record.commit:
                found.append((record.codecommit_repository or image.codecommit_repository, record.commit))
        return list(dict.fromkeys(found))

    def environment(self, name: str) -> list[tuple[ImageConfig, EnvironmentFacts]]:
        """Each configured deploy target of this environment, with what the ledger holds of it."""
        return [
            (image, self._environment(image, target.environment, f"{target.cluster}/{target.service}"))
            for image in self.config.images()
            for target in image.deploy
            if target.environment == name
        ]

    # --- one commit -----------------------------------------------------------------------------

    def commit_facts(self, repository: str, commit: str) -> CommitFacts:
        pushes = tuple(self.ledger.pushes_of_commit(repository, commit))
        since = min((push.push_time for push in pushes), default=None)
        builds = self._builds(commit, since)
        config = self.config.repository(repository)
        images = tuple(self._image(image, commit, builds) for image in (config.images if config else ()))
        return CommitFacts(
            repository, commit, pushes, images, tuple(self.notices.notices_of_commit(repository, commit))
        )

    def _image(self, image: ImageConfig, commit: str, builds: list[dict[str, Any]]) -> ImageFacts:
        own = tuple(
            self._build(build)
            for build in builds
            if _variables(build).get("ECR_REPOSITORY_URI", "").partition("/")[2] == image.ecr_repository
        )
        environments = tuple(
            self._environment(image, target.environment, f"{target.cluster}/{target.service}")
            for target in image.deploy
        )
        found = self._ecr_image(image.ecr_repository, build_tag(commit))
        if found is None:
            return ImageFacts(image.ecr_repository, own, environments=environments)
        digest = str(found["imageDigest"])
        scan = Ecr(self.clients.ecr).scan_findings(image.ecr_repository, digest)
        findings = tuple(map(finding_from_basic, scan.findings)) + tuple(
            map(finding_from_enhanced, scan.enhanced_findings)
        )
        return ImageFacts(
            image.ecr_repository,
            own,
            digest,
            tuple(str(tag) for tag in found.get("imageTags") or []),
            _iso(found.get("imagePushedAt")),
            self.ledger.get_image(image.ecr_repository, digest),
            findings,
            environments,
        )

    def _environment(self, image: ImageConfig, environment: str, target: str) -> EnvironmentFacts:
        return EnvironmentFacts(
            environment,
            target,
            self.ledger.get_environment(image.ecr_repository, environment),
            self.ledger.get_serving(image.ecr_repository, environment),
            tuple(self.ledger.deployment_history(image.ecr_repository, environment)),
        )

    def _ecr_image(self, ecr_repository: str, tag: str) -> dict[str, Any] | None:
        try:
            answer = self.clients.ecr.describe_images(repositoryName=ecr_repository, imageIds=[{"imageTag": tag}])
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ImageNotFoundException", "RepositoryNotFoundException"):
                return None
            raise
        details = answer.get("imageDetails") or []
        return details[0] if details else None

    def _builds(self, commit: str, since: str | None) -> list[dict[str, Any]]:
        """The project's builds of `commit`, newest first (ListBuildsForProject, BatchGetBuilds)."""
        if not self.build_project or since is None:
            return []
        oldest = dt.datetime.fromisoformat(since.replace("Z", "+00:00")) - _CLOCK_SLACK
        found: list[dict[str, Any]] = []
        request: dict[str, Any] = {"projectName": self.build_project, "sortOrder": "DESCENDING"}
        read = 0
        while read < _MAX_BUILDS_READ:
            answer = self.clients.codebuild.list_builds_for_project(**request)
            ids = [str(item) for item in answer.get("ids") or []]
            reached_older = False
            for start in range(0, len(ids), _BUILDS_PER_BATCH):
                batch = self.clients.codebuild.batch_get_builds(ids=ids[start : start + _BUILDS_PER_BATCH])
                for build in batch.get("builds") or []:
                    started = _epoch(build.get("startTime"))
                    if started is not None and started < oldest.timestamp():
                        reached_older = True
                    elif commit in (build.get("sourceVersion"), build.get("resolvedSourceVersion")):
                        found.append(build)
                read += len(ids[start : start + _BUILDS_PER_BATCH])
                if reached_older:
                    return found
            if not answer.get("nextToken"):
                return found
            request["nextToken"] = answer["nextToken"]
        return found

    def _build(self, build: dict[str, Any]) -> BuildFacts:
        build_id = str(build.get("id", ""))
        started, ended = _epoch(build.get("startTime")), _epoch(build.get("endTime"))
        arn = str(build.get("arn") or "").split(":")
        console = build_url(arn[3], arn[4], build_id) if len(arn) > 4 else ""
        record = self.ledger.get_build(build_id)
        superseded_by = record.superseded_by if record else None
        newer = self.ledger.get_build(superseded_by) if superseded_by else None
        return BuildFacts(
            build_id=build_id,
            status=str(build.get("buildStatus", "")),
            ref=_variables(build).get("SOURCE_BRANCH", ""),
            started_at=_iso(build.get("startTime")),
            ended_at=_iso(build.get("endTime")),
            duration_seconds=None if started is None or ended is None else round(ended - started, 1),
            log_url=str((build.get("logs") or {}).get("deepLink") or ""),
            console_url=console,
            superseded_by=superseded_by,
            superseded_by_commit=newer.commit if newer else None,
        )

    def _get(self, key: dict[str, str]) -> dict[str, Any] | None:
        answer = self.clients.dynamodb.get_item(TableName=self.table, Key=to_item(key), ConsistentRead=True)
        return from_item(answer["Item"]) if "Item" in answer else None
