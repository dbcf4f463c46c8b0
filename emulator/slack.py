"""A loopback Slack incoming webhook that enforces Block Kit limits and records what it got.

Emulated: Slack answers 200 "ok" or 400 with a short error; the limits checked here are the
ones a notification can break (header text 150, section text 3000, 10 fields, 50 blocks).
"""

from __future__ import annotations

import json
import threading
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


@dataclass
class SlackMessage:
    path: str
    payload: dict[str, Any]
    accepted: bool
    error: str = ""


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

    def __post_init__(self) -> None:
        webhook = self

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
                problems = block_kit_problems(payload)
                error = problems[0].split(":", 1)[0] if problems else ""
                message = SlackMessage(
                    self.path, payload if isinstance(payload, dict) else {}, not problems, "; ".join(problems)
                )
                webhook.messages.append(message)
                if webhook.listener is not None:
                    webhook.listener(message)
                body = b"ok" if not problems else error.encode()
                self.send_response(200 if not problems else 400)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

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
