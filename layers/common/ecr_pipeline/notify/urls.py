"""AWS console links for a message: the commit, the build, the image, the repository, the deployment."""

from __future__ import annotations

from urllib.parse import quote


def _console(region: str) -> str:
    return f"https://{region}.console.aws.amazon.com"


def commit_url(region: str, repository: str, commit: str) -> str:
    return f"{_console(region)}/codesuite/codecommit/repositories/{quote(repository)}/commit/{commit}?region={region}"


def build_url(region: str, account: str, build_id: str) -> str:
    project = build_id.partition(":")[0]
    return (
        f"{_console(region)}/codesuite/codebuild/{account}/projects/{quote(project)}"
        f"/build/{quote(build_id, safe='')}/?region={region}"
    )


def image_url(region: str, account: str, ecr_repository: str, digest: str) -> str:
    return (
        f"{_console(region)}/ecr/repositories/private/{account}/{quote(ecr_repository)}"
        f"/_/image/{quote(digest, safe='')}/details?region={region}"
    )


def ecr_repository_url(region: str, account: str, ecr_repository: str) -> str:
    return f"{_console(region)}/ecr/repositories/private/{account}/{quote(ecr_repository)}?region={region}"


def deployment_url(region: str, deployment_id: str) -> str:
    return f"{_console(region)}/codesuite/codedeploy/deployments/{quote(deployment_id)}?region={region}"
