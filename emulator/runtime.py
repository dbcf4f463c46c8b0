"""What the emulated services may use of the emulator: a narrow interface, not the whole Emulator.

`Emulator` satisfies these protocols structurally; a service typed against them cannot reach
further into the emulator without mypy saying so.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from emulator.codecommit import GitRepository
    from emulator.template import Template

# The emulator's AWS client factory: aws(service, caller=..., direct=...), a boto3 client.
AwsClients = Callable[..., Any]


class Runtime(Protocol):
    """Emit an event, schedule work, record a task, make an AWS client, hold the lock."""

    @property
    def lock(self) -> threading.RLock: ...

    @property
    def moto_url(self) -> str: ...

    def emit(
        self,
        source: str,
        detail_type: str,
        detail: dict[str, Any],
        resources: list[str],
        event_id: str | None = None,
        when: str | None = None,
    ) -> dict[str, Any]: ...

    def schedule(self, kind: str, label: str, action: Callable[[], None]) -> None: ...

    def record_task(self, text: str, **fields: Any) -> None: ...

    def aws(self, service: str, caller: str = "emulator", direct: bool = False) -> Any: ...


class BuildRuntime(Runtime, Protocol):
    """CodeBuild also reads the sources and checks the build role's policies."""

    @property
    def template(self) -> Template | None: ...

    @property
    def git_repositories(self) -> dict[str, GitRepository]: ...

    @property
    def permission_mode(self) -> Literal["enforce", "report"]: ...

    def record_permission_gap(self, principal: str, action: str, resource: str | None) -> dict[str, Any]: ...

    def mark_unchecked_policy(self, principal: str) -> None: ...
