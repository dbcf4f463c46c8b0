"""The emulated ECS tasks: the deployed image runs on the emulator's dockerd, behind a blue/green proxy."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from emulator.docker_engine import DockerEngine, base_image
from emulator.ecs_tasks import ENVIRONMENT_LABEL, EcsEnvironment, EcsTasks, LoopbackProxy, TaskSpec
from tests.engine import needs_engine

BASE_IMAGE = "public.ecr.aws/docker/library/busybox:stable"


# The tiny app: busybox httpd serving one page on the port the emulated ECS gives the task.
SERVE = "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 127.0.0.1:$PORT -h /www"
APPS = {
    "v1": ["sh", "-c", SERVE.format(text="v1")],
    "v2": ["sh", "-c", SERVE.format(text="v2")],
    "v3": ["sh", "-c", SERVE.format(text="v3")],
    "greeting": ["sh", "-c", SERVE.format(text="$GREETING")],
    "silent": ["sleep", "600"],
    "crash": ["sh", "-c", "echo cannot-open-config >&2; exit 3"],
}


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    with DockerEngine(tmp_path_factory.mktemp("engine")) as started:
        yield started


@pytest.fixture(scope="module")
def images(engine: DockerEngine, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The apps as images built FROM the busybox base, by name."""
    base_image(engine, BASE_IMAGE, tmp_path_factory.mktemp("cache"))
    built: dict[str, str] = {}
    for name, command in APPS.items():
        context = tmp_path_factory.mktemp(f"app-{name}")
        (context / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCMD {json.dumps(command)}\n", encoding="utf-8")
        built[name] = f"local/app:{name}"
        engine.run("build", "--network", "host", "-t", built[name], str(context))
    return built


@pytest.fixture
def environment(engine: DockerEngine) -> Iterator[EcsEnvironment]:
    started = EcsEnvironment(engine, "test-service", health_deadline=3.0)
    yield started
    started.stop()


def spec(image: str, **fields: Any) -> TaskSpec:
    return TaskSpec(image=image, container_name="app", container_port=8080, **fields)


def containers(engine: DockerEngine) -> list[str]:
    return engine.run("ps", "-aq").stdout.split()


def port_is_closed(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


@needs_engine
def test_first_deploy_serves_its_image(environment: EcsEnvironment, images: dict[str, str]) -> None:
    result = environment.deploy(spec(images["v1"]), "rev-1")

    assert result.succeeded, result.reason
    assert result.task is not None and environment.current == result.task
    assert result.task.revision_label == "rev-1" and result.task.image == images["v1"]
    assert environment.serving() == "v1"


@needs_engine
def test_second_deploy_switches_to_the_new_image_and_removes_the_old_task(
    environment: EcsEnvironment, engine: DockerEngine, images: dict[str, str]
) -> None:
    blue = environment.deploy(spec(images["v1"]), "rev-1").task
    assert blue is not None

    result = environment.deploy(spec(images["v2"]), "rev-2")

    assert result.succeeded, result.reason
    assert environment.serving() == "v2"
    assert result.task is not None and containers(engine) == [result.task.container_id[:12]]
    assert engine.run("inspect", blue.container_id, check=False).returncode != 0


@needs_engine
def test_failing_task_health_check_keeps_the_previous_task_serving(
    environment: EcsEnvironment, engine: DockerEngine, images: dict[str, str]
) -> None:
    blue = environment.deploy(spec(images["v2"]), "rev-2").task
    unhealthy = {"command": ["CMD-SHELL", "exit 1"], "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}

    result = environment.deploy(spec(images["v3"], health_check=unhealthy), "rev-3")

    assert not result.succeeded and result.task is None
    assert "failed its container health check" in result.reason and "3 time(s)" in result.reason
    assert "rev-2 keeps serving" in result.reason
    assert environment.current == blue and environment.serving() == "v2"
    assert blue is not None and containers(engine) == [blue.container_id[:12]]


@needs_engine
def test_passing_task_health_check_runs_in_the_container_with_its_port(
    environment: EcsEnvironment, images: dict[str, str]
) -> None:
    healthy = {"command": ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:$PORT/"], "retries": 3}

    result = environment.deploy(spec(images["v1"], health_check=healthy), "rev-1")

    assert result.succeeded, result.reason
    assert environment.serving() == "v1"


@needs_engine
def test_app_that_never_listens_fails_its_http_health_check(
    environment: EcsEnvironment, images: dict[str, str]
) -> None:
    environment.deploy(spec(images["v2"]), "rev-2")

    result = environment.deploy(spec(images["silent"]), "rev-silent")

    assert not result.succeeded
    assert "failed its HTTP health check" in result.reason and "within 3s" in result.reason
    assert environment.serving() == "v2"


@needs_engine
def test_container_that_exits_at_once_fails_fast_with_its_log(
    environment: EcsEnvironment, images: dict[str, str]
) -> None:
    result = environment.deploy(spec(images["crash"]), "rev-crash")

    assert not result.succeeded and environment.current is None
    assert "exited before it was healthy (exit code 3)" in result.reason
    assert "cannot-open-config" in result.reason


@needs_engine
def test_missing_image_fails_with_the_engine_error(environment: EcsEnvironment) -> None:
    result = environment.deploy(spec("local/app:absent"), "rev-absent")

    assert not result.succeeded
    assert "did not start" in result.reason and "local/app:absent" in result.reason


@needs_engine
def test_task_environment_reaches_the_container(environment: EcsEnvironment, images: dict[str, str]) -> None:
    result = environment.deploy(spec(images["greeting"], environment={"GREETING": "hello"}), "rev-1")

    assert result.succeeded, result.reason
    assert environment.serving() == "hello"


@needs_engine
def test_deploy_under_a_held_open_connection_serves_new_connections(
    environment: EcsEnvironment, images: dict[str, str]
) -> None:
    environment.deploy(spec(images["v1"]), "rev-1")
    held = socket.create_connection(("127.0.0.1", environment.proxy.port), timeout=5)
    try:
        result = environment.deploy(spec(images["v2"]), "rev-2")

        assert result.succeeded, result.reason
        assert environment.serving() == "v2"
    finally:
        held.close()


@needs_engine
def test_stop_leaves_no_container_and_closes_the_proxy_port(engine: DockerEngine, images: dict[str, str]) -> None:
    tasks = EcsTasks(engine)
    first, second = tasks.environment("cluster/one"), tasks.environment("cluster/two")
    assert tasks.environment("cluster/one") is first
    assert first.deploy(spec(images["v1"]), "rev-1").succeeded
    assert second.deploy(spec(images["v2"]), "rev-1").succeeded
    assert len(engine.run("ps", "-q", "--filter", f"label={ENVIRONMENT_LABEL}=cluster/one").stdout.split()) == 1

    tasks.stop_all()

    assert containers(engine) == []
    assert port_is_closed(first.proxy.port) and port_is_closed(second.proxy.port)
    assert first.serving() is None


class Backend:
    """A loopback HTTP/1.1 server answering every GET with its own text, on kept-alive connections."""

    def __init__(self, text: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                body = text.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backends() -> Iterator[tuple[Backend, Backend]]:
    blue, green = Backend("blue"), Backend("green")
    yield blue, green
    blue.stop()
    green.stop()


def get(connection: http.client.HTTPConnection) -> str:
    connection.request("GET", "/")
    return connection.getresponse().read().decode()


def test_proxy_switch_sends_new_connections_to_the_new_backend_and_keeps_held_ones(
    backends: tuple[Backend, Backend],
) -> None:
    blue, green = backends
    proxy = LoopbackProxy(backend=blue.port)
    held = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
    try:
        assert get(held) == "blue"

        proxy.switch(green.port)

        fresh = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=5)
        assert get(fresh) == "green"
        assert get(held) == "blue"
        fresh.close()
    finally:
        held.close()
        proxy.stop()


def test_proxy_without_backend_closes_the_connection() -> None:
    proxy = LoopbackProxy()
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=5) as client:
            assert client.recv(1) == b""
    finally:
        proxy.stop()


def test_proxy_stop_closes_its_port_and_open_connections(backends: tuple[Backend, Backend]) -> None:
    proxy = LoopbackProxy(backend=backends[0].port)
    held = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)

    proxy.stop()

    assert held.recv(1) == b""
    assert port_is_closed(proxy.port)
    held.close()


def test_spec_from_container_definition_reads_the_ecs_shape() -> None:
    container = {
        "name": "app",
        "image": "127.0.0.1:5000/stack/app@sha256:" + "a" * 64,
        "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
        "environment": [{"name": "STAGE", "value": "dev"}],
        "healthCheck": {"command": ["CMD", "true"], "retries": 2},
    }

    task = TaskSpec.from_container_definition(container)

    assert (task.image, task.container_name, task.container_port) == (container["image"], "app", 8080)
    assert task.environment == {"STAGE": "dev"} and task.health_check == {"command": ["CMD", "true"], "retries": 2}
