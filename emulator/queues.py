"""Lambda's SQS event sources, emulated: poll each source queue into a pending batch delivery, delete
what was handled, and let emulated time pass when only delayed messages are left.
"""

from __future__ import annotations

from emulator.lambdas import InvocationResult
from emulator.moto_internals import make_queue_messages_visible
from emulator.runtime import AwsClients
from emulator.template import ACCOUNT_ID, REGION, QueueSource
from emulator.work import Delivery, WorkState


class QueueSources:
    """The functions' SQS event sources: (function, queue URL, source), in template order."""

    def __init__(self, work: WorkState, aws: AwsClients) -> None:
        self._work = work
        self._aws = aws
        self.sources: list[tuple[str, str, QueueSource]] = []

    def poll(self) -> bool:
        """One receive on every source queue; each non-empty answer becomes a pending batch. False when none."""
        if not self.sources:
            return False
        sqs = self._aws("sqs", direct=True)
        found = False
        for function, url, source in self.sources:
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(source.batch_size, 10),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                continue
            found = True
            queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{url.rsplit('/', 1)[-1]}"
            records = [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": message.get("Attributes", {}),
                    "messageAttributes": message.get("MessageAttributes", {}),
                    "md5OfBody": message.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": queue_arn,
                    "awsRegion": REGION,
                }
                for message in messages
            ]
            with self._work.lock:
                self._work.pending.append(
                    Delivery(
                        {"Records": records},
                        f"{function}.sqs",
                        function,
                        queue_receipts=[(url, message["ReceiptHandle"], message["MessageId"]) for message in messages],
                        partial_batch=source.report_batch_item_failures,
                    )
                )
        return found

    def skip_delays(self) -> bool:
        """Emulated time: with nothing else pending, a delayed or in-flight message of an event-source
        queue becomes visible at once, as if its delay had passed. False when there is none."""
        names = [url.rsplit("/", 1)[-1] for _function, url, _source in self.sources]
        waiting = make_queue_messages_visible(names)
        if waiting:
            self._work.record_task(f"time passes: {waiting} delayed queue message(s) become visible")
        return waiting > 0

    def delete_received(self, delivery: Delivery, result: InvocationResult) -> None:
        """A handled SQS batch is deleted; with ReportBatchItemFailures, all but the failed messages."""
        if not delivery.queue_receipts:
            return
        failed: set[str] = set()
        if delivery.partial_batch and isinstance(result.result, dict):
            failed = {str(item.get("itemIdentifier")) for item in result.result.get("batchItemFailures") or []}
        sqs = self._aws("sqs", direct=True)
        for url, receipt, message_id in delivery.queue_receipts:
            if message_id not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=receipt)
