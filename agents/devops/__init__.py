"""The DevOps generator: a pure library from inspected project facts to validated deployment artifacts.

Public API (the DevOps agent and ``orchestra generate`` call these; inspection, which gives the
facts, is the shared library :mod:`agents.inspection`)::

    # agents.devops.spec
    AppSpec(facts=..., targets=..., strategy=..., ci=..., environments=..., secrets=..., config_vars=...)
    # agents.devops.generate
    generate(spec: AppSpec) -> list[GeneratedFile]
    write_artifacts(files, out_dir: Path, *, force: bool, dry_run: bool) -> WriteResult

Rendering is a pure function of the AppSpec (no clock, randomness or network); only
``write_artifacts`` touches the disk. Every checkov rule the artifacts skip is listed with its
reason in :mod:`agents.devops.skips`.
"""
