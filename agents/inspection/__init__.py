"""Project inspection: the library the architect and DevOps share to read a checkout.

Public API::

    # agents.inspection.inspect / agents.inspection.facts
    inspect_project(root: Path, overrides: ServiceSpec | None = None) -> ProjectFacts
    ProjectFacts.to_spec() -> ServiceSpec

- ``inspect``: the facts of a project, explicit ``ServiceSpec`` fields over detection;
- ``detect/``: one detector per language (Python, Go, Node.js) and the scanners they share;
- ``tree``: bounded, read-only access to a checkout that never leaves it;
- ``facts``: what inspection found (``ProjectFacts``); ``admit``: which facts may go on the bus;
- ``images``: pinned base images; ``backing``: backing services and the variables bound to them
  (detection names them, the DevOps renderers run them).

Files only: no network, no code of the project is run. Depends on contracts and agents.paths
only (tests/test_layers.py).
"""
