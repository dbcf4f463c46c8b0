"""The operator who runs `ecr-pipeline status` against the emulator: a read-only role of the account.

Callers that are none of the stack's functions are otherwise roles whose own policies allow everything;
this one is given what a read-only operator role (like AWS's ReadOnlyAccess, narrowed to the pipeline's
services) allows, so a write by the story's command, or a read it needs and the role lacks, is refused
and recorded as a permission gap of the run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from emulator.iam import Statement
from emulator.permissions import Permissions
from emulator.template import REGION

if TYPE_CHECKING:
    from emulator.core import Emulator

OPERATOR_CALLER = "status"
OPERATOR_ROLE = "ecr-pipeline-operator-read-only"
READ_ONLY_ACTIONS = (
    "cloudformation:DescribeStacks",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:Query",
    "ecr:DescribeImages",
    "ecr:DescribeImageScanFindings",
    "ecr:DescribeRepositories",
    "codebuild:BatchGetBuilds",
    "codebuild:ListBuildsForProject",
    "codecommit:GetBranch",
    "codecommit:GetCommit",
    "codedeploy:GetDeployment",
)


def grant_read_only_operator(permissions: Permissions, caller: str = OPERATOR_CALLER) -> None:
    """Calls made as `/fn/<caller>` are checked against the read-only operator role from now on."""
    permissions.add_role(caller, OPERATOR_ROLE, [Statement(True, READ_ONLY_ACTIONS, ("*",))], True)


@contextlib.contextmanager
def operator_shell(emulator: Emulator) -> Iterator[None]:
    """An operator's shell for the duration: the account's credentials and the emulator front's endpoint
    as `/fn/status`, checked against the read-only role."""
    assert emulator.front is not None
    grant_read_only_operator(emulator.permissions)
    settings = {
        "AWS_ENDPOINT_URL": emulator.front.endpoint_for(OPERATOR_CALLER),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    before = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def story_options(emulator: Emulator) -> list[str]:
    """The options of `ecr-pipeline status` that name the emulated stack's tables and project (as its
    outputs LedgerTableName and ImageBuildProjectName would), its pipeline.yaml and its region."""
    assert emulator.template is not None
    names, resolver = emulator.template.resolver.names, emulator.template.resolver
    return [
        *("--ledger-table", names.name("LedgerTable", resolver)),
        *("--build-project", names.name("ImageBuildProject", resolver)),
        *("--config", str(emulator.options.config)),
        *("--stack-prefix", f"{emulator.options.stack_name}/"),
        *("--region", REGION),
    ]
