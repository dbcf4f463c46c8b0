"""The emulator's HTTP front: the one AWS endpoint the functions talk to.

Every request is signed for one service (the credential scope of its Authorization header
names it). Services moto lacks (CodeCommit, CodeBuild) are answered here; every other request
is forwarded to moto unchanged, and observers see it and its answer (so that an ECR put_image
can emit the event AWS would emit). A path prefix `/fn/<caller>` tells who made the call.
Guards may refuse a call first (IAM, a busy deployment group); a refusal is answered in the
protocol the caller spoke: JSON (`__type`) or, for a query-protocol request, XML `ErrorResponse`.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
_READ_PREFIXES = ("Get", "Describe", "List", "BatchGet", "Query", "Scan", "Receive", "Head")


class ApiError(Exception):
    """An AWS error answer: botocore raises it as ClientError with this code."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        json_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        # The JSON `__type` when it differs from the code botocore reports (SQS's query-compatible errors).
        self.json_type = json_type or code
        self.headers = headers or {}


@dataclass
class ApiCall:
    """One AWS API call as the front saw it."""

    caller: str
    service: str
    operation: str
    params: dict[str, Any]
    status: int = 0
    response: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    at: float = field(default_factory=time.monotonic)
    # "json" (x-amz-json), "query" (form-encoded Action=...) or "rest": how the caller reads an error.
    protocol: str = "json"
    # The permission gaps the IAM guard found for this call (refused, or let through with --permissions report).
    denied: list[dict[str, Any]] = field(default_factory=list)

    @property
    def is_write(self) -> bool:
        return not self.operation.startswith(_READ_PREFIXES)

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300


# A local service answers (operation, params) with a JSON-ready dict, or raises ApiError.
LocalService = Callable[[str, dict[str, Any]], dict[str, Any]]
# A local operation answers one call (its caller included) with a JSON-ready dict, or raises ApiError.
LocalOperation = Callable[["ApiCall"], dict[str, Any]]
# A guard may refuse a call before it reaches moto (raise ApiError); an observer sees every answered call.
Guard = Callable[[ApiCall], None]
Observer = Callable[[ApiCall], None]


def _service_of(headers: Any) -> str:
    authorization = headers.get("Authorization", "")
    if "Credential=" in authorization:
        scope = authorization.split("Credential=", 1)[1].split(",", 1)[0].split("/")
        if len(scope) >= 4:
            return scope[3]
    target = headers.get("X-Amz-Target", "")
    return target.split("_", 1)[0].split(".", 1)[0].lower()


def _operation_of(headers: Any, params: dict[str, Any]) -> str:
    target = headers.get("X-Amz-Target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    return str(params.get("Action", ""))


def _parse_body(headers: Any, body: bytes) -> dict[str, Any]:
    content_type = headers.get("Content-Type", "")
    if not body:
        return {}
    if "json" in content_type:
        try:
            parsed = json.loads(body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    if "x-www-form-urlencoded" in content_type:
        return {key: values[0] if len(values) == 1 else values for key, values in parse_qs(body.decode()).items()}
    return {}


class Front:
    def __init__(self, backend_url: str, host: str = "127.0.0.1") -> None:
        backend = urlsplit(backend_url)
        self._backend = (backend.hostname or "127.0.0.1", backend.port or 80)
        self.local_services: dict[str, LocalService] = {}
        # Single operations answered here although their service is moto's: (service, operation) -> answer.
        self.local_operations: dict[tuple[str, str], LocalOperation] = {}
        self.guards: list[Guard] = []
        self.observers: list[Observer] = []
        # Faults of the emulator itself (not of the caller), reported with the run.
        self.faults: list[str] = []
        self._connections = threading.local()
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: without this, Nagle's algorithm and the
            # client's delayed ACK hold every answer back by ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the emulator reports calls itself."""

            def do_GET(self) -> None:
                front._handle(self)

            def do_POST(self) -> None:
                front._handle(self)

            def do_PUT(self) -> None:
                front._handle(self)

            def do_DELETE(self) -> None:
                front._handle(self)

            def do_HEAD(self) -> None:
                front._handle(self)

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: stopping the emulator should not wait half a second per server.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def endpoint_for(self, caller: str) -> str:
        return f"{self.url}/fn/{caller}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits forever for a server that never started
            self._server.shutdown()
        self._server.server_close()

    # --- one request ------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        caller, path = "client", request.path
        if path.startswith("/fn/"):
            rest = path[4:]
            caller, _, remainder = rest.partition("/")
            path = "/" + remainder
        params = _parse_body(request.headers, body)
        call = ApiCall(
            caller=caller,
            service=_service_of(request.headers),
            operation=_operation_of(request.headers, params),
            params=params,
            protocol=_protocol_of(request.headers),
        )
        operation = self.local_operations.get((call.service, call.operation))
        local = self.local_services.get(call.service)
        try:
            for guard in self.guards:
                guard(call)
            if operation is not None:
                status, headers = 200, {"Content-Type": "application/x-amz-json-1.1"}
                answer = json.dumps(operation(call), default=str).encode()
            elif local is not None:
                status, headers, answer = 200, {"Content-Type": "application/x-amz-json-1.1"}, self._local(local, call)
            else:
                status, headers, answer = self._forward(request, path, body)
        except Exception as unexpected:
            # An emulator fault answers as AWS's own would (500), so the caller fails visibly, not hangs.
            error = (
                unexpected if isinstance(unexpected, ApiError) else ApiError("InternalFailure", repr(unexpected), 500)
            )
            if not isinstance(unexpected, ApiError):
                self.faults.append(f"{call.service}.{call.operation}: {unexpected!r}")
            status = error.status
            headers, answer = _error_answer(error, call.protocol)
            call.error_code = error.code
        call.status = status
        if call.error_code is None and not call.succeeded:
            call.error_code = _error_code(headers, answer)
        # moto does not always label JSON answers as JSON: parse whatever looks like an object.
        if call.succeeded and answer.lstrip().startswith(b"{"):
            try:
                parsed = json.loads(answer) if answer else {}
                call.response = parsed if isinstance(parsed, dict) else {}
            except ValueError:
                call.response = {}
        for observer in self.observers:
            try:
                observer(call)
            except Exception as unexpected:  # the call itself succeeded; the fault is the emulator's
                self.faults.append(f"observing {call.service}.{call.operation}: {unexpected!r}")
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in _HOP_BY_HOP:
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(answer)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(answer)

    @staticmethod
    def _local(service: LocalService, call: ApiCall) -> bytes:
        return json.dumps(service(call.operation, call.params), default=str).encode()

    def _forward(self, request: BaseHTTPRequestHandler, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        connection: http.client.HTTPConnection | None = getattr(self._connections, "moto", None)
        headers = {name: value for name, value in request.headers.items() if name.lower() not in _HOP_BY_HOP}
        headers["Content-Length"] = str(len(body))
        for attempt in range(2):
            if connection is None:
                connection = http.client.HTTPConnection(*self._backend, timeout=60)
                connection.connect()
                connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._connections.moto = connection
            try:
                connection.request(request.command, path, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.read()
                return response.status, dict(response.getheaders()), answer
            except (ConnectionError, http.client.HTTPException):
                # A kept-alive connection the backend closed: open a new one once.
                connection.close()
                connection = None
                self._connections.moto = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def _protocol_of(headers: Any) -> str:
    content_type = headers.get("Content-Type", "")
    if "x-www-form-urlencoded" in content_type:
        return "query"
    if "json" in content_type or headers.get("X-Amz-Target"):
        return "json"
    return "rest"


def _error_answer(error: ApiError, protocol: str) -> tuple[dict[str, str], bytes]:
    """An error in the caller's protocol: botocore's query parser reads XML, the JSON parser `__type`."""
    request_id = str(uuid.uuid4())
    if protocol == "query":
        body = (
            "<ErrorResponse><Error><Type>Sender</Type>"
            f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message>"
            f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return {"Content-Type": "text/xml", "x-amzn-RequestId": request_id, **error.headers}, body.encode()
    headers = {
        "Content-Type": "application/x-amz-json-1.1",
        "x-amzn-ErrorType": error.json_type.rsplit("#", 1)[-1],
        "x-amzn-RequestId": request_id,
        **error.headers,
    }
    return headers, json.dumps({"__type": error.json_type, "message": error.message}).encode()


def _error_code(headers: dict[str, str], answer: bytes) -> str:
    for name, value in headers.items():
        if name.lower() == "x-amzn-errortype":
            return value.split(":", 1)[0]
    try:
        parsed = json.loads(answer)
        if isinstance(parsed, dict):
            return str(parsed.get("__type", "")).rsplit("#", 1)[-1] or "Error"
    except ValueError:
        text = answer.decode(errors="replace")
        if "<Code>" in text:
            return text.split("<Code>", 1)[1].split("</Code>", 1)[0]
    return "Error"
