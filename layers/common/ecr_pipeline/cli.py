"""`ecr-pipeline status`: the story of a commit, branch, git tag, image digest or environment, read-only.

    ecr-pipeline status (--commit SHA | --branch NAME | --tag NAME | --digest sha256:... | --environment NAME)
        [--repository CODECOMMIT_REPO] [--json]
        (--stack NAME | --ledger-table TABLE [--build-project PROJECT]) [--config pipeline.yaml]
        [--stack-prefix '<stack name>/'] [--region REGION]
    ecr-pipeline status --metrics [...]     the delivery metrics (ecr_pipeline.status)

The tables come from the stack's outputs (LedgerTableName, ImageBuildProjectName) or the explicit
options. Exit status 0 with a story, 2 when what was asked for is unknown or ambiguous.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ecr_pipeline.config import ConfigError, PipelineConfig, load_config

if TYPE_CHECKING:
    from ecr_pipeline.adapters.story_reads import StoryReader

SELECTORS = ("commit", "branch", "tag", "digest", "environment")
_HEX = frozenset("0123456789abcdef")


class StoryError(Exception):
    """What was asked for is not in the ledger, or names more than one thing."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecr-pipeline status", description=__doc__.split("\n")[0])
    chosen = parser.add_mutually_exclusive_group(required=True)
    chosen.add_argument("--commit", help="a full commit id")
    chosen.add_argument("--branch", help="a branch: the story of its newest commit")
    chosen.add_argument("--tag", help="a git tag (v1.2.3): the story of its commit")
    chosen.add_argument("--digest", help="an image digest, sha256:...")
    chosen.add_argument("--environment", help="an environment (dev): the story of what it serves")
    parser.add_argument("--repository", help="the CodeCommit repository (needed when several have the commit)")
    parser.add_argument("--json", action="store_true", help="print the story as JSON")
    parser.add_argument("--stack", help="the stack whose outputs name the tables and the build project")
    parser.add_argument("--ledger-table", help="the ledger table (the stack's output LedgerTableName)")
    parser.add_argument("--build-project", help="the CodeBuild project (the stack's output ImageBuildProjectName)")
    parser.add_argument("--config", default="pipeline.yaml", help="the pipeline.yaml the stack was made from")
    parser.add_argument("--stack-prefix", help="'<stack name>/', the ECR repositories' prefix (default: --stack's)")
    parser.add_argument("--region", help="the region (default: the environment's)")
    return parser


def _metrics(argv: list[str]) -> int:
    """`status --metrics`: the delivery metrics of ecr_pipeline.status, its tables from --stack if given."""
    from ecr_pipeline import status

    known = argparse.ArgumentParser(add_help=False)
    known.add_argument("--stack")
    known.add_argument("--region")
    known.add_argument("--build-project")  # the story's, not the metrics': accepted and not needed
    found, rest = known.parse_known_args(argv)
    if found.stack:
        outputs = _stack_outputs(found.stack, found.region)
        if "--ledger-table" not in rest:
            rest += ["--ledger-table", outputs.get("LedgerTableName", "")]
        if "--stack-prefix" not in rest:
            rest += ["--stack-prefix", f"{found.stack}/"]
    if found.region:
        rest += ["--region", found.region]
    return status.main(rest)


def _session(region: str | None) -> Any:
    import boto3  # only here: no function of the layer imports this module

    return boto3.session.Session(region_name=region)


def _stack_outputs(stack: str, region: str | None) -> dict[str, str]:
    from ecr_pipeline.adapters.story_reads import stack_outputs

    return stack_outputs(_session(region).client("cloudformation"), stack)


def _reader(arguments: argparse.Namespace, config: PipelineConfig) -> StoryReader:
    from ecr_pipeline.adapters.story_reads import StoryClients, StoryReader

    table, project = arguments.ledger_table, arguments.build_project
    if arguments.stack and not (table and project):
        outputs = _stack_outputs(arguments.stack, arguments.region)
        table = table or outputs.get("LedgerTableName")
        project = project or outputs.get("ImageBuildProjectName")
    if not table:
        raise StoryError("give --stack NAME or --ledger-table TABLE: no ledger table to read")
    session = _session(arguments.region)
    clients = StoryClients(*(session.client(name) for name in ("dynamodb", "ecr", "codebuild", "codecommit")))
    return StoryReader(config, table, clients, project)


def _one_repository(config: PipelineConfig, repository: str | None) -> str:
    if repository:
        if config.repository(repository) is None:
            raise StoryError(f"--repository {repository}: not a repository of pipeline.yaml")
        return repository
    if len(config.repositories) != 1:
        raise StoryError(f"give --repository: pipeline.yaml has {', '.join(sorted(config.repositories))}")
    return next(iter(config.repositories))


def commits_asked(reader: StoryReader, arguments: argparse.Namespace) -> list[tuple[str, str]]:
    """(repository, commit) of what was asked for; StoryError when unknown or ambiguous."""
    config = reader.config
    if arguments.commit is not None:
        commit = arguments.commit.strip().lower()
        found = reader.repositories_with_commit(commit, arguments.repository)
        if not found:
            where = arguments.repository or ", ".join(sorted(config.repositories))
            raise StoryError(f"unknown commit {commit}: the ledger records no push of it in {where}")
        if len(found) > 1:
            raise StoryError(
                f"commit {commit} was pushed to several repositories ({', '.join(found)}): give --repository"
            )
        return [(found[0], commit)]
    if arguments.digest is not None:
        images = reader.digest_commit(arguments.digest.strip())
        if not images:
            raise StoryError(f"unknown image digest {arguments.digest}: no image of pipeline.yaml has it in the ledger")
        return images
    repository = _one_repository(config, arguments.repository)
    if arguments.branch is not None:
        commit = reader.branch_commit(repository, arguments.branch)
        if not commit:
            raise StoryError(f"unknown branch {arguments.branch} of {repository}")
        return [(repository, commit)]
    commit = reader.tag_commit(repository, arguments.tag)
    if not commit:
        raise StoryError(
            f"git tag {arguments.tag} of {repository}: no promotion of it is recorded"
            " (a tag whose image was not promoted: ask with --commit)"
        )
    return [(repository, commit)]


def _environment(reader: StoryReader, name: str) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """What each deploy target of the environment serves and its newest candidate, and the commits to tell."""
    places = reader.environment(name)
    if not places:
        raise StoryError(f"unknown environment {name}: no deploy target of pipeline.yaml has it")
    summary, commits = [], []
    for image, place in places:
        serving = place.serving.commit if place.serving else None
        candidate = place.candidate.commit if place.candidate else None
        summary.append(
            {
                "ecr_repository": image.ecr_repository,
                "environment": name,
                "target": place.target,
                "serving": serving,
                "candidate": candidate,
            }
        )
        commits += [(image.codecommit_repository, commit) for commit in (serving, candidate) if commit]
    return summary, list(dict.fromkeys(commits))


def story_document(reader: StoryReader, arguments: argparse.Namespace) -> dict[str, Any]:
    from ecr_pipeline.story import commit_story

    subject = {name: getattr(arguments, name) for name in SELECTORS if getattr(arguments, name) is not None}
    document: dict[str, Any] = {"subject": subject}
    if arguments.environment is not None:
        document["environments"], commits = _environment(reader, arguments.environment)
    else:
        commits = commits_asked(reader, arguments)
    document["stories"] = [commit_story(reader.commit_facts(repository, commit)) for repository, commit in commits]
    return document


def render_document(document: dict[str, Any]) -> str:
    from ecr_pipeline.story import render_story

    lines = []
    for place in document.get("environments", []):
        lines.append(
            f"Environment {place['environment']} ({place['target']}, {place['ecr_repository']}):"
            f" serves {place['serving'] or 'nothing yet'}"
            + (f", newest candidate {place['candidate']}" if place["candidate"] != place["serving"] else "")
        )
    lines += [render_story(story) for story in document["stories"]]
    return "\n".join(lines) or "nothing to tell"


def check_arguments(arguments: argparse.Namespace) -> None:
    """What can be wrong before anything is read: StoryError naming the option."""
    commit = arguments.commit
    if commit is not None and (len(commit.strip()) != 40 or not all(c in _HEX for c in commit.strip().lower())):
        raise StoryError(f"--commit {commit}: give the full 40-character commit id")
    if arguments.digest is not None and not arguments.digest.strip().startswith("sha256:"):
        raise StoryError(f"--digest {arguments.digest}: an image digest is sha256:<64 hex digits>")
    if not (arguments.stack or arguments.ledger_table):
        raise StoryError("give --stack NAME or --ledger-table TABLE: no ledger table to read")


def status(argv: list[str]) -> int:
    if "--metrics" in argv:
        return _metrics(argv)
    from botocore.exceptions import BotoCoreError, ClientError

    arguments = _parser().parse_args(argv)
    try:
        check_arguments(arguments)
        prefix = arguments.stack_prefix or (f"{arguments.stack}/" if arguments.stack else "ecr-pipeline/")
        config = load_config(arguments.config, prefix)
        document = story_document(_reader(arguments, config), arguments)
    except (ConfigError, StoryError) as error:
        print(f"ecr-pipeline status: {error}", file=sys.stderr)
        return 2
    except (BotoCoreError, ClientError) as error:
        # No region, no credentials, a table or stack that is not there: AWS's own words.
        print(f"ecr-pipeline status: AWS: {error}", file=sys.stderr)
        return 1
    print(json.dumps(document, indent=1) if arguments.json else render_document(document))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] in ("-h", "--help"):
        print("usage: ecr-pipeline status [--help] ...: the story of a push, or --metrics", file=sys.stderr)
        return 0 if arguments else 2
    if arguments[0] != "status":
        print(f"ecr-pipeline: unknown command {arguments[0]!r} (the command is: status)", file=sys.stderr)
        return 2
    return status(arguments[1:])


if __name__ == "__main__":
    raise SystemExit(main())
