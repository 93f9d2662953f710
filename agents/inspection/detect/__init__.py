"""Per-language detectors. Each returns what it found in a :class:`Detected`, or None when the
project is not in its language; :mod:`agents.inspection.inspect` merges that with overrides."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from agents.inspection.detect.listen import Listen
from agents.inspection.detect.writes import Write


@dataclass
class Detected:
    """Findings of one detector; None means "not found", to be filled by overrides or defaults."""

    language: str
    package_manager: str
    dependency_files: tuple[str, ...]
    locked: bool
    framework: str | None = None
    name: str | None = None
    language_version: str | None = None
    start_command: tuple[str, ...] | None = None
    test_command: tuple[str, ...] | None = None
    port: int | None = None
    health_path: str | None = None
    metrics_path: str | None = None
    env_vars: set[str] = field(default_factory=set)
    backing_services: set[str] = field(default_factory=set)
    build_target: str = "."
    dev_dependency_files: tuple[str, ...] = ()
    probe: str = "http"
    runtime_env: dict[str, str] = field(default_factory=dict)
    build_command: tuple[str, ...] = ()
    build_packages: tuple[str, ...] = ()
    runtime_packages: tuple[str, ...] = ()
    workspace_package: str | None = None
    # The start command for another port (an override), when the detector can re-render it.
    start_for_port: Callable[[int], tuple[str, ...]] | None = None
    assumptions: list[str] = field(default_factory=list)
    port_env: str = "PORT"
    build_output: str | None = None
    build_tags: tuple[str, ...] = ()
    cgo: bool = False
    skip_scripts: tuple[str, ...] = ()
    required_env: set[str] = field(default_factory=set)
    # Override field -> why detection cannot fill it: inspection refuses unless the caller passes it.
    needs: dict[str, str] = field(default_factory=dict)
    # Paths the app writes at run time (volumes on a read-only root filesystem).
    writes: list[Write] = field(default_factory=list)
    # The app writes somewhere detection cannot name (a SQLite path read at run time).
    unknown_writes: str | None = None
    # The command-line flag that names the app's configuration file (Go: -config).
    config_flag: str | None = None
    # The server's listen call when it binds localhost only, or takes its host from a variable.
    listen: Listen | None = None
