"""A loopback Slack: an incoming webhook and the Web API's chat.postMessage and chat.update,
enforcing Block Kit limits and recording what they got.

Emulated: the webhook answers 200 "ok" or 400 with a short error; the limits checked here are
the ones a notification can break (header text 150, section text 3000, 10 fields, 50 blocks).
The Web API (`/api/<method>`, form or JSON body, `Authorization: Bearer <token>`) answers as
Slack does: HTTP 200 with `{"ok": true, "channel", "ts", "message"}` or `{"ok": false, "error"}`
(`invalid_auth`, `not_authed`, `channel_not_found`, `message_not_found`, `no_text`,
`msg_too_long` beyond 40,000 characters of text, `invalid_blocks`), and chat.postMessage at
about one message per second per channel: a short burst (`POST_BURST`) passes, beyond it HTTP 429
`ratelimited` with a Retry-After. Every post, update and reply is recorded (`messages`) with its
channel, ts and thread_ts, so a test can read the threads.
A scenario may make the next requests fail as Slack fails (`answer_next`): a 500, a 429 rate
limit with its Retry-After, no answer until the client has given up, or a dropped connection.
"""

from __future__ import annotations

import json
import math
import select
import socket
import threading
import time
import urllib.parse
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
# chat.postMessage: one message per second per channel, after a short burst of this many.
POST_BURST = 3
POSTS_PER_SECOND = 1.0
BOT_TOKEN = "xoxb-emulated-0000000000-ecr-pipeline"
CHANNEL_ID = "C0EMULATED"
WEB_API_METHODS = ("chat.postMessage", "chat.update")


@dataclass
class SlackMessage:
    path: str
    payload: dict[str, Any]
    accepted: bool
    error: str = ""
    # What the webhook answered: "200", "400", or one of FAULTS.
    answer: str = ""
    # The Web API's: chat.postMessage or chat.update ("webhook" for the webhook), and the message's place.
    method: str = "webhook"
    channel: str = ""
    ts: str = ""
    thread_ts: str = ""
    at: float = 0.0  # time.monotonic() when it arrived


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


def web_api_error(payload: dict[str, Any]) -> str:
    """Slack's error code for a chat.postMessage or chat.update body it would refuse; empty when it takes it."""
    text = payload.get("text")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return "msg_too_long"
    problems = block_kit_problems(payload)
    return problems[0].split(":", 1)[0] if problems else ""


class PostRate:
    """chat.postMessage's limit per channel: a bucket of POST_BURST posts, refilled at POSTS_PER_SECOND."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # channel -> (tokens, at)

    def take(self, channel: str) -> int:
        """0 when a post may go now, else the Retry-After in whole seconds."""
        now = self._clock()
        tokens, at = self._buckets.get(channel, (float(POST_BURST), now))
        tokens = min(float(POST_BURST), tokens + (now - at) * POSTS_PER_SECOND)
        if tokens >= 1.0:
            self._buckets[channel] = (tokens - 1.0, now)
            return 0
        self._buckets[channel] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / POSTS_PER_SECOND))


def _web_api_body(content_type: str, raw: bytes) -> dict[str, Any] | None:
    """A Web API request's arguments: a JSON body, or a form whose `blocks` is a JSON string."""
    if content_type.startswith("application/json"):
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return None
        return body if isinstance(body, dict) else None
    form: dict[str, Any] = {key: values[-1] for key, values in urllib.parse.parse_qs(raw.decode()).items()}
    if isinstance(form.get("blocks"), str):
        try:
            form["blocks"] = json.loads(form["blocks"])
        except ValueError:
            form["blocks"] = "invalid"
    return form


@dataclass
class SlackWebhook:
    messages: list[SlackMessage] = field(default_factory=list)
    # Told of every message as it arrives (the emulator attributes it to the running delivery).
    listener: Callable[[SlackMessage], None] | None = None
    planned: list[PlannedAnswer] = field(default_factory=list)
    # The Web API's workspace: the bot token it takes and the channels it knows.
    bot_token: str = BOT_TOKEN
    channels: tuple[str, ...] = (CHANNEL_ID,)

    def __post_init__(self) -> None:
        webhook = self
        self._planned_lock = threading.Lock()
        self._api_lock = threading.Lock()
        self._rate = PostRate()
        self._sequence = 0
        self._posted: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> the message as it stands

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # one answer, two writes: no delayed-ACK stall

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: messages are recorded instead."""

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path.startswith("/api/"):
                    self._web_api(raw)
                    return
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

            def _web_api(self, raw: bytes) -> None:
                method = self.path[len("/api/") :].split("?", 1)[0]
                body = _web_api_body(self.headers.get("Content-Type", ""), raw)
                planned = webhook.take_planned()
                if planned is not None:
                    self._fault(planned, body or {}, method)
                    return
                if method not in WEB_API_METHODS:
                    self._json(404, {"ok": False, "error": "unknown_method"})
                    return
                arguments = body or {}
                token = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
                token = token or str(arguments.get("token", ""))
                status, answer, retry_after = webhook.web_api_call(method, arguments, token)
                headers = {"Retry-After": str(retry_after)} if retry_after else None
                self._json(status, answer, headers)

            def _json(self, status: int, answer: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                body = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _fault(self, planned: PlannedAnswer, payload: dict[str, Any], method: str = "webhook") -> None:
                webhook.record(
                    SlackMessage(
                        self.path,
                        payload,
                        False,
                        planned.describe(),
                        planned.answer,
                        method=method,
                        channel=str(payload.get("channel", "")),
                        at=time.monotonic(),
                    )
                )
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

    def web_api_call(self, method: str, arguments: dict[str, Any], token: str) -> tuple[int, dict[str, Any], int]:
        """Slack's answer to one chat.postMessage or chat.update: (HTTP status, body, Retry-After or 0)."""
        channel = str(arguments.get("channel", ""))
        thread_ts = str(arguments.get("thread_ts", "")) if method == "chat.postMessage" else ""
        payload = {key: value for key, value in arguments.items() if key != "token"}
        with self._api_lock:
            ts = str(arguments.get("ts", "")) if method == "chat.update" else ""
            error, status, retry_after = "", 200, 0
            if not token:
                error = "not_authed"
            elif token != self.bot_token:
                error = "invalid_auth"
            elif channel not in self.channels:
                error = "channel_not_found"
            elif method == "chat.update" and (channel, ts) not in self._posted:
                error = "message_not_found"
            else:
                error = web_api_error(payload)
            if not error and method == "chat.postMessage":
                retry_after = self._rate.take(channel)
                if retry_after:
                    error, status = "ratelimited", 429
            if not error and method == "chat.postMessage":
                self._sequence += 1
                ts = f"{int(time.time())}.{self._sequence:06d}"
            if not error:
                message = {"type": "message", "ts": ts, "text": payload.get("text", "")}
                message["blocks"] = payload.get("blocks")
                if thread_ts:
                    message["thread_ts"] = thread_ts
                self._posted[(channel, ts)] = message
            self.record(
                SlackMessage(
                    f"/api/{method}",
                    payload,
                    not error,
                    error,
                    str(status),
                    method=method,
                    channel=channel,
                    ts=ts,
                    thread_ts=thread_ts,
                    at=time.monotonic(),
                )
            )
        if error:
            return status, {"ok": False, "error": error}, retry_after
        return 200, {"ok": True, "channel": channel, "ts": ts, "message": self._posted[(channel, ts)]}, 0

    @property
    def api_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/api/"

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
