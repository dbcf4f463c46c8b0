"""A CodeBuild buildspec (version 0.2) run as CodeBuild runs it: bash, phase by phase, in a source directory.

One building block of a future "docker mode"; nothing in the emulator's run uses it yet.

The rules followed (AWS CodeBuild User Guide: "Build spec reference", "Build phase transitions",
"Environment variables in build environments"; API reference: BuildPhase, PhaseContext):
- phases run in the order INSTALL, PRE_BUILD, BUILD, POST_BUILD; a command that exits non-zero fails
  its phase, the phase's `finally` commands still run;
- a failed INSTALL or PRE_BUILD ends the build (the later phases do not run); a failed BUILD is
  followed by POST_BUILD; `on-failure: CONTINUE` goes on to the next phase in any case;
- CODEBUILD_BUILD_SUCCEEDING is 1 until something failed, then 0;
- variables: the build's own (project, StartBuild overrides) win over the buildspec's `env.variables`;
- in version 0.2 every command runs in the same shell instance: variables, the directory and the
  shell's options carry over from one command to the next and from phase to phase. Here each command
  is its own bash process that starts from the state the previous one left (a failed or killed
  command's changes are lost, as a shell that exited loses them).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import yaml

PHASES = ("install", "pre_build", "build", "post_build")
_PHASE_KEYS = {"commands", "finally", "on-failure", "run-as", "runtime-versions"}
_ENV_KEYS = {"shell", "variables", "exported-variables", "parameter-store", "secrets-manager", "git-credential-helper"}
# Sections of a buildspec that say what happens around the commands; read for their shape, not acted on.
_IGNORED_SECTIONS = ("artifacts", "cache", "reports", "proxy", "run-as", "batch")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
TIMED_OUT = "TIMED_OUT"

# Restores the state a previous command left, runs on exit to save it for the next one.
# Bash's own variables (and the one CodeBuild sets anew per command) are not carried.
_PRELUDE = r"""
__cb_save() {
    # The options are written before anything changes them (a command substitution would not see errexit).
    { local __cb_rc=$? __cb_name IFS=$' \t\n'; { set +o; shopt -p; } >"$__cb_options"; set +xeu; } 2>/dev/null
    {
        for __cb_name in $(compgen -v); do
            case "$__cb_name" in
                __cb_*|__CB_*|BASH|BASH_*|BASHOPTS|BASHPID|CODEBUILD_BUILD_SUCCEEDING|COLUMNS|COMP_*|DIRSTACK|\
                EPOCHREALTIME|EPOCHSECONDS|EUID|FUNCNAME|GROUPS|HISTCMD|HOSTNAME|HOSTTYPE|IFS|LINENO|LINES|\
                MACHTYPE|OLDPWD|OPTERR|OPTIND|OSTYPE|PIPESTATUS|PPID|PWD|RANDOM|SECONDS|SHELLOPTS|SHLVL|\
                SRANDOM|UID|_) continue ;;
            esac
            declare -p "$__cb_name" 2>/dev/null
        done
        declare -f
        printf 'cd -- %q\n' "$PWD"
        cat "$__cb_options"
    } >"$__cb_next_state" && mv -f "$__cb_next_state" "$__cb_state"
    exit "$__cb_rc"
}
__cb_state=$__CB_STATE __cb_next_state=$__CB_NEXT_STATE __cb_options=$__CB_OPTIONS
unset __CB_STATE __CB_NEXT_STATE __CB_OPTIONS
trap '{ __cb_save; } 2>/dev/null' EXIT
"""


class BuildspecError(ValueError):
    """A buildspec CodeBuild would refuse; the message names the field."""


@dataclass(frozen=True)
class Phase:
    name: str
    commands: tuple[str, ...]
    finally_commands: tuple[str, ...] = ()
    on_failure: str = "ABORT"


@dataclass(frozen=True)
class Buildspec:
    shell: str
    variables: tuple[tuple[str, str], ...]
    phases: dict[str, Phase]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class PhaseContext:
    status_code: str
    message: str

    def __str__(self) -> str:
        return f"{self.status_code}: {self.message}"


@dataclass(frozen=True)
class PhaseResult:
    """One phase as BatchGetBuilds reports it; a phase that did not run has no status and no times."""

    phase_type: str
    status: str | None = None
    start_time: float | None = None
    end_time: float | None = None
    contexts: tuple[PhaseContext, ...] = ()

    @property
    def ran(self) -> bool:
        return self.status is not None

    @property
    def duration_seconds(self) -> int | None:
        if self.start_time is None or self.end_time is None:
            return None
        return int(self.end_time - self.start_time)

    def describe(self) -> dict[str, Any]:
        """The phase in BatchGetBuilds' `phases[]` shape."""
        described: dict[str, Any] = {"phaseType": self.phase_type}
        if self.status is not None:
            described.update(
                phaseStatus=self.status,
                startTime=self.start_time,
                endTime=self.end_time,
                durationInSeconds=self.duration_seconds,
                contexts=[{"statusCode": item.status_code, "message": item.message} for item in self.contexts],
            )
        return described


@dataclass(frozen=True)
class BuildResult:
    status: str
    phases: tuple[PhaseResult, ...]
    log: str
    start_time: float
    end_time: float

    def phase(self, phase_type: str) -> PhaseResult:
        for result in self.phases:
            if result.phase_type == phase_type.upper():
                return result
        raise KeyError(phase_type)


# --- parsing -------------------------------------------------------------------------------


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise BuildspecError(f"{where}: must be a list of strings")
    for index, item in enumerate(value):
        if not isinstance(item, str):
            raise BuildspecError(f"{where}[{index}]: must be a string")
    return tuple(value)


def _parse_env(env: Any, notes: list[str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    if env is None:
        return "bash", ()
    if not isinstance(env, dict):
        raise BuildspecError("env: must be a mapping")
    for key in env:
        if key not in _ENV_KEYS:
            raise BuildspecError(f"env.{key}: is not a field of a buildspec's env")
    for key in ("parameter-store", "secrets-manager"):
        if key in env:
            raise BuildspecError(f"env.{key}: is not supported here (no Parameter Store or Secrets Manager to read)")
    shell = env.get("shell", "bash")
    if shell != "bash":
        raise BuildspecError(f"env.shell: {shell!r} is not supported here (only bash)")
    variables = env.get("variables") or {}
    if not isinstance(variables, dict):
        raise BuildspecError("env.variables: must be a mapping of names to strings")
    for name, value in variables.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise BuildspecError(f"env.variables.{name}: is not a valid variable name")
        if not isinstance(value, str):
            raise BuildspecError(f"env.variables.{name}: must be a string")
    if "exported-variables" in env:
        _string_list(env["exported-variables"], "env.exported-variables")
        notes.append("env.exported-variables: ignored (nothing reads exported variables here)")
    if "git-credential-helper" in env:
        notes.append("env.git-credential-helper: ignored")
    return shell, tuple(variables.items())


def _parse_phase(name: str, body: Any, notes: list[str]) -> Phase:
    where = f"phases.{name}"
    if not isinstance(body, dict):
        raise BuildspecError(f"{where}: must be a mapping with commands")
    for key in body:
        if key not in _PHASE_KEYS:
            raise BuildspecError(f"{where}.{key}: is not a field of a phase")
    if "commands" not in body:
        raise BuildspecError(f"{where}.commands: is required")
    commands = _string_list(body["commands"], f"{where}.commands")
    finally_commands = _string_list(body["finally"], f"{where}.finally") if "finally" in body else ()
    on_failure = body.get("on-failure", "ABORT")
    if on_failure not in ("ABORT", "CONTINUE"):
        raise BuildspecError(f"{where}.on-failure: must be ABORT or CONTINUE, not {on_failure!r}")
    for key in ("run-as", "runtime-versions"):
        if key in body:
            notes.append(f"{where}.{key}: ignored")
    return Phase(name, commands, finally_commands, on_failure)


def parse_buildspec(text: str) -> Buildspec:
    """A buildspec's YAML, checked as CodeBuild checks it; BuildspecError names the faulty field."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise BuildspecError(f"buildspec: is not YAML: {error}") from None
    if not isinstance(document, dict):
        raise BuildspecError("buildspec: must be a mapping")
    version = document.get("version")
    if str(version) != "0.2":
        raise BuildspecError(f"version: must be 0.2, not {version!r}")
    notes: list[str] = []
    for key in document:
        if key in ("version", "env", "phases"):
            continue
        if key in _IGNORED_SECTIONS:
            notes.append(f"{key}: ignored")
            continue
        raise BuildspecError(f"{key}: is not a field of a buildspec")
    shell, variables = _parse_env(document.get("env"), notes)
    phases = document.get("phases")
    if not isinstance(phases, dict) or not phases:
        raise BuildspecError("phases: must be a mapping of phases")
    parsed: dict[str, Phase] = {}
    for name, body in phases.items():
        if name not in PHASES:
            raise BuildspecError(f"phases.{name}: is not a phase (one of {', '.join(PHASES)})")
        parsed[name] = _parse_phase(name, body, notes)
    return Buildspec(shell=shell, variables=variables, phases=parsed, notes=tuple(notes))


# --- running -------------------------------------------------------------------------------


def _log_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y/%m/%d %H:%M:%S.%f")


def build_environment(spec: Buildspec, environment: Mapping[str, str], source_dir: Path) -> dict[str, str]:
    """The variables a build starts with: the buildspec's, then the build's own, which take precedence."""
    variables: dict[str, str] = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}
    if "HOME" in os.environ:
        variables["HOME"] = os.environ["HOME"]
    variables["CODEBUILD_SRC_DIR"] = str(source_dir)
    variables.update(spec.variables)
    variables.update(environment)
    # CodeBuild sets this one itself, per command.
    variables.pop("CODEBUILD_BUILD_SUCCEEDING", None)
    return {name: value for name, value in variables.items() if _NAME.match(name)}


@dataclass
class _Run:
    """A build under way: its log, the state its shell carries, and the processes it started."""

    log: IO[bytes]
    workdir: Path
    deadline: float
    succeeding: bool = True
    timed_out: bool = False
    process_groups: list[int] = field(default_factory=list)

    def write(self, line: str) -> None:
        self.log.write(f"[Container] {_log_time(time.time())} {line}\n".encode())
        self.log.flush()

    def command(self, command: str) -> int | None:
        """Runs one command in the build's shell state: its exit status, or None when the build timed out."""
        self.write(f"Running command {command}")
        script = self.workdir / "command.sh"
        # The restore is silent: a carried `set -x` traces the command, not the restore.
        script.write_text(f'{_PRELUDE}\n{{ . "$__cb_state"; }} 2>/dev/null\n{command}\n', encoding="utf-8")
        environment = {
            "__CB_STATE": str(self.workdir / "state.sh"),
            "__CB_NEXT_STATE": str(self.workdir / "state.next.sh"),
            "__CB_OPTIONS": str(self.workdir / "options.sh"),
            "CODEBUILD_BUILD_SUCCEEDING": "1" if self.succeeding else "0",
        }
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            self.timed_out = True
            return None
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", str(script)],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=environment,
            cwd=self.workdir,
            start_new_session=True,  # its own process group, so a timeout ends everything it started
        )
        self.process_groups.append(process.pid)
        try:
            return process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            _kill_group(process.pid)
            process.wait()
            return None

    def commands(self, commands: tuple[str, ...]) -> PhaseContext | None:
        """Runs commands until one fails: why it failed, or None."""
        for command in commands:
            status = self.command(command)
            if status is None:
                return PhaseContext("BUILD_TIMED_OUT", "Build has timed out. ")
            if status != 0:
                self.write(f"Command did not exit successfully {command} exit status {status}")
                return PhaseContext(
                    "COMMAND_EXECUTION_ERROR",
                    f"Error while executing command: {command}. Reason: exit status {status}",
                )
        return None


def _kill_group(process_group: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process_group, signal.SIGKILL)


def _live_members(process_groups: set[int]) -> list[int]:
    """The processes of these groups that have not ended (a zombie waiting to be reaped has ended)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if fields[0] != "Z" and int(fields[2]) in process_groups:
                members.append(int(stat.parent.name))
    return members


def _end_groups(process_groups: list[int], wait_seconds: float = 5.0) -> None:
    """Kill every process of the build's groups and wait (bounded) until they are gone: SIGKILL is
    delivered asynchronously, and the build is not over while one of its processes still runs."""
    for process_group in process_groups:
        _kill_group(process_group)
    deadline = time.monotonic() + wait_seconds
    while _live_members(set(process_groups)) and time.monotonic() < deadline:
        time.sleep(0.01)


def _initial_state(variables: Mapping[str, str], source_dir: Path) -> str:
    lines = [f"declare -x {name}={shlex.quote(value)}" for name, value in variables.items()]
    lines.append(f"cd -- {shlex.quote(str(source_dir))}")
    return "\n".join(lines) + "\n"


def _run_phase(run: _Run, phase: Phase | None, phase_type: str) -> PhaseResult:
    start = time.time()
    run.write(f"Entering phase {phase_type}")
    failure = None
    if phase is not None:
        failure = run.commands(phase.commands)
        if not run.timed_out and phase.finally_commands:
            # The finally block runs whether or not the commands failed; its own failure fails the phase.
            failure = run.commands(phase.finally_commands) or failure
    if run.timed_out:
        status = TIMED_OUT
    elif failure is not None:
        status = FAILED
        run.succeeding = False
    else:
        status = SUCCEEDED
    run.write(f"Phase complete: {phase_type} State: {status}")
    if failure is None:
        run.write("Phase context status code:  Message: ")
    else:
        run.write(f"Phase context status code: {failure.status_code} Message: {failure.message}")
    return PhaseResult(phase_type, status, start, time.time(), () if failure is None else (failure,))


def run_buildspec(
    spec: Buildspec,
    source_dir: Path,
    environment: Mapping[str, str],
    log_path: Path,
    timeout_seconds: float,
) -> BuildResult:
    """Runs the buildspec in `source_dir` with the build's variables; the log goes to `log_path` too."""
    source_dir = Path(source_dir).resolve()
    start = time.time()
    results: list[PhaseResult] = []
    with tempfile.TemporaryDirectory(prefix="buildspec-") as workdir, open(log_path, "wb") as log:
        run = _Run(log=log, workdir=Path(workdir), deadline=time.monotonic() + timeout_seconds)
        (run.workdir / "state.sh").write_text(
            _initial_state(build_environment(spec, environment, source_dir), source_dir), encoding="utf-8"
        )
        for note in spec.notes:
            run.write(f"Note: {note}")
        ended = False
        try:
            for name in PHASES:
                phase_type = name.upper()
                if ended:
                    results.append(PhaseResult(phase_type))
                    continue
                result = _run_phase(run, spec.phases.get(name), phase_type)
                results.append(result)
                if run.timed_out:
                    ended = True
                elif result.status == FAILED:
                    phase = spec.phases[name]
                    # A failed BUILD still goes on to POST_BUILD; a failed INSTALL or PRE_BUILD ends the build.
                    ended = phase.on_failure == "ABORT" and name != "build"
        finally:
            # The build's background processes end with it, as they do with CodeBuild's container.
            _end_groups(run.process_groups)
    if run.timed_out:
        status = TIMED_OUT
    elif any(result.status == FAILED for result in results):
        status = FAILED
    else:
        status = SUCCEEDED
    return BuildResult(
        status=status,
        phases=tuple(results),
        log=log_path.read_text(encoding="utf-8", errors="replace"),
        start_time=start,
        end_time=time.time(),
    )
