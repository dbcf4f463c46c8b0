"""Delivery of one message to its channels, once per (fact, channel), and what is kept when it cannot be.

Delivery tries every channel even when one fails (a Slack outage never stops the SNS message),
then raises `DeliveryFailed` so Lambda retries; the retry skips every channel that already got
the message, because each delivery runs under a Powertools idempotency record keyed on
(fact, channel) on the stack's idempotency table (notify/facts.py: the same fact republished
under a new event id is told once). A completed delivery is remembered with its result; a failed
one leaves no record, so it is tried again.

Two answers end the trying, and the notification is then kept, rendered, with the reason, for ops
to replay (`Keeper`, notify/undelivered.py), and alarmed:
- the channel failed on Lambda's last attempt (counted per event, channel and fact), so no retry follows;
- the channel may or may not have it (`DeliveryAmbiguous`: Slack dropped the connection or timed out
  after the request went out). It is neither counted as delivered nor sent again blindly.
The kept result is remembered like a delivery, so no retry or republication repeats it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from ecr_pipeline.notify.model import Message
from ecr_pipeline.notify.words import title

KEY_PREFIX = "notify-delivery"
# The delivery key: {"fact": ..., "channel": ...}.
KEY_JMESPATH = "[fact, channel]"
# Lambda's asynchronous invocation and its two retries (template.yaml: MaximumRetryAttempts 2).
LAMBDA_ATTEMPTS = 3
KEPT = "kept"


class Channel(Protocol):
    name: str

    def render(self, message: Message) -> dict[str, Any]:
        """The payload as the channel takes it (JSON-serialisable: it is what is kept and replayed)."""
        ...

    def post(self, rendered: dict[str, Any]) -> dict[str, Any]: ...


class DeliveryAmbiguous(RuntimeError):
    """The request went out and no answer came back: the channel may or may not have the message."""


class Undelivered(NamedTuple):
    """A notification given up on, as kept for replay: the rendered payload and why."""

    fact: str
    channel: str
    event_id: str
    title: str
    reason: str
    rendered: dict[str, Any]
    attempts: int
    kept_at: str = ""  # set once it is kept


class Keeper(Protocol):
    def count_failure(self, *, fact: str, channel: str, event_id: str) -> int:
        """Record one failed attempt of this event on this channel; how many there have been."""
        ...

    def keep(self, undelivered: Undelivered) -> None:
        """Keep the notification where ops replay it from, and raise the alarm."""
        ...


class DeliverOnce(Protocol):
    """Runs `send` at most once per `delivery` ({fact, channel}), returning the first result."""

    def __call__(self, *, delivery: dict[str, str], send: Callable[[], dict[str, Any]]) -> dict[str, Any]: ...


def run_directly(*, delivery: dict[str, str], send: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A `DeliverOnce` without memory, for callers that keep no idempotency records."""
    return send()


class Delivery:
    """The message and, per channel, the result of its delivery (filled in as channels are sent to)."""

    __slots__ = ("fact", "message", "results")

    def __init__(self, message: Message, results: dict[str, dict[str, Any]] | None = None, fact: str = "") -> None:
        self.message = message
        self.results = {} if results is None else results
        self.fact = fact

    @property
    def kept(self) -> list[str]:
        """The channels the message was kept for instead of delivered."""
        return [name for name, result in self.results.items() if result.get("status") == KEPT]

    @property
    def delivered(self) -> list[str]:
        return [name for name, result in self.results.items() if result.get("status") != KEPT]

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.message.event_id,
            "fact": self.fact,
            "message_status": self.message.status,
            "channels": self.results,
        }


class DeliveryFailed(RuntimeError):
    """One or more channels failed; `delivery` holds the others' results. Raised so Lambda retries."""

    def __init__(self, failures: dict[str, str], delivery: Delivery) -> None:
        super().__init__("delivery failed on " + "; ".join(f"{name}: {reason}" for name, reason in failures.items()))
        self.failures = failures
        self.delivery = delivery


def _reason(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"


def _sender(channel: Channel, message: Message, fact: str, keeper: Keeper | None) -> Callable[[], dict[str, Any]]:
    def send() -> dict[str, Any]:
        rendered = channel.render(message)

        def keep(reason: str, attempts: int) -> dict[str, Any]:
            assert keeper is not None
            keeper.keep(Undelivered(fact, channel.name, message.event_id, title(message), reason, rendered, attempts))
            return {"status": KEPT, "reason": reason}

        try:
            return channel.post(rendered)
        except DeliveryAmbiguous as error:
            if keeper is None:
                raise
            return keep(f"no answer, so maybe delivered: {error}", 1)
        except Exception as error:
            if keeper is None:
                raise
            attempts = keeper.count_failure(fact=fact, channel=channel.name, event_id=message.event_id)
            if attempts < LAMBDA_ATTEMPTS:
                raise  # Lambda retries the invocation
            return keep(f"failed on {attempts} attempts, the last: {_reason(error)}", attempts)

    return send


def deliver(
    message: Message, channels: list[Channel], once: DeliverOnce, keeper: Keeper | None = None, fact: str = ""
) -> Delivery:
    """Send to every channel once; raise DeliveryFailed after trying them all if any failed.

    `fact` keys the delivery (the event id when none is given); without a `keeper` nothing is kept
    and every failure is raised.
    """
    fact = fact or message.event_id
    delivery = Delivery(message, fact=fact)
    failures: dict[str, str] = {}
    for channel in channels:
        key = {"fact": fact, "channel": channel.name}
        try:
            delivery.results[channel.name] = once(delivery=key, send=_sender(channel, message, fact, keeper))
        except Exception as error:  # one channel's failure must not keep the message from the others
            failures[channel.name] = _reason(error)
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
