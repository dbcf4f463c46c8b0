"""Reading fields out of an EventBridge event, with errors that name the field.

A `MalformedEvent` is never retried: the handler logs the reason and drops the event.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple


class MalformedEvent(ValueError):
    """The event lacks a field or has one of the wrong type; `field` is its dotted path."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"malformed event: {field} {problem}")
        self.field = field
        self.problem = problem


def require_mapping(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedEvent(field, f"must be an object, got {type(value).__name__}")
    return value


def require_str(container: dict[str, Any], key: str, prefix: str) -> str:
    field = f"{prefix}.{key}" if prefix else key
    if key not in container:
        raise MalformedEvent(field, "is missing")
    value = container[key]
    if not isinstance(value, str) or not value:
        raise MalformedEvent(field, f"must be a non-empty string, got {value!r}")
    return value


def optional_str(container: dict[str, Any], key: str, prefix: str) -> str | None:
    if container.get(key) is None:
        return None
    return require_str(container, key, prefix)


def require_list(container: dict[str, Any], key: str, prefix: str) -> list[Any]:
    field = f"{prefix}.{key}" if prefix else key
    value = container.get(key)
    if not isinstance(value, list):
        raise MalformedEvent(field, "is missing" if value is None else f"must be a list, got {type(value).__name__}")
    return value


def require_time(container: dict[str, Any], key: str, prefix: str) -> str:
    """An ISO 8601 time, normalised to UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ` so that times compare as strings."""
    text = require_str(container, key, prefix)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise MalformedEvent(f"{prefix}.{key}" if prefix else key, f"must be an ISO 8601 time, got {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def strings(fields: dict[str, Any], key: str) -> tuple[str, ...]:
    values = fields.get(key)
    if values is None:
        return ()
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise MalformedEvent(f"detail.{key}", "must be a list of strings")
    return tuple(values)


def require_int(fields: dict[str, Any], key: str) -> int:
    value = fields.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise MalformedEvent(f"detail.{key}", "is missing" if value is None else f"must be an integer, got {value!r}")
    return value


def counts(fields: dict[str, Any], key: str) -> Mapping[str, int]:
    value = fields.get(key) or {}
    if not isinstance(value, dict) or not all(type(count) is int for count in value.values()):
        raise MalformedEvent(f"detail.{key}", "must map severities to integers")
    return MappingProxyType(dict(value))


def optional_string_map(fields: dict[str, Any], key: str) -> Mapping[str, str | None] | None:
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(item is None or isinstance(item, str) for item in value.values()):
        raise MalformedEvent(f"detail.{key}", "must be an object of strings")
    return MappingProxyType(dict(value))


def optional[T](read: Callable[[dict[str, Any], str], T]) -> Callable[[dict[str, Any], str], T | None]:
    return lambda fields, key: None if fields.get(key) is None else read(fields, key)


class Envelope(NamedTuple):
    """The EventBridge envelope fields every handler uses."""

    event_id: str
    detail_type: str
    source: str
    time: str
    region: str
    account: str
    detail: dict[str, Any]


def parse_envelope(event: Any) -> Envelope:
    body = require_mapping(event, "event")
    return Envelope(
        event_id=require_str(body, "id", ""),
        detail_type=require_str(body, "detail-type", ""),
        source=require_str(body, "source", ""),
        time=require_time(body, "time", ""),
        region=require_str(body, "region", ""),
        account=require_str(body, "account", ""),
        detail=require_mapping(body.get("detail"), "detail"),
    )
