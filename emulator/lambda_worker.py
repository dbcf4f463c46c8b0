"""The Lambda execution environment of one function: a long-lived process, run as a script.

Emulated: as Lambda does, it imports the handler once (the init phase), then runs one
invocation at a time. Requests arrive as JSON lines on stdin; each reply is one JSON line on
the original stdout. The function's own output (Powertools logs, EMF metrics) goes to stderr,
which the emulator keeps in a per-function log file.

Usage: python lambda_worker.py HANDLER CODE_DIR [LAYER_DIR ...]
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The context object a Python handler receives, with the attributes Powertools reads."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.invoked_function_arn = os.environ.get("EMULATOR_FUNCTION_ARN", "")
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(kind: str, error: BaseException) -> dict[str, Any]:
    return {
        "error": {
            "errorType": kind or type(error).__name__,
            "errorMessage": str(error),
            "stackTrace": traceback.format_exception(error)[-6:],
        }
    }


def main(argv: list[str]) -> int:
    handler_name, code_dir, *layer_dirs = argv
    # Replies go to the original stdout; everything the function prints goes to stderr.
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    # Lambda's import path: the function's code, then its layers; not this script's directory.
    sys.path[:] = [code_dir, *layer_dirs] + [
        entry for entry in sys.path[1:] if "site-packages" in entry or "lib/python" in entry
    ]
    os.chdir(code_dir)
    module_name, _, function_name = handler_name.rpartition(".")
    handler: Any = None
    init_error: dict[str, Any] | None = None
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:  # an init failure fails every invocation, as in Lambda
        init_error = _error("Runtime.ImportModuleError", error)
    replies.write(json.dumps({"ready": init_error is None, **(init_error or {})}) + "\n")

    for line in sys.stdin:
        request = json.loads(line)
        if init_error is not None:
            replies.write(json.dumps(init_error) + "\n")
            continue
        context = LambdaContext(request["request_id"], request["deadline_ms"])
        try:
            result = handler(request["event"], context)
            reply: dict[str, Any] = {"result": json.loads(json.dumps(result, default=str))}
        except Exception as error:
            reply = _error("", error)
        sys.stderr.flush()
        replies.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
