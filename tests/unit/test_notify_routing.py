"""Noise control: pipeline.yaml's per-repository routes pick the channels of each message."""

from __future__ import annotations

from ecr_pipeline.config import NOTIFY_KINDS
from ecr_pipeline.notify.notifier import DEFAULT_ROUTES, channels_for, routes_for
from ecr_pipeline.notify.words import TELLINGS
from tests.notify_fakes import message_for, pipeline_config

# pipeline.yaml's demo-app: slack [all], sns [failures, blocked, deployment].
BOTH = {"sns", "slack"}


def routes() -> dict[str, tuple[str, ...]]:
    return dict(routes_for(message_for("build_started"), pipeline_config()))


def test_demo_app_routes_come_from_pipeline_yaml() -> None:
    assert routes() == {"slack": ("all",), "sns": ("failures", "blocked", "deployment")}


def test_a_successful_build_goes_to_slack_only() -> None:
    assert channels_for(message_for("codebuild_succeeded"), routes(), BOTH) == ["slack"]


def test_a_failed_build_goes_to_email_and_slack() -> None:
    assert channels_for(message_for("codebuild_failed"), routes(), BOTH) == ["sns", "slack"]


def test_a_blocked_verdict_goes_to_email_and_a_passed_one_does_not() -> None:
    assert channels_for(message_for("notify_scan_verdict_blocked"), routes(), BOTH) == ["sns", "slack"]
    assert channels_for(message_for("notify_scan_verdict_passed"), routes(), BOTH) == ["slack"]


def test_a_superseded_build_is_not_a_failure_so_email_stays_quiet() -> None:
    assert channels_for(message_for("codebuild_stopped"), routes(), BOTH) == ["slack"]


def test_slack_routes_are_ignored_when_no_webhook_is_configured() -> None:
    assert channels_for(message_for("codebuild_succeeded"), routes(), {"sns"}) == []


def test_a_repository_missing_from_pipeline_yaml_goes_to_the_topic_only() -> None:
    message = message_for("build_started")._replace(repository="not-configured")
    assert routes_for(message, pipeline_config()) == DEFAULT_ROUTES
    assert channels_for(message, DEFAULT_ROUTES, BOTH) == ["sns"]


def test_a_kind_routes_only_its_own_events() -> None:
    only_skipped = {"sns": ("skipped",)}
    assert channels_for(message_for("build_skipped"), only_skipped, BOTH) == ["sns"]
    assert channels_for(message_for("codebuild_stopped"), only_skipped, BOTH) == ["sns"]
    assert channels_for(message_for("build_started"), only_skipped, BOTH) == []


def test_an_empty_notify_mapping_silences_a_repository() -> None:
    config = pipeline_config()
    silenced = config.repositories["demo-app"]._replace(notify={})
    config = config._replace(repositories={"demo-app": silenced})
    message = message_for("codebuild_failed")
    assert channels_for(message, routes_for(message, config), BOTH) == []


def test_the_kinds_table_names_only_kinds_pipeline_yaml_accepts_and_reaches_every_one() -> None:
    used = {kind for telling in TELLINGS.values() for kind in telling.kinds}
    assert used <= set(NOTIFY_KINDS)
    assert used == set(NOTIFY_KINDS) - {"all"}
