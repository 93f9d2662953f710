"""The DevOps generator: a pure library from a project checkout to validated deployment artifacts.

``inspect_project`` reads a checkout into :class:`ProjectFacts`; an :class:`AppSpec` adds the
requirement (targets, strategy, CI provider, environments, secret references); ``generate``
renders the files and ``write_artifacts`` puts them on disk safely.
"""
