"""The security agent and its pure rules (agents.security.rules); shared review code is in agents.review."""
