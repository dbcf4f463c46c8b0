"""The emulated ECS service's tasks, for docker mode: the deployed image really runs, with a blue/green switch.

`EcsEnvironment` runs a task definition's container on the emulator's own dockerd
(`DockerEngine`), health-checks it, and on success points its `LoopbackProxy` at it (green)
before removing the task that served until then (blue). A failed deployment removes green and
leaves blue serving. `EcsTasks` holds one environment per service.

Emulated differences from ECS (awsvpc networking, a load balancer):
- Tasks run with `--network host`, which has a single port space: each task gets its own free
  loopback port in `PORT` (and `HOST=127.0.0.1`), overriding the task definition's values, and
  must listen there; the task definition's containerPort is informational only.
- The load balancer is a TCP proxy on 127.0.0.1. The switch applies to new connections; blue is
  removed right after it, with no connection draining.
- A task definition's healthCheck runs its command in the container (`docker exec`) at a scaled
  pace: one check every `HEALTH_INTERVAL` s (not `interval` s), each given min(`timeout`,
  `HEALTH_TIMEOUT_CAP`) s. During `startPeriod` (capped at the HTTP deadline) failures do not
  count and a success is enough; after it, `retries` counted failures fail the task.
- Without a healthCheck the target-group check is emulated: HTTP GET
  `http://127.0.0.1:<PORT><health_path>` until a 200-399 answer or the deadline (default 20 s).
- A container that exits before it is healthy fails the deployment at once, with its last log lines.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import secrets
import select
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulator.docker_engine import EngineError, free_loopback_port

if TYPE_CHECKING:
    from emulator.docker_engine import DockerEngine

LOOPBACK = "127.0.0.1"
ENVIRONMENT_LABEL = "ecr-pipeline.environment"
REVISION_LABEL = "ecr-pipeline.revision"
HEALTH_INTERVAL = 0.25
HEALTH_TIMEOUT_CAP = 3.0
DEFAULT_HEALTH_DEADLINE = 20.0
LOG_TAIL_LINES = 20
# ECS's own defaults for the fields a healthCheck may leave out.
_ECS_HEALTH_DEFAULTS = {"interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]+")
_RECV_SIZE = 65536


@dataclass(frozen=True)
class TaskSpec:
    """What a task runs: one container of a task definition, with the image the deployment names."""

    image: str
    container_name: str
    container_port: int | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    health_check: Mapping[str, Any] | None = None
    health_path: str = "/"

    @classmethod
    def from_container_definition(cls, container: Mapping[str, Any], health_path: str = "/") -> TaskSpec:
        """A spec from an ECS containerDefinition (as describe_task_definition returns it)."""
        ports = container.get("portMappings") or [{}]
        port = ports[0].get("containerPort")
        return cls(
            image=str(container["image"]),
            container_name=str(container["name"]),
            container_port=int(port) if port is not None else None,
            environment={str(item["name"]): str(item.get("value", "")) for item in container.get("environment") or []},
            health_check=container.get("healthCheck"),
            health_path=health_path,
        )


@dataclass(frozen=True)
class RunningTask:
    container_id: str
    container_name: str
    port: int
    image: str
    revision_label: str


@dataclass(frozen=True)
class DeployResult:
    succeeded: bool
    reason: str
    task: RunningTask | None


class LoopbackProxy:
    """A TCP proxy on 127.0.0.1 to the current backend port; `switch` changes it for new connections."""

    def __init__(self, port: int = 0, backend: int | None = None) -> None:
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((LOOPBACK, port))
        self._listener.listen(64)
        # The accept loop polls, so stop() needs no trick to wake a blocked accept().
        self._listener.settimeout(0.2)
        self.port = int(self._listener.getsockname()[1])
        self._backend = backend
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"proxy-{self.port}", daemon=True)
        self._acceptor.start()

    @property
    def backend(self) -> int | None:
        with self._lock:
            return self._backend

    def switch(self, port: int | None) -> None:
        """New connections go to `port` from now on (None: they are closed at once)."""
        with self._lock:
            self._backend = port

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listener and every open connection, and join the threads. Safe to call twice."""
        self._stopping.set()
        self._acceptor.join(timeout)
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for connection in sockets:
            # shutdown, unlike close, wakes a thread blocked on the socket.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout)
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept_loop(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    client, _ = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                client.settimeout(None)
                with self._lock:
                    backend = self._backend
                    thread = threading.Thread(target=self._serve, args=(client, backend), daemon=True)
                    self._sockets.add(client)
                    self._threads.add(thread)
                thread.start()
        finally:
            with contextlib.suppress(OSError):
                self._listener.close()

    def _serve(self, client: socket.socket, backend: int | None) -> None:
        upstream: socket.socket | None = None
        try:
            if backend is None:
                return
            try:
                upstream = socket.create_connection((LOOPBACK, backend), timeout=2.0)
            except OSError:
                return
            upstream.settimeout(None)
            with self._lock:
                self._sockets.add(upstream)
            if not self._stopping.is_set():
                self._pump(client, upstream)
        finally:
            with self._lock:
                self._sockets.discard(client)
                if upstream is not None:
                    self._sockets.discard(upstream)
                self._threads.discard(threading.current_thread())
            for connection in (client, upstream):
                if connection is not None:
                    with contextlib.suppress(OSError):
                        connection.close()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        """Copy both ways until both sides have finished sending (a half-close is passed on)."""
        peer = {client: upstream, upstream: client}
        reading = {client, upstream}
        while reading and not self._stopping.is_set():
            try:
                readable, _, _ = select.select(list(reading), [], [], 0.25)
            except (OSError, ValueError):
                return
            for source in readable:
                try:
                    data = source.recv(_RECV_SIZE)
                except OSError:
                    return
                if data:
                    try:
                        peer[source].sendall(data)
                    except OSError:
                        return
                else:
                    reading.discard(source)
                    with contextlib.suppress(OSError):
                        peer[source].shutdown(socket.SHUT_WR)


def _http_get(port: int, path: str, timeout: float) -> tuple[int, str]:
    """A GET to 127.0.0.1:port with no proxy and no redirect followed."""
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", errors="replace")
    finally:
        connection.close()


def _container_name(environment: str, revision_label: str) -> str:
    stem = _NAME_UNSAFE.sub("-", f"{environment}-{revision_label}").strip("-._")[:80] or "task"
    return f"ecs-{stem}-{secrets.token_hex(4)}"


def _exec_command(health_check: Mapping[str, Any]) -> list[str] | None:
    """The argv `docker exec` runs for an ECS healthCheck command; None for NONE; ValueError if malformed."""
    command = [str(part) for part in health_check.get("command") or []]
    if not command:
        raise ValueError("healthCheck.command is empty")
    kind, rest = command[0], command[1:]
    if kind == "NONE":
        return None
    if kind == "CMD-SHELL" and rest:
        return ["sh", "-c", " ".join(rest)]
    if kind == "CMD" and rest:
        return rest
    raise ValueError(f"healthCheck.command must start with CMD or CMD-SHELL and name a command, got {command}")


class EcsEnvironment:
    """One ECS service's tasks behind one proxy: blue serves until a healthy green replaces it."""

    def __init__(
        self, engine: DockerEngine, name: str, health_deadline: float = DEFAULT_HEALTH_DEADLINE, proxy_port: int = 0
    ) -> None:
        self.engine = engine
        self.name = name
        self.health_deadline = health_deadline
        self.proxy = LoopbackProxy(proxy_port)
        self._current: RunningTask | None = None
        # Deployments of one service run one at a time, as CodeDeploy allows one active deployment per group.
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.proxy.port}"

    @property
    def current(self) -> RunningTask | None:
        return self._current

    def serving(self, timeout: float = 2.0) -> str | None:
        """The body of GET / through the proxy, stripped; None when nothing answers."""
        try:
            return _http_get(self.proxy.port, "/", timeout)[1].strip()
        except (OSError, http.client.HTTPException):
            return None

    def deploy(self, spec: TaskSpec, revision_label: str) -> DeployResult:
        """Start green, health-check it, switch the proxy to it and remove blue; on failure remove green."""
        with self._lock:
            if self._stopped:
                return DeployResult(False, f"environment {self.name} is stopped", None)
            started = time.monotonic()
            try:
                task = self._start(spec, revision_label)
            except EngineError as error:
                return DeployResult(False, f"task of {spec.image} did not start: {error}", None)
            failure = self._health_failure(task, spec)
            if failure is not None:
                self.engine.run("rm", "-f", task.container_id, check=False, timeout=30)
                blue = f"; {self._current.revision_label} keeps serving" if self._current else ""
                return DeployResult(False, f"task {task.container_name} ({spec.image}) {failure}{blue}", None)
            self.proxy.switch(task.port)
            blue_task, self._current = self._current, task
            if blue_task is not None:
                self.engine.run("rm", "-f", blue_task.container_id, check=False, timeout=30)
            replaced = f", replacing {blue_task.revision_label}" if blue_task else ""
            seconds = time.monotonic() - started
            return DeployResult(
                True, f"task {task.container_name} ({spec.image}) healthy, serving in {seconds:.1f}s{replaced}", task
            )

    def stop(self) -> None:
        """Remove this environment's containers and stop the proxy. Safe to call twice."""
        with self._lock:
            self._stopped = True
            self._current = None
            self.proxy.switch(None)
            listed = self.engine.run(
                "ps", "-aq", "--filter", f"label={ENVIRONMENT_LABEL}={self.name}", check=False, timeout=30
            )
            containers = listed.stdout.split() if listed.returncode == 0 else []
            if containers:
                self.engine.run("rm", "-f", *containers, check=False, timeout=60)
            self.proxy.stop()

    def _start(self, spec: TaskSpec, revision_label: str) -> RunningTask:
        port = free_loopback_port()
        name = _container_name(self.name, revision_label)
        variables = {**spec.environment, "PORT": str(port), "HOST": LOOPBACK}
        options = [
            "--network",
            "host",
            "--name",
            name,
            "--label",
            f"{ENVIRONMENT_LABEL}={self.name}",
            "--label",
            f"{REVISION_LABEL}={revision_label}",
        ]
        for key, value in variables.items():
            options += ["-e", f"{key}={value}"]
        try:
            result = self.engine.run("run", "-d", *options, spec.image, check=False, timeout=120)
        except subprocess.TimeoutExpired as error:
            self.engine.run("rm", "-f", name, check=False, timeout=30)
            raise EngineError(f"docker run took longer than {error.timeout:.0f}s") from error
        if result.returncode != 0:
            # A container can be created and then fail to start (an entrypoint not found): remove it too.
            self.engine.run("rm", "-f", name, check=False, timeout=30)
            raise EngineError(f"docker run failed ({result.returncode}): {result.stderr.strip()}")
        return RunningTask(result.stdout.strip(), name, port, spec.image, revision_label)

    def _exited(self, task: RunningTask) -> str | None:
        """How the container ended, with its last log lines, or None while it runs."""
        state = self.engine.run(
            "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", task.container_id, check=False, timeout=30
        )
        status, _, code = state.stdout.strip().partition(" ")
        if state.returncode == 0 and status in ("created", "running", "restarting"):
            return None
        how = f"exit code {code}" if state.returncode == 0 else state.stderr.strip()
        return f"exited before it was healthy ({how}); {self._log_tail(task)}"

    def _log_tail(self, task: RunningTask) -> str:
        logs = self.engine.run("logs", "--tail", str(LOG_TAIL_LINES), task.container_id, check=False, timeout=30)
        text = (logs.stdout + logs.stderr).strip()
        return f"last log lines:\n{text}" if text else "no log lines"

    def _health_failure(self, task: RunningTask, spec: TaskSpec) -> str | None:
        """Why the task is not healthy, or None once it is."""
        if spec.health_check is not None:
            try:
                command = _exec_command(spec.health_check)
            except ValueError as error:
                return f"has an invalid health check: {error}"
            if command is not None:
                return self._exec_health_failure(task, spec.health_check, command)
        return self._http_health_failure(task, spec.health_path)

    def _exec_health_failure(
        self, task: RunningTask, health_check: Mapping[str, Any], command: list[str]
    ) -> str | None:
        settings = {**_ECS_HEALTH_DEFAULTS, **health_check}
        retries = max(int(settings["retries"]), 1)
        timeout = min(float(settings["timeout"]), HEALTH_TIMEOUT_CAP)
        start_period_ends = time.monotonic() + min(float(settings["startPeriod"]), self.health_deadline)
        failures, last = 0, ""
        while True:
            exited = self._exited(task)
            if exited is not None:
                return exited
            try:
                result = self.engine.run("exec", task.container_id, *command, check=False, timeout=timeout)
                if result.returncode == 0:
                    return None
                output = (result.stdout + result.stderr).strip()[-500:]
                last = f"exit {result.returncode}" + (f": {output}" if output else "")
            except subprocess.TimeoutExpired:
                last = f"timed out after {timeout:g}s"
            if time.monotonic() >= start_period_ends:
                failures += 1
                if failures >= retries:
                    break
            time.sleep(HEALTH_INTERVAL)
        exited = self._exited(task)
        if exited is not None:
            return exited
        return (
            f"failed its container health check {list(health_check.get('command') or [])} "
            f"{failures} time(s) ({last}); {self._log_tail(task)}"
        )

    def _http_health_failure(self, task: RunningTask, path: str) -> str | None:
        url = f"http://{LOOPBACK}:{task.port}{path}"
        deadline = time.monotonic() + self.health_deadline
        last = "no answer"
        while True:
            exited = self._exited(task)
            if exited is not None:
                return exited
            try:
                status, _ = _http_get(task.port, path, timeout=min(2.0, self.health_deadline))
                if 200 <= status < 400:
                    return None
                last = f"HTTP {status}"
            except (OSError, http.client.HTTPException) as error:
                last = str(error) or type(error).__name__
            if time.monotonic() >= deadline:
                break
            time.sleep(HEALTH_INTERVAL)
        return (
            f"failed its HTTP health check: no 200-399 answer from {url} within {self.health_deadline:g}s "
            f"(last: {last}); {self._log_tail(task)}"
        )


class EcsTasks:
    """The emulated ECS services' environments on one engine, by key (created on first use)."""

    def __init__(self, engine: DockerEngine, health_deadline: float = DEFAULT_HEALTH_DEADLINE) -> None:
        self.engine = engine
        self.health_deadline = health_deadline
        self._environments: dict[str, EcsEnvironment] = {}
        self._lock = threading.Lock()

    def environment(self, key: str) -> EcsEnvironment:
        with self._lock:
            if key not in self._environments:
                self._environments[key] = EcsEnvironment(self.engine, key, health_deadline=self.health_deadline)
            return self._environments[key]

    def stop_all(self) -> None:
        with self._lock:
            environments = list(self._environments.values())
            self._environments.clear()
        for environment in environments:
            environment.stop()
