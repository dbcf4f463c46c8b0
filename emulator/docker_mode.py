"""Docker mode (`--builds docker`): a real engine and registry, kept as one thing with emulated ECR.

`DockerMode` starts, in the run's work directory, the distribution registry, ECR's registry front
(emulator.ecr_registry: the host `<account>.dkr.ecr.<region>.amazonaws.com` on loopback) and a
dockerd of its own that reaches registries only through that front. It keeps the registry and
moto's ECR API in step both ways:
- a manifest docker pushes is put into ECR (moto's PutImage, through the emulator's front as the
  pusher, so IAM and tag immutability are ECR's and the PUSH event follows) with the registry's
  digest and media type, before the registry stores it;
- a PutImage made through the API (tag_image's retags) is written to the registry under its tag,
  so `docker pull <repository>:latest` gets the promoted image.
GetAuthorizationToken is answered here with a password the registry front accepts, bound to the
principal that asked. Base images the internet would serve are local stand-ins (emulator.base_images).
"""

from __future__ import annotations

import base64
import http.client
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from emulator.base_images import default_cache_dir, ensure_base_images
from emulator.docker_engine import DockerEngine, Registry
from emulator.ecr_registry import ECR_HOST, EcrRegistryFront, EcrTokens, Refusal, manifest_digest
from emulator.front import ApiCall
from emulator.permissions import Permissions

# The base images the demo (and the scenarios) build FROM, made locally at start.
DEFAULT_BASE_IMAGES = ("public.ecr.aws/docker/library/python:3.12-slim",)

# What ECR's PutImage errors are to docker: (status, distribution error code).
_PUT_REFUSALS = {
    "AccessDeniedException": (403, "DENIED"),
    "ImageTagAlreadyExistsException": (400, "TAG_INVALID"),
    "RepositoryNotFoundException": (404, "NAME_UNKNOWN"),
    "InvalidParameterException": (400, "MANIFEST_INVALID"),
    "LimitExceededException": (429, "TOOMANYREQUESTS"),
}


@dataclass
class DockerMode:
    """The engine, the registry and the registry front of one run; `aws(service, caller=...)` is the emulator's."""

    work_dir: Path
    permissions: Permissions
    aws: Callable[..., Any]
    warn: Callable[[str], None]
    base_images: tuple[str, ...] = DEFAULT_BASE_IMAGES
    cache_dir: Path = field(default_factory=default_cache_dir)
    tokens: EcrTokens = field(default_factory=EcrTokens)
    registry: Registry | None = None
    front: EcrRegistryFront | None = None
    engine: DockerEngine | None = None
    stand_ins: list[str] = field(default_factory=list)
    # (repository, digest) of manifests arriving from docker: their PutImage must not be written back.
    _arriving: set[tuple[str, str]] = field(default_factory=set)
    _known_repositories: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> DockerMode:
        self.registry = Registry(self.work_dir).start()
        self.front = EcrRegistryFront(
            ("127.0.0.1", self.registry.port),
            self.registry.credentials,
            self.tokens,
            self.permissions.authorize,
            self._repository_exists,
            self._on_manifest,
            self._forget,
        ).start()
        self.engine = DockerEngine(
            self.work_dir, proxy=self.front.proxy_url, trusted_certificates=self.front.authority_pem
        )
        self.engine.start()
        self.stand_ins = ensure_base_images(self.engine, self.base_images, self.cache_dir)
        return self

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.stop()
        if self.front is not None:
            self.front.stop()
        if self.registry is not None:
            self.registry.stop()

    def login(self, principal: str, engine: DockerEngine | None = None, config_dir: Path | None = None) -> None:
        """`docker login` to ECR's host with a token issued to `principal` (ECS's agent pulls this way)."""
        engine = engine or self.engine
        assert engine is not None
        password = self.tokens.issue(principal)["authorizationToken"]
        secret = base64.b64decode(password).decode().partition(":")[2]
        engine.run("login", "--username", "AWS", "--password-stdin", ECR_HOST, stdin=secret)

    # --- ECR's API side ----------------------------------------------------------------------

    def get_authorization_token(self, call: ApiCall) -> dict[str, Any]:
        """ECR's GetAuthorizationToken (IAM has allowed it by now): a token for the calling principal."""
        return {"authorizationData": [self.tokens.issue(call.caller)]}

    def observe(self, call: ApiCall) -> None:
        """A PutImage through the API (a retag): the registry gets the same manifest under the tag."""
        if call.service != "ecr" or call.operation != "PutImage" or not call.succeeded:
            return
        manifest = str(call.params.get("imageManifest") or "").encode()
        repository = str(call.params.get("repositoryName") or "")
        tag = call.params.get("imageTag")
        with self._lock:
            if (repository, manifest_digest(manifest)) in self._arriving:
                return
        if not tag or not manifest:
            return
        media_type = str(call.params.get("imageManifestMediaType") or "") or str(
            json.loads(manifest).get("mediaType") or ""
        )
        status, _, answer = self._registry(
            "PUT", f"/v2/{repository}/manifests/{tag}", {"Content-Type": media_type}, manifest
        )
        if status >= 300:
            self.warn(
                f"registry: {repository}:{tag} is in ECR's API but not in the registry ({status}: {answer[:200]!r});"
                " an image pushed through the API alone has no layers to pull"
            )

    def _registry(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, str], bytes]:
        """One request to the registry itself, with its own credentials: status, headers, body."""
        assert self.registry is not None
        connection = http.client.HTTPConnection("127.0.0.1", self.registry.port, timeout=30)
        headers = {**headers, "Host": ECR_HOST, "Authorization": self._registry_authorization()}
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def _registry_authorization(self) -> str:
        assert self.registry is not None
        user, password = self.registry.credentials
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    # --- the registry front's callbacks -----------------------------------------------------------

    def _repository_exists(self, name: str) -> bool:
        with self._lock:
            if name in self._known_repositories:
                return True
        try:
            self.aws("ecr", direct=True).describe_repositories(repositoryNames=[name])
        except ClientError:
            return False
        with self._lock:
            self._known_repositories.add(name)
        return True

    def _on_manifest(
        self, principal: str, repository: str, reference: str, manifest: bytes, media_type: str
    ) -> Refusal | None:
        digest = manifest_digest(manifest)
        params: dict[str, Any] = {
            "repositoryName": repository,
            "imageManifest": manifest.decode(),
            "imageManifestMediaType": media_type,
            "imageDigest": digest,
        }
        if not reference.startswith("sha256:"):
            params["imageTag"] = reference
        with self._lock:
            self._arriving.add((repository, digest))
        try:
            self.aws("ecr", caller=principal).put_image(**params)
        except ClientError as error:
            code = error.response["Error"]["Code"]
            if code == "ImageAlreadyExistsException":
                return None  # the same image under the same tag again: docker's push succeeds
            status, registry_code = _PUT_REFUSALS.get(code, (500, "UNKNOWN"))
            return Refusal(status, registry_code, str(error.response["Error"].get("Message") or code))
        finally:
            with self._lock:
                self._arriving.discard((repository, digest))
        return None

    def _forget(self, repository: str, reference: str, digest: str) -> None:
        """The registry refused a manifest ECR's API had taken: take it back out of the API."""
        image_id = {"imageDigest": digest} if reference.startswith("sha256:") else {"imageTag": reference}
        self.aws("ecr", direct=True).batch_delete_image(repositoryName=repository, imageIds=[image_id])
        self.warn(f"registry refused the manifest {repository}:{reference} ({digest[:19]}); removed from ECR's API")

    # --- reading the registry (reports, tests) ------------------------------------------------------

    def registry_digest(self, repository: str, tag: str) -> str | None:
        """The digest the registry holds for a tag (its Docker-Content-Digest), None when it has none."""
        accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
        status, headers, _ = self._registry("HEAD", f"/v2/{repository}/manifests/{tag}", {"Accept": accept})
        return headers.get("Docker-Content-Digest") if status == 200 else None
