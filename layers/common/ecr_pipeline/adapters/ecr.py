"""Amazon ECR: finding images by tag (start_build). tag_image extends this module with its writes."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from ecr_pipeline.adapters.clients import client


class Ecr:
    def __init__(self, ecr_client: Any = None) -> None:
        self._client = ecr_client or client("ecr")

    def find_image_digest(self, repository: str, tag: str) -> str | None:
        """The digest of the image tagged `tag`, or None if there is no such image."""
        try:
            response = self._client.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])
        except ClientError as error:
            if error.response["Error"]["Code"] == "ImageNotFoundException":
                return None
            raise
        details = response.get("imageDetails", [])
        return str(details[0]["imageDigest"]) if details else None


def repository_uri(account: str, region: str, repository: str) -> str:
    """The registry address of a private repository: <account>.dkr.ecr.<region>.amazonaws.com/<name>."""
    return f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}"
