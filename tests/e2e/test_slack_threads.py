"""Slack on the emulator: in bot-token mode one push is one thread (one post, updates in place, replies
for what went wrong), a burst of pushes stays within Slack's one post per second per channel, and with
only a webhook the messages are separate, as before. The demo summary groups messages by push."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from emulator.core import REPO_ROOT
from emulator.push_messages import messages_by_push
from emulator.slack import POST_BURST, POSTS_PER_SECOND
from tests.e2e.conftest import RunScenario, run

BURST = REPO_ROOT / "emulator" / "scenarios" / "examples" / "slack_burst.yaml"


def _slack(report: dict[str, Any]) -> list[dict[str, Any]]:
    return list(report["final_state"]["slack_messages"])


def _threads(report: dict[str, Any]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per thread head ts: the head, its updates and its replies, as Slack accepted them."""
    threads: dict[str, dict[str, list[dict[str, Any]]]] = defaultdict(lambda: {"head": [], "update": [], "reply": []})
    for message in _slack(report):
        if not message["accepted"]:
            continue
        if message["method"] == "chat.update":
            threads[message["payload"]["ts"]]["update"].append(message)
        elif message["thread_ts"]:
            threads[message["thread_ts"]]["reply"].append(message)
        else:
            threads[message["ts"]]["head"].append(message)
    return dict(threads)


def _pushes(report: dict[str, Any]) -> set[str]:
    return {
        str(entry["event"]["detail"]["push_id"])
        for entry in report["timeline"]
        if entry["kind"] == "event" and entry["event"]["source"] != "aws.codecommit"
        if (entry["event"].get("detail") or {}).get("push_id")
    }


def _kept(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        entry
        for entry in report["timeline"]
        if entry["kind"] == "delivery" and entry["function"] == "NotifyFunction" and entry["outcome"] != "acted"
    ]


def _lines(message: dict[str, Any]) -> str:
    """The status lines of a thread's head (its third block), as posted or updated."""
    return str(message["payload"]["blocks"][2]["text"]["text"])


def _head_push(head: dict[str, Any]) -> str:
    context = head["payload"]["blocks"][-1]["elements"][0]["text"]
    return str(context.split("push `", 1)[1].rstrip("`"))


def test_each_push_of_the_demo_is_one_thread_posted_once_and_updated_in_place() -> None:
    report = run(slack="threads")

    threads = _threads(report)
    assert all(len(thread["head"]) == 1 for thread in threads.values())
    assert sorted(_head_push(thread["head"][0]) for thread in threads.values()) == sorted(_pushes(report))
    built = [thread for thread in threads.values() if "Build started" in _lines(thread["head"][0])]
    assert len(built) == 3  # the docs-only push and the tag start no build: their heads are their one message
    # A built push's later stages (build end, scan, promotion, deployment) update its head in place.
    assert all(len(thread["update"]) >= 2 for thread in built)
    assert not [message for message in _slack(report) if not message["accepted"] and message["error"] != "ratelimited"]
    assert _kept(report) == []


def test_the_blocked_push_is_told_in_full_as_a_reply_in_its_own_thread() -> None:
    report = run(slack="threads")

    replies = [(ts, reply) for ts, thread in _threads(report).items() for reply in thread["reply"]]
    [(head_ts, blocked)] = [(ts, reply) for ts, reply in replies if "blocked" in (reply["header"] or "")]
    head = _threads(report)[head_ts]["head"][0]
    assert blocked["header"].startswith(":no_entry: Image blocked by its scan")
    last_update = _lines(_threads(report)[head_ts]["update"][-1])
    assert "Build started" in _lines(head)
    assert "Image blocked by its scan" in last_update and "Build succeeded" in last_update


def test_a_burst_of_pushes_stays_within_one_post_per_second_and_every_push_gets_its_thread() -> None:
    report = run(BURST, slack="threads")

    threads = _threads(report)
    posts = [message for message in _slack(report) if message["method"] == "chat.postMessage" and message["accepted"]]
    refused = Counter(message["error"] for message in _slack(report) if not message["accepted"])
    assert len(threads) == len(_pushes(report)) == 7
    assert all(len(thread["head"]) == 1 and thread["update"] for thread in threads.values())
    # The stand-in refused what Slack would refuse, and the client waited each refusal out.
    assert set(refused) == {"ratelimited"} and refused["ratelimited"] >= 1
    assert _kept(report) == [] and report["final_state"]["failed_invocations"] == []
    assert len(posts) == 7


def test_the_accepted_posts_of_a_burst_are_spaced_as_slack_requires() -> None:
    report = run(BURST, slack="threads")

    times = sorted(
        message["at"] for message in _slack(report) if message["method"] == "chat.postMessage" and message["accepted"]
    )
    assert times, "no post was accepted"
    for first in range(len(times)):
        for last in range(first, len(times)):
            assert last - first + 1 <= POST_BURST + (times[last] - times[first]) * POSTS_PER_SECOND + 0.05


def test_with_only_a_webhook_each_message_stands_alone_on_the_webhook(run_demo: RunScenario) -> None:
    report = run_demo()

    slack = _slack(report)
    assert slack and {message["method"] for message in slack} == {"webhook"}
    assert all(message["accepted"] for message in slack)
    assert all(not message["thread_ts"] for message in slack)


def test_the_demo_summary_groups_messages_by_push_in_push_order(run_demo: RunScenario) -> None:
    report = run_demo()
    state = report["final_state"]

    groups = messages_by_push(report["timeline"], state["sns_messages"], state["slack_messages"])

    of_pushes = [group for group in groups if group["title"] != "not of a push"]
    times = [group["title"].rsplit(" at ", 1)[1] for group in of_pushes]
    assert len(of_pushes) == len(_pushes(report)) == 5
    assert times == sorted(times)
    assert sum(len(group["slack"]) for group in groups) == len(state["slack_messages"])
    assert sum(len(group["sns"]) for group in groups) == len(state["sns_messages"])
    assert [group for group in groups if group["title"] == "not of a push"] == []
    [blocked] = [group for group in of_pushes if any("blocked" in subject for subject in group["sns"])]
    assert any("Image blocked" in line for line in blocked["slack"])
