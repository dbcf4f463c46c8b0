"""The parts the scenario language's steps are made of: git pushes, the webhook's faults, run parameters."""

from __future__ import annotations

import http.client
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from ecr_pipeline.config import load_config
from emulator.builds import commit_manifest, image_manifest
from emulator.codecommit import CommitSpec, GitRepository
from emulator.core import DEFAULT_CONFIG, DEFAULT_TEMPLATE
from emulator.lambdas import function_environment
from emulator.provision import stack_template
from emulator.slack import SlackWebhook
from emulator.steps import commit_moment
from emulator.template import TemplateError, check_parameter_overrides

AUTHOR = ("Ada", "ada@example.com")


def _spec(message: str, files: dict[str, str | bytes], position: int = 0) -> CommitSpec:
    return CommitSpec(files, (), message, AUTHOR, f"{int(commit_moment(2, position).timestamp())} +0000")


def _git(repository: GitRepository, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repository.bare, capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repository(tmp_path: Path) -> GitRepository:
    repository = GitRepository("demo-app", tmp_path, "main")
    repository.commit_and_push("main", {"Dockerfile": "FROM scratch\n"}, [], "First", AUTHOR, "1767600000 +0000")
    return repository


def test_commits_pushed_together_move_the_ref_once_over_all_of_them(repository: GitRepository) -> None:
    before = repository.branch_head("main")

    commits, updates = repository.commits_and_push("main", [_spec("Two", {"a": "a"}), _spec("Three", {"b": "b"}, 1)])

    assert [(update.old, update.new, update.ref) for update in updates] == [(before, commits[-1], "refs/heads/main")]
    assert _git(repository, "rev-list", "--reverse", f"{before}..{commits[-1]}").split() == commits


def test_the_same_commits_make_the_same_commit_ids(tmp_path: Path) -> None:
    made = []
    for name in ("one", "two"):
        repository = GitRepository("demo-app", tmp_path / name, "main")
        made.append(repository.commits_and_push("main", [_spec("A", {"a": "a"}), _spec("B", {"b": "b"}, 1)])[0])

    assert made[0] == made[1]


def test_moving_a_branch_forward_is_not_forced_and_back_is(repository: GitRepository) -> None:
    first = repository.branch_head("main")
    (second,), _ = repository.commits_and_push("feature/x", [_spec("Feature", {"x": "x"})])

    forward = repository.move_branch("main", "feature/x")
    back = repository.move_branch("main", str(first))

    assert forward[:2] == (second, False)
    assert [(update.old, update.new) for update in forward[2]] == [(first, second)]
    assert back[:2] == (first, True)
    assert [(update.old, update.new) for update in back[2]] == [(second, first)]


def test_a_hand_pushed_image_has_the_manifest_of_the_commit_s_build(repository: GitRepository) -> None:
    commit = str(repository.branch_head("main"))

    manifest = commit_manifest(repository, commit, "ecr-pipeline/demo-app", "Dockerfile")

    assert manifest == image_manifest("ecr-pipeline/demo-app", commit, b"FROM scratch\n")
    assert commit_manifest(repository, commit, "ecr-pipeline/demo-app", "missing/Dockerfile") is None


@pytest.fixture
def webhook(slack_stand_in: SlackWebhook) -> SlackWebhook:
    return slack_stand_in


def _post(url: str, timeout: float = 5) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=b'{"text": "hi"}', headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_the_webhook_answers_planned_errors_then_ok_again(webhook: SlackWebhook) -> None:
    webhook.answer_next("429", retry_after_seconds=7)
    webhook.answer_next("500", times=2)

    answers = [_post(webhook.url) for _ in range(4)]

    assert [(status, body) for status, _, body in answers] == [
        (429, b"rate_limited"),
        (500, b"internal_error"),
        (500, b"internal_error"),
        (200, b"ok"),
    ]
    assert answers[0][1]["Retry-After"] == "7"
    assert [(message.answer, message.accepted) for message in webhook.messages] == [
        ("429", False),
        ("500", False),
        ("500", False),
        ("200", True),
    ]


def test_a_dropped_request_gets_no_answer_and_is_recorded(webhook: SlackWebhook) -> None:
    webhook.answer_next("drop")

    with pytest.raises(http.client.RemoteDisconnected):
        _post(webhook.url)

    assert [(message.answer, message.error) for message in webhook.messages] == [
        ("drop", "no answer: the connection was closed")
    ]


def test_a_held_request_times_the_client_out(webhook: SlackWebhook) -> None:
    webhook.answer_next("timeout", hold_seconds=30)

    with pytest.raises(TimeoutError):
        _post(webhook.url, timeout=0.2)

    assert [message.answer for message in webhook.messages] == ["timeout"]
    assert webhook.planned == []


def test_an_unknown_webhook_answer_is_refused(webhook: SlackWebhook) -> None:
    with pytest.raises(ValueError, match="answer must be one of 500, 429, timeout, drop"):
        webhook.answer_next("404")


def test_run_parameters_reach_every_function_environment() -> None:
    config = load_config(DEFAULT_CONFIG, "ecr-pipeline/")

    template = stack_template(
        DEFAULT_TEMPLATE, config, "arn:aws:secretsmanager:emulated", "ecr-pipeline", {"LogLevel": "DEBUG"}
    )
    default = stack_template(DEFAULT_TEMPLATE, config, "arn:aws:secretsmanager:emulated", "ecr-pipeline")

    assert template.functions
    assert {
        function_environment(spec, "http://127.0.0.1:1")["POWERTOOLS_LOG_LEVEL"] for spec in template.functions.values()
    } == {"DEBUG"}
    assert {spec.environment["POWERTOOLS_LOG_LEVEL"] for spec in default.functions.values()} == {"INFO"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"Colour": "blue"}, r"parameter 'Colour' is not declared in template.yaml's Parameters"),
        ({"LogLevel": "TRACE"}, r"parameter 'LogLevel': 'TRACE' is not one of its AllowedValues"),
        ({"SourceRepositories": "other"}, r"parameter 'SourceRepositories' cannot be given .*pipeline.yaml"),
        ({"SlackWebhookSecretArn": "arn:x"}, r"parameter 'SlackWebhookSecretArn' cannot be given"),
    ],
)
def test_a_run_parameter_the_template_does_not_take_is_refused_by_name(values: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        check_parameter_overrides(DEFAULT_TEMPLATE, values)


def test_the_summary_says_a_failed_scan_failed_instead_of_calling_it_clean() -> None:
    from emulator.report import _scan_words

    assert _scan_words({"status": "FAILED", "counts": {}}) == "FAILED (no result: the image could not be scanned)"
    assert _scan_words({"status": "COMPLETE", "counts": {}}) == "COMPLETE (clean)"
    assert _scan_words({"status": "COMPLETE", "counts": {"HIGH": 1}}) == "COMPLETE (HIGH 1)"
    assert _scan_words(None) == "none"
