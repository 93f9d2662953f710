"""Node.js projects: package.json with npm, yarn or pnpm; Express, Fastify, Koa, NestJS, Hapi."""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

from agents.devops.detect import Detected
from agents.devops.detect.scan import NAME, env_file_names, find_names, first_port, has_metrics, health_path
from agents.devops.detect.scan import version_of as _version_of
from agents.devops.images import DEFAULT_VERSION
from agents.devops.tree import ProjectTree

FRAMEWORKS = ("@nestjs/core", "fastify", "express", "koa", "@hapi/hapi")
LOCKFILES = (("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn"), ("package-lock.json", "npm"))
_NPM_NO_TEST = 'echo "Error: no test specified" && exit 1'

_ENV = (
    re.compile(rf"""\bprocess\.env\.({NAME})"""),
    re.compile(rf"""\bprocess\.env\[\s*["'`]({NAME})["'`]\s*\]"""),
)
_DESTRUCTURE = re.compile(r"\{([^{}]*)\}\s*=\s*process\.env\b")
_PORT = (
    re.compile(r"""process\.env\.PORT\s*(?:\|\||\?\?)\s*["']?(\d{2,5})"""),
    re.compile(r"""\bport\s*:\s*(\d{2,5})\b"""),
    re.compile(r"""\.listen\(\s*(\d{2,5})\b"""),
)
_POSTGRES = frozenset({"pg", "postgres", "pg-promise"})
_REDIS = frozenset({"redis", "ioredis"})


def detect(tree: ProjectTree) -> Detected | None:
    """Findings for a Node.js project, or None when there is no package.json at the root."""
    text = tree.read("package.json")
    if text is None:
        return None
    try:
        package: dict[str, Any] = json.loads(text)
    except json.JSONDecodeError:
        package = {}
    lock, manager = next(((f, m) for f, m in LOCKFILES if tree.exists(f)), (None, "npm"))
    found = Detected(
        language="node",
        package_manager=manager,
        dependency_files=("package.json", lock) if lock else ("package.json",),
        locked=lock is not None,
    )
    deps = {**package.get("devDependencies", {}), **package.get("dependencies", {})}
    runtime_deps = package.get("dependencies", {})
    name = package.get("name")
    found.name = name.rsplit("/", 1)[-1] if isinstance(name, str) else None
    found.language_version = _node_version(tree, package)
    found.framework = next((fw.rsplit("/", 1)[-1] for fw in FRAMEWORKS if fw in runtime_deps), "node")
    if found.framework == "core":
        found.framework = "nestjs"
    sources = dict(tree.sources(".js", ".mjs", ".cjs", ".ts"))
    code = sources.values()
    found.env_vars = find_names(_ENV, code) | _destructured(code) | env_file_names(tree)
    found.port = first_port(_PORT, sources.values()) or 3000
    found.health_path = health_path(sources.values())
    found.metrics_path = "/metrics" if has_metrics(sources.values()) or "prom-client" in deps else None
    scripts = package.get("scripts", {})
    found.start_command = _start_command(scripts.get("start"), package.get("main"), tree)
    test = scripts.get("test")
    found.test_command = (manager, "test") if test and test != _NPM_NO_TEST else ("node", "--test")
    if not lock:
        found.assumptions.append(f"no lock file: `{manager} install` resolves versions at build time")
    if set(runtime_deps) & _POSTGRES:
        found.backing_services.add("postgres")
    if set(runtime_deps) & _REDIS:
        found.backing_services.add("redis")
    return found


def _node_version(tree: ProjectTree, package: dict[str, Any]) -> str | None:
    default = DEFAULT_VERSION["node"]
    for rel in (".nvmrc", ".node-version"):
        text = (tree.read(rel) or "").strip().lstrip("v")
        if text and text[0].isdigit():
            return _version_of("==" + text, default)
    engines = package.get("engines", {})
    return _version_of(engines.get("node") if isinstance(engines, dict) else None, default)


def _start_command(start: str | None, main: str | None, tree: ProjectTree) -> tuple[str, ...] | None:
    """Exec form of the start script when it is plain ``node FILE``; npm would not forward signals."""
    if start:
        try:
            argv = shlex.split(start)
        except ValueError:
            argv = []
        if argv and argv[0] == "node" and all("$" not in a and "&" not in a for a in argv):
            return tuple(argv)
    for candidate in (main, "server.js", "index.js", "src/server.js", "src/index.js", "app.js"):
        if candidate and tree.exists(candidate):
            return ("node", candidate)
    return None


def _destructured(sources: Any) -> set[str]:
    names: set[str] = set()
    for text in sources:
        for group in _DESTRUCTURE.findall(text):
            for part in group.split(","):
                name = part.split(":")[0].split("=")[0].strip()
                if re.fullmatch(NAME, name):
                    names.add(name)
    return names
