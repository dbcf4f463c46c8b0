"""emulator/buildspec.py: a buildspec run as CodeBuild runs it, with bash builtins and coreutils only."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from emulator.buildspec import BuildResult, BuildspecError, parse_buildspec, run_buildspec
from emulator.intrinsics import load_template_document

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, buildspec: str, timeout_seconds: float = 30, **environment: str) -> BuildResult:
    source = tmp_path / "src"
    source.mkdir(exist_ok=True)
    spec = parse_buildspec(textwrap.dedent(buildspec))
    return run_buildspec(spec, source, environment, tmp_path / "build.log", timeout_seconds)


def output_lines(result: BuildResult) -> list[str]:
    """What the commands printed (CodeBuild's own [Container] lines left out)."""
    return [line for line in result.log.splitlines() if line and not line.startswith("[Container]")]


def test_phases_run_in_order_and_share_one_shell_state(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
        version: 0.2
        phases:
          post_build:
            commands:
              - echo "post_build $COUNT $(basename "$PWD") $(greet)"
          build:
            commands:
              - COUNT=$((COUNT + 1))
              - echo "build $COUNT $(basename "$PWD")"
          pre_build:
            commands:
              - mkdir -p nested && cd nested
              - greet() { echo hello; }
          install:
            commands:
              - COUNT=1
              - echo "install $COUNT"
        """,
    )

    assert result.status == "SUCCEEDED"
    assert output_lines(result) == ["install 1", "build 2 nested", "post_build 2 nested hello"]
    assert [phase.status for phase in result.phases] == ["SUCCEEDED"] * 4


def test_shell_options_carry_over_between_commands(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
        version: 0.2
        phases:
          build:
            commands:
              - set -o pipefail
              - false | true
        """,
    )

    assert result.phase("BUILD").status == "FAILED"


def test_failing_build_command_fails_build_and_post_build_runs_knowing_it(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
        version: 0.2
        phases:
          build:
            commands:
              - echo "build sees $CODEBUILD_BUILD_SUCCEEDING"
              - exit 3
              - echo never
          post_build:
            commands:
              - echo "post_build sees $CODEBUILD_BUILD_SUCCEEDING"
        """,
    )

    assert result.status == "FAILED"
    assert output_lines(result) == ["build sees 1", "post_build sees 0"]
    build = result.phase("BUILD")
    assert build.status == "FAILED"
    assert [str(context) for context in build.contexts] == [
        "COMMAND_EXECUTION_ERROR: Error while executing command: exit 3. Reason: exit status 3"
    ]
    assert result.phase("POST_BUILD").status == "SUCCEEDED"


def test_failing_pre_build_ends_the_build_without_build_or_post_build(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
        version: 0.2
        phases:
          pre_build:
            commands:
              - "false"
          build:
            commands:
              - echo build
          post_build:
            commands:
              - echo post_build
        """,
    )

    assert result.status == "FAILED"
    assert output_lines(result) == []
    assert result.phase("PRE_BUILD").status == "FAILED"
    assert not result.phase("BUILD").ran
    assert not result.phase("POST_BUILD").ran
    assert result.phase("POST_BUILD").describe() == {"phaseType": "POST_BUILD"}


def test_failing_install_ends_the_build(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
        version: 0.2
        phases:
          install:
            commands: ["exit 1"]
          post_build:
            commands: ["echo post_build"]
        """,
    )

    assert result.status == "FAILED"
    assert [phase.ran for phase in result.phases] == [True, False, False, False]


def test_on_failure_continue_goes_on_to_the_next_phase_but_the_build_fails(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
        version: 0.2
        phases:
          pre_build:
            on-failure: CONTINUE
            commands: ["exit 2"]
          build:
            commands: ['echo "build sees $CODEBUILD_BUILD_SUCCEEDING"']
        """,
    )

    assert result.status == "FAILED"
    assert output_lines(result) == ["build sees 0"]
    assert result.phase("PRE_BUILD").status == "FAILED"
    assert result.phase("BUILD").status == "SUCCEEDED"


def test_finally_runs_after_a_failed_command_and_the_phase_still_fails(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
        version: 0.2
        phases:
          build:
            commands: ["echo first", "exit 1", "echo skipped"]
            finally: ["echo cleanup"]
        """,
    )

    assert output_lines(result) == ["first", "cleanup"]
    assert result.phase("BUILD").status == "FAILED"


def test_failing_finally_fails_a_phase_whose_commands_succeeded(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
        version: 0.2
        phases:
          build:
            commands: ["echo ok"]
            finally: ["exit 4"]
        """,
    )

    assert result.status == "FAILED"
    assert "Reason: exit status 4" in result.phase("BUILD").contexts[0].message


def is_running(pid: int) -> bool:
    """Whether the process exists and is not a zombie waiting to be reaped."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return status.rsplit(")", 1)[1].split()[0] != "Z"


def test_timeout_kills_the_whole_process_group_and_runs_nothing_after(tmp_path: Path) -> None:
    pid_file = tmp_path / "background.pid"
    result = run(
        tmp_path,
        f"""
        version: 0.2
        phases:
          build:
            commands:
              - sleep 60 & echo $! > {pid_file}; sleep 60
          post_build:
            commands: ["echo post_build"]
        """,
        timeout_seconds=1,
    )

    assert result.status == "TIMED_OUT"
    assert result.phase("BUILD").status == "TIMED_OUT"
    assert str(result.phase("BUILD").contexts[0]).startswith("BUILD_TIMED_OUT")
    assert not result.phase("POST_BUILD").ran
    assert not is_running(int(pid_file.read_text()))


def test_background_processes_end_with_the_build(tmp_path: Path) -> None:
    pid_file = tmp_path / "background.pid"
    result = run(
        tmp_path,
        f"""
        version: 0.2
        phases:
          install:
            commands: ["sleep 60 >/dev/null 2>&1 & echo $! > {pid_file}"]
        """,
    )

    assert result.status == "SUCCEEDED"
    assert not is_running(int(pid_file.read_text()))


def test_build_variables_take_precedence_over_the_buildspec_variables(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
        version: 0.2
        env:
          variables: {IMAGE_TAG: from-buildspec, ONLY_IN_SPEC: spec}
        phases:
          build:
            commands:
              - echo "$IMAGE_TAG $ONLY_IN_SPEC $CODEBUILD_BUILD_ID"
              - command -v cat >/dev/null && echo path-kept
        """,
        IMAGE_TAG="sha-abc",
        CODEBUILD_BUILD_ID="demo:1",
    )

    assert output_lines(result) == ["sha-abc spec demo:1", "path-kept"]


def test_log_echoes_commands_and_phase_completions_as_codebuild_does(tmp_path: Path) -> None:
    result = run(
        tmp_path,
        """
        version: 0.2
        phases:
          build:
            commands: ["echo hi", "exit 1"]
        """,
    )

    log = result.log
    assert log == (tmp_path / "build.log").read_text()
    container = [line.split(" ", 3)[3] for line in log.splitlines() if line.startswith("[Container] ")]
    assert container == [
        "Entering phase INSTALL",
        "Phase complete: INSTALL State: SUCCEEDED",
        "Phase context status code:  Message: ",
        "Entering phase PRE_BUILD",
        "Phase complete: PRE_BUILD State: SUCCEEDED",
        "Phase context status code:  Message: ",
        "Entering phase BUILD",
        "Running command echo hi",
        "Running command exit 1",
        "Command did not exit successfully exit 1 exit status 1",
        "Phase complete: BUILD State: FAILED",
        "Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: exit 1. "
        "Reason: exit status 1",
        "Entering phase POST_BUILD",
        "Phase complete: POST_BUILD State: SUCCEEDED",
        "Phase context status code:  Message: ",
    ]
    assert "\nhi\n" in log


@pytest.mark.parametrize(
    ("buildspec", "field"),
    [
        ("version: 0.1\nphases: {build: {commands: [a]}}", "version:"),
        ("version: 0.2\nphases: {build: {commands: [a, b, 3]}}", "phases.build.commands[2]: must be a string"),
        ("version: 0.2\nphases: {deploy: {commands: [a]}}", "phases.deploy: is not a phase"),
        ("version: 0.2\nphases: {build: {commands: [a], on-failure: RETRY}}", "phases.build.on-failure:"),
        ("version: 0.2\nphases: {build: {finally: [a]}}", "phases.build.commands: is required"),
        ("version: 0.2\nphases: {build: {commands: [a], finally: [1]}}", "phases.build.finally[0]:"),
        ("version: 0.2\nenv: {variables: {N: 1}}\nphases: {build: {commands: [a]}}", "env.variables.N:"),
        ("version: 0.2\nenv: {shell: pwsh}\nphases: {build: {commands: [a]}}", "env.shell:"),
        ("version: 0.2\nphase: {build: {commands: [a]}}", "phase: is not a field"),
    ],
)
def test_parse_error_names_the_field(buildspec: str, field: str) -> None:
    with pytest.raises(BuildspecError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_buildspec(buildspec)


def test_exported_variables_are_ignored_with_a_note() -> None:
    spec = parse_buildspec("version: 0.2\nenv: {exported-variables: [A]}\nphases: {build: {commands: [a]}}")

    assert spec.notes == ("env.exported-variables: ignored (nothing reads exported variables here)",)


def test_template_image_build_buildspec_parses() -> None:
    document = load_template_document(ROOT / "template.yaml")
    text = document["Resources"]["ImageBuildProject"]["Properties"]["Source"]["BuildSpec"]

    spec = parse_buildspec(text)

    assert spec.shell == "bash"
    assert list(spec.phases) == ["pre_build", "build", "post_build"]
    assert spec.phases["post_build"].commands[1] == '[ "$CODEBUILD_BUILD_SUCCEEDING" = 1 ] || exit 1'
