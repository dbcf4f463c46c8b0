"""Reading fields out of an EventBridge event, with errors that name the field.

A `MalformedEvent` is never retried: the handler logs the reason and drops the event.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from ecr_pipeline.text import clean, cut

# Bounds on what an event may carry. A string field longer than MAX_FIELD is not something AWS or
# the pipeline writes (an ARN is at most 2,048 characters); times are read within EARLIEST..LATEST
# so that their UTC text has a four-digit year and compares as a string.
MAX_FIELD = 2048
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime.max.replace(tzinfo=dt.UTC)
# Shapes, ASCII only (`\\w` and `\\d` would otherwise match any script's letters and digits).
ACCOUNT_ID = re.compile(r"[0-9]{12}")
REGION = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
# arn:partition:service:region:account:resource; region and account may be empty (IAM, S3).
ARN = re.compile(r"arn:(aws|aws-cn|aws-us-gov|aws-iso(?:-[a-z])?):([a-z0-9-]{1,64}):([a-z0-9-]*):([0-9]{12}|):(\S+)")
COMMIT_ID = re.compile(r"[0-9a-f]{40}")  # a git SHA-1, as CodeCommit writes it: lowercase
IMAGE_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# AWS's pattern for an ECR repository name, 2..256 characters (checked apart).
ECR_REPOSITORY = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
CODECOMMIT_REPOSITORY = re.compile(r"[\w.-]{1,100}", re.ASCII)
# An ECR image tag: 1..300 characters, ECR's character set.
IMAGE_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,299}")
# git's ref rules (git check-ref-format), and a bound of 255 bytes: no control character, space,
# ~ ^ : ? * [ \\ or DEL; no "..", "@{" or "//"; no component starting with "." or ending in ".lock".
REF_NAME_BYTES = 255
_REF_FORBIDDEN = re.compile(r"[\x00-\x20~^:?*\[\\\x7f]|\.\.|@\{|//|/\.|\.lock(?:/|$)")


class MalformedEvent(ValueError):
    """The event lacks a field or has one of the wrong type; `field` is its dotted path."""

    def __init__(self, field: str, problem: str) -> None:
        # A field path can hold an event's own keys: cleaned and cut like any text from outside.
        field = cut(clean(field, multiline=False), 200)
        super().__init__(f"malformed event: {field} {problem}")
        self.field = field
        self.problem = problem


# Deeper than any event AWS or the pipeline sends (they nest six levels or so); a deeper one would
# reach Python's recursion limit in whatever walks it (repr, deepcopy, json).
MAX_DEPTH = 32


def check_depth(value: Any, field: str, limit: int = MAX_DEPTH) -> None:
    """MalformedEvent naming the first place where `value` nests deeper than `limit` levels."""
    pending: list[tuple[Any, str, int]] = [(value, field, 0)]
    while pending:
        item, path, depth = pending.pop()
        if not isinstance(item, (dict, list)):
            continue
        if depth >= limit:
            raise MalformedEvent(path, f"nests deeper than {limit} levels")
        entries = item.items() if isinstance(item, dict) else enumerate(item)
        for key, child in entries:
            if isinstance(child, (dict, list)):
                step = f"[{key}]" if isinstance(item, list) else f".{key}" if path else str(key)
                pending.append((child, f"{path}{step}", depth + 1))


def cleaned(value: Any) -> Any:
    """`value` with every string in it, keys included, cleaned (text.clean); call after check_depth."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(key) if isinstance(key, str) else key: cleaned(item) for key, item in value.items()}
    if isinstance(value, list):
        return [cleaned(item) for item in value]
    return value


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
        raise MalformedEvent(field, f"must be a non-empty string, got {_shown(value)}")
    if len(value) > MAX_FIELD:
        raise MalformedEvent(field, f"must be at most {MAX_FIELD} characters, got {len(value)}")
    # Lone surrogates and control characters would break a log line, a JSON body or a DynamoDB write.
    return clean(value)


def require_match(container: dict[str, Any], key: str, prefix: str, pattern: re.Pattern[str], shape: str) -> str:
    """A string field that is wholly of `pattern`'s shape (described by `shape` in the error)."""
    value = require_str(container, key, prefix)
    if not pattern.fullmatch(value):
        raise MalformedEvent(f"{prefix}.{key}" if prefix else key, f"must be {shape}, got {_shown(value)}")
    return value


def require_ecr_repository(container: dict[str, Any], key: str, prefix: str) -> str:
    name = require_match(container, key, prefix, ECR_REPOSITORY, "an ECR repository name")
    if not 2 <= len(name) <= 256:
        raise MalformedEvent(f"{prefix}.{key}" if prefix else key, f"must be 2 to 256 characters, got {len(name)}")
    return name


def check_ref_name(name: str, field: str) -> str:
    """A branch or tag name (without refs/heads/ or refs/tags/) that git itself would accept."""
    if (
        not name
        or len(name.encode("utf-8", "surrogatepass")) > REF_NAME_BYTES
        or _REF_FORBIDDEN.search(name)
        or name.startswith((".", "/", "-"))
        or name.endswith((".", "/"))
        or name == "@"
        or not name.isprintable()
        or "\ufffd" in name
    ):
        raise MalformedEvent(field, f"must be a git ref name of at most {REF_NAME_BYTES} bytes, got {_shown(name)}")
    return name


def check_arn(value: str, field: str, service: str | None = None) -> tuple[str, str, str, str]:
    """(service, region, account, resource) of an ARN; `service`, when given, must be the ARN's."""
    match = ARN.fullmatch(value)
    if not match or (service is not None and match.group(2) != service):
        kind = f"a {service} ARN" if service else "an ARN"
        raise MalformedEvent(field, f"must be {kind} (arn:partition:service:region:account:...), got {_shown(value)}")
    return match.group(2), match.group(3), match.group(4), match.group(5)


def _shown(value: Any, limit: int = 80) -> str:
    """A value as an error message shows it: repr, cut, so a huge field never makes a huge log line."""
    if isinstance(value, (dict, list)) or (isinstance(value, int) and not -(10**40) < value < 10**40):
        text = type(value).__name__
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


def sqs_body(raw: Any, index: int) -> tuple[str, str, dict[str, Any]]:
    """One record of an SQS batch as Lambda's event source delivers it, its body a JSON object:
    (field prefix of the body, message id, body)."""
    prefix = f"Records[{index}]"
    record = require_mapping(raw, prefix)
    text = require_str(record, "body", prefix)
    try:
        message = json.loads(text)
    except json.JSONDecodeError:
        raise MalformedEvent(f"{prefix}.body", "is not JSON") from None
    check_depth(message, f"{prefix}.body")
    return f"{prefix}.body", require_str(record, "messageId", prefix), require_mapping(message, f"{prefix}.body")


def require_time(container: dict[str, Any], key: str, prefix: str) -> str:
    """An ISO 8601 time, normalised to UTC `YYYY-MM-DDTHH:MM:SS.ffffffZ` so that times compare as strings."""
    text = require_str(container, key, prefix)
    field = f"{prefix}.{key}" if prefix else key
    try:
        moment = dt.datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        # An offset can carry a valid local time outside UTC's range: OverflowError, not ValueError.
        moment = moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        raise MalformedEvent(field, f"must be an ISO 8601 time, got {_shown(text)}") from None
    if not EARLIEST <= moment <= LATEST:
        raise MalformedEvent(field, f"must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}, got {_shown(text)}")
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def strings(fields: dict[str, Any], key: str) -> tuple[str, ...]:
    values = fields.get(key)
    if values is None:
        return ()
    if not isinstance(values, list) or not all(isinstance(value, str) for value in values):
        raise MalformedEvent(f"detail.{key}", "must be a list of strings")
    if any(len(value) > MAX_FIELD for value in values):
        raise MalformedEvent(f"detail.{key}", f"must hold strings of at most {MAX_FIELD} characters")
    return tuple(clean(value) for value in values)


def require_int(fields: dict[str, Any], key: str) -> int:
    value = fields.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        problem = "is missing" if value is None else f"must be an integer, got {_shown(value)}"
        raise MalformedEvent(f"detail.{key}", problem)
    if not -(2**53) < value < 2**53:
        raise MalformedEvent(f"detail.{key}", f"must be an integer within +-2**53, got {_shown(value)}")
    return value


def counts(fields: dict[str, Any], key: str) -> Mapping[str, int]:
    value = fields.get(key) or {}
    if not isinstance(value, dict) or not all(type(count) is int and 0 <= count < 2**53 for count in value.values()):
        raise MalformedEvent(f"detail.{key}", "must map severities to counts")
    if any(len(name) > MAX_FIELD for name in value):
        raise MalformedEvent(f"detail.{key}", f"must name severities in at most {MAX_FIELD} characters")
    return MappingProxyType({clean(name): count for name, count in value.items()})


def optional_string_map(fields: dict[str, Any], key: str) -> Mapping[str, str | None] | None:
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, dict) or not all(item is None or isinstance(item, str) for item in value.values()):
        raise MalformedEvent(f"detail.{key}", "must be an object of strings")
    if any(len(name) > MAX_FIELD or (item and len(item) > MAX_FIELD) for name, item in value.items()):
        raise MalformedEvent(f"detail.{key}", f"must hold strings of at most {MAX_FIELD} characters")
    return MappingProxyType({clean(name): None if item is None else clean(item) for name, item in value.items()})


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
    check_depth(body, "")
    return Envelope(
        event_id=require_str(body, "id", ""),
        detail_type=require_str(body, "detail-type", ""),
        source=require_str(body, "source", ""),
        time=require_time(body, "time", ""),
        region=require_match(body, "region", "", REGION, "an AWS region name"),
        account=require_match(body, "account", "", ACCOUNT_ID, "a 12-digit AWS account id"),
        # Cleaned once here, so whatever reads the detail (notify's lenient readers too) never meets a
        # lone surrogate or a control character.
        detail=cleaned(require_mapping(body.get("detail"), "detail")),
    )
