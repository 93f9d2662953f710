"""From an :class:`AppSpec` to files: pick the renderers the targets ask for, and write their output
into a directory without ever leaving it or clobbering files we did not write."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from agents.devops.render import aws, ci, docker, docs, helm, kubernetes, monitoring, terraform
from agents.devops.spec import AppSpec
from agents.paths import PathEscape, resolve_inside, safe_relative
from contracts.vocabulary import Target

Renderer = Callable[[AppSpec], dict[str, str]]

TARGET_RENDERERS: dict[Target, Renderer] = {
    Target.DOCKER: docker.render,
    Target.CI: ci.render,
    Target.K8S: kubernetes.render,
    Target.HELM: helm.render,
    Target.ECS: aws.render,
    Target.TERRAFORM: terraform.render,
    Target.MONITORING: monitoring.render,
    Target.DOCS: docs.render,
}
MANIFEST = ".orchestra-manifest.json"


@dataclass(frozen=True)
class GeneratedFile:
    """One rendered file: relative POSIX path, text, the target it belongs to, its sha256."""

    path: str
    content: str
    target: Target
    sha256: str


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def generate(spec: AppSpec) -> list[GeneratedFile]:
    """Render exactly the files the spec's targets ask for, sorted by path. Pure and
    deterministic: the same spec always gives byte-identical files."""
    files: dict[str, GeneratedFile] = {}
    inventory: dict[Target, list[str]] = {}
    # Docs last: they list every other target's files, which are known by then.
    for target in sorted(dict.fromkeys(spec.targets), key=lambda t: t == Target.DOCS):
        rendered = docs.render(spec, inventory) if target == Target.DOCS else TARGET_RENDERERS[target](spec)
        inventory[target] = sorted(rendered)
        for path, content in rendered.items():
            if path in files:
                raise ValueError(f"{path} is rendered by both {files[path].target} and {target}")
            files[path] = GeneratedFile(path, content, target, sha256_text(content))
    return [files[path] for path in sorted(files)]


class ArtifactWriteError(ValueError):
    """Writing was refused: an unsafe path, or files we did not write (use force to replace)."""


@dataclass(frozen=True)
class WriteResult:
    """What write_artifacts did (or, with dry_run, would do). Paths are relative to out_dir."""

    out_dir: Path
    written: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = field(default=(), metadata={"doc": "existing files we did not write"})
    dry_run: bool = False


def safe_target(out_dir: Path, rel: str) -> Path:
    """The absolute path for ``rel`` inside ``out_dir``: ``rel`` must be a clean relative name
    (:func:`agents.paths.safe_relative`), and no symlink may lead it outside or be written through."""
    try:
        posix = safe_relative(rel, what="path")
    except PathEscape as exc:
        raise ArtifactWriteError(f"refusing {exc}") from None
    root = out_dir.resolve()
    target = root.joinpath(*posix.parts)
    try:
        resolve_inside(root, target.parent)
    except PathEscape:
        raise ArtifactWriteError(f"refusing path {rel!r}: a symlink leads outside {root}") from None
    if target.is_symlink():
        raise ArtifactWriteError(f"refusing path {rel!r}: it is a symlink")
    return target


def _read_manifest(root: Path) -> dict[str, str]:
    path = root / MANIFEST
    if path.is_symlink() or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = data.get("files", {}) if isinstance(data, dict) else {}
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def _atomic_write(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".orchestra-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _current_sha(path: Path) -> str | None:
    if not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_artifacts(
    files: Iterable[GeneratedFile], out_dir: Path, *, force: bool = False, dry_run: bool = False
) -> WriteResult:
    """Write ``files`` under ``out_dir``, each atomically (temp file + ``os.replace``).

    A file that exists is replaced only when we wrote it (its sha256 matches
    ``.orchestra-manifest.json``) or ``force`` is set; otherwise nothing is written and
    :class:`ArtifactWriteError` names the conflicts (``dry_run`` reports them instead).
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ArtifactWriteError(f"output path {out_dir} exists and is not a directory")
    files = list(files)
    targets = [(f, safe_target(out_dir, f.path)) for f in files]
    if MANIFEST in {f.path for f in files}:
        raise ArtifactWriteError(f"refusing to overwrite the manifest {MANIFEST}")
    manifest = _read_manifest(out_dir.resolve()) if out_dir.exists() else {}
    written, unchanged, conflicts = [], [], []
    for file, path in targets:
        current = _current_sha(path)
        if current == file.sha256:
            unchanged.append(file.path)
        elif (current is None and not path.exists()) or (
            current is not None and manifest.get(file.path) == current
        ):
            written.append(file.path)  # new, or ours and unedited since we wrote it
        else:
            conflicts.append(file.path)
            if force:
                written.append(file.path)
    if conflicts and not force and not dry_run:
        raise ArtifactWriteError(
            f"{len(conflicts)} existing file(s) in {out_dir} were not written by orchestra (or were edited "
            f"since): {', '.join(conflicts[:10])}; pass force to replace them"
        )
    result = WriteResult(out_dir, tuple(written), tuple(unchanged), tuple(conflicts), dry_run)
    if dry_run:
        return result
    out_dir.mkdir(parents=True, exist_ok=True)
    by_path = {f.path: (f, p) for f, p in targets}
    for rel in written:
        file, path = by_path[rel]
        _atomic_write(path, file.content)
    manifest.update({f.path: f.sha256 for f in files})
    body = {"generator": "orchestra-devops", "files": dict(sorted(manifest.items()))}
    _atomic_write(out_dir.resolve() / MANIFEST, json.dumps(body, indent=2) + "\n")
    return result
