"""AWS console links for a message: the commit, the build, the image, the repository, the deployment
(CodeDeploy's, or the ECS service's deployments)."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit


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


def ecs_deployments_url(region: str, cluster: str, service: str) -> str:
    """The ECS service's deployments page, which lists the deployment with its state and rollback."""
    return (
        f"{_console(region)}/ecs/v2/clusters/{quote(cluster, safe='')}"
        f"/services/{quote(service, safe='')}/deployments?region={region}"
    )


# Links in messages go to the AWS console only: an event (a forged one included) cannot point a
# reader's click anywhere else. pipeline.yaml names no other host today.
_CONSOLE_HOST = re.compile(r"(?:[a-z0-9-]{1,63}\.)?console\.aws\.amazon\.com")
_UNSAFE_IN_URL = re.compile(r"[\s<>|\\\"'`\x00-\x1f\x7f]")


def is_console_url(url: str, extra_hosts: frozenset[str] = frozenset()) -> bool:
    """Whether `url` is an https link to the AWS console (or one of `extra_hosts`), safe to render as a link."""
    if not url.startswith("https://") or _UNSAFE_IN_URL.search(url):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    # userinfo ("https://console.aws.amazon.com@evil.example/") and ports are never part of a console link.
    if parts.username is not None or parts.password is not None or port is not None:
        return False
    host = parts.netloc.lower()
    return bool(_CONSOLE_HOST.fullmatch(host)) or host in extra_hosts
