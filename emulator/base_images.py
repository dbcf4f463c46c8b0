"""Local stand-ins for the public base images the demo's Dockerfiles start FROM, for docker mode.

No registry on the internet is reachable here, so each stand-in is built on this machine and
imported into the emulator's own dockerd under the public name: python:3.12-slim from Debian
bookworm packages (with mmdebstrap, from the Debian mirror apt already uses), busybox from the
installed busybox-static. Rootfs tarballs are cached in a directory that survives runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from emulator.docker_engine import DockerEngine, EngineError, base_image, busybox_rootfs

PYTHON_IMAGE = "public.ecr.aws/docker/library/python:3.12-slim"
BUSYBOX_IMAGE = "public.ecr.aws/docker/library/busybox:stable"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
MMDEBSTRAP_INSTALL_COMMAND = "apt-get update && apt-get install -y --no-install-recommends mmdebstrap"
# "essential" (Essential: yes packages, no apt) measured 101 MB / ~40 s cold against minbase's 124 MB.
VARIANT = "essential"
PYTHON_PACKAGES = ("python3", "python-is-python3", "ca-certificates")
# mmdebstrap's merged-usr hook installs usr-is-merged; without it apt picks usrmerge, which drags in perl (47 MB).
MMDEBSTRAP_HOOKS = (Path("/usr/share/mmdebstrap/hooks/merged-usr"),)
TRIMMED_PATHS = (
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
)
# The host's resolver and name would otherwise be baked in; docker provides both at run time.
CUSTOMIZE_HOOK = 'rm -f "$1/etc/resolv.conf" "$1/etc/hostname" "$1"/var/cache/debconf/*-old "$1"/var/lib/dpkg/*-old'
BUILD_TIMEOUT_SECONDS = 900
IMPORT_TIMEOUT_SECONDS = 600
PYTHON_CHANGES = (
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
)

STAND_INS: Mapping[str, str] = {
    PYTHON_IMAGE: f"Debian {SUITE}, python3 3.11 from Debian packages, not Python 3.12",
    BUSYBOX_IMAGE: "this machine's busybox-static and its applet links",
}


def default_cache_dir() -> Path:
    """Where rootfs tarballs are kept between runs: $ECR_PIPELINE_CACHE, else ~/.cache/ecr-pipeline/base-images."""
    configured = os.environ.get("ECR_PIPELINE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "ecr-pipeline" / "base-images"


def apt_mirror(
    sources_dir: Path = Path("/etc/apt/sources.list.d"), sources_list: Path = Path("/etc/apt/sources.list")
) -> str:
    """The Debian mirror apt uses for the suite (deb822 `URIs:` first, then one-line `deb` entries)."""
    for path in sorted(sources_dir.glob("*.sources")) if sources_dir.is_dir() else []:
        for stanza in re.split(r"\n\s*\n", path.read_text(encoding="utf-8", errors="replace")):
            fields = dict(
                (key.strip().lower(), value.split())
                for key, _, value in (line.partition(":") for line in stanza.splitlines())
                if value and not key.startswith(("#", " ", "\t"))
            )
            if "deb" in fields.get("types", []) and SUITE in fields.get("suites", []) and fields.get("uris"):
                return fields["uris"][0]
    if sources_list.is_file():
        for line in sources_list.read_text(encoding="utf-8", errors="replace").splitlines():
            words = [word for word in re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()]
            if len(words) >= 3 and words[0] == "deb" and words[2] == SUITE:
                return words[1]
    return DEFAULT_MIRROR


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_once(tarball: Path, build: Callable[[Path], None]) -> Path:
    """The cached tarball, built first if missing: `build` writes a .partial file, renamed into place.

    A lock file beside it makes a second process wait for the first build and then reuse it.
    """
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with _locked(tarball.with_name(f"{tarball.name}.lock")):
        if tarball.exists():
            return tarball
        partial = tarball.with_name(f"{tarball.name}.partial")
        partial.unlink(missing_ok=True)
        try:
            build(partial)
            partial.replace(tarball)
        finally:
            partial.unlink(missing_ok=True)
    return tarball


def _python_recipe() -> dict[str, object]:
    return {
        "suite": SUITE,
        "variant": VARIANT,
        "packages": sorted(PYTHON_PACKAGES),
        "hooks": [hook.name for hook in MMDEBSTRAP_HOOKS],
        "dpkg": list(TRIMMED_PATHS),
        "customize": CUSTOMIZE_HOOK,
    }


def python_rootfs_path(cache_dir: Path) -> Path:
    """Where the python rootfs is cached: the file name carries a digest of what goes into it."""
    key = hashlib.sha256(json.dumps(_python_recipe(), sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"python-rootfs-{SUITE}-{key}.tar"


def mmdebstrap_command(output: Path, mirror: str) -> list[str]:
    mmdebstrap = shutil.which("mmdebstrap")
    if mmdebstrap is None:
        raise EngineError(
            f"mmdebstrap is not installed (it builds the python base image); {MMDEBSTRAP_INSTALL_COMMAND}"
        )
    missing_hooks = [str(hook) for hook in MMDEBSTRAP_HOOKS if not hook.is_dir()]
    if missing_hooks:
        raise EngineError(
            f"mmdebstrap lacks its hook {', '.join(missing_hooks)}; reinstall: {MMDEBSTRAP_INSTALL_COMMAND}"
        )
    return [
        mmdebstrap,
        f"--variant={VARIANT}",
        "--format=tar",
        f"--include={','.join(PYTHON_PACKAGES)}",
        *(f"--hook-dir={hook}" for hook in MMDEBSTRAP_HOOKS),
        *(f"--dpkgopt={option}" for option in TRIMMED_PATHS),
        f"--customize-hook={CUSTOMIZE_HOOK}",
        SUITE,
        str(output),
        mirror,
    ]


def _run_mmdebstrap(command: list[str], log_path: Path, mirror: str) -> None:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            returncode = process.wait(timeout=BUILD_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            # SIGTERM first: mmdebstrap then unmounts what it mounted in its chroot.
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            raise EngineError(
                f"mmdebstrap took over {BUILD_TIMEOUT_SECONDS}s fetching from {mirror}; log {log_path}"
            ) from None
    if returncode != 0:
        tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        raise EngineError(
            f"mmdebstrap failed ({returncode}) building the python base image from {mirror}: check that the "
            f"mirror is reachable (apt-get update) and that this runs as root; log {log_path}:\n{tail}"
        )


def python_rootfs(cache_dir: Path, mirror: str | None = None) -> Path:
    """A rootfs tarball of Debian bookworm with python3 (and `python`), built once and cached in cache_dir."""
    tarball = python_rootfs_path(cache_dir)
    source = mirror or apt_mirror()

    def build(partial: Path) -> None:
        command = mmdebstrap_command(partial, source)
        _run_mmdebstrap(command, tarball.with_name(f"{tarball.name}.log"), source)

    return build_once(tarball, build)


def _import(engine: DockerEngine, name: str, tarball: Path, changes: Iterable[str]) -> None:
    options = [part for change in changes for part in ("--change", change)]
    engine.run("import", *options, str(tarball), name, timeout=IMPORT_TIMEOUT_SECONDS)


def _make_python(engine: DockerEngine, name: str, cache_dir: Path) -> Path:
    tarball = python_rootfs(cache_dir)
    _import(engine, name, tarball, PYTHON_CHANGES)
    return tarball


def _make_busybox(engine: DockerEngine, name: str, cache_dir: Path) -> Path:
    base_image(engine, name, cache_dir)
    return busybox_rootfs(cache_dir)


_MAKERS: dict[str, Callable[[DockerEngine, str, Path], Path]] = {
    PYTHON_IMAGE: _make_python,
    BUSYBOX_IMAGE: _make_busybox,
}


def ensure_base_images(engine: DockerEngine, names: Iterable[str], cache_dir: Path) -> list[str]:
    """Make each named stand-in the engine lacks; one line per image made, saying what it really is."""
    wanted = list(dict.fromkeys(names))
    unknown = [name for name in wanted if name not in _MAKERS]
    if unknown:
        raise EngineError(f"no local stand-in for {', '.join(unknown)}; known base images: {', '.join(STAND_INS)}")
    made: list[str] = []
    for name in wanted:
        if engine.run("image", "inspect", name, check=False).returncode == 0:
            continue
        started = time.monotonic()
        tarball = _MAKERS[name](engine, name, Path(cache_dir))
        made.append(
            f"{name}: a local stand-in ({STAND_INS[name]}), cached in {tarball} "
            f"({tarball.stat().st_size / 1e6:.0f} MB, {time.monotonic() - started:.1f}s)"
        )
    return made
