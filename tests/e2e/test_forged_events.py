"""Forged pipeline events from outside the stack move nothing: no tag, no ledger verdict, no environment.

The demo runs first (a PASSED image deployed to dev, a BLOCKED one after it). Then someone outside the
stack (a role of the account whose own policies allow everything) forges each of the pipeline's own
events from the genuine ones: a "Scan Verdict" PASSED for the BLOCKED image, an "Image Promoted" of
that image, a "Promotion Requested" of it under a new release tag, and an "Image Promoted" whose push
time is far in the future (it would pin dev). On the default bus EventBridge takes them and no rule of
the stack hears them; on the stack's own bus its resource policy refuses the caller. The in-stack case
(a function of the stack made to publish a lie) is the ledger re-read's, not this file's.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulator.__main__ import DEMO_SCENARIO
from emulator.core import DEFAULT_TEMPLATE, Emulator, Options
from emulator.output import Printer
from emulator.scenario import ScenarioRunner, load_scenario
from emulator.template import ACCOUNT_ID, REGION

pytestmark = pytest.mark.e2e

# Evidence runs may point this at another template (e.g. HEAD's, before the stack had a bus of its own).
TEMPLATE = Path(os.environ.get("FORGED_EVENTS_TEMPLATE") or DEFAULT_TEMPLATE)
OUTSIDER = "ops-intruder"
FAR_FUTURE = "2999-01-01T00:00:00.000000Z"
BUS_DEFAULT = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/default"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    with Emulator(Options(template=TEMPLATE, printer=Printer(enabled=False))) as running:
        ScenarioRunner(running, load_scenario(DEMO_SCENARIO)).run()
        yield running


def stack_bus(emulator: Emulator) -> str:
    """The bus the stack's functions publish on (EVENT_BUS_NAME of the template)."""
    assert emulator.template is not None
    return emulator.template.functions["TagImageFunction"].environment["EVENT_BUS_NAME"]


def genuine(emulator: Emulator, detail_type: str, **detail: Any) -> dict[str, Any]:
    """The last event of this type the stack itself published in the run whose detail has these values."""
    found = [
        entry["event"]
        for entry in emulator.timeline
        if entry["kind"] == "event"
        and entry["event"]["source"] == "ecr-pipeline"
        and entry["event"]["detail-type"] == detail_type
        and all(entry["event"]["detail"].get(key) == value for key, value in detail.items())
    ]
    assert found, f"the demo published no {detail_type!r} with {detail}"
    return copy.deepcopy(found[-1])


def forgeries(emulator: Emulator) -> dict[str, dict[str, Any]]:
    """Each of the pipeline's own events, forged from the genuine ones (the same shape, a lie in it)."""
    blocked = genuine(emulator, "Scan Verdict", verdict="BLOCKED")["detail"]
    deployed = genuine(emulator, "Image Promoted", ref="main")["detail"]
    image = {key: blocked[key] for key in ("commit", "image_tag", "image_digest", "push_time", "push_id")}

    verdict = genuine(emulator, "Scan Verdict", verdict="BLOCKED")["detail"]
    verdict |= {"verdict": "PASSED", "reasons": ["within the policy (CRITICAL 0/0, HIGH 0/0)"]}

    promoted = {**deployed, **image, "tags": ["main", "latest"], "tags_added": ["main", "latest"]}

    release = genuine(emulator, "Promotion Requested")["detail"]
    release |= {**image, "ref": "v9.0.0", "push_id": f"{blocked['push_id'].split('#')[0]}#tag#v9.0.0"}

    pinned = {**deployed, "push_time": FAR_FUTURE}
    return {
        "Scan Verdict PASSED for the BLOCKED image": {"DetailType": "Scan Verdict", "Detail": verdict},
        "Image Promoted of the BLOCKED image": {"DetailType": "Image Promoted", "Detail": promoted},
        "Promotion Requested of the BLOCKED image": {"DetailType": "Promotion Requested", "Detail": release},
        "Image Promoted with a far-future push time": {"DetailType": "Image Promoted", "Detail": pinned},
    }


def entry(forgery: dict[str, Any], bus: str) -> dict[str, Any]:
    return {
        "Source": "ecr-pipeline",
        "DetailType": forgery["DetailType"],
        "Detail": json.dumps(forgery["Detail"]),
        "EventBusName": bus,
    }


def outsider_events(emulator: Emulator) -> Any:
    """An EventBridge client of a principal of the account that is none of the stack's roles."""
    assert emulator.front is not None
    return boto3.client(
        "events",
        endpoint_url=emulator.front.endpoint_for(OUTSIDER),
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def state(emulator: Emulator) -> dict[str, Any]:
    """What a forged event would move: every image's tags, the whole ledger, every deploy target."""
    assert emulator.template is not None and emulator.codedeploy is not None
    ecr = emulator.aws("ecr", direct=True)
    images = {
        repository["repositoryName"]: sorted(
            (image["imageDigest"], tuple(sorted(image.get("imageTags") or [])))
            for image in ecr.describe_images(repositoryName=repository["repositoryName"])["imageDetails"]
        )
        for repository in ecr.describe_repositories()["repositories"]
    }
    table = emulator.template.functions["TagImageFunction"].environment["LEDGER_TABLE"]
    ledger = sorted(
        json.dumps(item, sort_keys=True)
        for item in emulator.aws("dynamodb", direct=True).scan(TableName=table)["Items"]
    )
    ecs, codedeploy = emulator.aws("ecs", direct=True), emulator.aws("codedeploy", direct=True)
    targets = {
        f"{application}/{group}": {
            "task_definition": ecs.describe_services(cluster=cluster, services=[service])["services"][0][
                "taskDefinition"
            ],
            "deployments": sorted(
                codedeploy.list_deployments(applicationName=application, deploymentGroupName=group)["deployments"]
            ),
        }
        for (application, group), (cluster, service) in emulator.codedeploy.services.items()
    }
    return {"images": images, "ledger": ledger, "targets": targets}


def deliveries_after(emulator: Emulator, seq: int) -> list[dict[str, Any]]:
    return [entry for entry in emulator.timeline[seq:] if entry["kind"] == "delivery"]


def test_the_demo_gives_the_forgeries_something_to_move(emulator: Emulator) -> None:
    before = state(emulator)
    blocked = genuine(emulator, "Scan Verdict", verdict="BLOCKED")["detail"]

    tags = {digest: tags for images in before["images"].values() for digest, tags in images}
    assert "latest" not in tags[blocked["image_digest"]]
    assert any(target["deployments"] for target in before["targets"].values())
    # The stack's own events travel on its own bus, AWS's on the default one.
    buses = {
        (entry["event"]["source"] == "ecr-pipeline", entry.get("bus", "default"))
        for entry in emulator.timeline
        if entry["kind"] == "event"
    }
    assert buses == {(True, stack_bus(emulator)), (False, "default")}
    assert stack_bus(emulator) != "default"


FORGERIES = pytest.mark.parametrize(
    "forgery",
    [
        "Scan Verdict PASSED for the BLOCKED image",
        "Image Promoted of the BLOCKED image",
        "Promotion Requested of the BLOCKED image",
        "Image Promoted with a far-future push time",
    ],
)


@FORGERIES
def test_a_forgery_on_the_default_bus_is_heard_by_no_rule_and_moves_nothing(emulator: Emulator, forgery: str) -> None:
    forged = forgeries(emulator)[forgery]
    before, seq = state(emulator), len(emulator.timeline)

    answer = outsider_events(emulator).put_events(Entries=[entry(forged, "default")])
    emulator.run_until_idle()

    assert answer["FailedEntryCount"] == 0, "EventBridge takes the event: it is the stack that does not listen"
    (heard,) = [item for item in emulator.timeline[seq:] if item["kind"] == "event"]
    assert heard["event"]["detail-type"] == forged["DetailType"] and heard["rules"] == []
    assert deliveries_after(emulator, seq) == []
    assert state(emulator) == before


@FORGERIES
def test_a_forgery_on_the_stacks_bus_is_refused_and_moves_nothing(emulator: Emulator, forgery: str) -> None:
    forged = forgeries(emulator)[forgery]
    bus = stack_bus(emulator)
    before, seq = state(emulator), len(emulator.timeline)

    with pytest.raises(ClientError) as refused:
        outsider_events(emulator).put_events(Entries=[entry(forged, bus)])
    emulator.run_until_idle()

    error = refused.value.response
    assert error["Error"]["Code"] == "AccessDeniedException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error["Error"]["Message"] == (
        f"User: arn:aws:sts::{ACCOUNT_ID}:assumed-role/{OUTSIDER}/{OUTSIDER} is not authorized to perform:"
        f" events:PutEvents on resource: arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{bus}"
        " with an explicit deny in a resource-based policy"
    )
    assert [item for item in emulator.timeline[seq:] if item["kind"] in ("event", "delivery")] == []
    assert state(emulator) == before


def test_the_refusal_holds_for_the_bus_named_by_its_arn_and_among_other_entries(emulator: Emulator) -> None:
    forged = forgeries(emulator)["Scan Verdict PASSED for the BLOCKED image"]
    bus_arn = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{stack_bus(emulator)}"
    before, seq = state(emulator), len(emulator.timeline)

    with pytest.raises(ClientError) as refused:
        outsider_events(emulator).put_events(Entries=[entry(forged, "default"), entry(forged, bus_arn)])
    emulator.run_until_idle()

    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert [item for item in emulator.timeline[seq:] if item["kind"] in ("event", "delivery")] == []
    assert state(emulator) == before


def test_a_function_of_the_stack_may_not_put_events_on_the_default_bus(emulator: Emulator) -> None:
    assert emulator.front is not None
    forged = forgeries(emulator)["Image Promoted of the BLOCKED image"]
    as_tag_image = boto3.client(
        "events",
        endpoint_url=emulator.front.endpoint_for("TagImageFunction"),
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    seq = len(emulator.timeline)

    with pytest.raises(ClientError) as refused:
        as_tag_image.put_events(Entries=[entry(forged, "default")])

    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "because no identity-based policy allows the events:PutEvents action" in str(refused.value)
    assert [item for item in emulator.timeline[seq:] if item["kind"] == "event"] == []
    # The refusal is recorded as the function's gap: the test leaves it out of the run's verdict.
    gap = {"function": "TagImageFunction", "action": "events:PutEvents", "resource": BUS_DEFAULT}
    assert gap in emulator.permission_gaps
