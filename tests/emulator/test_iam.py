"""emulator/iam.py's policy evaluation on its own: explicit deny, resources, conditions (no scenario run)."""

from __future__ import annotations

from emulator.iam import (
    Condition,
    Statement,
    is_allowed,
    resource_policy_decision,
    resource_policy_statements,
)

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
    unknown_operator = Condition("NumericEquals", "iam:PassedToService", ("1",))
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


# --- an event bus's resource policy, as the template gives it ----------------------------------

BUS = "arn:aws:events:us-east-1:123456789012:event-bus/ecr-pipeline-events"
PUBLISHER = "arn:aws:iam::123456789012:role/ecr-pipeline-TagImageFunctionRole"
BUS_POLICY = resource_policy_statements(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": [PUBLISHER]}, "Action": "events:PutEvents", "Resource": BUS},
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "events:PutEvents",
                "Resource": BUS,
                "Condition": {"ArnNotEquals": {"aws:PrincipalArn": [PUBLISHER]}},
            },
        ],
    }
)


def test_the_bus_policy_allows_the_role_it_names() -> None:
    assert resource_policy_decision(BUS_POLICY, PUBLISHER, "events:PutEvents", BUS) == "allow"


def test_the_bus_policy_denies_any_other_role_of_the_account() -> None:
    admin = "arn:aws:iam::123456789012:role/Admin"

    assert resource_policy_decision(BUS_POLICY, admin, "events:PutEvents", BUS) == "deny"


def test_the_bus_policy_says_nothing_of_another_bus_or_action() -> None:
    other_bus = "arn:aws:events:us-east-1:123456789012:event-bus/default"
    admin = "arn:aws:iam::123456789012:role/Admin"

    assert resource_policy_decision(BUS_POLICY, admin, "events:PutEvents", other_bus) == "none"
    assert resource_policy_decision(BUS_POLICY, admin, "events:PutRule", BUS) == "none"


def test_an_account_principal_grants_nothing_by_itself() -> None:
    # It defers to the account's identity policies, as IAM reads it.
    policy = resource_policy_statements(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": "events:PutEvents",
                    "Resource": BUS,
                }
            ]
        }
    )

    assert resource_policy_decision(policy, PUBLISHER, "events:PutEvents", BUS) == "none"


def test_arn_operators_match_wildcards_and_their_not_forms_negate() -> None:
    like = Condition("ArnLike", "aws:PrincipalArn", ("arn:aws:iam::123456789012:role/ecr-pipeline-*",))
    not_like = Condition("ArnNotLike", "aws:PrincipalArn", ("arn:aws:iam::123456789012:role/ecr-pipeline-*",))
    statements = [Statement(True, ("events:PutEvents",), ("*",), (like,))]
    negated = [Statement(True, ("events:PutEvents",), ("*",), (not_like,))]

    assert is_allowed(statements, "events:PutEvents", BUS, {"aws:PrincipalArn": PUBLISHER})
    assert not is_allowed(negated, "events:PutEvents", BUS, {"aws:PrincipalArn": PUBLISHER})
    assert is_allowed(negated, "events:PutEvents", BUS, {"aws:PrincipalArn": "arn:aws:iam::123456789012:role/x"})
