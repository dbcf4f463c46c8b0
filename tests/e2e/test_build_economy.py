"""The quiet window on a small bursty monorepo trace (bench/build_economy.py's generator): no final
change of any (branch, image) is missed, with every event delivered twice and the pending work run
in a shuffled order, for several seeds; and the window starts fewer builds than building at once."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from ecr_pipeline.config import DEFAULT_BUILD_WINDOW_SECONDS

BENCH = Path(__file__).resolve().parents[2] / "bench" / "build_economy.py"


def economy() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_economy", BENCH)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_economy", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [3, 5, 8])
def test_no_final_change_is_missed_under_duplicates_and_shuffle(seed: int) -> None:
    bench = economy()
    trace = bench.make_trace(seed, bursts=4)
    window = DEFAULT_BUILD_WINDOW_SECONDS

    report = bench.replay(trace, window, {"duplicate": True, "shuffle_seed": seed})
    coalesced = bench.measure(trace, window, report)

    assert coalesced["missed"] == []
    assert report["permission_gaps"] == []
    touched = {(push.branch, image) for push in trace.pushes for image in trace.touching(push)}
    # Every branch and image the trace changed was checked: its branch tag is on its newest change.
    assert coalesced["finals"] == len(touched) == len(bench.BRANCHES) * len(bench.IMAGES)
    assert coalesced["started"] > 0


def test_the_window_starts_fewer_builds_than_building_every_push_at_once() -> None:
    bench = economy()
    trace = bench.make_trace(11, bursts=4)

    at_once = bench.measure(trace, 0, bench.replay(trace, 0))
    report = bench.replay(trace, DEFAULT_BUILD_WINDOW_SECONDS)
    coalesced = bench.measure(trace, DEFAULT_BUILD_WINDOW_SECONDS, report)

    assert at_once["missed"] == [] and coalesced["missed"] == []
    assert coalesced["started"] < at_once["started"]
    assert coalesced["added_median"] >= DEFAULT_BUILD_WINDOW_SECONDS


def test_the_events_of_several_images_are_published_in_one_put_events() -> None:
    bench = economy()
    trace = bench.make_trace(11, bursts=2)
    report = bench.replay(trace, DEFAULT_BUILD_WINDOW_SECONDS)

    several = [
        entry
        for entry in report["timeline"]
        if entry["kind"] == "delivery" and entry["function"] == "StartBuildFunction" and len(entry["emitted"]) > 1
    ]
    assert several, "no start_build delivery told of more than one image"
    for entry in several:
        put_events = [write for write in entry["writes"] if write["operation"] == "PutEvents"]
        assert len(put_events) == 1, entry["emitted"]
