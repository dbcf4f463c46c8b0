"""The emulator: moto on loopback, the front, the emulated services, the event bus and the functions.

Everything runs in one process except the functions, each in its own worker process. `Emulator`
is the entry point (scenarios, tests and the CLI use it): it starts the parts and wires them.
The parts live in their own modules: the run's shared state (emulator.work), the bus
(emulator.bus), the scheduler and Lambda's delivery (emulator.delivery), IAM at run time
(emulator.permissions), the SQS event sources (emulator.queues) and provisioning (emulator.provision).
"""

from __future__ import annotations

import json
import logging
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from ecr_pipeline.config import PipelineConfig, load_config
from emulator.account import account_operations
from emulator.builds import build_role
from emulator.bus import Bus
from emulator.codebuild import CodeBuildService
from emulator.codecommit import CodeCommitApi, GitRepository, RefUpdate
from emulator.codedeploy import CodeDeployStates
from emulator.delivery import Scheduler
from emulator.docker_builds import DockerBuildSteps
from emulator.docker_engine import EngineError
from emulator.docker_engine import available as docker_available
from emulator.docker_engine import missing_message as docker_missing_message
from emulator.docker_mode import DEFAULT_BASE_IMAGES, DockerMode
from emulator.ecr import EcrEvents, ScanResult
from emulator.ecr_registry import ECR_HOST
from emulator.ecs_deployments import EcsDeployments
from emulator.ecs_tasks import EcsTasks, TaskSpec
from emulator.front import Front
from emulator.iam import policy_statements
from emulator.lambdas import FunctionPool
from emulator.output import Printer
from emulator.permissions import Permissions
from emulator.provision import (
    codebuild_projects,
    create_deploy_targets,
    create_ecr_repositories,
    create_resources,
    layer_overlays,
    stack_template,
    with_layers,
)
from emulator.queues import QueueSources
from emulator.slack import SlackWebhook
from emulator.tag_mutability import TagMutability
from emulator.template import (
    ACCOUNT_ID,
    REGION,
    SLACK_BOT_SECRET_PARAMETER,
    SLACK_CHANNEL_PARAMETER,
    STACK_NAME,
    Template,
    role_name,
    role_policy_documents,
)
from emulator.work import Delivery, WorkState

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
DEFAULT_CONFIG = REPO_ROOT / "pipeline.yaml"
SLACK_SECRET_NAME = f"{STACK_NAME}/slack-webhook"
SLACK_BOT_SECRET_NAME = f"{STACK_NAME}/slack-bot-token"
# How long a new task has to pass its health check (ALB: healthy threshold x interval, shortened).
ECS_HEALTH_DEADLINE_SECONDS = 10.0
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
    # Template parameter values over the template's defaults (`--parameter`, a scenario's `parameters`),
    # checked by emulator.template.check_parameter_overrides.
    parameters: dict[str, str] = field(default_factory=dict)
    # embedded: builds push a made-up manifest (no Docker); docker: the buildspec runs against a real
    # dockerd and ECR's data plane is a real registry (emulator.docker_mode).
    builds: Literal["embedded", "docker"] = "embedded"
    # Docker mode: base images made locally before the run (a scenario's `base_images` adds to them).
    base_images: tuple[str, ...] = DEFAULT_BASE_IMAGES
    # Slack: webhook (separate messages) or threads (a bot token: one thread per push, on the stand-in's Web API).
    slack: Literal["webhook", "threads"] = "webhook"


class Emulator:
    """The whole emulated stack for one run: start it, run scenario steps on it, read what happened."""

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self.printer = self.options.printer
        self.work = WorkState(self.printer)
        self.bus = Bus(self.work, duplicate=self.options.duplicate)
        self.permissions = Permissions(self.work.lock, self.options.permissions)
        self.queues = QueueSources(self.work, self.aws)
        self.scheduler: Scheduler | None = None
        self._temp: tempfile.TemporaryDirectory[str] | None = None
        self.config: PipelineConfig = load_config(self.options.config, f"{self.options.stack_name}/")
        self.git_repositories: dict[str, GitRepository] = {}
        self.moto_url = ""
        self.front: Front | None = None
        self.slack = SlackWebhook()
        self.slack.listener = self.work.record_slack
        self._moto: ThreadedMotoServer | None = None
        self.functions: FunctionPool | None = None
        self.template: Template | None = None
        self.codebuild: CodeBuildService | None = None
        self.ecr_events: EcrEvents | None = None
        self._tag_mutability: TagMutability | None = None
        self.codedeploy: CodeDeployStates | None = None
        self.ecs_deployments: EcsDeployments | None = None
        # Findings a scan would find by the time a commit's image ("next": any) reaches its traffic shift.
        self.findings_at_shift: dict[str, ScanResult] = {}
        self.docker: DockerMode | None = None
        self.ecs_tasks: EcsTasks | None = None
        self.inbox_url = ""
        self.setup_seconds = 0.0
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
        self.work.started_at = time.monotonic()
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
        self.template = stack_template(
            self.options.template,
            self.config,
            secret_arn,
            self.options.stack_name,
            {**self.options.parameters, **self._slack_bot_parameters()},
        )
        self.permissions.template = self.template
        layer_dirs = layer_overlays(self.template, self.work_dir, self.options.config)
        specs = {logical_id: with_layers(spec, layer_dirs) for logical_id, spec in self.template.functions.items()}
        self.functions = FunctionPool(specs, self.front.endpoint_for, self.work_dir / "logs")
        # The functions' init phases (imports) run in their processes while the resources are made.
        self.functions.start()
        self._create_resources(self.template)
        tasks = self._run_service_tasks if self.docker is not None else None
        self.codedeploy = CodeDeployStates(
            self, create_deploy_targets(self.aws, self.config), tasks, invoke_hook=self.invoke_hook
        )
        self.ecs_deployments = EcsDeployments(
            self,
            [(target.cluster, target.service) for target in self.config.deploy_targets() if target.strategy == "ecs"],
            self.invoke_hook,
            tasks,
        )
        self.scheduler = Scheduler(
            self.work,
            self.template,
            self.functions,
            self.aws,
            self.permissions,
            self.queues,
            shuffle_seed=self.options.shuffle_seed,
            max_time_jumps=self.options.max_time_jumps,
        )
        self._wire_front(self.template)
        self.functions.wait_ready()
        for logical_id, worker in self.functions.workers.items():
            if worker.init_error:
                self.printer.warning(f"{logical_id} failed to initialise: {worker.init_error.get('errorMessage')}")
        self.printer.setup(
            f"{len(specs)} functions from {self.template.path.name}: "
            + ", ".join(f"{spec.logical_id} ({len(spec.rules)} rules)" for spec in specs.values())
        )
        self.setup_seconds = time.monotonic() - self.work.started_at

    def _slack_bot_parameters(self) -> dict[str, str]:
        """Threads mode: the bot token's secret (with the stand-in's Web API URL, as GovSlack's would be
        given) and the stand-in's channel, as the stack parameters name them."""
        if self.options.slack != "threads":
            return {}
        secret = json.dumps({"token": self.slack.bot_token, "api_url": self.slack.api_url})
        arn = self.aws("secretsmanager", direct=True).create_secret(
            Name=SLACK_BOT_SECRET_NAME, SecretString=secret, Description="Slack bot token (emulated)"
        )["ARN"]
        return {SLACK_BOT_SECRET_PARAMETER: arn, SLACK_CHANNEL_PARAMETER: self.slack.channels[0]}

    def stop(self) -> None:
        # moto's server polls for shutdown every half second: it stops while the rest does.
        moto_stopping = threading.Thread(target=self._moto.stop) if self._moto is not None else None
        if moto_stopping is not None:
            moto_stopping.start()
        if self.functions is not None:
            self.functions.stop()
        if self.ecs_tasks is not None:
            self.ecs_tasks.stop_all()
        if self.docker is not None:
            self.docker.stop()
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

    def _create_resources(self, template: Template) -> None:
        self.inbox_url = create_resources(self.aws, template, self.slack.url)
        scanning = create_ecr_repositories(self.aws, template, self.config, self.tag_mutability, self.printer.warning)
        self.ecr_events = EcrEvents(self, scanning)
        role = build_role(template)
        if role is not None:
            self.permissions.add_role(role.logical_id, role.name, list(role.statements), role.complete)
        steps = None
        if self.options.builds == "docker":
            steps = DockerBuildSteps(self, self._start_docker(), self.work_dir, self.front_url)
        self.codebuild = CodeBuildService(self, codebuild_projects(template), steps)

    def _run_service_tasks(self, service: str, task_definition: str) -> str | None:
        """Docker mode's ECS: the service's new task (its image pulled as the execution role) replaces
        the running one blue/green behind the environment's loopback endpoint; why it failed, or None."""
        assert self.docker is not None and self.docker.engine is not None
        definition = self.aws("ecs", direct=True).describe_task_definition(taskDefinition=task_definition)
        container = definition["taskDefinition"]["containerDefinitions"][0]
        execution_role = str(definition["taskDefinition"].get("executionRoleArn") or "ecs-agent").rsplit("/", 1)[-1]
        self.docker.login(execution_role)
        pulled = self.docker.engine.run("pull", "--quiet", str(container["image"]), check=False, timeout=300)
        if pulled.returncode != 0:
            return f"CannotPullContainerError: {pulled.stderr.strip()}"
        if self.ecs_tasks is None:
            self.ecs_tasks = EcsTasks(self.docker.engine, health_deadline=ECS_HEALTH_DEADLINE_SECONDS)
        environment = self.ecs_tasks.environment(service)
        result = environment.deploy(TaskSpec.from_container_definition(container), task_definition)
        if result.succeeded:
            self.printer.task(f"{service} serves {task_definition.rsplit('/', 1)[-1]} on {environment.endpoint}")
            return None
        return result.reason

    def invoke_hook(
        self, function_arn: str, role_arn: str, payload: dict[str, Any], on_result: Any, task_definition: str
    ) -> str | None:
        """A deployment's lifecycle hook, invoked by the service (ECS as the hook's role; CodeDeploy as the
        group's service role): a delivery of its own, whose answer goes back to the service. Why it cannot
        be invoked (no such function of the template; the role may not invoke it), or None."""
        assert self.template is not None
        name = function_arn.rsplit(":", 1)[-1]
        function = next((lid for lid, spec in self.template.functions.items() if spec.name == name), None)
        if function is None:
            return f"ResourceNotFoundException: Function not found: {function_arn}"
        if role_arn:
            role = role_arn.rsplit("/", 1)[-1]
            role_id = next(
                (
                    lid
                    for lid in self.template.resources_of_type("AWS::IAM::Role")
                    if role_name(self.template, lid) == role
                ),
                None,
            )
            if role_id is None:
                return f"the hook's role {role_arn} is not a role of the stack"
            statements, complete = policy_statements(
                self.template.resolver.resolve(
                    role_policy_documents(self.template.document, role_id, self.template.resolver)
                )
            )
            self.permissions.add_role(f"role:{role}", role, statements, complete)
            denied = self.permissions.authorize(f"role:{role}", "lambda:InvokeFunction", function_arn)
            if denied is not None:
                return denied
        self._findings_before_shift(task_definition)
        with self.work.lock:
            self.work.pending.append(Delivery(payload, "lifecycle hook", function, on_result=on_result))
        return None

    def _findings_before_shift(self, task_definition: str) -> None:
        """Emulated: the scan findings of the image a deployment shifts traffic to, as they are by then."""
        if not self.findings_at_shift or not task_definition or self.ecr_events is None:
            return
        ecs = self.aws("ecs", direct=True)
        for container in ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"][
            "containerDefinitions"
        ]:
            image = str(container.get("image") or "")
            if "@" not in image:
                continue
            repository, digest = image.split("/", 1)[1].split("@", 1)
            described = self.aws("ecr", direct=True).describe_images(
                repositoryName=repository, imageIds=[{"imageDigest": digest}]
            )["imageDetails"]
            tags = [tag for detail in described for tag in detail.get("imageTags") or []]
            for commit in list(self.findings_at_shift):
                if commit == "next" or f"sha-{commit}" in tags:
                    result = self.findings_at_shift.pop(commit)
                    self.ecr_events.store_findings(repository, digest, tags, result)
                    self.printer.action(
                        f"by the traffic shift, the scan of {repository}@{digest[:19]} finds"
                        f" {len(result.findings)} findings"
                    )

    @property
    def front_url(self) -> str:
        assert self.front is not None
        return self.front.url

    def _start_docker(self) -> DockerMode:
        """Docker mode's engine, registry and registry front, and the base images' stand-ins."""
        if not docker_available():
            raise EngineError(docker_missing_message())
        self.docker = DockerMode(
            self.work_dir, self.permissions, self.aws, self.printer.warning, self.options.base_images
        )
        self.docker.start()
        assert self.docker.engine is not None and self.docker.registry is not None and self.docker.front is not None
        self.printer.setup(
            f"docker mode: dockerd (pid {self.docker.engine.pid}), registry on {self.docker.registry.url},"
            f" ECR's registry host {ECR_HOST} via {self.docker.front.proxy_url}"
        )
        for line in self.docker.stand_ins:
            self.printer.setup(f"base image {line}")
        return self.docker

    @property
    def tag_mutability(self) -> TagMutability:
        """ECR's immutable-tag answer for PutImage, which moto gives with another error code."""
        if self._tag_mutability is None:
            self._tag_mutability = TagMutability(self.aws("ecr", direct=True))
        return self._tag_mutability

    def _wire_front(self, template: Template) -> None:
        assert self.front is not None and self.codebuild is not None
        assert self.ecr_events is not None and self.codedeploy is not None
        self.front.local_services["codecommit"] = CodeCommitApi(self.git_repositories)
        self.front.local_services["codebuild"] = self.codebuild
        if self.docker is not None:
            self.front.local_operations[("ecr", "GetAuthorizationToken")] = self.docker.get_authorization_token
        self.front.local_operations.update(account_operations(self.aws))
        assert self.ecs_deployments is not None
        self.front.local_operations.update(self.ecs_deployments.local_operations())
        self.front.local_operations[("codedeploy", "GetDeployment")] = self.codedeploy.get_deployment
        self.front.local_operations[("codedeploy", "PutLifecycleEventHookExecutionStatus")] = (
            self.codedeploy.put_hook_status
        )
        # IAM first: AWS authorises a call before the service looks at it.
        self.front.guards += [self.permissions.guard, self.tag_mutability.guard, self.codedeploy.guard]
        self.front.observers += [
            self.work.record_call,
            self.ecr_events.observe,
            self.codedeploy.observe,
            self.ecs_deployments.observe,
            self.bus.put_events,
            *([self.docker.observe] if self.docker is not None else []),
        ]
        self.bus.load_rules(template.rules)
        for spec in template.functions.values():
            for source in spec.queues:
                url = template.resolver.names.ref(source.queue_logical_id, template.resolver)
                self.queues.sources.append((spec.logical_id, url, source))
            for ignored in spec.ignored_sources:
                self.printer.warning(f"{spec.logical_id}: event source {ignored} is not emulated")

    # --- the run: what the services and scenarios call (emulator.runtime's protocols) ----------

    @property
    def lock(self) -> threading.RLock:
        return self.work.lock

    @property
    def timeline(self) -> list[dict[str, Any]]:
        return self.work.timeline

    @property
    def started_at(self) -> float:
        return self.work.started_at

    def elapsed(self, moment: float | None = None) -> float:
        """Seconds since the emulator started (the timeline's clock)."""
        return self.work.elapsed(moment)

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
        return self.bus.emit(source, detail_type, detail, resources, event_id, when)

    def route(self, event: dict[str, Any], bus: str = "default") -> list[str]:
        """An event on a bus, as it is: the names of the rules that matched it."""
        return self.bus.route(event, bus)

    def schedule(self, kind: str, label: str, action: Callable[[], None]) -> None:
        self.work.schedule(kind, label, action)

    def record_task(self, text: str, **fields: Any) -> None:
        self.work.record_task(text, **fields)

    def record_step(self, index: int, title: str, **fields: Any) -> None:
        self.work.record_step(index, title, **fields)

    def run_until_idle(self, max_items: int = 5000) -> int:
        """Run pending work (in a seeded random order with --shuffle) until nothing is left."""
        assert self.scheduler is not None
        return self.scheduler.run_until_idle(max_items)

    @property
    def task_intervals(self) -> list[tuple[str, float, float]]:
        """(kind, start, end) of every emulated task run: the bench subtracts emulated build time."""
        return self.scheduler.task_intervals if self.scheduler is not None else []

    @property
    def failure_destinations(self) -> dict[str, str]:
        """Each function's on-failure destination (an ARN), for those that have one."""
        return self.scheduler.failure_destinations if self.scheduler is not None else {}

    @property
    def permission_mode(self) -> Literal["enforce", "report"]:
        return self.permissions.mode

    @property
    def permission_gaps(self) -> list[dict[str, Any]]:
        return self.permissions.gaps

    @property
    def unchecked_policies(self) -> set[str]:
        return self.permissions.unchecked

    def mark_unchecked_policy(self, principal: str) -> None:
        """A principal whose policies could not all be read: its calls are not checked."""
        self.permissions.mark_unchecked(principal)

    def record_permission_gap(self, principal: str, action: str, resource: str | None) -> dict[str, Any]:
        """A call the principal's (a function's or the build role's) policies do not allow: kept once per run."""
        return self.permissions.record_gap(principal, action, resource)

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
