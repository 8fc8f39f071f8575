"""The bench's report names the commit it measured, and says when service/ or lua/ differ."""

from __future__ import annotations

import subprocess
from pathlib import Path

from loadtest.report import describe_revision, source_revision


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_the_commit_and_uncommitted_changes_to_the_served_code(tmp_path: Path) -> None:
    (tmp_path / "service").mkdir()
    (tmp_path / "service" / "app.py").write_text("a = 1\n")
    (tmp_path / "docs.md").write_text("x\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    commit = git(tmp_path, "rev-parse", "--short=12", "HEAD")

    (tmp_path / "docs.md").write_text("changed, but not served\n")
    assert source_revision(str(tmp_path)) == {"commit": commit, "uncommitted_changes": False}
    assert describe_revision(source_revision(str(tmp_path))) == f"at {commit}"

    (tmp_path / "service" / "new.py").write_text("b = 2\n")
    revision = source_revision(str(tmp_path))
    assert revision == {"commit": commit, "uncommitted_changes": True}
    assert describe_revision(revision) == f"at {commit} with uncommitted changes in service/ or lua/"


def test_outside_a_repository_the_commit_is_unknown(tmp_path: Path) -> None:
    assert source_revision(str(tmp_path)) is None
    assert describe_revision(None) == "at an unknown commit"
