"""One naming scheme for the handlers' outcome metrics."""

from __future__ import annotations

import pytest

from ecr_pipeline.observability import metric_name


@pytest.mark.parametrize(
    ("kind", "status", "name"),
    [
        ("Deployments", "started", "DeploymentsStarted"),
        ("Deployments", "already deployed", "DeploymentsAlreadyDeployed"),
        ("Builds", "skipped", "BuildsSkipped"),
        ("Verdict", "PASSED", "VerdictPassed"),
        ("TagImage", "not_found", "TagImageNotFound"),
    ],
)
def test_outcome_metric_names_are_the_kind_and_the_status_in_pascal_case(kind: str, status: str, name: str) -> None:
    assert metric_name(kind, status) == name
