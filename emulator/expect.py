"""A step's `expect`: what the pipeline should have done with the step's push, checked at the end.

    expect:
      built: true              # this push started a build of its commit that SUCCEEDED (false: none ran)
      tags: [latest, main]     # these tags are on the commit's image at the end
      not_tags: [latest]       # these are not
      verdict: BLOCKED         # the scan verdict of the commit's image (a "Scan Verdict" event)
      deployed: dev            # the environment ends on the commit
      not_deployed: dev        # no deployment of the commit to the environment was ever created

Checks read the report (its timeline and final state), so they see what a user would. Besides
the steps' expectations, every run is checked for permission gaps (step 0: the whole run): a
call that IAM would refuse on AWS fails the run, whatever the steps expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXPECTATIONS = ("built", "tags", "not_tags", "verdict", "deployed", "not_deployed", "serving")


@dataclass(frozen=True)
class Check:
    step: int
    expectation: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "expectation": self.expectation, "passed": self.passed, "detail": self.detail}


def validate_expect(raw: Any, where: str) -> dict[str, Any]:
    """The step's `expect` mapping, or a ValueError naming the unknown or malformed field."""
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: must be a mapping of {', '.join(EXPECTATIONS)}")
    for key, value in raw.items():
        if key not in EXPECTATIONS:
            raise ValueError(f"{where}.{key}: unknown expectation (one of {', '.join(EXPECTATIONS)})")
        if key == "built" and not isinstance(value, bool):
            raise ValueError(f"{where}.built: must be true or false")
        if key in ("tags", "not_tags") and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ValueError(f"{where}.{key}: must be a list of tags")
        if key in ("verdict", "deployed", "not_deployed", "serving") and not isinstance(value, str):
            raise ValueError(f"{where}.{key}: must be a string")
    return raw


def _image(report: dict[str, Any], commit: str) -> dict[str, Any] | None:
    for images in report["final_state"]["images"].values():
        for image in images:
            if image["commit"] == commit:
                return dict(image)
    return None


def _deployed_commits(report: dict[str, Any], environment: str) -> list[str]:
    """Commits whose image a CreateDeployment for the environment's group carried (via the task definition)."""
    environments = [item for item in report["final_state"]["environments"] if item["environment"] == environment]
    digests = {
        image["digest"]: image["commit"] for images in report["final_state"]["images"].values() for image in images
    }
    commits = []
    for item in environments:
        for deployment in item["deployments"]:
            image = str(deployment.get("image") or "")
            if "@" in image:
                commits.append(str(digests.get(image.rsplit("@", 1)[1])))
            elif ":" in image.rsplit("/", 1)[-1]:
                commits.append(image.rsplit(":", 1)[1])
    return commits


def permission_checks(report: dict[str, Any]) -> list[Check]:
    """One failing check per permission gap of the run (a function's or the build role's), else one that passed."""
    gaps = report.get("permission_gaps") or []
    if not gaps:
        return [Check(0, "no permission gaps", True, "")]
    return [
        Check(
            0,
            f"IAM allows {gap['function']}: {gap['action']} on {gap['resource'] or '(any resource)'}",
            False,
            "the template's policies do not allow it: AWS would refuse the call",
        )
        for gap in gaps
    ]


def check_step(report: dict[str, Any], step: dict[str, Any], expect: dict[str, Any]) -> list[Check]:
    number = int(step["step"])
    commit = str(step.get("commit") or "")
    ref = str(step.get("tag") or step.get("branch") or "")
    checks: list[Check] = []
    image = _image(report, commit)
    tags = set(image["tags"]) if image else set()

    if "built" in expect:
        builds = [
            build
            for build in report["final_state"]["builds"]
            if build["commit"] == commit and build["source_branch"] == ref and build["status"] == "SUCCEEDED"
        ]
        passed = bool(builds) == expect["built"]
        label = f"built from {ref}" if expect["built"] else f"no build for {ref}"
        checks.append(Check(number, label, passed, f"{len(builds)} successful build(s) of {ref}"))
    if "tags" in expect:
        missing = [tag for tag in expect["tags"] if tag not in tags]
        checks.append(
            Check(
                number,
                f"tags: {', '.join(expect['tags'])}",
                not missing,
                f"missing: {', '.join(missing)}" if missing else "",
            )
        )
    if "not_tags" in expect:
        present = [tag for tag in expect["not_tags"] if tag in tags]
        checks.append(
            Check(
                number,
                f"not tagged: {', '.join(expect['not_tags'])}",
                not present,
                f"present: {', '.join(present)}" if present else "",
            )
        )
    if "verdict" in expect:
        verdicts = sorted(
            {
                str(entry["event"]["detail"].get("verdict"))
                for entry in report["timeline"]
                if entry["kind"] == "event"
                and entry["event"]["detail-type"] == "Scan Verdict"
                and entry["event"]["detail"].get("commit") == commit
            }
        )
        checks.append(
            Check(
                number,
                f"verdict: {expect['verdict']}",
                verdicts == [expect["verdict"]],
                f"verdicts: {verdicts or 'none'}",
            )
        )
    if "deployed" in expect:
        running = [
            item["commit"]
            for item in report["final_state"]["environments"]
            if item["environment"] == expect["deployed"]
        ]
        checks.append(
            Check(
                number, f"deployed to {expect['deployed']}", running == [commit], f"{expect['deployed']} runs {running}"
            )
        )
    if "serving" in expect:
        # Docker mode: the environment's endpoint answers with this commit's image behind it.
        serving = [
            item.get("serving") or {}
            for item in report["final_state"]["environments"]
            if item["environment"] == expect["serving"]
        ]
        answered = [entry for entry in serving if entry.get("commit") == commit and commit in str(entry.get("answer"))]
        checks.append(
            Check(
                number,
                f"{expect['serving']} serves it",
                bool(commit) and len(answered) == len(serving) == 1,
                f"{expect['serving']} serves {[(entry.get('commit'), entry.get('answer')) for entry in serving]}",
            )
        )
    if "not_deployed" in expect:
        deployed = commit in _deployed_commits(report, expect["not_deployed"])
        checks.append(Check(number, f"never deployed to {expect['not_deployed']}", not deployed, ""))
    return checks
