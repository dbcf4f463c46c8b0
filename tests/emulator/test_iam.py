"""emulator/iam.py's policy evaluation on its own: explicit deny, resources, conditions (no scenario run)."""

from __future__ import annotations

from emulator.iam import Condition, Statement, is_allowed

REPOSITORY = "arn:aws:ecr:us-east-1:123456789012:repository/ecr-pipeline/demo-app"
ROLE_ARN = "arn:aws:iam::123456789012:role/demo-app-task"
PASSED_TO_ECS = Condition("StringEquals", "iam:PassedToService", ("ecs-tasks.amazonaws.com",))


def test_explicit_deny_wins_over_an_allow() -> None:
    statements = [Statement(True, ("ecr:*",), ("*",)), Statement(False, ("ecr:PutImage",), (REPOSITORY,))]

    assert not is_allowed(statements, "ecr:PutImage", REPOSITORY)
    assert is_allowed(statements, "ecr:DescribeImages", REPOSITORY)


def test_an_allow_for_another_resource_does_not_allow() -> None:
    statements = [Statement(True, ("ecr:PutImage",), (REPOSITORY,))]

    assert not is_allowed(statements, "ecr:PutImage", "arn:aws:ecr:us-east-1:123456789012:repository/other")


def test_an_allow_applies_only_when_its_condition_holds() -> None:
    statements = [Statement(True, ("iam:PassRole",), (ROLE_ARN,), (PASSED_TO_ECS,))]

    assert is_allowed(statements, "iam:PassRole", ROLE_ARN, {"iam:PassedToService": "ecs-tasks.amazonaws.com"})
    assert not is_allowed(statements, "iam:PassRole", ROLE_ARN, {"iam:PassedToService": "lambda.amazonaws.com"})


def test_an_unknown_condition_key_or_operator_fails_closed() -> None:
    unknown_key = Condition("StringEquals", "aws:SourceVpc", ("vpc-1",))
    unknown_operator = Condition("ArnLike", "iam:PassedToService", ("*",))
    context = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}

    assert not is_allowed(
        [Statement(True, ("iam:PassRole",), ("*",), (unknown_key,))], "iam:PassRole", ROLE_ARN, context
    )
    assert not is_allowed(
        [Statement(True, ("iam:PassRole",), ("*",), (unknown_operator,))], "iam:PassRole", ROLE_ARN, context
    )
    assert not is_allowed(
        [Statement(True, ("iam:*",), ("*",)), Statement(False, ("iam:PassRole",), ("*",), (unknown_key,))],
        "iam:PassRole",
        ROLE_ARN,
        context,
    )


def test_string_like_matches_wildcards() -> None:
    like = Condition("StringLike", "iam:PassedToService", ("ecs-*.amazonaws.com",))

    assert is_allowed(
        [Statement(True, ("iam:PassRole",), ("*",), (like,))],
        "iam:PassRole",
        ROLE_ARN,
        {"iam:PassedToService": "ecs-tasks.amazonaws.com"},
    )
