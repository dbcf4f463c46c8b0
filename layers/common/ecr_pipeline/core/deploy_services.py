"""The AWS services and queues deploy works with (core/deploy.py, core/deploy_settle.py)."""

from __future__ import annotations

from typing import NamedTuple

from ecr_pipeline.adapters.codedeploy import CodeDeploy
from ecr_pipeline.adapters.delayed_queue import DelayedQueue
from ecr_pipeline.adapters.ecs import Ecs
from ecr_pipeline.adapters.eventbridge import EventPublisher
from ecr_pipeline.adapters.ledger import Ledger
from ecr_pipeline.core.deploy_plan import TrafficGate


class DeployServices(NamedTuple):
    ecs: Ecs
    codedeploy: CodeDeploy
    ledger: Ledger
    publisher: EventPublisher
    retry_queue: DelayedQueue | None
    # The traffic-shift gate every deployment gets (None: deployments go ungated, as in tests of other parts).
    gate: TrafficGate | None = None
