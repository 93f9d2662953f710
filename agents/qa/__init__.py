"""The QA agent and the artifact validators it is a thin shell around (see agents.qa.validators)."""
