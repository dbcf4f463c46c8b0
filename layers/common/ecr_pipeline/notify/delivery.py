"""Delivery of one message to its channels, once per (event, channel).

Delivery tries every channel even when one fails (a Slack outage never stops the SNS
message), then raises `DeliveryFailed` so Lambda retries; the retry skips every channel that
already got the message, because each delivery runs under a Powertools idempotency record
keyed on (event id, channel) on the stack's idempotency table. A completed delivery is
remembered with its result; a failed one leaves no record, so it is tried again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from ecr_pipeline.notify.model import Message

KEY_PREFIX = "notify-delivery"
# The delivery key: {"event_id": ..., "channel": ...}.
KEY_JMESPATH = "[event_id, channel]"


class Channel(Protocol):
    name: str

    def send(self, message: Message) -> dict[str, Any]: ...


class DeliverOnce(Protocol):
    """Runs `send` at most once per `delivery` ({event_id, channel}), returning the first result."""

    def __call__(self, *, delivery: dict[str, str], send: Callable[[], dict[str, Any]]) -> dict[str, Any]: ...


def run_directly(*, delivery: dict[str, str], send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A `DeliverOnce` without memory, for callers that keep no idempotency records."""
    return send()


class Delivery:
    """The message and, per channel, the result of its delivery (filled in as channels are sent to)."""

    __slots__ = ("message", "results")

    def __init__(self, message: Message, results: dict[str, dict[str, Any]] | None = None) -> None:
        self.message = message
        self.results = {} if results is None else results

    def as_dict(self) -> dict[str, Any]:
        return {"event_id": self.message.event_id, "message_status": self.message.status, "channels": self.results}


class DeliveryFailed(RuntimeError):
    """One or more channels failed; `delivery` holds the others' results. Raised so Lambda retries."""

    def __init__(self, failures: dict[str, str], delivery: Delivery) -> None:
        super().__init__("delivery failed on " + "; ".join(f"{name}: {reason}" for name, reason in failures.items()))
        self.failures = failures
        self.delivery = delivery


def _sender(channel: Channel, message: Message) -> Callable[[], dict[str, Any]]:
    def send() -> dict[str, Any]:
        return channel.send(message)

    return send


def deliver(message: Message, channels: list[Channel], once: DeliverOnce) -> Delivery:
    """Send to every channel once; raise DeliveryFailed after trying them all if any failed."""
    delivery = Delivery(message)
    failures: dict[str, str] = {}
    for channel in channels:
        key = {"event_id": message.event_id, "channel": channel.name}
        try:
            delivery.results[channel.name] = once(delivery=key, send=_sender(channel, message))
        except Exception as error:  # one channel's failure must not keep the message from the others
            failures[channel.name] = f"{type(error).__name__}: {error}"
    if failures:
        raise DeliveryFailed(failures, delivery)
    return delivery


def once_per_channel(persistence: BasePersistenceLayer, config: IdempotencyConfig) -> DeliverOnce:
    @idempotent_function(
        data_keyword_argument="delivery", persistence_store=persistence, config=config, key_prefix=KEY_PREFIX
    )
    def deliver_once(*, delivery: dict[str, str], send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        return send()

    return deliver_once
