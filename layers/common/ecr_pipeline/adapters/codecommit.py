"""AWS CodeCommit: the pushed commit and the files a push changed."""

from __future__ import annotations

from typing import Any, NamedTuple

from ecr_pipeline.adapters.clients import client
from ecr_pipeline.text import commit_line, person


class CommitInfo(NamedTuple):
    commit_id: str
    author: str  # cleaned, at most text.AUTHOR_LIMIT characters
    message: str  # the first line only, cleaned, at most text.MESSAGE_LIMIT characters


class CodeCommit:
    def __init__(self, codecommit_client: Any = None) -> None:
        self._client = codecommit_client or client("codecommit")

    def get_commit(self, repository: str, commit_id: str) -> CommitInfo:
        commit = self._client.get_commit(repositoryName=repository, commitId=commit_id)["commit"]
        author = commit.get("author") or {}
        # Cut here, once: the ledger item, every event and every message of the push carry these.
        return CommitInfo(
            commit_id=commit_id,
            author=person(author.get("name") or author.get("email") or ""),
            message=commit_line(commit.get("message") or ""),
        )

    def changed_files(self, repository: str, old_commit_id: str, commit_id: str) -> list[str]:
        """Every path added, modified, deleted or renamed (both names) between the two commits, all pages."""
        paths: list[str] = []
        request: dict[str, Any] = {
            "repositoryName": repository,
            "beforeCommitSpecifier": old_commit_id,
            "afterCommitSpecifier": commit_id,
        }
        while True:
            response = self._client.get_differences(**request)
            for difference in response.get("differences", []):
                for side in ("beforeBlob", "afterBlob"):
                    path = (difference.get(side) or {}).get("path")
                    if path and path not in paths:
                        paths.append(path)
            token = response.get("NextToken")
            if not token:
                return paths
            request["NextToken"] = token


def clone_url(region: str, repository: str) -> str:
    return f"https://git-codecommit.{region}.amazonaws.com/v1/repos/{repository}"
