"""boto3 clients made one way: botocore's own retry mode does the retrying."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

# "standard" retries throttling and transient errors with backoff; no hand-made loops.
RETRY_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=20)


@cache
def client(service: str) -> Any:
    """One client per service per process, reused across invocations."""
    return boto3.client(service, config=RETRY_CONFIG)
