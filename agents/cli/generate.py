"""``orchestra generate``: the DevOps generator without the bus, for CI and local use.

Non-interactive: every choice is a flag, output is one line per file, errors are one line on
stderr with a non-zero exit code.
"""

from __future__ import annotations

from pathlib import Path

import typer

from agents.cli import overrides
from agents.cli.common import EXIT_FAILED, EXIT_USAGE, fail

TARGET_HELP = "Comma list of docker,ci,k8s,helm,ecs,terraform,monitoring,docs, or all."


def _targets(raw: str) -> tuple:
    from contracts.vocabulary import Target

    names = [part.strip().lower() for part in raw.split(",") if part.strip()]
    if not names:
        raise fail("--target is empty; " + TARGET_HELP)
    if names == ["all"]:
        return tuple(Target)
    unknown = [n for n in names if n not in {t.value for t in Target}]
    if unknown:
        raise fail(f"unknown target(s) {', '.join(unknown)}; " + TARGET_HELP)
    return tuple(dict.fromkeys(Target(n) for n in names))


def _choice(value: str, allowed: type, flag: str):  # type: ignore[no-untyped-def]
    try:
        return allowed(value.strip().lower())
    except ValueError:
        raise fail(f"{flag} must be one of {', '.join(a.value for a in allowed)} (got {value!r})") from None


def generate(
    path: Path = typer.Argument(..., help="Project directory to inspect."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to write the artifacts into."),
    target: str = typer.Option("all", "--target", "-t", help=TARGET_HELP),
    ci: str = typer.Option("github", "--ci", help="CI provider: github, gitlab or jenkins."),
    strategy: str = typer.Option("rolling", "--strategy", help="rolling, blue-green or canary."),
    environments: str = typer.Option("dev,staging,prod", "--environments", help="Comma list, deploy order."),
    registry: str | None = typer.Option(None, "--registry", help="Image registry (default: ECR or GHCR)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print what would be written; write nothing."),
    force: bool = typer.Option(False, "--force", help="Replace existing files orchestra did not write."),
    start_command: str | None = overrides.StartCommand,
    port: int | None = overrides.Port,
    health_path: str | None = overrides.HealthPath,
    app_dir: str | None = overrides.AppDir,
    build_command: str | None = overrides.BuildCommand,
    writable_path: list[str] | None = overrides.WritablePath,
    config_file: list[str] | None = overrides.ConfigFile,
    allow_loopback: bool = overrides.AllowLoopback,
) -> None:
    """Inspect PATH and write deployment artifacts for it into OUT."""
    from agents.credential_policy import issue
    from agents.devops.generate import ArtifactWriteError, write_artifacts
    from agents.devops.generate import generate as render_all
    from agents.devops.spec import AppSpec
    from agents.inspection.inspect import InspectionError, inspect_project
    from contracts.payloads import CredentialRequested
    from contracts.vocabulary import CIProvider, Strategy

    targets = _targets(target)
    provider = _choice(ci, CIProvider, "--ci")
    chosen = _choice(strategy, Strategy, "--strategy")
    envs = tuple(e.strip() for e in environments.split(",") if e.strip())
    service = overrides.service_overrides(
        start_command, port, health_path, app_dir, build_command,
        writable_paths=writable_path, config_files=config_file, allow_loopback=allow_loopback,
    )  # fmt: skip
    try:
        facts = inspect_project(path, service)
        # The credential manager's policy, run locally: references for every secret, never values.
        issued = issue(
            CredentialRequested(
                service=facts.name,
                env_vars=list(facts.env_vars),
                targets=list(targets),
                environments=list(envs),
            )
        )
        spec = AppSpec(
            facts=facts,
            targets=targets,
            strategy=chosen,
            ci=provider,
            environments=envs,
            secrets=tuple(issued.secrets),
            config_vars=tuple(issued.config_vars),
            registry=registry,
        )
        files = render_all(spec)
        result = write_artifacts(files, out, force=force, dry_run=dry_run)
    except InspectionError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    except ArtifactWriteError as exc:
        raise fail(str(exc), EXIT_FAILED) from None
    except ValueError as exc:  # pydantic validation of flags (e.g. environment names)
        raise fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, EXIT_USAGE) from None
    except OSError as exc:
        raise fail(f"{out}: {exc.strerror or exc}", EXIT_FAILED) from None
    verb = "would write" if dry_run else "wrote"
    for rel in result.written:
        typer.echo(f"{verb} {out / rel}")
    for rel in result.unchanged:
        typer.echo(f"unchanged {out / rel}")
    for rel in result.conflicts:
        typer.echo(
            f"{'replaced' if force else 'conflict (not written by orchestra; --force replaces)'} {out / rel}"
        )
    for note in facts.assumptions:
        typer.echo(f"assumption: {note}")
    done = "to write" if dry_run else "written"
    typer.echo(
        f"{facts.name}: {len(files)} files for {', '.join(t.value for t in targets)} "
        f"({chosen.value}, {provider.value}); {len(result.written)} {done}, {len(result.unchanged)} unchanged"
        + (" [dry run]" if dry_run else "")
    )
    if dry_run and result.conflicts and not force:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add ``generate`` to the orchestra CLI."""
    app.command("generate")(generate)
