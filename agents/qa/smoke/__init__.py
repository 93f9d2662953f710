"""Smoke boot: QA proves an artifact set works by building its image and starting it.

The generated Dockerfile is interpreted generically (agents.qa.smoke.dockerfile): the stages the
runtime stage needs are built instruction by instruction in a sandbox (a private mount
namespace over overlay layers, agents.qa.smoke.sandbox), installing dependencies with the same
commands and only the files each COPY names at that point; RUN results are cached by the digest
of their inputs. The runtime stage's command then starts with its ENV, the compose file's
environment and dummy secrets, in its own network namespace with the machine's backing services
forwarded in; QA waits for the port and runs the Dockerfile's HEALTHCHECK. Where docker or
podman reaches an engine, the real image is built and run instead.

Public API::

    smoke_boot(files, project, options, *, env_vars=()) -> SmokeResult
"""

from agents.qa.smoke.run import SmokeOptions, SmokeResult, smoke_boot

__all__ = ["SmokeOptions", "SmokeResult", "smoke_boot"]
