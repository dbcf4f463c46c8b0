"""The scheduler: runs the pending work one item at a time, and Lambda's side of each delivery.

A task (build or deployment progress, a scan) runs its action; a delivery invokes its function
and is recorded on the timeline with what the invocation did (its calls, events, Slack messages
and permission gaps), then handled as Lambda would: emulated asynchronous retries and the
on-failure destination, or, for an SQS batch, the deletion of what was handled.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from emulator.front import ApiCall
from emulator.lambdas import FunctionPool, InvocationResult
from emulator.outcome import classify
from emulator.permissions import Permissions
from emulator.queues import QueueSources
from emulator.runtime import AwsClients
from emulator.template import ACCOUNT_ID, REGION, Template
from emulator.work import Delivery, Running, Task, WorkState


class Scheduler:
    """Runs pending work (in a seeded random order with --shuffle) and delivers events to the functions."""

    def __init__(
        self,
        work: WorkState,
        template: Template,
        functions: FunctionPool,
        aws: AwsClients,
        permissions: Permissions,
        queues: QueueSources,
        shuffle_seed: int | None = None,
        max_time_jumps: int = 50,
    ) -> None:
        self._work = work
        self._template = template
        self._functions = functions
        self._aws = aws
        self._permissions = permissions
        self._queues = queues
        self._shuffled = shuffle_seed is not None
        self._rng = random.Random(shuffle_seed)
        # How many times one drain may skip the delays of event-source queues (a retry queue's backoff).
        self._max_time_jumps = max_time_jumps
        self.deliveries_seen: set[tuple[str, str]] = set()
        # (kind, start, end) of every emulated task run: the bench subtracts emulated build time.
        self.task_intervals: list[tuple[str, float, float]] = []
        self.failure_destinations: dict[str, str] = {
            spec.logical_id: spec.retry.on_failure_destination
            for spec in template.functions.values()
            if spec.retry.on_failure_destination
        }

    def run_until_idle(self, max_items: int = 5000) -> int:
        """Run pending work (in a seeded random order with --shuffle) until nothing is left."""
        work = self._work
        done = 0
        jumps = 0
        while done < max_items:
            with work.lock:
                item = None
                if work.pending:
                    index = self._rng.randrange(len(work.pending)) if self._shuffled else 0
                    item = work.pending.pop(index)
            if item is None:
                if self._queues.poll():
                    continue
                if jumps < self._max_time_jumps and self._queues.skip_delays():
                    jumps += 1
                    continue
                return done
            done += 1
            if isinstance(item, Task):
                self._run_task(item)
            else:
                self._deliver(item)
        raise RuntimeError(f"more than {max_items} work items: the pipeline is looping")

    def _run_task(self, task: Task) -> None:
        work = self._work
        with work.lock:
            work.running = Running()
        started = time.monotonic()
        try:
            task.action()
        finally:
            with work.lock:
                work.running = None
            self.task_intervals.append((task.kind, work.elapsed(started), work.elapsed()))

    def _deliver(self, delivery: Delivery) -> None:
        work = self._work
        event_id = str(delivery.event.get("id") or (delivery.event.get("Records") or [{}])[0].get("messageId", ""))
        key = (delivery.function, event_id)
        repeat = key in self.deliveries_seen
        self.deliveries_seen.add(key)
        running = Running()
        with work.lock:
            work.running = running
        started = time.monotonic()
        try:
            result = self._functions.invoke(delivery.function, delivery.event)
        finally:
            with work.lock:
                work.running = None
        entry = self._delivery_entry(delivery, result, running, repeat, started)
        with work.lock:
            work.timeline.append(entry)
        work.printer.delivery(entry, delivery.event)
        if delivery.on_result is not None:
            delivery.on_result(result)
        elif result.failed:
            self._after_failure(delivery, result)
        else:
            self._queues.delete_received(delivery, result)

    def _delivery_entry(
        self, delivery: Delivery, result: InvocationResult, running: Running, repeat: bool, started: float
    ) -> dict[str, Any]:
        elapsed = self._work.elapsed
        idempotency_table = self._idempotency_table(delivery.function)
        denied = self._permissions.call_gaps(delivery.function, running.calls) + self._lambda_service_gaps(
            delivery, result
        )
        outcome, reason = classify(
            result, running.calls, running.emitted, idempotency_table, repeat, slack_messages=len(running.slack)
        )
        return {
            "kind": "delivery",
            "seq": len(self._work.timeline),
            "at_seconds": round(started - self._work.started_at, 3),
            "function": delivery.function,
            "rule": delivery.rule,
            "event_id": delivery.event.get("id"),
            "detail_type": delivery.event.get(
                "detail-type", "SQS message batch" if "Records" in delivery.event else ""
            ),
            "attempt": delivery.attempt,
            "duplicate": delivery.duplicate,
            "outcome": outcome,
            "reason": reason,
            "duration_ms": round(result.duration_ms, 1),
            "result": result.result,
            "error": result.error,
            "writes": [
                {
                    **_call_summary(call, elapsed),
                    "idempotency": call.service == "dynamodb" and call.params.get("TableName") == idempotency_table,
                }
                for call in running.calls
                if call.is_write
            ],
            "reads": len([call for call in running.calls if not call.is_write]),
            # Which reads: the busy-group lookups (ListDeployments, BatchGetDeployments) are reads.
            "read_calls": [_call_summary(call, elapsed) for call in running.calls if not call.is_write],
            "denied": denied,
            "slack": [
                {"accepted": message.accepted, "error": message.error, "text": message.payload.get("text")}
                for message in running.slack
            ],
            "emitted": [
                {"id": event["id"], "source": event["source"], "detail_type": event["detail-type"]}
                for event in running.emitted
            ],
        }

    def _lambda_service_gaps(self, delivery: Delivery, result: InvocationResult) -> list[dict[str, Any]]:
        """The permissions Lambda needed for this delivery: its event source queue, its on-failure destination."""
        spec = self._template.functions.get(delivery.function)
        exhausted = (
            spec is not None
            and result.failed
            and not delivery.queue_receipts
            and delivery.attempt > spec.retry.maximum_retry_attempts
        )
        return self._permissions.lambda_service_gaps(
            delivery.function,
            delivery.queue_receipts[0][0] if delivery.queue_receipts else None,
            self.failure_destinations.get(delivery.function) if exhausted else None,
        )

    def _idempotency_table(self, function: str) -> str:
        spec = self._template.functions.get(function)
        return spec.environment.get("IDEMPOTENCY_TABLE", "") if spec else ""

    def _after_failure(self, delivery: Delivery, result: InvocationResult) -> None:
        """Emulated Lambda asynchronous retries, then the on-failure destination (or the queue's redrive)."""
        if delivery.queue_receipts:
            return  # the messages become visible again and are received anew, as with SQS
        work = self._work
        spec = self._template.functions[delivery.function]
        if delivery.attempt <= spec.retry.maximum_retry_attempts:
            with work.lock:
                work.pending.append(
                    Delivery(delivery.event, delivery.rule, delivery.function, delivery.attempt + 1, delivery.duplicate)
                )
            return
        destination = self.failure_destinations.get(delivery.function)
        if destination and destination.startswith("arn:aws:sqs:"):
            record = {
                "version": "1.0",
                "timestamp": work.clock.iso(datetime.now(UTC)),
                "requestContext": {
                    "requestId": str(uuid.uuid4()),
                    "functionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{spec.name}:$LATEST",
                    "condition": "RetriesExhausted",
                    "approximateInvokeCount": delivery.attempt,
                },
                "requestPayload": delivery.event,
                "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
                "responsePayload": result.error,
            }
            queue_name = destination.rsplit(":", 1)[-1]
            sqs = self._aws("sqs", direct=True)
            sqs.send_message(
                QueueUrl=sqs.get_queue_url(QueueName=queue_name)["QueueUrl"], MessageBody=json.dumps(record)
            )
            work.record_task(
                f"{delivery.function} gave up after {delivery.attempt} attempts: event sent to {queue_name}"
            )


def _call_summary(call: ApiCall, elapsed: Callable[[float], float]) -> dict[str, Any]:
    params = call.params
    target = (
        params.get("repositoryName")
        or params.get("TableName")
        or params.get("TopicArn")
        or params.get("QueueUrl")
        or params.get("projectName")
        or params.get("deploymentGroupName")
        or params.get("family")
        or params.get("SecretId")
        or params.get("id")
        or ""
    )
    summary: dict[str, Any] = {
        "service": call.service,
        "operation": call.operation,
        "target": str(target),
        "status": call.status,
        "at_seconds": elapsed(call.at),
    }
    if call.operation == "PutImage":
        summary["tag"] = params.get("imageTag")
    if call.operation == "PutEvents":
        summary["detail_types"] = [entry.get("DetailType") for entry in params.get("Entries") or []]
    if call.error_code:
        summary["error"] = call.error_code
    return summary
