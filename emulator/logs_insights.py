"""CloudWatch Logs Insights, emulated: a subset of its query language over the function logs the
emulator keeps (<work_dir>/logs/<LogicalId>.log), so the queries docs/operations.md gives are run by
tests against a real run, not only read.

This is an emulation of a subset, not the service. It knows:
- `fields a, b, @timestamp`: the fields each result shows (without it, every field of the line);
- `filter <condition>`: comparisons `field = value`, `field != value`, `field like "text"` (contains)
  and `field like /regex/` (with an optional `i` flag), `not`, `and`, `or` and parentheses; values are
  "strings", 'strings' or numbers. A line without the field matches no comparison, as in Insights;
- `sort field asc|desc` (asc by default here; Insights' own default is desc);
- `limit n`;
- `stats count(*) [as name] by a, b`: one result per distinct value of the `by` fields.
Commands are joined by `|` and run in order. Each JSON line's fields are discovered as Insights does
(nested keys joined with dots: `channels.sns.status`); every line also has `@timestamp` (from
Powertools' `timestamp`, or an EMF entry's `_aws.Timestamp`), `@message` (the raw line) and `@log`
(its log group, `/aws/lambda/<function name>`; Insights prefixes the account id). Anything else in
a query (other commands, functions, `in`, `<`) is refused with QueryError, so a query that works
here uses nothing this module only pretends to know.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

Record = dict[str, Any]
Condition = Callable[[Record], bool]

# Insights discovers at most 1000 fields per line; the kept logs have far fewer.
MAX_FIELDS = 1000
DEFAULT_LIMIT = 10000


class QueryError(ValueError):
    """A query this subset cannot run: the message says what is not supported or malformed."""


# --- reading the kept logs ------------------------------------------------------------------


def _flatten(value: Any, prefix: str, into: Record) -> None:
    if len(into) >= MAX_FIELDS:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), into)
    elif isinstance(value, list) and prefix:
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}.{index}", into)
    elif prefix:
        into[prefix] = value


def _timestamp(fields: Record) -> int | None:
    """Milliseconds since the epoch: Powertools' `2026-12-03 06:37:57,843+0000`, or EMF's `_aws.Timestamp`."""
    emf = fields.get("_aws.Timestamp")
    if isinstance(emf, int):
        return emf
    text = fields.get("timestamp")
    if isinstance(text, str):
        try:
            moment = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f%z")
        except ValueError:
            return None
        return int(moment.timestamp() * 1000)
    return None


def parse_line(line: str, log_group: str) -> Record:
    """One log line as Insights sees it: its discovered fields and @timestamp, @message, @log."""
    record: Record = {}
    try:
        body = json.loads(line)
    except ValueError:
        body = None
    if isinstance(body, dict):
        _flatten(body, "", record)
    record["@message"] = line.rstrip("\n")
    record["@log"] = log_group
    record["@timestamp"] = _timestamp(record)
    return record


def read_logs(log_dir: Path, log_groups: Mapping[str, str]) -> list[Record]:
    """The kept lines of each function (`<LogicalId>.log` in `log_dir`), with `log_groups` naming each
    logical id's log group; blank lines are left out, as CloudWatch stores no empty event."""
    records: list[Record] = []
    for logical_id, log_group in sorted(log_groups.items()):
        path = log_dir / f"{logical_id}.log"
        if not path.exists():
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                records.append(parse_line(line, log_group))
    return records


# --- the query language -----------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<regex>/(?:[^/\\]|\\.)+/i?)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op>!=|=|\(|\)|,|\*)
      | (?P<name>`[^`]+`|[@A-Za-z_][\w.@-]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "like", "as", "by", "asc", "desc"}


class Token(NamedTuple):
    kind: str  # string regex number op name keyword
    text: str


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise QueryError(f"cannot read the query at {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "name" and value.lower() in _KEYWORDS:
            kind, value = "keyword", value.lower()
        elif kind == "name" and value.startswith("`"):
            value = value[1:-1]
        tokens.append(Token(kind, value))
        position = match.end()
    return tokens


def split_commands(query: str) -> list[str]:
    """The commands of a query: split at each `|` outside strings and regexes."""
    commands, current, quote = [], [], ""
    for char in query:
        if quote:
            current.append(char)
            if char == quote:
                quote = ""
            continue
        if char in "\"'":
            quote = char
        elif char == "/" and current and re.search(r"like\s*$", "".join(current)):
            quote = "/"
        if char == "|":
            commands.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    commands.append("".join(current).strip())
    return [command for command in commands if command]


def _literal(token: Token) -> Any:
    if token.kind == "string":
        return bytes(token.text[1:-1], "utf-8").decode("unicode_escape")
    if token.kind == "number":
        return float(token.text) if "." in token.text else int(token.text)
    raise QueryError(f"expected a value, got {token.text!r}")


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(expected, int | float) and not isinstance(actual, bool):
        try:
            return float(actual) == float(expected)
        except (TypeError, ValueError):
            return False
    return isinstance(actual, str | int | float | bool) and str(actual) == str(expected)


class _ConditionParser:
    """or_expr := and_expr ("or" and_expr)*; and_expr := unary ("and" unary)*;
    unary := "not" unary | "(" or_expr ")" | field ("=" | "!=" | "like") value."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise QueryError("the filter ends too early")
        self.index += 1
        return token

    def parse(self) -> Condition:
        condition = self.or_expr()
        left = self.peek()
        if left is not None:
            raise QueryError(f"unexpected {left.text!r} in the filter")
        return condition

    def or_expr(self) -> Condition:
        parts = [self.and_expr()]
        while self.peek() == Token("keyword", "or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda record: any(part(record) for part in parts))

    def and_expr(self) -> Condition:
        parts = [self.unary()]
        while self.peek() == Token("keyword", "and"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda record: all(part(record) for part in parts))

    def unary(self) -> Condition:
        token = self.take()
        if token == Token("keyword", "not"):
            inner = self.unary()
            return lambda record: not inner(record)
        if token == Token("op", "("):
            inner = self.or_expr()
            if self.take() != Token("op", ")"):
                raise QueryError("a parenthesis is not closed")
            return inner
        if token.kind != "name":
            raise QueryError(f"expected a field name, got {token.text!r}")
        return self.comparison(token.text)

    def comparison(self, field: str) -> Condition:
        operator = self.take()
        value = self.take()
        if operator == Token("keyword", "like"):
            if value.kind == "regex":
                flags = re.IGNORECASE if value.text.endswith("i") else 0
                pattern = re.compile(value.text[1 : value.text.rindex("/")], flags)
                return lambda record: isinstance(record.get(field), str) and bool(pattern.search(record[field]))
            text = str(_literal(value))
            return lambda record: isinstance(record.get(field), str) and text in record[field]
        expected = _literal(value)
        if operator == Token("op", "="):
            return lambda record: field in record and _equal(record[field], expected)
        if operator == Token("op", "!="):
            return lambda record: field in record and record[field] is not None and not _equal(record[field], expected)
        raise QueryError(f"the subset compares with =, != and like, not {operator.text!r}")


def _names(tokens: list[Token], what: str) -> list[str]:
    """`a, b, c`: field names separated by commas."""
    names = [token.text for token in tokens[::2]]
    commas = tokens[1::2]
    if not tokens or any(token.kind != "name" for token in tokens[::2]) or any(c != Token("op", ",") for c in commas):
        raise QueryError(f"{what} takes field names separated by commas")
    return names


def _sort_key(field: str) -> Callable[[Record], tuple[int, Any]]:
    def key(record: Record) -> tuple[int, Any]:
        value = record.get(field)
        if value is None:
            return (0, "")
        if isinstance(value, int | float) and not isinstance(value, bool):
            return (1, value)
        return (2, str(value))

    return key


def _stats(tokens: list[Token], records: list[Record]) -> list[Record]:
    head = [Token("name", "count"), Token("op", "("), Token("op", "*"), Token("op", ")")]
    if tokens[:4] != head:
        raise QueryError("the subset's stats is `stats count(*) [as name] by field, ...`")
    rest, label = tokens[4:], "count(*)"
    if rest[:1] == [Token("keyword", "as")]:
        if len(rest) < 2 or rest[1].kind != "name":
            raise QueryError("stats: `as` takes a name")
        label, rest = rest[1].text, rest[2:]
    by: list[str] = []
    if rest:
        if rest[0] != Token("keyword", "by"):
            raise QueryError(f"stats: expected `by`, got {rest[0].text!r}")
        by = _names(rest[1:], "stats ... by")
    counts: dict[tuple[Any, ...], int] = {}
    for record in records:
        group = tuple(record.get(field) for field in by)
        counts[group] = counts.get(group, 0) + 1
    return [{**dict(zip(by, group, strict=True)), label: count} for group, count in counts.items()]


def run_query(query: str, records: Iterable[Record]) -> list[Record]:
    """The results of `query` over `records` (read_logs), in order, as dicts of field to value."""
    results = list(records)
    shown: list[str] | None = None
    limit = DEFAULT_LIMIT
    for command in split_commands(query):
        verb, _, rest = command.partition(" ")
        tokens = tokenize(rest)
        if verb == "fields":
            shown = _names(tokens, "fields")
        elif verb == "filter":
            condition = _ConditionParser(tokens).parse()
            results = [record for record in results if condition(record)]
        elif verb == "sort":
            if not tokens or tokens[0].kind != "name" or len(tokens) > 2:
                raise QueryError("sort takes one field and asc or desc")
            order = tokens[1].text if len(tokens) == 2 else "asc"
            if order not in ("asc", "desc"):
                raise QueryError(f"sort order must be asc or desc, got {order!r}")
            results = sorted(results, key=_sort_key(tokens[0].text), reverse=order == "desc")
        elif verb == "limit":
            if len(tokens) != 1 or tokens[0].kind != "number" or not tokens[0].text.isdigit():
                raise QueryError("limit takes a whole number")
            limit = int(tokens[0].text)
        elif verb == "stats":
            results, shown = _stats(tokens, results), None
        else:
            raise QueryError(f"{verb!r} is not a command of the emulated subset")
    results = results[:limit]
    if shown is None:
        return results
    return [{field: record[field] for field in shown if field in record} for record in results]
