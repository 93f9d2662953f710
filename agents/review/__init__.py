"""Reviewing generated artifacts: the library QA and security share (and DevOps' secret check).

- ``routes``: which validators check which artifact, by path (one table for every reviewer);
- ``findings``: building findings within the contract's bounds, tool levels to severities;
- ``locate``: line numbers for a validator's data path in YAML and JSON;
- ``groovy``: just enough Jenkinsfile reading for structural and secret checks;
- ``secrets_scan``: literal secret values in artifacts (on contracts.redaction's detectors);
- ``workspace``: artifacts written to a private temp dir, paths kept inside it;
- ``tools`` and ``runner``: where a validator tool lives, its version, and running it;
- ``checkov``: every checkov framework in one process.

Depends on contracts and agents.paths only (tests/test_layers.py).
"""
