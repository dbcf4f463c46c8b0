"""The notifier: which event, which message, which channels; delivery is notify/delivery.py.

Pure but for the channels it is given: it logs nothing (it names a build's push for the log lines, with
observability.trace), the handler logs what it returns or raises.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

from ecr_pipeline.config import PipelineConfig
from ecr_pipeline.events import codebuild
from ecr_pipeline.events.codebuild import BuildStateChange, parse_build_state_change
from ecr_pipeline.events.envelope import Envelope, MalformedEvent, parse_envelope
from ecr_pipeline.events.pipeline import CONTRACT, Record, parse_pipeline_event
from ecr_pipeline.notify.delivery import (
    Channel,
    DeliverOnce,
    Delivery,
    DeliveryAmbiguous,
    DeliveryFailed,
    Keeper,
    deliver,
    run_directly,
)
from ecr_pipeline.notify.facts import build_fact, pipeline_fact
from ecr_pipeline.notify.model import Message
from ecr_pipeline.notify.notices import notice_of
from ecr_pipeline.notify.readers import read_build_source
from ecr_pipeline.notify.render.chatbot import render_chatbot
from ecr_pipeline.notify.render.slack import render_slack
from ecr_pipeline.notify.render.text import email_subject, render_text
from ecr_pipeline.notify.words import PIPELINE_EVENTS, BuildFacts, message_from_build, message_from_pipeline_event
from ecr_pipeline.observability import trace
from ecr_pipeline.records import BuildRecord, NoticeRecord, PushRecord

# Where a repository is not in pipeline.yaml (or names no routes): everything to the topic.
DEFAULT_ROUTES: dict[str, tuple[str, ...]] = {"sns": ("all",)}
CHANNEL_ORDER = ("sns", "slack")


class PipelineEvent(NamedTuple):
    """One of the pipeline's own events: its envelope, and its record as the event contract reads it."""

    envelope: Envelope
    record: Record


Notification = PipelineEvent | BuildStateChange


def parse_notification(event: Any) -> Notification:
    """The typed event: a CodeBuild state change, or one of the pipeline's own events, read strictly
    by the event contract (events/pipeline.py), so a malformed one is rejected before anything is
    sent, with the field at fault. A deployment's end is deploy's to read: notify tells its
    "Deployment Succeeded", "Failed" and "Rolled Back", never CodeDeploy's or ECS's own events."""
    envelope = parse_envelope(event)
    if envelope.source == codebuild.SOURCE:
        return parse_build_state_change(envelope)
    if envelope.detail_type not in PIPELINE_EVENTS:
        raise MalformedEvent("detail-type", f"is not an event notify tells ({', '.join(PIPELINE_EVENTS)})")
    return PipelineEvent(envelope, parse_pipeline_event(event, CONTRACT[envelope.detail_type]).record)


def fact_of(notification: Notification) -> str:
    """What the event tells, whichever event id carried it: the key of its delivery (notify/facts.py)."""
    if isinstance(notification, BuildStateChange):
        return build_fact(notification)
    return pipeline_fact(notification.envelope.detail_type, notification.record)


class LedgerReader(Protocol):
    def get_build(self, build_id: str) -> BuildRecord | None: ...

    def pushes_of_commit(self, repository: str, commit: str) -> list[PushRecord]: ...


def build_facts(change: BuildStateChange, ledger: LedgerReader) -> BuildFacts:
    """The ledger's record of the build (keyed by its `project:uuid` id) and the push it built."""
    record = ledger.get_build(change.build_id)
    if record is not None:
        # The build's push, as start_build recorded it: the push on every later log line of this event.
        trace(push_id=record.push_id, repository=record.repository, commit=record.commit)
    source = read_build_source(change, record)
    repository, commit, ref = source.repository, source.commit, source.ref
    push = None
    if repository and commit:
        pushes = ledger.pushes_of_commit(repository, commit)
        # The push of this build's ref, else any push of the commit: author and message are the same.
        push = next((candidate for candidate in pushes if candidate.ref_name == ref), pushes[0] if pushes else None)
    return BuildFacts(record=record, push=push)


def to_message(notification: Notification, ledger: LedgerReader, stage: str = "") -> Message:
    """The message for an event: a build's from the ledger's record of it, a pipeline event's from its detail."""
    if isinstance(notification, BuildStateChange):
        return message_from_build(notification, build_facts(notification, ledger), stage)
    return message_from_pipeline_event(notification.envelope, stage)


def channels_for(message: Message, routes: Mapping[str, tuple[str, ...]], available: set[str]) -> list[str]:
    """The channels whose routes name `all` or one of the message's kinds, among those available."""
    chosen = []
    for channel in CHANNEL_ORDER:
        kinds = routes.get(channel, ())
        if channel in available and ("all" in kinds or any(kind in kinds for kind in message.kinds)):
            chosen.append(channel)
    return chosen


def routes_for(message: Message, config: PipelineConfig) -> Mapping[str, tuple[str, ...]]:
    """The repository's routes (`notify: {}` silences it); the default for a repository not in pipeline.yaml."""
    repository = config.repository(message.repository) if message.repository else None
    return repository.notify if repository else DEFAULT_ROUTES


# --- channels ---------------------------------------------------------------------------


class TopicPublisher(Protocol):
    def publish(self, *, subject: str, message: str, attributes: Mapping[str, str | list[str]]) -> str: ...


class WebhookSender(Protocol):
    def send(self, payload: dict[str, Any]) -> dict[str, Any]: ...


def message_attributes(message: Message) -> dict[str, str | list[str]]:
    """SNS message attributes for subscription filter policies (at most 10, SNS's limit); an unknown
    value is left out. `commit` and `push_id` let a subscriber follow one push."""
    attributes: dict[str, str | list[str]] = {
        "event": message.event,
        "status": message.status,
        "severity": message.severity,
        "repository": message.repository,
        "branch": message.ref,
        "commit": message.commit,
        "push_id": message.push_id,
        "environment": message.environment,
        "kinds": list(message.kinds),
    }
    return {name: value for name, value in attributes.items() if value}


def sns_payload(message: Message) -> str:
    """MessageStructure=json: email gets the plain text, every other protocol the Chatbot JSON."""
    chatbot = json.dumps(render_chatbot(message), ensure_ascii=False)
    text = render_text(message)
    return json.dumps({"default": chatbot, "email": text}, ensure_ascii=False)


class SnsChannel:
    __slots__ = ("name", "topic")

    def __init__(self, topic: TopicPublisher, name: str = "sns") -> None:
        self.topic = topic
        self.name = name

    def render(self, message: Message) -> dict[str, Any]:
        return {
            "subject": email_subject(message),
            "message": sns_payload(message),
            "attributes": message_attributes(message),
        }

    def post(self, rendered: dict[str, Any]) -> dict[str, Any]:
        message_id = self.topic.publish(
            subject=rendered["subject"], message=rendered["message"], attributes=rendered["attributes"]
        )
        return {"message_id": message_id}


class SlackChannel:
    __slots__ = ("name", "webhook")

    def __init__(self, webhook: WebhookSender, name: str = "slack") -> None:
        self.webhook = webhook
        self.name = name

    def render(self, message: Message) -> dict[str, Any]:
        return render_slack(message)

    def post(self, rendered: dict[str, Any]) -> dict[str, Any]:
        # Imported here: slack_sdk is loaded only where Slack is configured (functions/notify/app.py).
        from ecr_pipeline.adapters.slack import SlackDeliveryAmbiguous

        try:
            return self.webhook.send(rendered)
        except SlackDeliveryAmbiguous as error:
            raise DeliveryAmbiguous(str(error)) from None


class Notices(Protocol):
    def record_notice(self, notice: NoticeRecord) -> None: ...


class Notifier:
    __slots__ = ("channels", "config", "keeper", "ledger", "notices", "once", "stage")

    def __init__(
        self,
        config: PipelineConfig,
        ledger: LedgerReader,
        channels: dict[str, Channel],
        once: DeliverOnce = run_directly,
        stage: str = "",
        keeper: Keeper | None = None,
        notices: Notices | None = None,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self.channels = channels
        self.once = once
        self.stage = stage
        self.keeper = keeper
        self.notices = notices

    def notify(self, notification: Notification) -> Delivery:
        """Tell one event on the channels its repository routes it to: a Delivery with no results
        when the routes send this kind of event nowhere."""
        message = to_message(notification, self.ledger, self.stage)
        chosen = channels_for(message, routes_for(message, self.config), set(self.channels))
        channels = [self.channels[name] for name in chosen]
        try:
            delivery = deliver(message, channels, self.once, self.keeper, fact_of(notification))
        except DeliveryFailed as error:
            self._record(error.delivery, error.failures)
            raise
        self._record(delivery)
        return delivery

    def _record(self, delivery: Delivery, failures: dict[str, str] | None = None) -> None:
        """The ledger's notice of what was told (the story of the push); nothing when nothing was routed.
        A failed write raises: the retry finds every channel delivered and writes the notice again."""
        notice = notice_of(delivery, failures)
        if self.notices is not None and notice is not None and (delivery.results or failures):
            self.notices.record_notice(notice)
