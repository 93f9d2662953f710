"""The security agent and its pure rule library (agents.security.rules, agents.security.secrets_scan)."""
