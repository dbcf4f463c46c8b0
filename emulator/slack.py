"""A loopback Slack incoming webhook that enforces Block Kit limits and records what it got.

Emulated: Slack answers 200 "ok" or 400 with a short error; the limits checked here are the
ones a notification can break (header text 150, section text 3000, 10 fields, 50 blocks).
A scenario may make the next requests fail as Slack fails (`answer_next`): a 500, a 429 rate
limit with its Retry-After, no answer until the client has given up, or a dropped connection.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BLOCKS = 50
MAX_HEADER_TEXT = 150
MAX_SECTION_TEXT = 3000
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_TEXT = 40000
# What the webhook can be told to answer instead of Slack's usual answer.
FAULTS = ("500", "429", "timeout", "drop")


@dataclass
class SlackMessage:
    path: str
    payload: dict[str, Any]
    accepted: bool
    error: str = ""
    # What the webhook answered: "200", "400", or one of FAULTS.
    answer: str = ""


@dataclass(frozen=True)
class PlannedAnswer:
    """A fault the webhook answers one request with."""

    answer: str  # one of FAULTS
    retry_after_seconds: int = 1  # the 429's Retry-After
    hold_seconds: float = 0.0  # timeout: how long the request is held when the client stays

    def describe(self) -> str:
        if self.answer == "429":
            return f"answered 429 rate_limited, Retry-After {self.retry_after_seconds}"
        if self.answer == "timeout":
            return f"no answer: held until the client gave up (at most {self.hold_seconds:g} s)"
        if self.answer == "drop":
            return "no answer: the connection was closed"
        return "answered 500 internal_error"


def block_kit_problems(payload: Any) -> list[str]:
    """What is wrong with a webhook payload, by Slack's rules; empty when Slack would accept it."""
    if not isinstance(payload, dict):
        return ["invalid_payload: the body must be a JSON object"]
    problems = []
    blocks = payload.get("blocks")
    text = payload.get("text")
    if not text and not blocks:
        problems.append("no_text: a message needs text or blocks")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        problems.append(f"invalid_payload: text is {len(text)} characters (max {MAX_TEXT})")
    if blocks is None:
        return problems
    if not isinstance(blocks, list):
        return [*problems, "invalid_blocks: blocks must be a list"]
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"invalid_blocks: {len(blocks)} blocks (max {MAX_BLOCKS})")
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"invalid_blocks: {where} has no type")
            continue
        kind = block["type"]
        if kind == "header":
            header = block.get("text") or {}
            if header.get("type") != "plain_text":
                problems.append(f"invalid_blocks: {where}.text must be plain_text")
            if len(str(header.get("text", ""))) > MAX_HEADER_TEXT:
                problems.append(f"invalid_blocks: {where}.text is longer than {MAX_HEADER_TEXT} characters")
        elif kind == "section":
            section_text = block.get("text")
            fields = block.get("fields")
            if section_text is None and not fields:
                problems.append(f"invalid_blocks: {where} needs text or fields")
            if section_text is not None and len(str(section_text.get("text", ""))) > MAX_SECTION_TEXT:
                problems.append(f"invalid_blocks: {where}.text is longer than {MAX_SECTION_TEXT} characters")
            if fields is not None:
                if len(fields) > MAX_FIELDS:
                    problems.append(f"invalid_blocks: {where} has {len(fields)} fields (max {MAX_FIELDS})")
                for field_index, item in enumerate(fields):
                    if len(str((item or {}).get("text", ""))) > MAX_FIELD_TEXT:
                        problems.append(
                            f"invalid_blocks: {where}.fields[{field_index}] is longer than {MAX_FIELD_TEXT}"
                        )
    return problems


@dataclass
class SlackWebhook:
    messages: list[SlackMessage] = field(default_factory=list)
    # Told of every message as it arrives (the emulator attributes it to the running delivery).
    listener: Callable[[SlackMessage], None] | None = None
    planned: list[PlannedAnswer] = field(default_factory=list)

    def __post_init__(self) -> None:
        webhook = self
        self._planned_lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # one answer, two writes: no delayed-ACK stall

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: messages are recorded instead."""

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    payload = json.loads(raw)
                except ValueError:
                    payload = None
                planned = webhook.take_planned()
                if planned is not None:
                    self._fault(planned, payload if isinstance(payload, dict) else {})
                    return
                problems = block_kit_problems(payload)
                error = problems[0].split(":", 1)[0] if problems else ""
                message = SlackMessage(
                    self.path,
                    payload if isinstance(payload, dict) else {},
                    not problems,
                    "; ".join(problems),
                    "200" if not problems else "400",
                )
                webhook.record(message)
                self._answer(200 if not problems else 400, b"ok" if not problems else error.encode())

            def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _fault(self, planned: PlannedAnswer, payload: dict[str, Any]) -> None:
                webhook.record(SlackMessage(self.path, payload, False, planned.describe(), planned.answer))
                if planned.answer == "500":
                    self._answer(500, b"internal_error")
                elif planned.answer == "429":
                    self._answer(429, b"rate_limited", {"Retry-After": str(planned.retry_after_seconds)})
                else:
                    if planned.answer == "timeout":
                        self._hold(planned.hold_seconds)
                    # No answer at all: the connection closes when the handler returns.
                    self.close_connection = True

            def _hold(self, seconds: float) -> None:
                """Answer nothing until the client closes the connection (it timed out) or `seconds` pass."""
                deadline = time.monotonic() + seconds
                while (remaining := deadline - time.monotonic()) > 0:
                    readable, _, _ = select.select([self.connection], [], [], min(remaining, 0.5))
                    if not readable:
                        continue
                    try:
                        if not self.connection.recv(1, socket.MSG_PEEK):
                            return
                    except OSError:
                        return
                    time.sleep(0.05)  # bytes of a next request: keep holding this one

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def answer_next(self, answer: str, times: int = 1, retry_after_seconds: int = 1, hold_seconds: float = 0.0) -> None:
        """Answer the next `times` requests with `answer` (one of FAULTS) instead of Slack's usual answer."""
        if answer not in FAULTS:
            raise ValueError(f"answer must be one of {', '.join(FAULTS)}, got {answer!r}")
        with self._planned_lock:
            self.planned.extend([PlannedAnswer(answer, retry_after_seconds, hold_seconds)] * times)

    def take_planned(self) -> PlannedAnswer | None:
        with self._planned_lock:
            return self.planned.pop(0) if self.planned else None

    def record(self, message: SlackMessage) -> None:
        self.messages.append(message)
        if self.listener is not None:
            self.listener(message)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/services/T00000000/B00000000/emulated"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits forever for a server that never started
            self._server.shutdown()
        self._server.server_close()
