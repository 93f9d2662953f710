"""Nobody where they don't belong: project folders, output folders and artifact names that would
leave their root (``..``, absolute paths, symlinks) are refused with a clear reason, in the pure
helpers and through the whole orchestra (the task ends failed, saying why)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.devops.generate import ArtifactWriteError, GeneratedFile, write_artifacts
from agents.paths import PathEscape, resolve_inside, safe_relative
from tests.orchestra_fixtures import Running, copy_example, final, start_orchestra


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "inside" / "deeper").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (root / "link-out").symlink_to(tmp_path / "outside")
    (root / "link-in").symlink_to(root / "inside")
    return root


@pytest.mark.parametrize(
    "path",
    ["..", "../outside", "inside/../../outside", "/etc", "/", "link-out", "link-out/x", "inside/../link-out"],
)
def test_resolve_inside_refuses_what_leaves_the_root(root: Path, path: str) -> None:
    """Invariant: `..`, absolute paths elsewhere and symlinks out are refused, saying "outside"."""
    with pytest.raises(PathEscape, match="outside"):
        resolve_inside(root, path, what="project path")


@pytest.mark.parametrize("path", [".", "inside", "inside/deeper", "inside/../inside", "link-in", "new/dir"])
def test_resolve_inside_accepts_what_stays(root: Path, path: str) -> None:
    """Invariant: paths that stay inside (also through a symlink that stays inside) resolve inside."""
    resolved = resolve_inside(root, path)
    assert resolved == root.resolve() or root.resolve() in resolved.parents


def test_absolute_path_inside_the_root_is_fine(root: Path) -> None:
    """Invariant: an absolute path is judged by where it points, not by being absolute."""
    assert resolve_inside(root, str(root / "inside")) == (root / "inside").resolve()


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "a/.",
        "/etc/passwd",
        "../x",
        "a/../../x",
        "a/..",
        "dir/",
        "a\\b",
        "nul\x00byte",
        "..\\x",
        "a/../b",
        "a//b",
        "./a",
    ],
)
def test_safe_relative_refuses_unclean_names(name: str) -> None:
    """Invariant: empty, absolute, `..`, directory, backslash and NUL artifact names are refused."""
    with pytest.raises(PathEscape):
        safe_relative(name)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "..", ".", "", "/", "\\", "x.y", "é", "\x00"]), max_size=6))
def test_a_name_safe_relative_accepts_never_leaves_its_root(parts: list[str]) -> None:
    """Invariant: any name safe_relative accepts stays under its root once joined and normalised."""
    name = "/".join(parts)
    try:
        pure = safe_relative(name)
    except PathEscape as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    root = PurePosixPath("/r")
    joined = os.path.normpath(str(root / pure))
    # "." is accepted and names the root itself (QA then reports it unwritable): inside, not out.
    assert joined == "/r" or joined.startswith("/r/"), (name, joined)


def _file(path: str, content: str = "x\n") -> GeneratedFile:
    import hashlib

    return GeneratedFile(
        path=path, content=content, target="docker", sha256=hashlib.sha256(content.encode()).hexdigest()
    )


@pytest.mark.parametrize("name", ["../escape", "/abs/path", "a/../../b", "./x", "a//b", "a\\b"])
def test_write_artifacts_refuses_names_that_escape(tmp_path: Path, name: str) -> None:
    """Invariant: one escaping name refuses the whole artifact set, before anything is written."""
    out = tmp_path / "out"
    with pytest.raises(ArtifactWriteError, match="refusing path"):
        write_artifacts([_file("ok.txt"), _file(name)], out)
    assert not (out / "ok.txt").exists(), "nothing is written when one name is refused"


def test_write_artifacts_does_not_follow_symlinks_out(tmp_path: Path) -> None:
    """Invariant: a symlinked directory or file in the output dir is never written through."""
    (tmp_path / "outside").mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").symlink_to(tmp_path / "outside")
    (out / "Dockerfile").symlink_to(tmp_path / "outside" / "Dockerfile")
    with pytest.raises(ArtifactWriteError, match="symlink leads outside"):
        write_artifacts([_file("sub/x.yaml")], out)
    with pytest.raises(ArtifactWriteError, match="is a symlink"):
        write_artifacts([_file("Dockerfile")], out)
    assert list((tmp_path / "outside").iterdir()) == []


# -- through the bus --------------------------------------------------------------------------


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Running]:
    async for r in start_orchestra(tmp_path, validators="fast", security_checkov=False):
        yield r


@pytest.mark.nats
async def test_escaping_projects_and_output_dirs_end_failed_with_the_reason(
    running: Running, tmp_path: Path
) -> None:
    """Invariant: a task whose project or output dir leaves the workspace (``..``, absolute, a
    symlink out) ends failed at planning, naming the path and that it is outside, before DevOps, QA
    or security did any work on it; nothing is written outside."""
    workspace = running.workspace
    project = copy_example("fastapi-service", workspace)
    outside = tmp_path / "outside"
    outside.mkdir()
    copy_example("fastapi-service", outside)
    (workspace / "project-link").symlink_to(outside / "fastapi-service")
    (workspace / "out-link").symlink_to(outside)
    text = "Containerize the Python FastAPI application"
    cases = [
        ({"project": "../outside/fastapi-service"}, "project path", "architect"),
        ({"project": str(outside / "fastapi-service")}, "project path", "architect"),
        ({"project": "project-link"}, "project path", "architect"),
        ({"project": project, "output_dir": "../outside/out"}, "output dir", "architect"),
        ({"project": project, "output_dir": "/tmp"}, "output dir", "architect"),
        ({"project": project, "output_dir": "out-link/deploy"}, "output dir", "architect"),
    ]
    for kwargs, what, agent in cases:
        kw = dict(kwargs)
        statuses = await running.run_task(text, kw.pop("project"), **kw)
        end = final(statuses)
        assert end.state.value == "failed", (kwargs, end)
        assert end.agent == agent and what in end.reason and "outside" in end.reason, (kwargs, end.reason)
        assert "\n" not in end.reason
        states = [s.payload.state.value for s in statuses]
        assert states == ["received", "planning", "failed"], (kwargs, states)
    assert sorted(p.name for p in outside.iterdir()) == ["fastapi-service"], "something was written outside"
    assert sorted(p.name for p in (outside / "fastapi-service").iterdir()) == sorted(
        p.name for p in (workspace / project).iterdir() if p.name != ".orchestra-manifest.json"
    )
