"""The deploy retry queue: pending deployments waiting for a busy group (adapters/delayed_queue.py)."""

from __future__ import annotations

from ecr_pipeline.adapters.delayed_queue import MAX_DELAY_SECONDS
from ecr_pipeline.adapters.delayed_queue import DelayedQueue as DeployRetryQueue

__all__ = ["MAX_DELAY_SECONDS", "DeployRetryQueue"]
