"""Project inspection: read a checkout (files only, no network, no code execution) and resolve the
facts every renderer needs. Explicit fields of a :class:`ServiceSpec` win over detection."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import yaml
from pydantic import ValidationError

from agents.inspection import backing, writable
from agents.inspection.admit import refusal
from agents.inspection.detect import Detected, go, listen, node, python
from agents.inspection.detect.scan import OS_VARS
from agents.inspection.facts import ProjectFacts, dns_name
from agents.inspection.images import (
    DEFAULT_VERSION,
    GO_CGO_RUNTIME,
    default_images,
    fallback_images,
    raised_go_version,
)
from agents.inspection.tree import ProjectTree
from agents.paths import PathEscape, resolve_inside
from contracts.payloads import ServiceSpec
from contracts.text import error_location, first_error, single_line

# Tried in this order: a Go service with a package.json for tooling is still a Go service, and a
# Django project with a package.json for assets is still a Python one.
DETECTORS: dict[str, Callable[[ProjectTree], Detected | None]] = {
    "go": go.detect,
    "python": python.detect,
    "node": node.detect,
}
DEFAULT_MANAGER = {"python": "pip", "go": "go", "node": "npm"}
DEFAULT_TEST = {
    "python": ("python", "-m", "pytest", "-q"),
    "go": ("go", "test", "./..."),
    "node": ("node", "--test"),
}
DEFAULT_PORT = {"python": 8000, "go": 8080, "node": 3000}
METRICS_LIBRARY = {"python": "prometheus-client", "go": "prometheus/client_golang", "node": "prom-client"}
REQUIRED_WITHOUT_DETECTION = ("start_command", "port")
PROJECT_FILE = ".orchestra.yaml"
# The command-line flag of each override field (orchestra generate / orchestra task).
FLAGS = {
    "start_command": "--start-command",
    "port": "--port",
    "health_path": "--health-path",
    "app_dir": "--app-dir",
    "build_command": "--build-command",
    "writable_paths": "--writable-path",
    "config_files": "--config-file",
    "allow_loopback": "--allow-loopback",
}
# A need detection states is met by any of these fields (a start command can name the file itself).
SATISFIED_BY = {"config_files": ("config_files", "start_command")}
_START_EXAMPLE = {
    "python": "'gunicorn --bind 0.0.0.0:8000 app:app'",
    "node": "'node server.js'",
    "go": "/app/server",
}


class InspectionError(ValueError):
    """The project cannot be inspected; the message says what was looked at and what to pass."""


def inspect_project(root: Path, overrides: ServiceSpec | None = None) -> ProjectFacts:
    """Resolve the facts of the project at ``root``.

    Detects language and version, framework, dependency manager, start and test commands (exec
    form), port, health probe and metrics path, the environment variable names the code reads
    (never values) and backing services. Explicit ``overrides`` (command-line flags or a task's
    service fields) win over the project's ``.orchestra.yaml``, which wins over detection.
    Raises :class:`InspectionError` for a missing path, a file instead of a directory, a project
    neither detection nor overrides describe well enough (the message names the flag that fixes
    it), or facts that cannot go on the bus (over a contract limit, or holding a secret-looking
    value: see :mod:`agents.inspection.admit`). What the bounded reading of the tree skipped is stated
    in ``assumptions``.
    """
    root = Path(root)
    if not root.exists():
        raise InspectionError(f"project path {root} does not exist")
    if not root.is_dir():
        raise InspectionError(f"project path {root} is not a directory")
    context = ProjectTree(root)
    overrides = merge_overrides(read_project_file(context), overrides or ServiceSpec())
    app_dir = _app_dir(context, overrides.app_dir)
    tree = context if app_dir == "." else ProjectTree(context.root / app_dir)
    found = _detect(tree, overrides.language)
    if found is None:
        found = _from_overrides(tree, overrides)
    if app_dir != ".":
        _lift(found, context, app_dir)
    found.assumptions += context.skipped() + (tree.skipped() if tree is not context else [])
    facts = _resolve(found, overrides, folder=context.root.name, app_dir=app_dir, tree=tree)
    why = refusal(facts)
    if why is not None:
        raise InspectionError(why)
    return facts


def fix(field: str, example: str = "") -> str:
    """How a user sets ``field``: the command-line flag and the ``.orchestra.yaml`` key."""
    value = f" {example}" if example else ""
    return f"pass {FLAGS[field]}{value} (or set {field}: in {PROJECT_FILE})"


def read_project_file(tree: ProjectTree) -> ServiceSpec:
    """The project's optional ``.orchestra.yaml``: the same fields as the flags (commands as a
    string or a list). A malformed file is an :class:`InspectionError` naming the key."""
    text = tree.read(PROJECT_FILE)
    if text is None:
        return ServiceSpec()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InspectionError(f"{PROJECT_FILE} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return ServiceSpec()
    if not isinstance(data, dict):
        raise InspectionError(f"{PROJECT_FILE} must be a mapping of settings (e.g. port: 8000)")
    fields = dict(data)
    for key in ("start_command", "test_command", "build_command"):
        if isinstance(fields.get(key), str):
            try:
                fields[key] = shlex.split(fields[key])
            except ValueError as exc:
                raise InspectionError(f"{PROJECT_FILE}: {key}: {exc}") from None
    if fields.get("health_path") == "tcp":
        fields.pop("health_path")
        fields["probe"] = "tcp"
    try:
        return ServiceSpec.model_validate(fields)
    except ValidationError as exc:
        error, _ = first_error(exc)
        where = error_location(error["loc"]) or "?"
        raise InspectionError(single_line(f"{PROJECT_FILE}: {where}: {error['msg']}")) from None


def merge_overrides(base: ServiceSpec, top: ServiceSpec) -> ServiceSpec:
    """``top``'s explicit fields over ``base``'s (flags over the project file)."""
    return base.model_copy(update=top.model_dump(exclude_none=True))


def _app_dir(context: ProjectTree, requested: str | None) -> str:
    """The app's folder: the one asked for (inside the project, and a directory), else the one web
    app of a uv workspace whose root is not itself the app, else the project root."""
    if requested is not None:
        rel = PurePosixPath(requested).as_posix().strip("/")
        outside = InspectionError(f"app dir {requested!r} is outside the project: pass --app-dir a subfolder")
        if ".." in PurePosixPath(rel).parts:  # named in the artifacts as given: no way up, even back in
            raise outside
        try:
            path = resolve_inside(context.root, rel, what="app dir")
        except PathEscape:
            raise outside from None
        if not path.is_dir():
            raise InspectionError(f"app dir {requested!r} is not a folder of {context.root}: check --app-dir")
        return "." if rel in ("", ".") else rel
    apps = python.workspace_apps(context)
    if len(apps) > 1:
        raise InspectionError(
            f"the uv workspace at {context.root} has several web apps ({', '.join(apps)}): "
            f"{fix('app_dir', apps[0])}"
        )
    return apps[0] if apps else "."


def _detect(tree: ProjectTree, language: str | None) -> Detected | None:
    if language is not None:
        return DETECTORS[language](tree)
    for detector in DETECTORS.values():
        found = detector(tree)
        if found is not None:
            return found
    return None


def _from_overrides(tree: ProjectTree, overrides: ServiceSpec) -> Detected:
    missing = [f for f in REQUIRED_WITHOUT_DETECTION if getattr(overrides, f) is None]
    if missing:
        looked = ", ".join(tree.looked_at)
        nested = _manifests_below(tree)
        hint = (
            f"; the app looks like it is in {nested[0]}/: {fix('app_dir', nested[0])}"
            if nested
            else f"; {' and '.join(fix(f) for f in missing)}, and language: in {PROJECT_FILE}"
        )
        raise InspectionError(
            f"cannot recognise the project at {tree.root}: looked at {looked} and found no Python, Go or "
            f"Node.js manifest{hint}"
        )
    language = overrides.language or "python"
    return Detected(
        language=language,
        package_manager=overrides.package_manager or DEFAULT_MANAGER[language],
        dependency_files=(),
        locked=False,
        framework="custom",
        assumptions=["no manifest detected: the service is described by explicit fields only"],
    )


def _manifests_below(tree: ProjectTree) -> list[str]:
    """Immediate subfolders holding a manifest any detector knows (for the --app-dir hint)."""
    out = []
    for child in sorted(p for p in tree.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        sub = ProjectTree(child)
        if any(detector(sub) is not None for detector in DETECTORS.values()):
            out.append(child.name)
    return out


def _lift(found: Detected, context: ProjectTree, app_dir: str) -> None:
    """Paths of an app in a subfolder, relative to the build context (the project root); a uv
    workspace member installs from the workspace's root lock file."""
    if found.language == "python" and python.lift_into_workspace(found, context, app_dir):
        return
    found.dependency_files = tuple(f"{app_dir}/{rel}" for rel in found.dependency_files)
    found.dev_dependency_files = tuple(f"{app_dir}/{rel}" for rel in found.dev_dependency_files)


def _resolve(
    found: Detected,
    overrides: ServiceSpec,
    *,
    folder: str,
    app_dir: str = ".",
    tree: ProjectTree | None = None,
) -> ProjectFacts:
    """Merge overrides over findings and fill every remaining gap with a stated default."""
    assumptions = list(found.assumptions)
    language = found.language
    missing = {
        f: why
        for f, why in found.needs.items()
        if not any(getattr(overrides, g, None) is not None for g in SATISFIED_BY.get(f, (f,)))
    }
    if missing:
        raise InspectionError(
            "; ".join(missing.values()) + f"; pass {' and '.join(FLAGS.get(f, f) for f in missing)}"
        )
    version = overrides.language_version or found.language_version
    if version is None:
        version = DEFAULT_VERSION[language]
        assumptions.append(f"no {language} version declared: using {version}")
    raised = raised_go_version(version) if language == "go" else None
    if raised is not None:
        assumptions.append(
            f"go.mod declares go {version}, older than any golang bookworm image: building with Go {raised} "
            "(Go 1 compatibility); raise the go line when you can, old toolchains carry known CVEs"
        )
        version = raised
    port = overrides.port or found.port or DEFAULT_PORT[language]
    start = overrides.start_command
    if start is None and overrides.config_files and found.config_flag:
        start = [*(found.start_command or ()), f"-{found.config_flag}", overrides.config_files[0]]
    if start is None and overrides.port and found.start_for_port is not None:
        start = list(found.start_for_port(port))
    start = start or found.start_command
    if not start:
        raise InspectionError(
            f"found a {language} project ({found.framework or 'no known framework'}) but no entrypoint "
            f"(app object, start script or main package); {fix('start_command', _START_EXAMPLE[language])}"
        )
    probe, health = _probe(found, overrides, port, assumptions)
    metrics = found.metrics_path
    if metrics is None:
        metrics = "/metrics"
        assumptions.append(
            f"no /metrics route found: Prometheus scrapes /metrics; add one ({METRICS_LIBRARY[language]})"
        )
    images = default_images(language, version)
    if images is None:
        images = fallback_images(language, version)
        assumptions.append(f"{language} {version} is not in the pinned image table: using {images[1]}")
    build_image, base_image = images
    if language == "go" and found.cgo:
        base_image = GO_CGO_RUNTIME
        assumptions.append(
            "a dependency needs cgo (e.g. mattn/go-sqlite3): built with CGO_ENABLED=1 and run on "
            f"{GO_CGO_RUNTIME} (glibc) instead of a static binary on Alpine"
        )
    if overrides.base_image:
        base_image = overrides.base_image
        build_image = build_image if language == "go" else overrides.base_image
    env_vars = overrides.env_vars if overrides.env_vars is not None else sorted(found.env_vars - OS_VARS)
    port_env = found.port_env if found.port_env in env_vars or found.port_env == "PORT" else "PORT"
    writes = _writable(found, overrides, app_dir, env_vars, tree)
    assumptions += writes.assumptions
    if found.unknown_writes and not overrides.writable_paths:
        assumptions.append(
            f"{found.unknown_writes}: its folder must be a volume on the read-only root filesystem; "
            f"{fix('writable_paths', '/data')} and point the path there"
        )
    for path in overrides.config_files or ():
        file = PurePosixPath(path).name
        assumptions.append(
            f"{path} is mounted from a secret, never the image: Compose reads ./secrets/{file}, Kubernetes "
            f"and Helm the key {file} of the Secret <service>-files; ECS cannot mount a secret as a file "
            "(not generated: add an init step that writes it from Secrets Manager)"
        )
    host_env = _listen_host(found, overrides, assumptions)
    if host_env:
        env_vars = sorted({*env_vars, host_env})
    return ProjectFacts(
        name=overrides.name or dns_name(found.name or folder),
        language=language,
        language_version=version,
        framework=overrides.framework or found.framework or language,
        package_manager=overrides.package_manager or found.package_manager,
        dependency_files=found.dependency_files,
        dev_dependency_files=found.dev_dependency_files,
        locked=found.locked,
        start_command=tuple(start),
        test_command=tuple(overrides.test_command or found.test_command or DEFAULT_TEST[language]),
        port=port,
        port_env=port_env,
        probe=probe,
        health_path=health,
        metrics_path=metrics,
        env_vars=tuple(sorted(set(env_vars))),
        backing_services=tuple(sorted(found.backing_services)),
        build_image=build_image,
        base_image=base_image,
        build_target=found.build_target,
        app_dir=app_dir,
        workspace_package=found.workspace_package,
        runtime_env=dict(sorted({**found.runtime_env, **writes.env, **_host(host_env)}.items())),
        build_command=tuple(overrides.build_command or found.build_command),
        build_packages=found.build_packages,
        runtime_packages=found.runtime_packages,
        build_output=found.build_output,
        build_tags=found.build_tags,
        cgo=found.cgo,
        skip_scripts=found.skip_scripts,
        required_env=tuple(sorted(found.required_env & set(env_vars))),
        writable_paths=writes.volumes,
        run_dir=writes.run_dir,
        writable_workdir=writes.writable_workdir,
        config_files=tuple(overrides.config_files or ()),
        assumptions=tuple(assumptions),
    )


def _listen_host(found: Detected, overrides: ServiceSpec, assumptions: list[str]) -> str | None:
    """A server bound to localhost only: refused (the message names the file, line and change)
    unless ``allow_loopback``; a host read from a variable: that variable, set to 0.0.0.0."""
    site = found.listen
    if site is None or (found.language == "python" and overrides.start_command):
        return None  # a Python __main__ block only runs with its own start command
    if site.env:
        assumptions.append(f"{site.where} reads its listen host from {site.env}: set to {listen.ANY}")
        return site.env
    if site.loopback is None:
        return None
    if not overrides.allow_loopback:
        raise InspectionError(
            f"{site.refusal()}; to generate anyway (it stays unreachable), {fix('allow_loopback')}"
        )
    assumptions.append(
        f"{site.refusal()}; generated anyway (allow_loopback): probes run inside the container and pass, "
        "but no traffic reaches the app"
    )
    return None


def _host(env: str | None) -> dict[str, str]:
    return {env: listen.ANY} if env else {}


def _writable(
    found: Detected, overrides: ServiceSpec, app_dir: str, env_vars: list[str], tree: ProjectTree | None
) -> writable.Plan:
    """Volumes for what the app writes (see :mod:`agents.inspection.writable`)."""
    app_root = "/app" if app_dir == "." else f"/app/{app_dir}"
    requested = overrides.writable_paths or []
    for path in requested:
        if ".." in PurePosixPath(path).parts or writable.covers_code(path, app_root):
            raise InspectionError(
                f"writable path {path} would hide the app's code or the system: pass --writable-path a "
                "folder of its own (e.g. /data)"
            )

    def files_under(rel: str) -> list[str]:
        return tree.listing(rel) if tree is not None and rel else []

    return writable.plan(
        found.writes,
        app_root=app_root,
        code_root="/app" if found.language == "go" else app_root,
        movable=found.language == "go",
        bound_env=backing.bindings(env_vars, found.backing_services),
        sql_backing=bool({"postgres", "mysql"} & found.backing_services),
        files_under=files_under,
        requested=requested,
    )


def _probe(found: Detected, overrides: ServiceSpec, port: int, assumptions: list[str]) -> tuple[str, str]:
    """(probe kind, health path): an explicit choice, else the route detection found, else a TCP
    connect to the port (never an HTTP path the app does not serve: 404s restart healthy pods)."""
    if overrides.probe == "tcp":
        return "tcp", "/"
    if overrides.health_path:
        return "http", overrides.health_path
    if overrides.probe == "http":
        return "http", found.health_path or "/"
    if found.health_path and found.probe != "tcp":
        return "http", found.health_path
    assumptions.append(
        f"no health route found in the app's routes: probes connect to TCP port {port}; add a GET /health "
        f"route that answers without data, or {fix('health_path', '/your/health/route')}"
    )
    return "tcp", "/"
