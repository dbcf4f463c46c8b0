from __future__ import annotations

import pytest

from ecr_pipeline.core.filters import paths_selected, ref_selected


@pytest.mark.parametrize(
    ("branch", "selected"),
    [("main", True), ("feature/login", True), ("feature/a/b", True), ("experiment/x", False), ("hotfix/main", False)],
)
def test_branch_filters(branch: str, selected: bool) -> None:
    include = ["main", "feature/**", "experiment/**"]
    assert ref_selected(branch, include, ["experiment/**"]) is selected


def test_single_star_stays_within_one_segment() -> None:
    assert ref_selected("release/1.0", ["release/*"])
    assert not ref_selected("release/1.0/hotfix", ["release/*"])


def test_tag_filter_selects_release_tags() -> None:
    assert ref_selected("v1.2.3", ["v*"])
    assert not ref_selected("nightly-2026", ["v*"])


def test_docs_only_change_selects_nothing() -> None:
    assert paths_selected(["docs/guide.md", "README.md"], ("**",), ("docs/**", "*.md")) == []


def test_source_change_is_selected_beside_ignored_docs() -> None:
    changed = ["docs/guide.md", "src/app.py", "Dockerfile"]
    assert paths_selected(changed, ("**",), ("docs/**", "*.md")) == ["src/app.py", "Dockerfile"]


def test_paths_restrict_to_a_subtree() -> None:
    assert paths_selected(["services/api/main.py", "services/web/x.js"], ("services/api/",), ()) == [
        "services/api/main.py"
    ]


def test_negation_in_paths_ignore_keeps_a_file() -> None:
    # gitignore semantics: a later `!pattern` re-includes what an earlier pattern excluded.
    assert paths_selected(["docs/Dockerfile.docs", "docs/a.md"], ("**",), ("docs/**", "!docs/Dockerfile.docs")) == [
        "docs/Dockerfile.docs"
    ]
