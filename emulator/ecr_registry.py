"""ECR's data plane in docker mode: the registry host `<account>.dkr.ecr.<region>.amazonaws.com`, on loopback.

dockerd is started with this front as its HTTPS proxy, trusting only the run's own certificate
authority, so image references keep ECR's real names (`docker pull <account>.dkr.ecr.<region>
.amazonaws.com/<repo>:latest`) and nothing resolves a name outside the machine: a request for any
other host is refused here, naming the host (the buildspec pulls nothing from Docker Hub).

Emulated, as ECR does it:
- authentication is HTTP Basic with user `AWS` and a password issued by GetAuthorizationToken
  (`EcrTokens`), valid 12 hours and bound to the principal that asked for it;
- every request is authorised as that principal for the ECR action it stands for (a layer upload
  is ecr:InitiateLayerUpload, a manifest push ecr:PutImage, a pull ecr:BatchGetImage and
  ecr:GetDownloadUrlForLayer); a refusal is docker's `denied: <IAM's message>`;
- a repository ECR does not have is `name unknown`, a manifest push is refused by ECR's own
  rules (immutable tags) before the registry stores it: `on_manifest` puts the very manifest in
  ECR's API (moto) first, with its digest, so PUSH events follow as on AWS.
The storage behind it is the CNCF distribution registry (emulator.docker_engine.Registry), which
this front reaches with the registry's own credentials.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import json
import re
import secrets
import ssl
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from cryptography.x509.oid import NameOID

from emulator.template import ACCOUNT_ID, REGION

ECR_HOST = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"
TOKEN_HOURS = 12
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "transfer-encoding",
    "content-length",
    "authorization",
    "te",
    "upgrade",
}
_ROUTES = (
    ("ping", re.compile(r"^/v2/?$")),
    ("catalog", re.compile(r"^/v2/_catalog$")),
    ("manifests", re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<reference>[^/]+)$")),
    ("uploads", re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<reference>[^/]*)$")),
    ("blobs", re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<reference>[^/]+)$")),
    ("tags", re.compile(r"^/v2/(?P<name>.+)/tags/list$")),
)
# (route, method) -> the ECR action the request stands for.
_ACTIONS = {
    ("catalog", "GET"): "ecr:DescribeRepositories",
    ("manifests", "GET"): "ecr:BatchGetImage",
    ("manifests", "HEAD"): "ecr:BatchGetImage",
    ("manifests", "PUT"): "ecr:PutImage",
    ("manifests", "DELETE"): "ecr:BatchDeleteImage",
    ("blobs", "GET"): "ecr:GetDownloadUrlForLayer",
    ("blobs", "HEAD"): "ecr:BatchCheckLayerAvailability",
    ("uploads", "POST"): "ecr:InitiateLayerUpload",
    ("uploads", "PATCH"): "ecr:UploadLayerPart",
    ("uploads", "GET"): "ecr:UploadLayerPart",
    ("uploads", "PUT"): "ecr:CompleteLayerUpload",
    ("uploads", "DELETE"): "ecr:UploadLayerPart",
    ("tags", "GET"): "ecr:ListImages",
}


@dataclass(frozen=True)
class RegistryRequest:
    """What a registry API request asks of ECR: the action and the repository (None for the ping)."""

    route: str
    action: str | None
    repository: str | None
    reference: str | None


def classify(method: str, path: str) -> RegistryRequest | None:
    """The ECR action of a registry API call, or None for a path that is not the registry API."""
    for route, pattern in _ROUTES:
        match = pattern.match(path)
        if match is None:
            continue
        groups = match.groupdict()
        return RegistryRequest(route, _ACTIONS.get((route, method)), groups.get("name"), groups.get("reference"))
    return None


def repository_arn(repository: str) -> str:
    return f"arn:aws:ecr:{REGION}:{ACCOUNT_ID}:repository/{repository}"


class EcrTokens:
    """GetAuthorizationToken's passwords: each bound to the principal that asked, valid for 12 hours."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._issued: dict[str, tuple[str, float]] = {}

    def issue(self, principal: str) -> dict[str, Any]:
        """An authorizationData entry, as ECR answers it."""
        password = secrets.token_urlsafe(48)
        expires = time.time() + TOKEN_HOURS * 3600
        with self._lock:
            self._issued[password] = (principal, expires)
        return {
            "authorizationToken": base64.b64encode(f"AWS:{password}".encode()).decode(),
            "expiresAt": expires,
            "proxyEndpoint": f"https://{ECR_HOST}",
        }

    def principal_of(self, authorization: str | None) -> str | None:
        """The principal behind a `Basic` Authorization header, or None when it is no valid token."""
        if not authorization or not authorization.startswith("Basic "):
            return None
        try:
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        with self._lock:
            issued = self._issued.get(password)
        if user != "AWS" or issued is None or issued[1] < time.time():
            return None
        return issued[0]


@dataclass(frozen=True)
class Refusal:
    """A registry error answer: HTTP status, the distribution error code, and the message docker prints."""

    status: int
    code: str
    message: str


# authorize(principal, action, repository ARN or "*") -> IAM's denial message, or None when allowed.
Authorize = Callable[[str, str, str], str | None]
# on_manifest(principal, repository, reference, manifest, media type) -> a refusal, or None once ECR has it.
OnManifest = Callable[[str, str, str, bytes, str], Refusal | None]
# Undo an on_manifest whose manifest the registry then refused: (repository, reference, digest).
Forget = Callable[[str, str, str], None]


def manifest_digest(manifest: bytes) -> str:
    return "sha256:" + hashlib.sha256(manifest).hexdigest()


class EcrRegistryFront:
    """The proxy dockerd and the emulator's clients use for ECR's registry host."""

    def __init__(
        self,
        backend: tuple[str, int],
        backend_credentials: tuple[str, str],
        tokens: EcrTokens,
        authorize: Authorize,
        repository_exists: Callable[[str], bool],
        on_manifest: OnManifest,
        forget: Forget,
    ) -> None:
        self._backend = backend
        user, password = backend_credentials
        self._backend_authorization = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.tokens = tokens
        self._authorize = authorize
        self._repository_exists = repository_exists
        self._on_manifest = on_manifest
        self._forget = forget
        # Requests refused for a host that is not ECR's: what a build tried to reach.
        self.refused_hosts: list[str] = []
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the registry keeps its own log."""

            def do_CONNECT(self) -> None:
                front._tunnel(self, Handler)

            def do_GET(self) -> None:
                front._handle(self)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._tls, self.authority_pem = _tls_context(ECR_HOST)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    @property
    def proxy_url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> EcrRegistryFront:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()

    # --- one request ------------------------------------------------------------------------

    def _tunnel(self, request: BaseHTTPRequestHandler, handler: type[BaseHTTPRequestHandler]) -> None:
        """HTTPS through the proxy (CONNECT): for ECR's host the tunnel ends here, in TLS with a certificate
        of the run's own authority; any other host is refused, so nothing leaves the machine."""
        host = request.path.rsplit(":", 1)[0]
        if host != ECR_HOST:
            self.refused_hosts.append(host)
            body = f"the emulator reaches no host but {ECR_HOST}; refused: {host}\n".encode()
            request.send_response(403)
            request.send_header("Content-Type", "text/plain")
            request.send_header("Content-Length", str(len(body)))
            request.send_header("Connection", "close")
            request.end_headers()
            request.wfile.write(body)
            request.close_connection = True
            return
        request.send_response(200, "Connection Established")
        request.end_headers()
        request.wfile.flush()
        try:
            secure = self._tls.wrap_socket(request.connection, server_side=True)
        except (ssl.SSLError, OSError):
            request.close_connection = True
            return
        try:
            # The requests inside the tunnel are served like the proxy's own, on the TLS socket.
            handler(secure, request.client_address, self._server)
        finally:
            with contextlib.suppress(OSError):
                secure.close()
        request.close_connection = True

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = _read_body(request)
        target = urlsplit(request.path)
        host = target.netloc or request.headers.get("Host", "")
        path, query = target.path, target.query
        if target.netloc and host != ECR_HOST:
            self.refused_hosts.append(host)
            _error(request, 403, "DENIED", f"the emulator reaches no registry but {ECR_HOST}; refused: {host}")
            return
        classified = classify(request.command, path)
        if classified is None:
            _error(request, 404, "UNSUPPORTED", f"not a registry API path: {path}")
            return
        principal = self.tokens.principal_of(request.headers.get("Authorization"))
        if principal is None:
            message = (
                "Your authorization token has expired. Reauthenticate and try again."
                if request.headers.get("Authorization")
                else "no basic auth credentials"
            )
            _error(request, 401, "DENIED" if request.headers.get("Authorization") else "UNAUTHORIZED", message)
            return
        if classified.route == "ping":
            self._forward(request, "GET" if request.command != "HEAD" else "HEAD", path, query, body)
            return
        if classified.action is None:
            _error(request, 405, "UNSUPPORTED", f"{request.command} {path} is not supported by ECR")
            return
        resource = repository_arn(classified.repository) if classified.repository else "*"
        denial = self._authorize(principal, classified.action, resource)
        if denial is not None:
            _error(request, 403, "DENIED", denial)
            return
        if classified.repository is not None and not self._repository_exists(classified.repository):
            _error(
                request,
                404,
                "NAME_UNKNOWN",
                f"The repository with name '{classified.repository}' does not exist"
                f" in the registry with id '{ACCOUNT_ID}'",
            )
            return
        if classified.route == "uploads" and request.command == "POST":
            # ECR mounts no blob across repositories: the upload starts in this repository.
            query = urlencode([(key, value) for key, value in parse_qsl(query) if key not in ("mount", "from")])
        if classified.route == "manifests" and request.command == "PUT":
            self._put_manifest(request, principal, classified, path, query, body)
            return
        self._forward(request, request.command, path, query, body)

    def _put_manifest(
        self,
        request: BaseHTTPRequestHandler,
        principal: str,
        classified: RegistryRequest,
        path: str,
        query: str,
        body: bytes,
    ) -> None:
        assert classified.repository is not None and classified.reference is not None
        media_type = (request.headers.get("Content-Type") or "").split(";", 1)[0].strip()
        if media_type not in MANIFEST_TYPES:
            _error(request, 400, "MANIFEST_INVALID", f"unsupported manifest media type {media_type!r}")
            return
        refusal = self._on_manifest(principal, classified.repository, classified.reference, body, media_type)
        if refusal is not None:
            _error(request, refusal.status, refusal.code, refusal.message)
            return
        status = self._forward(request, "PUT", path, query, body)
        if status >= 300:
            self._forget(classified.repository, classified.reference, manifest_digest(body))

    def _forward(self, request: BaseHTTPRequestHandler, method: str, path: str, query: str, body: bytes) -> int:
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            if name.lower() not in _HOP_BY_HOP:
                # A header sent several times (docker's Accept list) is one comma-separated header.
                headers[name] = f"{headers[name]}, {value}" if name in headers else value
        headers["Authorization"] = self._backend_authorization
        headers["Host"] = request.headers.get("Host") or ECR_HOST
        # The registry writes its upload URLs (Location) for the scheme the client used.
        headers["X-Forwarded-Proto"] = "https" if isinstance(request.connection, ssl.SSLSocket) else "http"
        headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(*self._backend, timeout=300)
        try:
            connection.request(method, path + (f"?{query}" if query else ""), body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            response_headers = response.getheaders()
            status = response.status
        finally:
            connection.close()
        request.send_response(status)
        length = str(len(answer))
        for name, value in response_headers:
            lowered = name.lower()
            if lowered == "content-length":
                # A HEAD answer says the blob's length without sending it.
                length = value if method == "HEAD" else length
            elif lowered not in _HOP_BY_HOP and lowered not in ("server", "date"):
                request.send_header(name, value)
        request.send_header("Content-Length", length)
        request.end_headers()
        if method != "HEAD":
            request.wfile.write(answer)
        return status


def _certificate(
    subject: x509.Name, key: ec.EllipticCurvePrivateKey, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey
) -> x509.CertificateBuilder:
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
    )


def _tls_context(host: str) -> tuple[ssl.SSLContext, bytes]:
    """A server context for `host` with a certificate from a certificate authority of the run's own, and
    that authority's certificate (PEM), which dockerd trusts (SSL_CERT_FILE) in place of the system's."""
    authority_key = ec.generate_private_key(ec.SECP256R1())
    authority = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ecr-pipeline emulator CA")])
    authority_certificate = (
        _certificate(authority, authority_key, authority, authority_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(authority_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        _certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]), key, authority, authority_key)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(authority_key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.NamedTemporaryFile("wb", suffix=".pem") as pem:
        pem.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        pem.write(certificate.public_bytes(Encoding.PEM))
        pem.flush()
        context.load_cert_chain(pem.name)
    return context, authority_certificate.public_bytes(Encoding.PEM)


def _read_body(request: BaseHTTPRequestHandler) -> bytes:
    if "chunked" in (request.headers.get("Transfer-Encoding") or "").lower():
        parts: list[bytes] = []
        while True:
            size = int(request.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while request.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(request.rfile.read(size))
            request.rfile.readline()
    length = int(request.headers.get("Content-Length") or 0)
    return request.rfile.read(length) if length else b""


def _error(request: BaseHTTPRequestHandler, status: int, code: str, message: str) -> None:
    """A distribution-API error: docker prints `<code lowercased>: <message>`."""
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()
    request.send_response(status)
    request.send_header("Content-Type", "application/json; charset=utf-8")
    request.send_header("Docker-Distribution-Api-Version", "registry/2.0")
    if status == 401:
        request.send_header("WWW-Authenticate", f'Basic realm="https://{ECR_HOST}/",service="ecr.amazonaws.com"')
    request.send_header("Content-Length", str(len(body)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(body)
