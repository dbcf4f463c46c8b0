"""The emulator's own dockerd and registry: no bridge, clean stop, authenticated push with events, cached builds."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from emulator.buildspec import Buildspec, parse_buildspec, run_buildspec
from emulator.docker_engine import DockerEngine, EngineError, Registry, available, base_image, mounts_under
from tests.engine import IN_CI, needs_engine

BASE_IMAGE = "public.ecr.aws/docker/library/busybox:stable"


class EventInbox:
    """A loopback HTTP endpoint collecting the registry's notification envelopes."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        inbox = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                inbox.events.extend(json.loads(body).get("events", []))
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/events"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, action: str, repository: str, tag: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                target = event.get("target", {})
                wanted = (action, repository, tag)
                if (event.get("action"), target.get("repository"), target.get("tag")) == wanted:
                    return event
            time.sleep(0.1)
        raise AssertionError(f"no {action} event for {repository}:{tag}; got {self.events}")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def inbox() -> Iterator[EventInbox]:
    endpoint = EventInbox()
    yield endpoint
    endpoint.stop()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    with DockerEngine(tmp_path_factory.mktemp("engine")) as started:
        yield started


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, inbox: EventInbox) -> Iterator[Registry]:
    with Registry(tmp_path_factory.mktemp("registry"), notify_url=inbox.url) as started:
        yield started


@pytest.fixture(scope="module")
def logged_in(engine: DockerEngine, registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> str:
    user, password = registry.credentials
    engine.run("login", "--username", user, "--password-stdin", registry.host, stdin=password)
    base_image(engine, BASE_IMAGE, tmp_path_factory.mktemp("cache"))
    return registry.host


def test_engine_is_installed_in_ci() -> None:
    if not IN_CI:
        pytest.skip("only CI requires the engine")
    assert available(), "CI must install docker.io docker-registry busybox-static"


@needs_engine
def test_engine_creates_no_bridge_network(engine: DockerEngine) -> None:
    drivers = engine.run("network", "ls", "--format", "{{.Driver}}").stdout.split()

    assert "bridge" not in drivers
    assert "docker0" not in Path("/proc/net/dev").read_text()


@needs_engine
def test_stop_leaves_no_daemon_and_no_mount(tmp_path: Path) -> None:
    engine = DockerEngine(tmp_path / ("long-" * 20)).start()
    pid = engine.pid
    assert pid is not None and mounts_under(engine.data_root)

    engine.stop()
    engine.stop()

    assert not Path(f"/proc/{pid}").exists()
    assert mounts_under(engine.data_root, engine.exec_root) == []
    assert not engine.exec_root.exists() and not engine.data_root.exists()


@needs_engine
def test_engine_start_failure_names_the_log(tmp_path: Path) -> None:
    engine = DockerEngine(tmp_path, start_timeout=0.0)

    with pytest.raises(EngineError, match=r"dockerd\.log"), engine:
        pass
    assert engine.pid is not None and not Path(f"/proc/{engine.pid}").exists()


@needs_engine
def test_registry_refuses_anonymous_access(registry: Registry) -> None:
    assert registry.anonymous_status() == 401


@needs_engine
def test_pushed_image_is_announced_and_pulls_back(engine: DockerEngine, logged_in: str, inbox: EventInbox) -> None:
    image = f"{logged_in}/demo:1"
    engine.run("tag", BASE_IMAGE, image)

    engine.run("push", image)
    digest = engine.run("inspect", "--format", "{{index .RepoDigests 0}}", image).stdout.strip().split("@")[1]
    event = inbox.wait_for("push", "demo", "1")

    assert event["target"]["digest"] == digest
    engine.run("rmi", image)
    engine.run("pull", image)
    assert engine.run("image", "inspect", image, check=False).returncode == 0


@needs_engine
def test_build_reuses_the_pushed_inline_cache(engine: DockerEngine, logged_in: str, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nRUN echo hi > /hi\n", encoding="utf-8")
    cache = f"{logged_in}/demo:buildcache"
    build = ["build", "--network", "host", "--progress", "plain", "--build-arg", "BUILDKIT_INLINE_CACHE=1"]
    engine.run("builder", "prune", "-af")

    started = time.monotonic()
    engine.run(*build, "-t", cache, str(tmp_path))
    cold = time.monotonic() - started
    engine.run("push", cache)
    engine.run("rmi", cache)
    engine.run("builder", "prune", "-af")
    started = time.monotonic()
    warm = engine.run(*build, "--cache-from", cache, "-t", f"{logged_in}/demo:2", str(tmp_path))
    rebuilt = time.monotonic() - started

    print(f"\ncold build {cold:.2f}s, rebuild from the registry cache {rebuilt:.2f}s")
    assert "importing cache manifest" in warm.stderr
    run_step = [line for line in warm.stderr.splitlines() if "RUN echo hi" in line]
    assert run_step, warm.stderr
    assert f"{run_step[0].split()[0]} CACHED" in warm.stderr


def template_buildspec() -> Buildspec:
    """template.yaml's ImageBuildProject buildspec, as the emulated CodeBuild reads it."""
    from tests.unit.test_template import RESOURCES  # template.yaml as the tests read it

    return parse_buildspec(RESOURCES["ImageBuildProject"]["Properties"]["Source"]["BuildSpec"])


@needs_engine
def test_the_template_buildspec_builds_tags_pushes_and_rebuilds_from_the_registry_cache(
    engine: DockerEngine, registry: Registry, logged_in: str, tmp_path: Path
) -> None:
    # template.yaml's own buildspec, run phase by phase as CodeBuild runs it, with the variables
    # CodeBuild would give it; its pre_build (the ECR login) is the test's `docker login` here.
    spec = template_buildspec()
    spec = dataclasses.replace(spec, phases={name: phase for name, phase in spec.phases.items() if name != "pre_build"})
    source = tmp_path / "source"
    (source / "app").mkdir(parents=True)
    (source / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nRUN sleep 2; echo deps > /deps\nCOPY app /app\n")
    uri = f"{registry.host}/stack/app"

    def build(commit: str, version: str) -> str:
        (source / "app" / "version").write_text(version)
        variables = {
            **engine.env(),
            "ECR_REPOSITORY_URI": uri,
            "IMAGE_TAG": f"sha-{commit}",
            "CACHE_TAG": "buildcache",
            "DOCKERFILE": "Dockerfile",
            "BUILD_CONTEXT": ".",
            "SOURCE_URL": "https://git-codecommit.us-east-1.amazonaws.com/v1/repos/app",
            "CODEBUILD_RESOLVED_SOURCE_VERSION": commit,
            "BUILD_NETWORK": "host",
            # /usr/bin/docker has BuildKit built in; a newer client earlier on PATH may lack it.
            "PATH": f"/usr/bin:{os.environ['PATH']}",
        }
        result = run_buildspec(spec, source, variables, tmp_path / f"{commit[:8]}.log", timeout_seconds=120)
        assert result.status == "SUCCEEDED", result.log[-3000:]
        ran = {phase.phase_type: phase.status for phase in result.phases if phase.status}
        assert ran.get("BUILD") == ran.get("POST_BUILD") == "SUCCEEDED" and set(ran.values()) == {"SUCCEEDED"}
        return result.log

    started = time.monotonic()
    build("a" * 40, "1\n")
    cold = time.monotonic() - started
    engine.run("builder", "prune", "-af")
    engine.run("image", "rm", "-f", f"{uri}:sha-{'a' * 40}", f"{uri}:buildcache", f"local/image:sha-{'a' * 40}")
    started = time.monotonic()
    log = build("b" * 40, "2\n")
    warm = time.monotonic() - started
    print(f"template buildspec: cold {cold:.2f} s, warm from the registry cache {warm:.2f} s ({warm / cold:.2f}x)")

    assert f"importing cache manifest from {uri}:buildcache" in log
    assert any("CACHED" in line for line in log.splitlines()), log
    # Both tags name the build's image: the cache is the image itself, inline.
    engine.run("image", "rm", "-f", f"{uri}:sha-{'b' * 40}", f"{uri}:buildcache")
    engine.run("pull", f"{uri}:sha-{'b' * 40}")
    engine.run("pull", f"{uri}:buildcache")
    tags = (f"sha-{'b' * 40}", "buildcache")
    ids = {engine.run("image", "inspect", "--format", "{{.Id}}", f"{uri}:{tag}").stdout.strip() for tag in tags}
    assert len(ids) == 1
