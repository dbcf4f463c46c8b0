"""A container engine and an image registry owned by the emulator, for docker mode.

`DockerEngine` runs its own dockerd (its own data root, exec root and socket, no bridge, no
iptables, no forwarding), so builds never touch the host's daemon and reach nothing beyond
loopback. `Registry` runs the CNCF distribution registry on 127.0.0.1 with htpasswd auth and
posts its events (push, pull) to a URL. `base_image` makes a busybox base image locally with
`docker import`, so a build needs no registry on the internet.
Docker mode (emulator.docker_mode) starts both for a run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

DOCKERD_CANDIDATES = (Path("/usr/bin/dockerd"), Path("/usr/sbin/dockerd"))
# The Debian 20.10 client, with BuildKit built in; a newer client earlier on PATH may lack buildx.
DOCKER_CLIENT = Path("/usr/bin/docker")
REGISTRY_BINARY = Path("/usr/bin/docker-registry")
BUSYBOX = Path("/bin/busybox")
INSTALL_COMMAND = (
    "apt-get update && apt-get install -y --no-install-recommends"
    " docker.io docker-registry busybox-static apache2-utils mmdebstrap"
)
HTPASSWD_INSTALL_COMMAND = "apt-get install -y --no-install-recommends apache2-utils"
# sun_path holds 108 bytes with the final NUL; containerd's sockets sit up to this deep under the exec root.
_UNIX_PATH_MAX = 107
_DEEPEST_SOCKET = "/containerd/containerd-debug.sock"
_REGISTRY_USER = "emulator"
# bcrypt reads at most 72 bytes of a password: a longer one would match on its prefix alone.
_BCRYPT_MAX_PASSWORD = 72
_BCRYPT_COST = 5
# The busybox applets the base image links; those the installed busybox lacks are left out.
BASE_APPLETS = (
    "sh", "ash", "echo", "cat", "ls", "wget", "httpd", "sleep", "env", "printf", "true", "false",
    "test", "[", "mkdir", "rm", "rmdir", "cp", "mv", "ln", "touch", "chmod", "chown", "id", "pwd",
    "grep", "sed", "awk", "head", "tail", "wc", "sort", "uniq", "tr", "cut", "date", "uname",
    "hostname", "ps", "kill", "nc", "tar", "gzip", "gunzip", "which", "basename", "dirname", "find",
    "xargs", "sha256sum", "md5sum", "stat", "du", "df", "mount", "umount", "vi", "less", "more",
    "seq", "yes", "tee", "whoami", "nslookup", "ping", "ip", "ifconfig", "netstat",
)  # fmt: skip


class EngineError(RuntimeError):
    """The engine or the registry could not start, or a client command failed."""


def dockerd_binary() -> Path | None:
    return next((path for path in DOCKERD_CANDIDATES if path.exists()), None)


def available() -> bool:
    """Whether dockerd, the docker client, the registry and busybox are installed."""
    return dockerd_binary() is not None and DOCKER_CLIENT.exists() and REGISTRY_BINARY.exists() and BUSYBOX.exists()


def missing_message() -> str:
    missing = [
        name
        for name, present in (
            ("dockerd", dockerd_binary() is not None),
            (str(DOCKER_CLIENT), DOCKER_CLIENT.exists()),
            (str(REGISTRY_BINARY), REGISTRY_BINARY.exists()),
            (str(BUSYBOX), BUSYBOX.exists()),
        )
        if not present
    ]
    return f"missing {', '.join(missing) or 'nothing'}; install with: {INSTALL_COMMAND}"


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _client_base_env() -> dict[str, str]:
    # No proxy variables: every client talks to loopback only.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root")}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes: its parent has not reaped it yet.
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM the process we started (by its PID), then SIGKILL it if it outlives the timeout."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _unescape_mount_path(field: str) -> str:
    # /proc/self/mounts writes space, tab, newline and backslash as octal escapes.
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mounts_under(*roots: Path) -> list[Path]:
    """The mount points at or under the roots, deepest first (so they unmount in order)."""
    found: list[Path] = []
    text = Path("/proc/self/mounts").read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        point = Path(_unescape_mount_path(fields[1]))
        if any(point == root or root in point.parents for root in roots):
            found.append(point)
    return sorted(set(found), key=lambda point: len(point.parts), reverse=True)


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DockerEngine:
    """A dockerd of the emulator's own: started in the work directory, stopped by its PID."""

    def __init__(
        self,
        work_dir: Path,
        start_timeout: float = 30.0,
        proxy: str | None = None,
        trusted_certificates: bytes | None = None,
    ) -> None:
        self.root = Path(work_dir).resolve() / "docker"
        # Every registry request of dockerd (pulls, pushes, BuildKit's cache) goes to this loopback proxy.
        self.proxy = proxy
        # PEM certificates dockerd trusts instead of the system's (SSL_CERT_FILE): the registry front's authority.
        self.trusted_certificates = trusted_certificates
        self.data_root = self.root / "data"
        self.pidfile = self.root / "dockerd.pid"
        self.log_path = self.root / "dockerd.log"
        self.client_config = self.root / "client"
        self.start_timeout = start_timeout
        self._short_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: io.BufferedWriter | None = None
        self._stopped = False
        # The socket and the exec root (containerd's sockets) need a short path; a long work dir gets one in /tmp.
        if len(str(self.root / "exec")) + len(_DEEPEST_SOCKET) > _UNIX_PATH_MAX:
            self._short_dir = Path(tempfile.mkdtemp(prefix="ecr-docker-", dir="/tmp"))
            self.run_dir = self._short_dir
        else:
            self.run_dir = self.root
        self.exec_root = self.run_dir / "exec"
        self.socket = self.run_dir / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def env(self) -> dict[str, str]:
        """The variables a docker client needs for this engine (its own config dir keeps logins here)."""
        return {"DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "1", "DOCKER_CONFIG": str(self.client_config)}

    def command(self) -> list[str]:
        dockerd = dockerd_binary()
        if dockerd is None:
            raise EngineError(missing_message())
        return [
            str(dockerd),
            # No bridge, no NAT, no forwarding: containers get host or none networking only.
            "--bridge=none",
            "--iptables=false",
            "--ip-forward=false",
            "--ip-masq=false",
            "--data-root",
            str(self.data_root),
            "--exec-root",
            str(self.exec_root),
            "--pidfile",
            str(self.pidfile),
            "-H",
            self.host,
        ]

    def daemon_env(self) -> dict[str, str]:
        """dockerd's environment: with a proxy, every host but loopback is reached through it (no DNS lookup)."""
        env = _client_base_env()
        if self.proxy is not None:
            env.update({"HTTP_PROXY": self.proxy, "HTTPS_PROXY": self.proxy, "NO_PROXY": ""})
        if self.trusted_certificates is not None:
            bundle = self.root / "trusted-certificates.pem"
            bundle.write_bytes(self.trusted_certificates)
            env["SSL_CERT_FILE"] = str(bundle)
        return env

    def start(self) -> DockerEngine:
        if not available():
            raise EngineError(missing_message())
        for directory in (self.root, self.data_root, self.exec_root, self.client_config):
            directory.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.daemon_env(),
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        last_error = ""
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EngineError(
                    f"dockerd exited with {self._process.returncode}; log {self.log_path}:\n{_log_tail(self.log_path)}"
                )
            info = self.run("info", "--format", "{{.ServerVersion}}", check=False, timeout=10)
            if info.returncode == 0:
                return self
            last_error = info.stderr.strip()
            time.sleep(0.2)
        raise EngineError(
            f"dockerd did not answer `docker info` within {self.start_timeout:.0f}s ({last_error}); "
            f"log {self.log_path}:\n{_log_tail(self.log_path)}"
        )

    def run(
        self, *args: str, check: bool = True, timeout: float = 120, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the docker client against this engine."""
        result = subprocess.run(
            [str(DOCKER_CLIENT), *args],
            env={**_client_base_env(), **self.env()},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise EngineError(f"docker {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def _leftover_pids(self) -> list[int]:
        """Processes of this engine that outlived dockerd (its containerd, shims), with their descendants.

        They are found by this engine's own exec root on their command line, never by a program name.
        """
        parents: dict[int, int] = {}
        ours: set[int] = set()
        marker = str(self.exec_root).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if marker in (entry / "cmdline").read_bytes():
                    ours.add(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
        found = set(ours)
        grew = True
        while grew:
            children = {pid for pid, parent in parents.items() if parent in found} - found
            found |= children
            grew = bool(children)
        found.discard(os.getpid())
        return sorted(found)

    def _stop_leftovers(self) -> None:
        # A container's first process ignores SIGTERM and is re-parented once its shim dies: remember it.
        pids: set[int] = set()
        for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            pids = {pid for pid in pids if _alive(pid)} | set(self._leftover_pids())
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
                time.sleep(0.1)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop dockerd, unmount what it left under its roots, remove its directories. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self._process is not None and self._process.poll() is None:
            # dockerd gives each running container ten seconds on shutdown: remove them at once instead.
            # A daemon too busy (or too new) to answer is stopped all the same; its leftovers go below.
            try:
                listed = self.run("ps", "-aq", check=False, timeout=10)
                containers = listed.stdout.split() if listed.returncode == 0 else []
                if containers:
                    self.run("rm", "-f", *containers, check=False, timeout=30)
            except subprocess.TimeoutExpired:
                pass
        if self._process is not None:
            _terminate(self._process, timeout)
        self._stop_leftovers()
        if self._log is not None:
            self._log.close()
        # The data root is bind-mounted on itself and the network namespaces live under the exec root:
        # removing the directories before unmounting would fail (or reach into a mounted filesystem).
        for point in mounts_under(self.exec_root, self.data_root):
            result = subprocess.run(["umount", str(point)], capture_output=True, check=False)
            if result.returncode != 0:
                subprocess.run(["umount", "-l", str(point)], capture_output=True, check=False)
        remaining = mounts_under(self.exec_root, self.data_root)
        if remaining:
            raise EngineError(f"still mounted after stopping dockerd: {', '.join(map(str, remaining))}")
        for directory in (self.data_root, self.exec_root, self.socket, self.client_config):
            if directory.is_dir():
                shutil.rmtree(directory, ignore_errors=True)
            else:
                directory.unlink(missing_ok=True)
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)

    def __enter__(self) -> DockerEngine:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def htpasswd_line(user: str, password: str) -> str:
    """An htpasswd entry with a bcrypt hash: from the bcrypt package if present, else from `htpasswd -B`."""
    if len(password.encode()) > _BCRYPT_MAX_PASSWORD:
        raise ValueError(f"password: bcrypt uses at most {_BCRYPT_MAX_PASSWORD} bytes")
    try:
        import bcrypt  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        bcrypt = None
    if bcrypt is not None:
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=_BCRYPT_COST)).decode()
        return f"{user}:{hashed}"
    htpasswd = shutil.which("htpasswd")
    if htpasswd is None:
        raise EngineError(
            "no bcrypt for the registry's htpasswd file: neither the Python package bcrypt (in the venv) "
            f"nor the htpasswd command is installed; install one: {HTPASSWD_INSTALL_COMMAND}"
        )
    # -i reads the password from stdin, so it never shows in the process list.
    result = subprocess.run(
        [htpasswd, "-niB", "-C", str(_BCRYPT_COST), user],
        input=password,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise EngineError(f"htpasswd failed: {result.stderr.strip()}")
    return result.stdout.strip()


def registry_config(
    port: int, storage: Path, htpasswd: Path, notify_url: str | None, http_secret: str
) -> dict[str, object]:
    """The distribution registry's configuration (YAML is a superset of JSON, so it is written as JSON)."""
    config: dict[str, object] = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": http_secret},
        "auth": {"htpasswd": {"realm": "ecr-pipeline-emulator", "path": str(htpasswd)}},
    }
    if notify_url is not None:
        config["notifications"] = {
            "endpoints": [
                {
                    "name": "emulator",
                    "url": notify_url,
                    "timeout": "2s",
                    "threshold": 5,
                    "backoff": "1s",
                    # Layer uploads are events too; the emulator only cares about manifests.
                    "ignoredmediatypes": ["application/octet-stream"],
                }
            ]
        }
    return config


class Registry:
    """The CNCF distribution registry on 127.0.0.1, its storage in the work dir, behind htpasswd auth."""

    def __init__(self, work_dir: Path, notify_url: str | None = None, start_timeout: float = 20.0) -> None:
        self.root = Path(work_dir).resolve() / "registry"
        self.notify_url = notify_url
        self.start_timeout = start_timeout
        self.port = 0
        self.log_path = self.root / "registry.log"
        self._password = secrets.token_urlsafe(24)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: io.BufferedWriter | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def credentials(self) -> tuple[str, str]:
        return _REGISTRY_USER, self._password

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Registry:
        if not REGISTRY_BINARY.exists():
            raise EngineError(missing_message())
        storage = self.root / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        htpasswd = self.root / "htpasswd"
        htpasswd.write_text(htpasswd_line(_REGISTRY_USER, self._password) + "\n", encoding="utf-8")
        htpasswd.chmod(0o600)
        self.port = free_loopback_port()
        config_path = self.root / "config.yml"
        config = registry_config(self.port, storage, htpasswd, self.notify_url, secrets.token_hex(16))
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(
            [str(REGISTRY_BINARY), "serve", str(config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            # REGISTRY_* variables would override the file; none of the caller's environment goes in.
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            if self.anonymous_status() == 401:
                return self
            time.sleep(0.1)
        self.stop()
        raise EngineError(
            f"the registry did not answer on {self.url}; log {self.log_path}:\n{_log_tail(self.log_path)}"
        )

    def anonymous_status(self) -> int | None:
        """The HTTP status of an unauthenticated GET /v2/ (None when nothing answers)."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(f"{self.url}/v2/", timeout=2) as response:
                return int(response.status)
        except urllib.error.HTTPError as error:
            return int(error.code)
        except OSError:
            return None

    def stop(self, timeout: float = 10.0) -> None:
        if self._process is not None:
            _terminate(self._process, timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Registry:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def _busybox_applets() -> set[str]:
    result = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def is_static_elf(binary: bytes) -> bool:
    """Whether a 64-bit little-endian ELF has no program interpreter (so it runs in an empty rootfs)."""
    if binary[:6] != b"\x7fELF\x02\x01":
        return False
    program_headers = int.from_bytes(binary[0x20:0x28], "little")
    entry_size = int.from_bytes(binary[0x36:0x38], "little")
    count = int.from_bytes(binary[0x38:0x3A], "little")
    pt_interp = 3
    return all(
        int.from_bytes(binary[offset : offset + 4], "little") != pt_interp
        for offset in range(program_headers, program_headers + entry_size * count, entry_size)
    )


def busybox_rootfs(cache_dir: Path) -> Path:
    """A rootfs tarball with /bin/busybox and its applet links, cached by busybox's digest.

    Fixed owners and times make the same bytes (so the same layer digest) on every run.
    """
    busybox = BUSYBOX.read_bytes()
    if not is_static_elf(busybox):
        raise EngineError(f"{BUSYBOX} is linked dynamically: the base image needs busybox-static ({INSTALL_COMMAND})")
    applets = sorted(set(BASE_APPLETS) & _busybox_applets())
    key = hashlib.sha256(busybox + "\0".join(applets).encode()).hexdigest()[:16]
    tarball = Path(cache_dir) / f"busybox-rootfs-{key}.tar"
    if tarball.exists():
        return tarball
    tarball.parent.mkdir(parents=True, exist_ok=True)

    def entry(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
        return info

    partial = tarball.with_suffix(".tar.partial")
    with tarfile.open(partial, "w", format=tarfile.GNU_FORMAT) as archive:
        for directory, mode in (
            ("bin", 0o755), ("dev", 0o755), ("etc", 0o755), ("proc", 0o755), ("root", 0o700),
            ("sys", 0o755), ("tmp", 0o1777), ("var", 0o755), ("www", 0o755),
        ):  # fmt: skip
            archive.addfile(entry(directory, tarfile.DIRTYPE, mode))
        binary = entry("bin/busybox", tarfile.REGTYPE, 0o755)
        binary.size = len(busybox)
        archive.addfile(binary, io.BytesIO(busybox))
        for applet in applets:
            link = entry(f"bin/{applet}", tarfile.SYMTYPE, 0o777)
            link.linkname = "busybox"
            archive.addfile(link)
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")):
            data = text.encode()
            info = entry(name, tarfile.REGTYPE, 0o644)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    partial.replace(tarball)
    return tarball


def base_image(engine: DockerEngine, name: str, cache_dir: Path) -> str:
    """Import the busybox rootfs into the engine as `name` (no registry involved); returns the image id."""
    tarball = busybox_rootfs(cache_dir)
    result = engine.run("import", "--change", 'CMD ["sh"]', "--change", "ENV PATH=/bin", str(tarball), name)
    return result.stdout.strip()
