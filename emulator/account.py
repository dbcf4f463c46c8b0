"""The account's read-only answers moto lacks, for `python -m ecr_pipeline.preflight` and the functions.

CodeBuild's ListCuratedEnvironmentImages (moto has no CodeBuild), and CodeDeploy's GetDeploymentGroup
with the alarmConfiguration moto stores but leaves out of its answer. Registered on the front as
local operations: every other call of these services goes where it went before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from emulator.front import ApiCall, ApiError, LocalOperation
from emulator.moto_internals import deployment_group_alarm_configuration

AwsClient = Callable[..., Any]


def _image(name: str, description: str, version: str) -> dict[str, Any]:
    return {"name": name, "description": description, "versions": [f"{name}-{version}"]}


# A region's curated images as CodeBuild lists them: platforms -> languages -> images, ARM and x86.
CURATED_IMAGES: dict[str, Any] = {
    "platforms": [
        {
            "platform": "AMAZON_LINUX",
            "languages": [
                {
                    "language": "BASE",
                    "images": [
                        _image("aws/codebuild/amazonlinux-x86_64-standard:5.0", "Amazon Linux 2023 x86_64", "24.11.28"),
                        _image(
                            "aws/codebuild/amazonlinux-aarch64-standard:3.0", "Amazon Linux 2023 aarch64", "24.11.28"
                        ),
                    ],
                }
            ],
        },
        {
            "platform": "UBUNTU",
            "languages": [
                {
                    "language": "BASE",
                    "images": [_image("aws/codebuild/standard:7.0", "Ubuntu 22.04 x86_64", "24.11.28")],
                }
            ],
        },
    ]
}


def list_curated_environment_images(call: ApiCall) -> dict[str, Any]:
    return CURATED_IMAGES


def deployment_group_answer(aws: AwsClient) -> LocalOperation:
    """GetDeploymentGroup from moto, its alarmConfiguration filled in from what moto stored."""

    def answer(call: ApiCall) -> dict[str, Any]:
        application = str(call.params.get("applicationName", ""))
        group = str(call.params.get("deploymentGroupName", ""))
        try:
            found: dict[str, Any] = aws("codedeploy", direct=True).get_deployment_group(
                applicationName=application, deploymentGroupName=group
            )
        except ClientError as error:
            reason = error.response.get("Error", {})
            raise ApiError(str(reason.get("Code")), str(reason.get("Message")), 400) from None
        found.pop("ResponseMetadata", None)
        alarms = deployment_group_alarm_configuration(application, group)
        if alarms is not None:
            found["deploymentGroupInfo"]["alarmConfiguration"] = alarms
        return found

    return answer


def account_operations(aws: AwsClient) -> dict[tuple[str, str], LocalOperation]:
    """The front's local operations this module answers: (service, operation) -> answer."""
    return {
        ("codebuild", "ListCuratedEnvironmentImages"): list_curated_environment_images,
        ("codedeploy", "GetDeploymentGroup"): deployment_group_answer(aws),
    }
