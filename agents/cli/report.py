"""`orchestra report`: success rate, time per stage, throughput and failures from the knowledge file.

Reads the file directly (read-only use of :class:`~agents.knowledge.store.KnowledgeStore`), so it
works with the orchestra stopped, on a copy of a production file, or beside a running subscriber
(WAL lets a reader in while it writes).
"""

from __future__ import annotations

from pathlib import Path

import typer

from agents.cli.common import EXIT_FAILED, EXIT_OK, JsonOut, emit_json, fail, run
from agents.cli.render import printable
from agents.report import STAGES, PerformanceReport, compute


async def load(db: Path) -> PerformanceReport:
    """The report for every event in the knowledge store at ``db``."""
    from agents.knowledge.store import KnowledgeStore

    store = await KnowledgeStore.open(db)
    try:
        return compute(await store.events())
    finally:
        await store.close()


def render(report: PerformanceReport) -> list[str]:
    """The report as lines of a table."""
    lines: list[str] = []
    if report.success_rate is None:
        lines.append(f"Deployment success rate   n/a (no task has ended; {report.in_progress} in progress)")
    else:
        verdict = "met" if report.meets_target else "MISSED"
        lines.append(
            f"Deployment success rate   {report.success_rate:.1%}  ({report.succeeded} of {report.finished} "
            f"ended ready; target >{report.success_target:.0%}: {verdict}; {report.in_progress} in progress)"
        )
    per_hour = "n/a" if report.tasks_per_hour is None else f"{report.tasks_per_hour:.1f}"
    lines.append(
        f"Tasks per hour            {per_hour}  ({report.finished} ended in {report.window_s:.1f} s)"
    )
    lines.append("")
    lines.append(f"{'Time per stage (s)':26}{'tasks':>6}{'mean':>10}{'p50':>10}{'p95':>10}{'max':>10}")
    for stage in STAGES:
        t = report.stages.get(stage)
        if t is None:
            lines.append(f"  {stage:24}{0:>6}{'-':>10}{'-':>10}{'-':>10}{'-':>10}")
        else:
            lines.append(
                f"  {stage:24}{t.tasks:>6}{t.mean_s:>10.2f}{t.p50_s:>10.2f}{t.p95_s:>10.2f}{t.max_s:>10.2f}"
            )
    lines.append("")
    if report.failures:
        lines.append(f"Failure reasons ({report.failed} failed)")
        for group in report.failures:
            lines.append(f"  {group.tasks:>4}  {printable(group.agent):<11} {printable(group.cause)}")
            lines.append(f"        e.g. {printable(group.example)}")
    else:
        lines.append("Failure reasons           none")
    return lines


def register(app: typer.Typer) -> None:
    """Add ``report`` to the ``orchestra`` command."""

    @app.command()
    def report(
        db: Path | None = typer.Option(
            None,
            "--db",
            help="The knowledge SQLite file [ORCHESTRA_KNOWLEDGE_DB; default .orchestra/knowledge.sqlite3].",
        ),
        as_json: bool = JsonOut,
    ) -> None:
        """Deployment success rate, time per stage, tasks per hour and failure reasons."""
        from agents.settings import AgentSettings

        try:
            db = AgentSettings.from_env(knowledge_db=db).knowledge_db
        except ValueError as exc:
            raise fail(str(exc)) from None
        if not db.is_file():
            raise fail(f"no knowledge store at {str(db)!r} (pass --db or set ORCHESTRA_KNOWLEDGE_DB)")

        @run
        async def body() -> int:
            result = await load(db)
            if as_json:
                emit_json(result.as_dict())
            else:
                for line in render(result):
                    typer.echo(line)
            return EXIT_OK if result.tasks else EXIT_FAILED

        raise typer.Exit(body())
