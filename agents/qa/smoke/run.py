"""The smoke boot of one artifact set: build the image, start it, probe it, report per step."""

from __future__ import annotations

import os
import re
import secrets as random_secrets
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from agents.qa.smoke import engine as engines
from agents.qa.smoke import report
from agents.qa.smoke.boot import BootOutcome, Limits, boot
from agents.qa.smoke.build import Builder, BuildFailed, BuildSkipped, Built, config_of, needed, toolchains
from agents.qa.smoke.context import BuildContext
from agents.qa.smoke.dockerfile import DockerfileError, parse
from agents.qa.smoke.environment import AppConfig, app_config
from agents.qa.smoke.layers import LayerStore
from agents.qa.smoke.sandbox import Sandbox, SandboxUnavailable
from agents.qa.smoke.services import provision, unavailable
from agents.qa.smoke.toolchains import Toolchain
from contracts.payloads import Finding

# Smoke boots are whole builds: a few at a time, whatever the QA handler's concurrency.
_SLOTS = threading.BoundedSemaphore(2)
_PRUNED: set[Path] = set()  # caches already pruned by this process


@dataclass(frozen=True)
class SmokeOptions:
    """Parameters of a smoke boot.

    cache: folder of the layer cache and scratch space (overlayfs needs a local filesystem).
    timeout_s: budget of the image build (installs included), default 300.
    start_timeout_s: how long the app may take to open its port, default 60.
    health_timeout_s: how long its health check may keep failing once the port is open, default 30.
    settle_s: how long the app must keep running after its health check passed, default 2.
    engine: build and run the real image when docker/podman reaches an engine (default True).
    """

    cache: Path
    timeout_s: float = 300.0
    start_timeout_s: float = 60.0
    health_timeout_s: float = 30.0
    settle_s: float = 2.0
    engine: bool = True


@dataclass
class SmokeResult:
    """Findings (HIGH per failed step, INFO otherwise) and what ran, for the report's tool list."""

    findings: list[Finding] = field(default_factory=list)
    tool: str = "skipped"


def smoke_boot(
    files: Mapping[str, str], project: Path | None, options: SmokeOptions, *, env_vars: Sequence[str] = ()
) -> SmokeResult:
    """Prove the artifact set ``files`` works for the source in ``project``: see the package docstring."""
    if "Dockerfile" not in files:
        return SmokeResult([report.skipped("the artifact set has no Dockerfile")])
    if project is None or not project.is_dir():
        return SmokeResult([report.skipped("the artifact set names no project folder to build from")])
    try:
        config = app_config(files, env_vars)
    except yaml.YAMLError as exc:
        return SmokeResult([report.skipped(f"the compose file is unreadable: {str(exc).splitlines()[0]}")])
    found = (
        engines.detect()
        if options.engine
        else engines.Engine(None, "the container-engine path is turned off")
    )
    with _SLOTS:
        if found.client and not config.backing:
            return _with_engine(found, files, project, config, options)
        result = SmokeResult()
        if found.client:
            note = f"{found.detail} is reachable, but backing services are wired only in the sandbox"
        else:
            note = f"no engine reachable ({found.detail})"
        result.findings.append(report.info("SMOKE-ENGINE", f"container build skipped: {note}; sandbox used"))
        try:
            result.findings += _with_sandbox(files, project, config, options)
            result.tool = "sandbox"
        except SandboxUnavailable as exc:
            result.findings.append(
                report.skipped(f"the sandbox cannot be set up here (it needs root and overlayfs): {exc}")
            )
        return result


def _with_sandbox(
    files: Mapping[str, str], project: Path, config: AppConfig, options: SmokeOptions
) -> list[Finding]:
    try:
        dockerfile = parse(files["Dockerfile"])
        target = dockerfile.target(config.target)
    except DockerfileError as exc:
        return [report.failed("SMOKE-BUILD", f"Dockerfile: {exc}", "", ())]
    for service in config.backing:
        if reason := unavailable(service):
            return [report.skipped(reason)]
    findings: list[Finding] = []
    started = time.monotonic()
    try:
        stand_ins = toolchains(dockerfile, needed(dockerfile, target))
    except BuildSkipped as exc:
        return [report.skipped(str(exc))]
    if os.geteuid() != 0:
        raise SandboxUnavailable(f"running as uid {os.geteuid()}, not root")
    folders = tuple(sorted({f for t in stand_ins.values() for f in t.folders}))
    try:
        sandbox = Sandbox(options.cache, folders=folders)
    except OSError as exc:
        raise SandboxUnavailable(
            f"the smoke cache {options.cache} is not usable: {exc.strerror or exc}"
        ) from None
    try:
        store = LayerStore(sandbox.cache)
        if sandbox.cache not in _PRUNED:
            _PRUNED.add(sandbox.cache)
            store.prune()
        builder = Builder(
            dockerfile, BuildContext(project, files), sandbox, store, deadline=started + options.timeout_s
        )
        try:
            built = builder.build(target)
        except BuildFailed as exc:
            if refused := _refused_stand_in(stand_ins.values(), exc.output):
                return [report.skipped(refused)]
            return [report.failed(exc.rule, exc.message, exc.output, config.dummies, line=exc.line)]
        except BuildSkipped as exc:
            return [report.skipped(str(exc))]
        build_s = time.monotonic() - started
        findings += _toolchain_notes(built)
        secrets = {path.rsplit("/", 1)[-1]: value for path, value in config.secret_files.items()}
        notes = [n for s in config.backing if (n := provision(s, secrets))]
        limits = Limits(
            start_s=options.start_timeout_s, health_s=options.health_timeout_s, settle_s=options.settle_s
        )
        outcome = boot(built.state, sandbox, config, limits)
    finally:
        sandbox.close()
    findings.append(_outcome(outcome, config, built, build_s, [*config.notes, *notes]))
    return findings


def _with_engine(
    found: engines.Engine, files: Mapping[str, str], project: Path, config: AppConfig, options: SmokeOptions
) -> SmokeResult:
    """Build and run the real image; the sandbox is not involved."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="orchestra-smoke-engine-") as tmp:
        root = Path(tmp)
        context = root / "context"
        BuildContext(project, files).stage(["."], "/", context)
        dockerfile = root / "Dockerfile"
        dockerfile.write_text(files["Dockerfile"], encoding="utf-8")
        env_file = root / "env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in config.env.items()), encoding="utf-8")
        secrets: dict[str, Path] = {}
        for index, (path, value) in enumerate(sorted(config.secret_files.items())):
            host = root / f"secret-{index}"
            host.write_text(value, encoding="utf-8")
            secrets[path] = host
        dockerfile_ = parse(files["Dockerfile"])
        image = config_of(dockerfile_, dockerfile_.target(config.target))
        port = image.expose[0] if image.expose else int(config.env.get("PORT", "0") or 0)
        name = f"orchestra-smoke-{random_secrets.token_hex(6)}"
        steps = engines.plan(
            str(found.client), context=context, dockerfile=dockerfile, target=config.target,
            tag=f"{name}:latest", name=name, env_file=env_file, secrets=secrets, port=port,
            start=engines.Start(
                config.entrypoint, config.command, config.read_only, config.tmpfs, config.volumes
            ),
        )  # fmt: skip
        limits = Limits(start_s=options.start_timeout_s, health_s=options.health_timeout_s)
        outcome = engines.run_image(
            steps, health_url=image.health_url(), limits=limits, build_timeout=options.timeout_s
        )
    build_s = time.monotonic() - started
    if outcome.rule:
        return SmokeResult(
            [report.failed(outcome.rule, outcome.message, outcome.output, config.dummies)], found.detail
        )
    return SmokeResult(
        [report.info("SMOKE-PASSED", f"{found.detail}: {outcome.message} ({build_s:.1f}s)")], found.detail
    )


# What installers print when the interpreter's version is not the one the project requires.
_VERSION_REFUSED = re.compile(
    r"not compatible with the locked Python requirement|No interpreter found for Python"
    r"|is not supported by the project|requires a different Python|Requires-Python",
    re.I,
)


_INSTALLERS = {"python": "pyenv, or the distribution's package", "node": "nvm, or the distribution's package"}


def _refused_stand_in(stand_ins: Iterable[Toolchain], output: str) -> str | None:
    """Why a failed install is not the artifacts' fault: the machine's interpreter is another
    major.minor than the image's and the installer refused it for its version (else None)."""
    other = [t for t in stand_ins if t.other_minor]
    if not other or not _VERSION_REFUSED.search(output):
        return None
    t = other[0]
    return (
        f"the install refused this machine's {t.family} {t.version}, standing in for {t.image}; "
        f"install {t.family} {t.image_version} here ({_INSTALLERS.get(t.family, 'its installer')}) "
        "to smoke-boot this project"
    )


def _toolchain_notes(built: Built) -> list[Finding]:
    return [
        report.info(
            "SMOKE-TOOLCHAIN",
            f"{t.image} stands in as this machine's {t.family} {t.version} ({t.executable}); "
            f"the image has {t.image_version}",
        )
        for t in built.toolchains
        if t.differs
    ]


def _outcome(
    outcome: BootOutcome, config: AppConfig, built: Built, build_s: float, notes: list[str]
) -> Finding:
    if outcome.rule is not None:
        return report.failed(outcome.rule, outcome.message, outcome.output, config.dummies)
    cached = sum(1 for s in built.steps if s.cached)
    parts = [
        f"built in {build_s:.1f}s ({len(built.steps)} steps, {cached} from cache)",
        f"port {outcome.port} open after {outcome.start_s or 0:.1f}s",
        outcome.message + (f" in {outcome.health_s:.2f}s" if outcome.health_s is not None else ""),
        "stopped on SIGTERM" if outcome.stopped_on_term else "needed SIGKILL to stop (ignores SIGTERM)",
    ]
    message = "smoke boot passed: " + "; ".join(parts + outcome.notes + notes)
    return report.info("SMOKE-PASSED", report.mask(message, config.dummies))  # app output: masked
