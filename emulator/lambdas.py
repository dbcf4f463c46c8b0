"""Lambda for the emulator: one long-lived worker process per function of the template.

Emulated: each function runs in its own process (its own module state, clients and caches,
as a Lambda execution environment), with exactly the template's environment plus what the
Lambda runtime sets, and AWS endpoints pointed at the emulator's front.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from emulator.template import ACCOUNT_ID, REGION, FunctionSpec

WORKER_SCRIPT = Path(__file__).with_name("lambda_worker.py")


@dataclass
class InvocationResult:
    request_id: str
    result: Any = None
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error is not None


def function_environment(spec: FunctionSpec, endpoint_url: str) -> dict[str, str]:
    """The template's variables, then what the Lambda runtime sets, then the endpoint settings."""
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        **spec.environment,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"emulated/{uuid.uuid4().hex}",
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "_HANDLER": spec.handler,
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "EMULATOR_FUNCTION_ARN": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.name}",
        # Emulated credentials and endpoint: every AWS call of the function goes to the front.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    return environment


class FunctionWorker:
    """One function's execution environment: started once, reused, restarted after a crash or timeout."""

    def __init__(self, spec: FunctionSpec, endpoint_url: str, log_path: Path) -> None:
        self.spec = spec
        self.endpoint_url = endpoint_url
        self.log_path = log_path
        self._process: subprocess.Popen[str] | None = None
        self._replies: queue.Queue[str | None] = queue.Queue()
        self._log: IO[str] | None = None
        self.init_error: dict[str, Any] | None = None
        self.cold_starts = 0

    def start(self) -> None:
        self._log = self.log_path.open("a", encoding="utf-8")
        self._process = subprocess.Popen(
            [sys.executable, str(WORKER_SCRIPT), self.spec.handler, str(self.spec.code_dir)]
            + [str(path) for path in self.spec.layer_dirs],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env=function_environment(self.spec, self.endpoint_url),
            cwd=str(self.spec.code_dir),
        )
        self.cold_starts += 1
        self._replies = queue.Queue()
        threading.Thread(target=self._read_replies, args=(self._process, self._replies), daemon=True).start()

    @staticmethod
    def _read_replies(process: subprocess.Popen[str], replies: queue.Queue[str | None]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            replies.put(line)
        replies.put(None)

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait for the init phase (the handler module imported)."""
        line = self._next_reply(timeout)
        reply = json.loads(line) if line else {"error": {"errorType": "Runtime.ExitError", "errorMessage": "exited"}}
        self.init_error = None if reply.get("ready") else reply.get("error")

    def _next_reply(self, timeout: float) -> str | None:
        try:
            return self._replies.get(timeout=timeout)
        except queue.Empty:
            return None

    def invoke(self, event: Any) -> InvocationResult:
        if self._process is None or self._process.poll() is not None:
            self.start()
            self.wait_ready()
        assert self._process is not None and self._process.stdin is not None
        request_id = str(uuid.uuid4())
        started = time.monotonic()
        deadline_ms = int(time.time() * 1000) + self.spec.timeout_seconds * 1000
        self._process.stdin.write(json.dumps({"request_id": request_id, "event": event, "deadline_ms": deadline_ms}))
        self._process.stdin.write("\n")
        self._process.stdin.flush()
        line = self._next_reply(self.spec.timeout_seconds + 1.0)
        duration_ms = (time.monotonic() - started) * 1000
        if line is None:
            # A timeout or a crash ends the execution environment, as in Lambda.
            timed_out = self._process.poll() is None
            self.stop()
            kind = "Sandbox.Timedout" if timed_out else "Runtime.ExitError"
            message = f"Task timed out after {self.spec.timeout_seconds} seconds" if timed_out else "process exited"
            return InvocationResult(
                request_id, error={"errorType": kind, "errorMessage": message}, duration_ms=duration_ms
            )
        reply = json.loads(line)
        return InvocationResult(
            request_id, result=reply.get("result"), error=reply.get("error"), duration_ms=duration_ms
        )

    def close_input(self) -> None:
        """End of input: the worker finishes its loop and exits."""
        if self._process is not None and self._process.stdin is not None and not self._process.stdin.closed:
            self._process.stdin.close()

    def stop(self) -> None:
        if self._process is not None:
            self.close_input()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None


class FunctionPool:
    """The template's functions, each with its worker; started together (init phases in parallel)."""

    def __init__(self, specs: dict[str, FunctionSpec], endpoint_for: Any, log_dir: Path) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.workers = {
            logical_id: FunctionWorker(spec, endpoint_for(logical_id), log_dir / f"{logical_id}.log")
            for logical_id, spec in specs.items()
        }

    def start(self) -> None:
        for worker in self.workers.values():
            worker.start()

    def wait_ready(self) -> None:
        for worker in self.workers.values():
            worker.wait_ready()

    def invoke(self, logical_id: str, event: Any) -> InvocationResult:
        return self.workers[logical_id].invoke(event)

    def stop(self) -> None:
        # Every worker is told to end first, so they exit together.
        for worker in self.workers.values():
            worker.close_input()
        for worker in self.workers.values():
            worker.stop()
