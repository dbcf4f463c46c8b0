"""Local stand-ins for public base images: python from Debian packages, busybox, cached between runs."""

from __future__ import annotations

import os
import shutil
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.base_images import (
    BUSYBOX_IMAGE,
    PYTHON_IMAGE,
    STAND_INS,
    apt_mirror,
    build_once,
    default_cache_dir,
    ensure_base_images,
    python_rootfs,
    python_rootfs_path,
)
from emulator.docker_engine import DockerEngine, EngineError, available, free_loopback_port

IN_CI = os.environ.get("CI") == "true"
DEMO_APP = Path(__file__).resolve().parents[2] / "emulator" / "scenarios" / "demo_app"

needs_engine = pytest.mark.skipif(
    (not available() or shutil.which("mmdebstrap") is None) and not IN_CI,
    reason="docker engine or mmdebstrap not installed: apt-get update && apt-get install -y "
    "--no-install-recommends docker.io docker-registry busybox-static mmdebstrap",
)
needs_mmdebstrap = pytest.mark.skipif(
    shutil.which("mmdebstrap") is None and not IN_CI,
    reason="mmdebstrap not installed: apt-get install -y --no-install-recommends mmdebstrap",
)


def health(url: str, timeout: float = 15.0) -> str:
    """The body of GET url once the server answers (loopback only: no proxy)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.monotonic() + timeout
    while True:
        try:
            with opener.open(url, timeout=2) as response:
                return response.read().decode().strip()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    with DockerEngine(tmp_path_factory.mktemp("engine")) as started:
        yield started


@pytest.fixture(scope="module")
def made(engine: DockerEngine) -> list[str]:
    # The real cache: CI builds the python rootfs once (about 40 s cold) and later runs reuse it.
    return ensure_base_images(engine, STAND_INS, default_cache_dir())


def test_mmdebstrap_is_installed_in_ci() -> None:
    if not IN_CI:
        pytest.skip("only CI requires mmdebstrap")
    assert shutil.which("mmdebstrap"), "CI must install mmdebstrap"


@needs_engine
def test_the_python_stand_in_runs_python_and_imports_http_server(engine: DockerEngine, made: list[str]) -> None:
    script = "import http.server, sys; print(tuple(sys.version_info[:2]))"

    python = engine.run("run", "--rm", "--network", "host", PYTHON_IMAGE, "python", "-c", script)
    python3 = engine.run("run", "--rm", "--network", "host", PYTHON_IMAGE, "python3", "-c", script)

    # Debian bookworm's python3 is 3.11, as the stand-in's description says.
    assert python.stdout.strip() == python3.stdout.strip() == "(3, 11)"
    assert "3.11" in STAND_INS[PYTHON_IMAGE]


@needs_engine
def test_each_stand_in_made_is_reported_with_its_cache(made: list[str]) -> None:
    assert [line.partition(": ")[0] for line in made] == list(STAND_INS)
    assert all(f"a local stand-in ({STAND_INS[line.partition(': ')[0]]})" in line for line in made)
    assert all(f"cached in {default_cache_dir()}" in line for line in made)


@needs_engine
def test_a_second_ensure_makes_nothing(engine: DockerEngine, made: list[str]) -> None:
    assert made

    assert ensure_base_images(engine, [PYTHON_IMAGE, BUSYBOX_IMAGE], default_cache_dir()) == []


@needs_engine
def test_the_cached_python_rootfs_is_reused(made: list[str]) -> None:
    cached = python_rootfs_path(default_cache_dir())
    before = cached.stat().st_mtime_ns

    again = python_rootfs(default_cache_dir())

    assert again == cached and again.stat().st_mtime_ns == before
    assert not again.with_name(f"{again.name}.partial").exists()


@needs_engine
def test_the_demo_dockerfile_builds_and_serves_on_the_stand_in(engine: DockerEngine, made: list[str]) -> None:
    engine.run("build", "--network", "host", "-t", "local/demo:stand-in", str(DEMO_APP), timeout=300)
    port = free_loopback_port()
    container = engine.run(
        "run", "-d", "--network", "host", "-e", "HOST=127.0.0.1", "-e", f"PORT={port}", "local/demo:stand-in"
    ).stdout.strip()
    try:
        assert health(f"http://127.0.0.1:{port}/health") == "ok"
    finally:
        engine.run("rm", "-f", container)


def test_an_unknown_base_image_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match=r"no local stand-in for docker\.io/library/node:20.*python:3\.12-slim"):
        ensure_base_images(DockerEngine(tmp_path), ["docker.io/library/node:20"], tmp_path)


def test_two_callers_build_the_cache_once(tmp_path: Path) -> None:
    builds: list[Path] = []

    def build(partial: Path) -> None:
        builds.append(partial)
        time.sleep(0.3)
        partial.write_text("rootfs")

    target = tmp_path / "rootfs.tar"
    callers = [threading.Thread(target=build_once, args=(target, build)) for _ in range(2)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()

    assert len(builds) == 1 and target.read_text() == "rootfs"
    assert not target.with_name("rootfs.tar.partial").exists()


def test_a_failed_build_leaves_no_cache(tmp_path: Path) -> None:
    def build(partial: Path) -> None:
        partial.write_text("half")
        raise EngineError("mirror unreachable")

    with pytest.raises(EngineError, match="mirror unreachable"):
        build_once(tmp_path / "rootfs.tar", build)

    assert sorted(path.name for path in tmp_path.iterdir()) == ["rootfs.tar.lock"]


def test_missing_mmdebstrap_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    with pytest.raises(EngineError, match=r"apt-get install .*mmdebstrap"):
        python_rootfs(tmp_path / "cache")


@needs_mmdebstrap
def test_an_unreachable_mirror_says_what_to_check(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_loopback_port()}/debian"

    with pytest.raises(EngineError, match=r"127\.0\.0\.1.*reachable"):
        python_rootfs(tmp_path, mirror=closed)

    assert not python_rootfs_path(tmp_path).exists()


def test_the_mirror_is_read_from_apts_deb822_sources(tmp_path: Path) -> None:
    (tmp_path / "debian.sources").write_text(
        "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
        "URIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
    )

    assert apt_mirror(tmp_path, tmp_path / "none") == "http://mirror.example/debian"


def test_the_mirror_is_read_from_a_one_line_sources_list(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text(
        "deb http://security.example/debian-security bookworm-security main\n"
        "deb [signed-by=/usr/share/keyrings/k.gpg] http://mirror.example/debian bookworm main\n"
    )

    assert apt_mirror(tmp_path / "none", tmp_path / "sources.list") == "http://mirror.example/debian"


def test_without_apt_sources_the_mirror_is_debians(tmp_path: Path) -> None:
    assert apt_mirror(tmp_path / "none", tmp_path / "none") == "http://deb.debian.org/debian"


def test_the_cache_dir_follows_ecr_pipeline_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ECR_PIPELINE_CACHE", str(tmp_path))

    assert default_cache_dir() == tmp_path
