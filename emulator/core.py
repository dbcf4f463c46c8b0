"""The emulator: moto on loopback, the front, the emulated services, the event bus and the functions.

Everything runs in one process except the functions, each in its own worker process. Work
(event deliveries, build and deployment progress, scans) waits in one pending list and runs
one item at a time, so every AWS call and every event is attributed to the item that made it.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.config import Config
from moto.events.models import EventPattern
from moto.server import ThreadedMotoServer

from ecr_pipeline.config import PipelineConfig, load_config
from ecr_pipeline.stack import stack_parameters
from emulator.codebuild import CodeBuildService, Project, project_from_template
from emulator.codecommit import CodeCommitApi, GitRepository, RefUpdate
from emulator.codedeploy import CodeDeployStates
from emulator.ecr import EcrEvents
from emulator.front import ApiCall, Front
from emulator.iam import (
    Statement,
    access_denied,
    denial_message,
    explicitly_denied,
    function_role_name,
    is_allowed,
    policy_statements,
    principal_arn,
    requests_of,
)
from emulator.lambdas import FunctionPool, InvocationResult
from emulator.moto_internals import make_queue_messages_visible
from emulator.outcome import classify
from emulator.output import Printer
from emulator.provision import create_deploy_targets, create_ecr_repositories
from emulator.slack import SlackMessage, SlackWebhook
from emulator.tag_mutability import TagMutability
from emulator.template import (
    ACCOUNT_ID,
    REGION,
    STACK_NAME,
    EventRule,
    FunctionSpec,
    QueueSource,
    Template,
    load_template,
    load_template_document,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
DEFAULT_CONFIG = REPO_ROOT / "pipeline.yaml"
SLACK_SECRET_NAME = f"{STACK_NAME}/slack-webhook"
INBOX_QUEUE = "emulator-sns-inbox"
# What Lambda's SQS event source mapping does with the function's role.
_EVENT_SOURCE_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
_CLIENT_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=60)


@dataclass
class Options:
    template: Path = DEFAULT_TEMPLATE
    config: Path = DEFAULT_CONFIG
    duplicate: bool = False
    shuffle_seed: int | None = None
    work_dir: Path | None = None
    printer: Printer = field(default_factory=Printer)
    # How many times one drain may skip the delays of event-source queues (a retry queue's backoff).
    max_time_jumps: int = 50
    # The emulated stack's name: it prefixes the ECR repositories and names the stack's own events.
    stack_name: str = STACK_NAME
    # enforce: a call the caller's policies do not allow is refused, as AWS refuses it; report: let through.
    permissions: Literal["enforce", "report"] = "enforce"


@dataclass
class Delivery:
    """An event on its way to one rule's target function (or a batch from an SQS event source)."""

    event: dict[str, Any]
    rule: str
    function: str
    attempt: int = 1
    duplicate: bool = False
    # (queue URL, receipt handle, message id) of an SQS batch, and whether the function reports partial failures.
    queue_receipts: list[tuple[str, str, str]] = field(default_factory=list)
    partial_batch: bool = False


@dataclass
class Task:
    kind: str
    label: str
    action: Callable[[], None]


@dataclass
class Running:
    """What the item being run did: its AWS calls and the events it caused."""

    calls: list[ApiCall] = field(default_factory=list)
    emitted: list[dict[str, Any]] = field(default_factory=list)
    slack: list[SlackMessage] = field(default_factory=list)


class Clock:
    """Event times: the wall clock, but strictly increasing by whole seconds (EventBridge's precision)."""

    def __init__(self) -> None:
        self._last = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)

    def tick(self) -> datetime:
        self._last = max(self._last + timedelta(seconds=1), datetime.now(UTC).replace(microsecond=0))
        return self._last

    @staticmethod
    def iso(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Emulator:
    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.printer = self.options.printer
        self.lock = threading.RLock()
        self.clock = Clock()
        self.rng = random.Random(self.options.shuffle_seed)
        self.pending: list[Delivery | Task] = []
        self.timeline: list[dict[str, Any]] = []
        self.deliveries_seen: set[tuple[str, str]] = set()
        self._running: Running | None = None
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        self.config: PipelineConfig = load_config(self.options.config, f"{self.options.stack_name}/")
        self.git_repositories: dict[str, GitRepository] = {}
        self.moto_url = ""
        self.front: Front | None = None
        self.slack = SlackWebhook()
        self.slack.listener = self._record_slack
        self._moto: ThreadedMotoServer | None = None
        self.functions: FunctionPool | None = None
        self.template: Template | None = None
        self.rules: list[tuple[EventRule, EventPattern]] = []
        self.queue_sources: list[tuple[str, str, QueueSource]] = []  # (function, queue URL, source)
        self.codebuild: CodeBuildService | None = None
        self.ecr_events: EcrEvents | None = None
        self._tag_mutability: TagMutability | None = None
        self.codedeploy: CodeDeployStates | None = None
        self.inbox_url = ""
        self.failure_destinations: dict[str, str] = {}
        self.started_at = 0.0
        self.setup_seconds = 0.0
        # (kind, start, end) of every emulated task run: the bench subtracts emulated build time.
        self.task_intervals: list[tuple[str, float, float]] = []
        self.permission_gaps: list[dict[str, Any]] = []
        self.unchecked_policies: set[str] = set()
        # Each function's policy statements and whether all of them could be read, parsed once.
        self._statements: dict[str, tuple[list[Statement], bool]] = {}
        self._session = boto3.session.Session()
        self._clients: dict[tuple[str, str], Any] = {}

    # --- life cycle --------------------------------------------------------------------------

    @property
    def work_dir(self) -> Path:
        if self.options.work_dir is not None:
            self.options.work_dir.mkdir(parents=True, exist_ok=True)
            return self.options.work_dir
        if self._temp is None:
            self._temp = tempfile.TemporaryDirectory(prefix="ecr-pipeline-emulator-")
        return Path(self._temp.name)

    def __enter__(self) -> Emulator:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self.started_at = time.monotonic()
        # moto's server logs every request; the emulator reports calls itself.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._moto.start()
        host, port = self._moto.get_host_and_port()
        self.moto_url = f"http://{host}:{port}"
        self._post_moto("/moto-api/reset")
        self.front = Front(self.moto_url)
        self.front.start()
        self.slack.start()
        self.printer.setup(f"moto on {self.moto_url}, AWS front on {self.front.url}")

        for name, repository in self.config.repositories.items():
            self.git_repositories[name] = GitRepository(name, self.work_dir / "codecommit", repository.default_branch)
        self.printer.setup(
            f"CodeCommit: {len(self.git_repositories)} git repositories under {self.work_dir / 'codecommit'}"
        )

        secret_arn = self.aws("secretsmanager", direct=True).create_secret(
            Name=SLACK_SECRET_NAME, SecretString=self.slack.url, Description="Slack incoming webhook (emulated)"
        )["ARN"]
        self.template = self._load_template(secret_arn)
        layer_dirs = self._layer_overlays(self.template)
        specs = {logical_id: _with_layers(spec, layer_dirs) for logical_id, spec in self.template.functions.items()}
        self.functions = FunctionPool(specs, self.front.endpoint_for, self.work_dir / "logs")
        # The functions' init phases (imports) run in their processes while the resources are made.
        self.functions.start()
        self._create_resources(self.template)
        self._create_deploy_targets()
        self._wire_front(self.template)
        self.functions.wait_ready()
        for logical_id, worker in self.functions.workers.items():
            if worker.init_error:
                self.printer.warning(f"{logical_id} failed to initialise: {worker.init_error.get('errorMessage')}")
        self.printer.setup(
            f"{len(specs)} functions from {self.template.path.name}: "
            + ", ".join(f"{spec.logical_id} ({len(spec.rules)} rules)" for spec in specs.values())
        )
        self.setup_seconds = time.monotonic() - self.started_at

    def stop(self) -> None:
        # moto's server polls for shutdown every half second: it stops while the rest does.
        moto_stopping = threading.Thread(target=self._moto.stop) if self._moto is not None else None
        if moto_stopping is not None:
            moto_stopping.start()
        if self.functions is not None:
            self.functions.stop()
        if self.front is not None:
            self.front.stop()
        self.slack.stop()
        if moto_stopping is not None:
            moto_stopping.join()
        if self._temp is not None:
            self._temp.cleanup()

    def _post_moto(self, path: str, body: dict[str, Any] | None = None) -> None:
        request = urllib.request.Request(
            f"{self.moto_url}{path}",
            data=json.dumps(body or {}).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            answer.read()

    def aws(self, service: str, caller: str = "emulator", direct: bool = False) -> Any:
        """A boto3 client for the emulator's own calls: through the front (observed) or straight to moto."""
        assert self.front is not None
        endpoint = self.moto_url if direct else self.front.endpoint_for(caller)
        with self.lock:
            if (service, endpoint) not in self._clients:
                self._clients[(service, endpoint)] = self._session.client(
                    service,
                    endpoint_url=endpoint,
                    region_name=REGION,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",
                    config=_CLIENT_CONFIG,
                )
            return self._clients[(service, endpoint)]

    # --- set-up from the template and pipeline.yaml ------------------------------------------

    def _load_template(self, secret_arn: str) -> Template:
        # The parameters `make deploy` gives the stack: the applications of pipeline.yaml, and the webhook.
        parameters = {"SlackWebhookSecretArn": secret_arn, **stack_parameters(self.config)}
        document_parameters = _declared_parameters(self.options.template)
        return load_template(
            self.options.template,
            {key: value for key, value in parameters.items() if key in document_parameters},
            stack_name=self.options.stack_name,
        )

    def _create_resources(self, template: Template) -> None:
        resolver = template.resolver
        dynamodb = self.aws("dynamodb", direct=True)
        for logical_id, resource in template.resources_of_type("AWS::DynamoDB::Table").items():
            properties = resolver.resolve(resource.get("Properties") or {})
            arguments: dict[str, Any] = {
                "TableName": resolver.names.name(logical_id, resolver),
                "AttributeDefinitions": properties["AttributeDefinitions"],
                "KeySchema": properties["KeySchema"],
                "BillingMode": "PAY_PER_REQUEST",
            }
            if properties.get("GlobalSecondaryIndexes"):
                arguments["GlobalSecondaryIndexes"] = [
                    {key: value for key, value in index.items() if key != "ProvisionedThroughput"}
                    for index in properties["GlobalSecondaryIndexes"]
                ]
            dynamodb.create_table(**arguments)

        sqs = self.aws("sqs", direct=True)
        for logical_id, resource in template.resources_of_type("AWS::SQS::Queue").items():
            properties = resolver.resolve(resource.get("Properties") or {})
            attributes = {
                key: str(properties[key]).lower() if isinstance(properties[key], bool) else str(properties[key])
                for key in ("DelaySeconds", "VisibilityTimeout", "MessageRetentionPeriod", "FifoQueue")
                if key in properties
            }
            sqs.create_queue(QueueName=resolver.names.name(logical_id, resolver), Attributes=attributes)
        self.inbox_url = sqs.create_queue(QueueName=INBOX_QUEUE)["QueueUrl"]
        inbox_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{INBOX_QUEUE}"

        sns = self.aws("sns", direct=True)
        for logical_id in template.resources_of_type("AWS::SNS::Topic"):
            topic_arn = sns.create_topic(Name=resolver.names.name(logical_id, resolver))["TopicArn"]
            # Emulated mailbox: every message published to the topic lands in one queue the report reads.
            sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=inbox_arn)

        secrets = self.aws("secretsmanager", direct=True)
        for logical_id in template.resources_of_type("AWS::SecretsManager::Secret"):
            secrets.create_secret(Name=resolver.names.name(logical_id, resolver), SecretString=self.slack.url)

        self._create_ecr_repositories(template)
        projects: dict[str, Project] = {}
        for _logical_id, resource in template.resources_of_type("AWS::CodeBuild::Project").items():
            project = project_from_template(resolver.resolve(resource.get("Properties") or {}))
            projects[project.name] = project
        self.codebuild = CodeBuildService(self, projects)

    @property
    def tag_mutability(self) -> TagMutability:
        """ECR's immutable-tag answer for PutImage, which moto gives with another error code."""
        if self._tag_mutability is None:
            self._tag_mutability = TagMutability(self.aws("ecr", direct=True))
        return self._tag_mutability

    def _create_ecr_repositories(self, template: Template) -> None:
        scanning = create_ecr_repositories(self.aws, template, self.config, self.tag_mutability, self.printer.warning)
        self.ecr_events = EcrEvents(self, scanning)

    def _create_deploy_targets(self) -> None:
        self.codedeploy = CodeDeployStates(self, create_deploy_targets(self.aws, self.config))

    def _wire_front(self, template: Template) -> None:
        assert self.front is not None and self.codebuild is not None
        assert self.ecr_events is not None and self.codedeploy is not None
        self.front.local_services["codecommit"] = CodeCommitApi(self.git_repositories)
        self.front.local_services["codebuild"] = self.codebuild
        # IAM first: AWS authorises a call before the service looks at it.
        self.front.guards += [self._permission_guard, self.tag_mutability.guard, self.codedeploy.guard]
        self.front.observers += [self._record_call, self.ecr_events.observe, self.codedeploy.observe, self._put_events]
        self.rules = [
            (rule, EventPattern.load(rule.pattern_json)) for rule in template.rules if rule.state == "ENABLED"
        ]
        for spec in template.functions.values():
            for source in spec.queues:
                url = template.resolver.names.ref(source.queue_logical_id, template.resolver)
                self.queue_sources.append((spec.logical_id, url, source))
            if spec.retry.on_failure_destination:
                self.failure_destinations[spec.logical_id] = spec.retry.on_failure_destination
            for ignored in spec.ignored_sources:
                self.printer.warning(f"{spec.logical_id}: event source {ignored} is not emulated")

    def _layer_overlays(self, template: Template) -> dict[Path, Path]:
        """Each layer as Lambda sees it: the source tree, with the chosen pipeline.yaml inside."""
        overlays: dict[Path, Path] = {}
        for spec in template.functions.values():
            for layer in spec.layer_dirs:
                if layer in overlays:
                    continue
                target = self.work_dir / "layers" / layer.name
                shutil.copytree(layer, target, ignore=shutil.ignore_patterns("__pycache__", "pipeline.json"))
                for config in target.glob("*/pipeline.yaml"):
                    config.unlink()
                    shutil.copyfile(self.options.config, config)
                overlays[layer] = target
        return overlays

    # --- the bus -----------------------------------------------------------------------------

    def emit(
        self,
        source: str,
        detail_type: str,
        detail: dict[str, Any],
        resources: list[str],
        event_id: str | None = None,
        when: str | None = None,
    ) -> dict[str, Any]:
        """An event on the default bus (AWS's own, emulated), routed at once by the template's rules."""
        event = {
            "version": "0",
            "id": event_id or str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": source,
            "account": ACCOUNT_ID,
            "time": when or self.clock.iso(self.clock.tick()),
            "region": REGION,
            "resources": resources,
            "detail": detail,
        }
        self.route(event)
        return event

    def route(self, event: dict[str, Any], bus: str = "default") -> list[str]:
        """Emulated EventBridge delivery (moto cannot invoke a Lambda target): every rule of the
        template whose pattern matches (moto's EventPattern) gets a pending delivery."""
        with self.lock:
            matched = [rule for rule, pattern in self.rules if rule.bus == bus and pattern.matches_event(event)]  # type: ignore[arg-type]
            origin = self._running
            if origin is not None:
                origin.emitted.append(event)
            self.timeline.append(
                {
                    "kind": "event",
                    "seq": len(self.timeline),
                    "at_seconds": self.elapsed(),
                    "event": event,
                    "rules": [rule.name for rule in matched],
                }
            )
            self.printer.event(event, [rule.function for rule in matched])
            for rule in matched:
                payload = _input(event, rule.input_path)
                copies = 2 if self.options.duplicate else 1
                for copy in range(copies):
                    self.pending.append(Delivery(payload, rule.name, rule.function, duplicate=copy > 0))
            return [rule.name for rule in matched]

    def schedule(self, kind: str, label: str, action: Callable[[], None]) -> None:
        with self.lock:
            self.pending.append(Task(kind, label, action))

    def record_task(self, text: str, **fields: Any) -> None:
        with self.lock:
            self.timeline.append(
                {"kind": "task", "seq": len(self.timeline), "at_seconds": self.elapsed(), "text": text, **fields}
            )
        self.printer.task(text)

    def record_step(self, index: int, title: str, **fields: Any) -> None:
        with self.lock:
            self.timeline.append(
                {
                    "kind": "step",
                    "seq": len(self.timeline),
                    "at_seconds": self.elapsed(),
                    "step": index,
                    "title": title,
                    **fields,
                }
            )

    def _record_slack(self, message: SlackMessage) -> None:
        with self.lock:
            if self._running is not None:
                self._running.slack.append(message)

    def _record_call(self, call: ApiCall) -> None:
        with self.lock:
            if self._running is not None:
                self._running.calls.append(call)

    def _put_events(self, call: ApiCall) -> None:
        """PutEvents from a function (stored by moto): each accepted entry becomes an event on its bus."""
        if call.service != "events" or call.operation != "PutEvents" or not call.succeeded:
            return
        answers = call.response.get("Entries") or []
        for index, entry in enumerate(call.params.get("Entries") or []):
            answer = answers[index] if index < len(answers) else {}
            if answer.get("ErrorCode"):
                continue
            try:
                detail = json.loads(entry.get("Detail") or "{}")
            except ValueError:
                continue
            event = {
                "version": "0",
                "id": answer.get("EventId") or str(uuid.uuid4()),
                "detail-type": entry.get("DetailType", ""),
                "source": entry.get("Source", ""),
                "account": ACCOUNT_ID,
                "time": self.clock.iso(self.clock.tick()),
                "region": REGION,
                "resources": entry.get("Resources") or [],
                "detail": detail,
            }
            self.route(event, str(entry.get("EventBusName") or "default").rsplit("/", 1)[-1])

    # --- running the pending work --------------------------------------------------------------

    def run_until_idle(self, max_items: int = 5000) -> int:
        """Run pending work (in a seeded random order with --shuffle) until nothing is left."""
        done = 0
        jumps = 0
        while done < max_items:
            with self.lock:
                item = None
                if self.pending:
                    index = self.rng.randrange(len(self.pending)) if self.options.shuffle_seed is not None else 0
                    item = self.pending.pop(index)
            if item is None:
                if self._poll_queues():
                    continue
                if jumps < self.options.max_time_jumps and self._skip_queue_delays():
                    jumps += 1
                    continue
                return done
            done += 1
            if isinstance(item, Task):
                self._run_task(item)
            else:
                self._deliver(item)
        raise RuntimeError(f"more than {max_items} work items: the pipeline is looping")

    def elapsed(self, moment: float | None = None) -> float:
        """Seconds since the emulator started (the timeline's clock)."""
        return round((time.monotonic() if moment is None else moment) - self.started_at, 4)

    def _run_task(self, task: Task) -> None:
        with self.lock:
            self._running = Running()
        started = time.monotonic()
        try:
            task.action()
        finally:
            with self.lock:
                self._running = None
            self.task_intervals.append((task.kind, self.elapsed(started), self.elapsed()))

    def _deliver(self, delivery: Delivery) -> None:
        assert self.functions is not None
        event_id = str(delivery.event.get("id") or (delivery.event.get("Records") or [{}])[0].get("messageId", ""))
        key = (delivery.function, event_id)
        repeat = key in self.deliveries_seen
        self.deliveries_seen.add(key)
        running = Running()
        with self.lock:
            self._running = running
        started = time.monotonic()
        try:
            result = self.functions.invoke(delivery.function, delivery.event)
        finally:
            with self.lock:
                self._running = None
        entry = self._delivery_entry(delivery, result, running, repeat, started)
        with self.lock:
            self.timeline.append(entry)
        self.printer.delivery(entry, delivery.event)
        if result.failed:
            self._after_failure(delivery, result)
        else:
            self._delete_received(delivery, result)

    def _delivery_entry(
        self, delivery: Delivery, result: InvocationResult, running: Running, repeat: bool, started: float
    ) -> dict[str, Any]:
        idempotency_table = self._idempotency_table(delivery.function)
        denied = self._permission_gaps(delivery.function, running.calls) + self._lambda_service_gaps(delivery, result)
        outcome, reason = classify(
            result, running.calls, running.emitted, idempotency_table, repeat, slack_messages=len(running.slack)
        )
        return {
            "kind": "delivery",
            "seq": len(self.timeline),
            "at_seconds": round(started - self.started_at, 3),
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
                    **_call_summary(call, self.elapsed),
                    "idempotency": call.service == "dynamodb" and call.params.get("TableName") == idempotency_table,
                }
                for call in running.calls
                if call.is_write
            ],
            "reads": len([call for call in running.calls if not call.is_write]),
            # Which reads: the busy-group lookups (ListDeployments, BatchGetDeployments) are reads.
            "read_calls": [_call_summary(call, self.elapsed) for call in running.calls if not call.is_write],
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

    def _permission_gaps(self, function: str, calls: list[ApiCall]) -> list[dict[str, Any]]:
        """The function's calls its template policies do not allow (found by the IAM guard as each was made)."""
        return [gap for call in calls if call.caller == function for gap in call.denied]

    def _lambda_service_gaps(self, delivery: Delivery, result: InvocationResult) -> list[dict[str, Any]]:
        """What Lambda itself does with the function's role: poll its SQS event source, send to its on-failure
        destination. AWS refuses the event source mapping (or drops the record) without them; here they are gaps."""
        assert self.template is not None
        policies = self._function_statements(delivery.function)
        if policies is None or not policies[1]:
            return []
        requests: list[tuple[str, str]] = []
        if delivery.queue_receipts:
            queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{delivery.queue_receipts[0][0].rsplit('/', 1)[-1]}"
            requests += [(action, queue_arn) for action in _EVENT_SOURCE_ACTIONS]
        spec = self.template.functions[delivery.function]
        destination = self.failure_destinations.get(delivery.function, "")
        exhausted = result.failed and not delivery.queue_receipts
        if exhausted and delivery.attempt > spec.retry.maximum_retry_attempts:
            if destination.startswith("arn:aws:sqs:"):
                requests.append(("sqs:SendMessage", destination))
            elif destination.startswith("arn:aws:sns:"):
                requests.append(("sns:Publish", destination))
        return [
            self.record_permission_gap(delivery.function, action, resource)
            for action, resource in requests
            if not is_allowed(policies[0], action, resource)
        ]

    def _function_statements(self, function: str) -> tuple[list[Statement], bool] | None:
        assert self.template is not None
        spec = self.template.functions.get(function)
        if spec is None:
            return None
        with self.lock:
            if function not in self._statements:
                self._statements[function] = policy_statements(spec.policies)
            return self._statements[function]

    def _permission_guard(self, call: ApiCall) -> None:
        """Emulated IAM: a function's call is authorised against its template policies before moto sees it.

        Only the functions' own calls are checked (the emulator's, CodeDeploy's and CodeBuild's
        service calls are AWS's side); a refusal is the service's AccessDenied, and is a gap.
        """
        assert self.template is not None
        policies = self._function_statements(call.caller)
        if policies is None:
            return
        statements, complete = policies
        if not complete:
            with self.lock:
                self.unchecked_policies.add(call.caller)
            return
        spec = self.template.functions[call.caller]
        principal = principal_arn(function_role_name(self.template, call.caller), spec.name)
        refusal = None
        for request in requests_of(call):
            context = dict(request.context)
            if is_allowed(statements, request.action, request.resource, context):
                continue
            call.denied.append(self.record_permission_gap(call.caller, request.action, request.resource))
            if refusal is None:
                explicit = explicitly_denied(statements, request.action, request.resource, context)
                refusal = access_denied(call, denial_message(principal, request, explicit))
        if refusal is not None and self.options.permissions == "enforce":
            raise refusal

    @property
    def permission_mode(self) -> Literal["enforce", "report"]:
        return self.options.permissions

    def mark_unchecked_policy(self, principal: str) -> None:
        """A principal whose policies could not all be read: its calls are not checked."""
        with self.lock:
            self.unchecked_policies.add(principal)

    def record_permission_gap(self, principal: str, action: str, resource: str | None) -> dict[str, Any]:
        """A call the principal's (a function's or the build role's) policies do not allow: kept once per run."""
        gap = {"function": principal, "action": action, "resource": resource}
        with self.lock:
            if gap not in self.permission_gaps:
                self.permission_gaps.append(gap)
        return gap

    def _idempotency_table(self, function: str) -> str:
        assert self.template is not None
        spec = self.template.functions.get(function)
        return spec.environment.get("IDEMPOTENCY_TABLE", "") if spec else ""

    def _after_failure(self, delivery: Delivery, result: InvocationResult) -> None:
        """Emulated Lambda asynchronous retries, then the on-failure destination (or the queue's redrive)."""
        assert self.template is not None
        if delivery.queue_receipts:
            return  # the messages become visible again and are received anew, as with SQS
        spec = self.template.functions[delivery.function]
        if delivery.attempt <= spec.retry.maximum_retry_attempts:
            with self.lock:
                self.pending.append(
                    Delivery(delivery.event, delivery.rule, delivery.function, delivery.attempt + 1, delivery.duplicate)
                )
            return
        destination = self.failure_destinations.get(delivery.function)
        if destination and destination.startswith("arn:aws:sqs:"):
            record = {
                "version": "1.0",
                "timestamp": self.clock.iso(datetime.now(UTC)),
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
            sqs = self.aws("sqs", direct=True)
            sqs.send_message(
                QueueUrl=sqs.get_queue_url(QueueName=queue_name)["QueueUrl"], MessageBody=json.dumps(record)
            )
            self.record_task(
                f"{delivery.function} gave up after {delivery.attempt} attempts: event sent to {queue_name}"
            )

    # --- SQS event sources -----------------------------------------------------------------------

    def _poll_queues(self) -> bool:
        if not self.queue_sources:
            return False
        sqs = self.aws("sqs", direct=True)
        found = False
        for function, url, source in self.queue_sources:
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
            with self.lock:
                self.pending.append(
                    Delivery(
                        {"Records": records},
                        f"{function}.sqs",
                        function,
                        queue_receipts=[(url, message["ReceiptHandle"], message["MessageId"]) for message in messages],
                        partial_batch=source.report_batch_item_failures,
                    )
                )
        return found

    def _skip_queue_delays(self) -> bool:
        """Emulated time: with nothing else pending, a delayed or in-flight message of an event-source
        queue becomes visible at once, as if its delay had passed. False when there is none."""
        names = [url.rsplit("/", 1)[-1] for _function, url, _source in self.queue_sources]
        waiting = make_queue_messages_visible(names)
        if waiting:
            self.record_task(f"time passes: {waiting} delayed queue message(s) become visible")
        return waiting > 0

    def _delete_received(self, delivery: Delivery, result: InvocationResult) -> None:
        """A handled SQS batch is deleted; with ReportBatchItemFailures, all but the failed messages."""
        if not delivery.queue_receipts:
            return
        failed: set[str] = set()
        if delivery.partial_batch and isinstance(result.result, dict):
            failed = {str(item.get("itemIdentifier")) for item in result.result.get("batchItemFailures") or []}
        sqs = self.aws("sqs", direct=True)
        for url, receipt, message_id in delivery.queue_receipts:
            if message_id not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=receipt)

    # --- what a scenario does ----------------------------------------------------------------------

    def push_events(self, repository: GitRepository, updates: list[RefUpdate]) -> list[dict[str, Any]]:
        """One "CodeCommit Repository State Change" per ref the push moved, as CodeCommit sends them."""
        events = []
        for update in updates:
            detail: dict[str, Any] = {
                "callerUserArn": f"arn:aws:iam::{ACCOUNT_ID}:user/developer",
                "event": update.action,
                "referenceFullName": update.ref,
                "referenceName": update.name,
                "referenceType": update.ref_type,
                "repositoryId": repository.repository_id,
                "repositoryName": repository.name,
            }
            if update.action != "referenceDeleted":
                detail["commitId"] = update.new
            if update.action != "referenceCreated":
                detail["oldCommitId"] = update.old
            events.append(self.emit("aws.codecommit", "CodeCommit Repository State Change", detail, [repository.arn]))
        return events


def _declared_parameters(path: Path) -> set[str]:
    return set((load_template_document(path).get("Parameters") or {}).keys())


def _with_layers(spec: FunctionSpec, overlays: dict[Path, Path]) -> FunctionSpec:
    return replace(spec, layer_dirs=tuple(overlays.get(path, path) for path in spec.layer_dirs))


def _input(event: dict[str, Any], input_path: str | None) -> Any:
    """The target's input: the whole event, or the part an InputPath selects."""
    if not input_path or input_path == "$":
        return event
    value: Any = event
    for part in input_path.removeprefix("$.").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


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
