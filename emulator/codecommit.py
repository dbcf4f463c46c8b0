"""CodeCommit backed by real git: one bare repository per configured repository.

Emulated: moto has only Create/Get/DeleteRepository. Here a scenario commits in a work clone
and runs a real `git push`; the bare repository's post-receive hook records each ref the push
moved, and the emulator turns every one into a "CodeCommit Repository State Change" event.
The read APIs the functions call answer from git, in the shapes botocore expects.
"""

from __future__ import annotations

import base64
import os
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulator.front import ApiError
from emulator.template import ACCOUNT_ID, REGION

NULL_COMMIT = "0" * 40
_MODES = {"100644": "NORMAL", "100755": "EXECUTABLE", "120000": "SYMLINK"}
_HOOK = (
    "#!/bin/sh\n# Emulator: record every ref this push moved (old new ref), for the push events.\ncat >> pushes.log\n"
)


@dataclass(frozen=True)
class RefUpdate:
    """One ref a push moved, as git's post-receive hook reports it."""

    old: str
    new: str
    ref: str

    @property
    def ref_type(self) -> str:
        return "tag" if self.ref.startswith("refs/tags/") else "branch"

    @property
    def name(self) -> str:
        return self.ref.split("/", 2)[2]

    @property
    def action(self) -> str:
        if self.new == NULL_COMMIT:
            return "referenceDeleted"
        return "referenceCreated" if self.old == NULL_COMMIT else "referenceUpdated"


@dataclass(frozen=True)
class CommitSpec:
    """One commit to make: the files it writes (text or bytes), the paths it deletes, message, author, date."""

    files: Mapping[str, str | bytes]
    deletions: tuple[str, ...]
    message: str
    author: tuple[str, str]  # (name, email)
    date: str  # "<epoch> <zone>", as git takes it


class GitError(RuntimeError):
    """A git command failed; the message has its output."""


def _git(cwd: Path, *args: str, env: Mapping[str, str] | None = None, text_input: str | None = None) -> str:
    base_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(cwd),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
    }
    completed = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**base_env, **(env or {})},
        capture_output=True,
        text=True,
        input=text_input,
        check=False,
    )
    if completed.returncode != 0:
        raise GitError(f"git {' '.join(args)} failed: {completed.stderr.strip() or completed.stdout.strip()}")
    return completed.stdout


class GitRepository:
    """A CodeCommit repository: a bare git repository and a work clone that scenarios commit in."""

    def __init__(self, name: str, root: Path, default_branch: str) -> None:
        self.name = name
        self.default_branch = default_branch
        self.repository_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"codecommit:{name}"))
        self.bare = root / f"{name}.git"
        self.work = root / f"{name}-work"
        root.mkdir(parents=True, exist_ok=True)
        _git(root, "init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(self.bare))
        hook = self.bare / "hooks" / "post-receive"
        hook.write_text(_HOOK, encoding="utf-8")
        hook.chmod(0o755)
        _git(root, "init", "--quiet", f"--initial-branch={default_branch}", str(self.work))
        _git(self.work, "remote", "add", "origin", str(self.bare))
        self.arn = f"arn:aws:codecommit:{REGION}:{ACCOUNT_ID}:{name}"

    # --- what a developer does -------------------------------------------------------------

    def _take_pushes(self) -> list[RefUpdate]:
        spool = self.bare / "pushes.log"
        if not spool.exists():
            return []
        lines = spool.read_text(encoding="utf-8").splitlines()
        spool.unlink()
        updates = []
        for line in lines:
            old, new, ref = line.split(" ", 2)
            updates.append(RefUpdate(old, new, ref))
        return updates

    def branch_head(self, branch: str) -> str | None:
        try:
            return _git(self.bare, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}").strip()
        except GitError:
            return None

    def commit_and_push(
        self,
        branch: str,
        files: Mapping[str, str | bytes],
        deletions: list[str],
        message: str,
        author: tuple[str, str],
        date: str,
        start_from: str | None = None,
    ) -> tuple[str, list[RefUpdate]]:
        """Commit the files on `branch` (created from `start_from` or the default branch) and push it."""
        commits, updates = self.commits_and_push(
            branch, [CommitSpec(files, tuple(deletions), message, author, date)], start_from
        )
        return commits[-1], updates

    def commits_and_push(
        self, branch: str, commits: Sequence[CommitSpec], start_from: str | None = None
    ) -> tuple[list[str], list[RefUpdate]]:
        """Make the commits one after another on `branch`, then push them all with one `git push`."""
        head = self.branch_head(branch)
        base = head or (self.branch_head(start_from) if start_from else None) or self.branch_head(self.default_branch)
        _git(self.work, "fetch", "--quiet", "origin")
        if base:
            _git(self.work, "checkout", "--quiet", "--force", "-B", branch, base)
        else:
            _git(self.work, "checkout", "--quiet", "--orphan", branch)
        made = [self._commit(spec) for spec in commits]
        _git(self.work, "push", "--quiet", "origin", f"HEAD:refs/heads/{branch}")
        return made, self._take_pushes()

    def _commit(self, spec: CommitSpec) -> str:
        for path, content in spec.files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content, encoding="utf-8")
        for path in spec.deletions:
            _git(self.work, "rm", "--quiet", "-r", "--ignore-unmatch", "--", path)
        _git(self.work, "add", "--all")
        name, email = spec.author
        identity = {
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
            "GIT_AUTHOR_DATE": spec.date,
            "GIT_COMMITTER_DATE": spec.date,
        }
        commit_command = ("commit", "--quiet", "--allow-empty", "--no-verify", "-F", "-")
        _git(self.work, *commit_command, env=identity, text_input=spec.message)
        return _git(self.work, "rev-parse", "HEAD").strip()

    def move_branch(self, branch: str, target: str) -> tuple[str, bool, list[RefUpdate]]:
        """Point `branch` at `target` (a branch, tag or commit id) with a real push, forced unless a fast-forward.

        Returns the commit, whether the push was forced and the refs it moved (none when already there).
        """
        commit = self.resolve(target)
        head = self.branch_head(branch)
        forced = head is not None and not self.is_ancestor(head, commit)
        _git(self.work, "fetch", "--quiet", "origin", commit)
        force = ["--force"] if forced else []
        _git(self.work, "push", "--quiet", *force, "origin", f"{commit}:refs/heads/{branch}")
        return commit, forced, self._take_pushes()

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        try:
            _git(self.bare, "merge-base", "--is-ancestor", ancestor, descendant)
        except GitError:
            return False
        return True

    def push_tag(self, tag: str, target: str) -> tuple[str, list[RefUpdate]]:
        """Push a lightweight git tag on `target` (a branch name or a commit id)."""
        commit = self.resolve(target)
        _git(self.work, "fetch", "--quiet", "origin")
        _git(self.work, "tag", "--force", tag, commit)
        _git(self.work, "push", "--quiet", "--force", "origin", f"refs/tags/{tag}")
        return commit, self._take_pushes()

    def delete_branch(self, branch: str) -> list[RefUpdate]:
        _git(self.work, "push", "--quiet", "origin", "--delete", branch)
        return self._take_pushes()

    # --- what the API reads ----------------------------------------------------------------

    def resolve(self, specifier: str) -> str:
        """A commit id from a branch name, a tag name or a (full) commit id."""
        for candidate in (f"refs/heads/{specifier}", f"refs/tags/{specifier}", specifier):
            try:
                return _git(self.bare, "rev-parse", "--verify", "--quiet", f"{candidate}^{{commit}}").strip()
            except GitError:
                continue
        raise ApiError("CommitDoesNotExistException", f"Could not find commit {specifier} in repository {self.name}")

    def commit_info(self, commit_id: str) -> dict[str, Any]:
        resolved = self.resolve(commit_id)
        fields = _git(
            self.bare,
            "log",
            "-1",
            "--date=format:%z",
            "--format=%H%x00%T%x00%P%x00%an%x00%ae%x00%at %ad%x00%cn%x00%ce%x00%ct %cd%x00%B",
            resolved,
        ).split("\x00")
        commit, tree, parents, an, ae, ad, cn, ce, cd, message = fields[:10]
        return {
            "commitId": commit,
            "treeId": tree,
            "parents": parents.split() if parents else [],
            "message": message.rstrip("\n") + "\n",
            "author": {"name": an, "email": ae, "date": ad},
            "committer": {"name": cn, "email": ce, "date": cd},
            "additionalData": "",
        }

    def differences(self, before: str | None, after: str) -> list[dict[str, Any]]:
        after_commit = self.resolve(after)
        args = ["diff-tree", "-r", "-z", "--no-renames", "--raw", "--no-commit-id"]
        if before:
            output = _git(self.bare, *args, self.resolve(before), after_commit)
        else:
            output = _git(self.bare, *args, "--root", after_commit)
        fields = output.split("\x00")
        differences = []
        index = 0
        while index + 1 < len(fields) and fields[index].startswith(":"):
            old_mode, new_mode, old_blob, new_blob, change = fields[index][1:].split(" ")
            path = fields[index + 1]
            index += 2
            difference: dict[str, Any] = {"changeType": change[0] if change[0] in "AMD" else "M"}
            if change[0] != "A":
                difference["beforeBlob"] = {"blobId": old_blob, "path": path, "mode": old_mode}
            if change[0] != "D":
                difference["afterBlob"] = {"blobId": new_blob, "path": path, "mode": new_mode}
            differences.append(difference)
        return differences

    def file(self, commit_specifier: str, path: str) -> dict[str, Any]:
        commit = self.resolve(commit_specifier)
        listing = _git(self.bare, "ls-tree", "-z", commit, "--", path.strip("/")).split("\x00")[0]
        if not listing:
            raise ApiError("FileDoesNotExistException", f"The file {path} does not exist in commit {commit}")
        meta, _, _ = listing.partition("\t")
        mode, kind, blob = meta.split(" ")
        if kind != "blob":
            raise ApiError("FileDoesNotExistException", f"{path} is a folder, not a file, in commit {commit}")
        content = self.blob(blob)
        return {
            "commitId": commit,
            "blobId": blob,
            "filePath": path.strip("/"),
            "fileMode": _MODES.get(mode, "NORMAL"),
            "fileSize": len(content),
            "fileContent": base64.b64encode(content).decode(),
        }

    def blob(self, blob_id: str) -> bytes:
        completed = subprocess.run(
            ["git", "cat-file", "blob", blob_id], cwd=self.bare, capture_output=True, check=False
        )
        if completed.returncode != 0:
            raise ApiError("BlobIdDoesNotExistException", f"Blob {blob_id} does not exist")
        return completed.stdout

    def blob_at(self, commit: str, path: str) -> bytes | None:
        """A file's content in a commit (path from the source root, as `docker build --file`), or None."""
        listing = _git(self.bare, "ls-tree", "-z", commit, "--", path.strip("/").removeprefix("./")).split("\x00")[0]
        if not listing:
            return None
        meta = listing.partition("\t")[0].split(" ")
        return self.blob(meta[2]) if meta[1] == "blob" else None

    def branches(self) -> list[str]:
        output = _git(self.bare, "for-each-ref", "--format=%(refname:strip=2)", "refs/heads/")
        return sorted(output.split())

    def metadata(self) -> dict[str, Any]:
        return {
            "accountId": ACCOUNT_ID,
            "repositoryId": self.repository_id,
            "repositoryName": self.name,
            "defaultBranch": self.default_branch,
            "cloneUrlHttp": f"https://git-codecommit.{REGION}.amazonaws.com/v1/repos/{self.name}",
            "cloneUrlSsh": f"ssh://git-codecommit.{REGION}.amazonaws.com/v1/repos/{self.name}",
            "Arn": self.arn,
        }


class CodeCommitApi:
    """The CodeCommit read API the functions use, answered from the git repositories."""

    def __init__(self, repositories: dict[str, GitRepository]) -> None:
        self.repositories = repositories

    def _repository(self, params: dict[str, Any]) -> GitRepository:
        name = params.get("repositoryName")
        if not name:
            raise ApiError("RepositoryNameRequiredException", "A repository name is required, but was not specified.")
        repository = self.repositories.get(str(name))
        if repository is None:
            raise ApiError("RepositoryDoesNotExistException", f"{name} does not exist")
        return repository

    def __call__(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            raise ApiError("InvalidActionException", f"the emulator's CodeCommit does not implement {operation}")
        result: dict[str, Any] = handler(params)
        return result

    def _op_GetRepository(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"repositoryMetadata": self._repository(params).metadata()}

    def _op_GetBranch(self, params: dict[str, Any]) -> dict[str, Any]:
        repository = self._repository(params)
        branch = str(params.get("branchName", ""))
        head = repository.branch_head(branch)
        if head is None:
            raise ApiError("BranchDoesNotExistException", f"Branch {branch} does not exist")
        return {"branch": {"branchName": branch, "commitId": head}}

    def _op_ListBranches(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"branches": self._repository(params).branches()}

    def _op_GetCommit(self, params: dict[str, Any]) -> dict[str, Any]:
        repository = self._repository(params)
        commit_id = params.get("commitId")
        if not commit_id:
            raise ApiError("CommitIdRequiredException", "A commit ID is required, but was not specified.")
        return {"commit": repository.commit_info(str(commit_id))}

    def _op_BatchGetCommits(self, params: dict[str, Any]) -> dict[str, Any]:
        repository = self._repository(params)
        commits, errors = [], []
        for commit_id in params.get("commitIds") or []:
            try:
                commits.append(repository.commit_info(str(commit_id)))
            except ApiError as error:
                errors.append({"commitId": commit_id, "errorCode": error.code, "errorMessage": error.message})
        return {"commits": commits, "errors": errors}

    def _op_GetDifferences(self, params: dict[str, Any]) -> dict[str, Any]:
        repository = self._repository(params)
        after = params.get("afterCommitSpecifier")
        if not after:
            raise ApiError("CommitRequiredException", "A commit specifier is required, but was not specified.")
        before = params.get("beforeCommitSpecifier")
        differences = repository.differences(str(before) if before else None, str(after))
        for key, side in (("beforePath", "beforeBlob"), ("afterPath", "afterBlob")):
            prefix = str(params.get(key) or "").strip("/")
            if prefix:
                differences = [
                    item
                    for item in differences
                    if str(
                        (item.get(side) or item.get("afterBlob") or item.get("beforeBlob") or {}).get("path", "")
                    ).startswith(prefix)
                ]
        page_size = int(params.get("MaxResults") or 100)
        if page_size < 1:
            raise ApiError("InvalidMaxResultsException", "MaxResults must be at least 1")
        start = 0
        token = params.get("NextToken")
        if token:
            try:
                start = int(base64.b64decode(str(token)).decode())
            except ValueError:
                raise ApiError("InvalidContinuationTokenException", "The continuation token is not valid.") from None
        page = differences[start : start + page_size]
        answer: dict[str, Any] = {"differences": page}
        if start + page_size < len(differences):
            answer["NextToken"] = base64.b64encode(str(start + page_size).encode()).decode()
        return answer

    def _op_GetFile(self, params: dict[str, Any]) -> dict[str, Any]:
        repository = self._repository(params)
        path = params.get("filePath")
        if not path:
            raise ApiError("PathRequiredException", "The folderPath for a location cannot be null.")
        return repository.file(str(params.get("commitSpecifier") or repository.default_branch), str(path))

    def _op_GetBlob(self, params: dict[str, Any]) -> dict[str, Any]:
        repository = self._repository(params)
        return {"content": base64.b64encode(repository.blob(str(params.get("blobId", "")))).decode()}
