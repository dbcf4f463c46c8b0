"""Emulated IAM at run time: the functions' calls checked against their template policies, and the gaps.

A gap is a call a principal's policies (a function's, or the build role's) do not allow. With
`enforce` the call is refused with the service's AccessDenied, as AWS refuses it; with `report`
it is let through. Either way it is recorded, once per run. The policy evaluation itself is
emulator.iam; this module applies it to the running stack.
"""

from __future__ import annotations

import threading
from typing import Any, Literal

from emulator.front import ApiCall
from emulator.iam import (
    Request,
    ResourceStatement,
    Statement,
    access_denied,
    denial_message,
    explicitly_denied,
    function_role_name,
    is_allowed,
    policy_statements,
    principal_arn,
    requests_of,
    resource_policy_decision,
    resource_policy_statements,
    role_arn,
)
from emulator.template import ACCOUNT_ID, REGION, Template

# What Lambda's SQS event source mapping does with the function's role.
_EVENT_SOURCE_ACTIONS = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")


class Permissions:
    """The IAM guard of the front, and the record of every permission gap of the run."""

    def __init__(self, lock: threading.RLock, mode: Literal["enforce", "report"]) -> None:
        self._lock = lock
        self.mode = mode
        # Set once the template is read (start-up): whose calls are checked, and against what.
        self.template: Template | None = None
        self.gaps: list[dict[str, Any]] = []
        self.unchecked: set[str] = set()
        # Each function's policy statements and whether all of them could be read, parsed once.
        self._statements: dict[str, tuple[list[Statement], bool]] = {}
        # The resource-based policies of the template's event buses, by bus ARN, read once.
        self._bus_policies: dict[str, list[ResourceStatement]] | None = None
        # Roles of the template that are not a function's (the build role), by the caller name they use.
        self._roles: dict[str, tuple[str, list[Statement], bool]] = {}

    def add_role(self, caller: str, role_name: str, statements: list[Statement], complete: bool) -> None:
        """A template role whose calls (made as `/fn/<caller>`) are checked like a function's."""
        with self._lock:
            self._roles[caller] = (role_name, statements, complete)

    def authorize(self, caller: str, action: str, resource: str) -> str | None:
        """One request of a data plane (ECR's registry) as IAM decides it: the denial message, or None.

        A gap is recorded as for an API call; with `report` it is let through. An outsider is allowed."""
        role = self._roles.get(caller)
        policies = self._function_statements(caller)
        if policies is not None:
            assert self.template is not None
            role_name = function_role_name(self.template, caller)
            session = self.template.functions[caller].name
        elif role is not None:
            role_name, session = role[0], caller
            policies = (role[1], role[2])
        else:
            return None
        statements, complete = policies
        if not complete:
            self.mark_unchecked(caller)
            return None
        if is_allowed(statements, action, resource):
            return None
        self.record_gap(caller, action, resource)
        message = denial_message(principal_arn(role_name, session), Request(action, resource))
        return None if self.mode == "report" else message

    def guard(self, call: ApiCall) -> None:
        """Emulated IAM: a function's call is authorised against its template policies before moto sees it.

        Only the functions' own calls are checked (the emulator's, CodeDeploy's and CodeBuild's
        service calls are AWS's side); a refusal is the service's AccessDenied, and is a gap.
        """
        assert self.template is not None
        policies = self._function_statements(call.caller)
        own_role = self._roles.get(call.caller)
        if policies is None and own_role is None:
            self._guard_outsider(call)
            return
        if policies is None:
            assert own_role is not None
            role, policies, session = own_role[0], (own_role[1], own_role[2]), call.caller
        else:
            role, session = function_role_name(self.template, call.caller), self.template.functions[call.caller].name
        statements, complete = policies
        if not complete:
            self.mark_unchecked(call.caller)
            return
        principal = principal_arn(role, session)
        refusal = None
        for request in requests_of(call):
            context = dict(request.context)
            # Within the account an Allow of the role's policies or of the resource's grants; a Deny of either refuses.
            verdict = self._resource_verdict(role_arn(role), request)
            if verdict != "deny" and (
                verdict == "allow" or is_allowed(statements, request.action, request.resource, context)
            ):
                continue
            call.denied.append(self.record_gap(call.caller, request.action, request.resource))
            if refusal is None:
                if verdict == "deny":
                    message = denial_message(principal, request, True, "resource-based")
                else:
                    explicit = explicitly_denied(statements, request.action, request.resource, context)
                    message = denial_message(principal, request, explicit)
                refusal = access_denied(call, message)
        if refusal is not None and self.mode == "enforce":
            raise refusal

    def _guard_outsider(self, call: ApiCall) -> None:
        """A caller that is none of the stack's functions (ops, a test, another tool) is a role of the account
        named after it, whose own policies allow everything: only a resource's explicit Deny can refuse it.

        Refused in either mode: `report` lets the stack's own gaps through, not someone else's forgery.
        """
        role = call.caller
        for request in requests_of(call):
            if self._resource_verdict(role_arn(role), request) == "deny":
                principal = principal_arn(role, role)
                raise access_denied(call, denial_message(principal, request, True, "resource-based"))

    def _resource_verdict(self, principal_role_arn: str, request: Request) -> str:
        """What the resource's own policy (an event bus's) says of the request: "deny", "allow" or "none"."""
        policy = self._event_bus_policies().get(request.resource or "")
        if policy is None or request.resource is None:
            return "none"
        return resource_policy_decision(policy, principal_role_arn, request.action, request.resource)

    def _event_bus_policies(self) -> dict[str, list[ResourceStatement]]:
        assert self.template is not None
        with self._lock:
            if self._bus_policies is None:
                template = self.template
                self._bus_policies = {
                    template.resolver.resolve({"Fn::GetAtt": [logical_id, "Arn"]}): resource_policy_statements(
                        template.resolver.resolve((resource.get("Properties") or {}).get("Policy"))
                    )
                    for logical_id, resource in template.resources_of_type("AWS::Events::EventBus").items()
                    if (resource.get("Properties") or {}).get("Policy")
                }
            return self._bus_policies

    @staticmethod
    def call_gaps(function: str, calls: list[ApiCall]) -> list[dict[str, Any]]:
        """The function's calls its template policies do not allow (found by the guard as each was made)."""
        return [gap for call in calls if call.caller == function for gap in call.denied]

    def lambda_service_gaps(
        self, function: str, event_source_queue_url: str | None, failure_destination: str | None
    ) -> list[dict[str, Any]]:
        """What Lambda itself does with the function's role: poll its SQS event source, send to its on-failure
        destination. AWS refuses the event source mapping (or drops the record) without them; here they are gaps.

        `event_source_queue_url`: the queue of a batch it was given; `failure_destination`: where an event that
        exhausted its retries goes (None when it did not).
        """
        policies = self._function_statements(function)
        if policies is None or not policies[1]:
            return []
        requests: list[tuple[str, str]] = []
        if event_source_queue_url:
            queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{event_source_queue_url.rsplit('/', 1)[-1]}"
            requests += [(action, queue_arn) for action in _EVENT_SOURCE_ACTIONS]
        destination = failure_destination or ""
        if destination.startswith("arn:aws:sqs:"):
            requests.append(("sqs:SendMessage", destination))
        elif destination.startswith("arn:aws:sns:"):
            requests.append(("sns:Publish", destination))
        return [
            self.record_gap(function, action, resource)
            for action, resource in requests
            if not is_allowed(policies[0], action, resource)
        ]

    def mark_unchecked(self, principal: str) -> None:
        """A principal whose policies could not all be read: its calls are not checked."""
        with self._lock:
            self.unchecked.add(principal)

    def record_gap(self, principal: str, action: str, resource: str | None) -> dict[str, Any]:
        """A call the principal's (a function's or the build role's) policies do not allow: kept once per run."""
        gap = {"function": principal, "action": action, "resource": resource}
        with self._lock:
            if gap not in self.gaps:
                self.gaps.append(gap)
        return gap

    def _function_statements(self, function: str) -> tuple[list[Statement], bool] | None:
        assert self.template is not None
        spec = self.template.functions.get(function)
        if spec is None:
            return None
        with self._lock:
            if function not in self._statements:
                self._statements[function] = policy_statements(spec.policies)
            return self._statements[function]
