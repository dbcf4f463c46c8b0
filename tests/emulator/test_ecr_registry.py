"""ECR's registry front: each registry request is the ECR action IAM decides, tokens are ECR's, other hosts refused."""

from __future__ import annotations

import base64
import http.client
import json
import time
from collections.abc import Iterator

import pytest

from emulator.ecr_registry import ECR_HOST, EcrRegistryFront, EcrTokens, classify, manifest_digest


@pytest.mark.parametrize(
    ("method", "path", "action", "repository"),
    [
        ("GET", "/v2/", None, None),
        ("HEAD", "/v2/team/app/manifests/latest", "ecr:BatchGetImage", "team/app"),
        ("PUT", "/v2/team/app/manifests/sha-1", "ecr:PutImage", "team/app"),
        ("HEAD", "/v2/app/blobs/sha256:abc", "ecr:BatchCheckLayerAvailability", "app"),
        ("GET", "/v2/app/blobs/sha256:abc", "ecr:GetDownloadUrlForLayer", "app"),
        ("POST", "/v2/team/app/blobs/uploads/", "ecr:InitiateLayerUpload", "team/app"),
        ("PATCH", "/v2/team/app/blobs/uploads/4f1c", "ecr:UploadLayerPart", "team/app"),
        ("PUT", "/v2/team/app/blobs/uploads/4f1c", "ecr:CompleteLayerUpload", "team/app"),
        ("GET", "/v2/team/app/tags/list", "ecr:ListImages", "team/app"),
        ("DELETE", "/v2/app/blobs/sha256:abc", None, "app"),
    ],
)
def test_each_registry_request_is_one_ecr_action(
    method: str, path: str, action: str | None, repository: str | None
) -> None:
    request = classify(method, path)

    assert request is not None
    assert (request.action, request.repository) == (action, repository)


def test_a_path_outside_the_registry_api_is_none() -> None:
    assert classify("GET", "/index.html") is None


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_a_token_names_the_principal_that_asked_for_it() -> None:
    tokens = EcrTokens()
    issued = tokens.issue("ImageBuildRole")
    user, _, password = base64.b64decode(issued["authorizationToken"]).decode().partition(":")

    assert user == "AWS"
    assert issued["proxyEndpoint"] == f"https://{ECR_HOST}"
    assert 11.9 * 3600 < issued["expiresAt"] - time.time() <= 12 * 3600
    assert tokens.principal_of(_basic("AWS", password)) == "ImageBuildRole"
    assert tokens.principal_of(_basic("admin", password)) is None
    assert tokens.principal_of(_basic("AWS", "guessed")) is None
    assert tokens.principal_of("Bearer x") is None
    assert tokens.principal_of(None) is None


def test_an_expired_token_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = EcrTokens()
    password = base64.b64decode(tokens.issue("developer")["authorizationToken"]).decode().partition(":")[2]
    later = time.time() + 12 * 3600 + 1
    monkeypatch.setattr(time, "time", lambda: later)

    assert tokens.principal_of(_basic("AWS", password)) is None


def test_a_manifest_digest_is_the_sha256_of_its_bytes() -> None:
    assert manifest_digest(b"{}") == "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


class _Front:
    """A registry front whose backend is never reached: only its own answers are tested here."""

    def __init__(self) -> None:
        self.tokens = EcrTokens()
        self.denials: dict[str, str] = {}
        self.front = EcrRegistryFront(
            ("127.0.0.1", 9),
            ("emulator", "secret"),
            self.tokens,
            lambda principal, action, resource: self.denials.get(action),
            lambda repository: repository == "team/app",
            lambda *arguments: None,
            lambda *arguments: None,
        ).start()

    def ask(self, method: str, target: str, authorization: str | None = None) -> tuple[int, dict[str, object]]:
        host, port = self.front.address.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        headers = {"Host": ECR_HOST, **({"Authorization": authorization} if authorization else {})}
        try:
            connection.request(method, target, headers=headers)
            response = connection.getresponse()
            body = response.read()
            return response.status, json.loads(body) if body.startswith(b"{") else {"text": body.decode()}
        finally:
            connection.close()

    def password(self, principal: str) -> str:
        return base64.b64decode(self.tokens.issue(principal)["authorizationToken"]).decode().partition(":")[2]


@pytest.fixture
def front() -> Iterator[_Front]:
    started = _Front()
    yield started
    started.front.stop()


def test_no_credentials_is_unauthorized(front: _Front) -> None:
    status, body = front.ask("GET", "/v2/team/app/tags/list")

    assert status == 401
    assert body["errors"] == [{"code": "UNAUTHORIZED", "message": "no basic auth credentials", "detail": None}]


def test_a_denied_action_is_docker_denied_with_iam_words(front: _Front) -> None:
    front.denials["ecr:InitiateLayerUpload"] = "User: x is not authorized to perform: ecr:InitiateLayerUpload"

    status, body = front.ask("POST", "/v2/team/app/blobs/uploads/", _basic("AWS", front.password("ImageBuildRole")))

    assert status == 403
    assert body["errors"][0]["code"] == "DENIED"
    assert "ecr:InitiateLayerUpload" in str(body["errors"][0]["message"])


def test_a_repository_ecr_lacks_is_name_unknown(front: _Front) -> None:
    status, body = front.ask("GET", "/v2/other/app/tags/list", _basic("AWS", front.password("developer")))

    assert status == 404
    assert body["errors"][0]["code"] == "NAME_UNKNOWN"
    assert "'other/app' does not exist" in str(body["errors"][0]["message"])


def test_another_registry_host_is_refused_and_remembered(front: _Front) -> None:
    status, body = front.ask("GET", "http://registry-1.docker.io/v2/library/busybox/manifests/latest")

    assert status == 403
    assert "refused: registry-1.docker.io" in str(body["errors"][0]["message"])
    assert front.front.refused_hosts == ["registry-1.docker.io"]
