"""Node.js projects: package.json with npm, yarn or pnpm; Express, Fastify, Koa, NestJS, Hapi.

TypeScript projects (a tsconfig.json and a ``build`` script) are built in the image: the start
command runs the compiled entry (``node dist/server.js``), found from the start script or mapped
from the source entry through tsconfig's ``rootDir``/``outDir``.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from collections.abc import Callable
from typing import Any

from agents.inspection.detect import Detected, listen, writes
from agents.inspection.detect.node_routes import SOURCE_SUFFIXES, Route, app_routes
from agents.inspection.detect.scan import (
    NAME,
    env_file_names,
    example_values,
    find_names,
    has_metrics,
    health_path,
    strip_comments,
)
from agents.inspection.detect.scan import version_of as _version_of
from agents.inspection.images import DEFAULT_VERSION
from agents.inspection.tree import ProjectTree

FRAMEWORKS = ("@nestjs/core", "fastify", "express", "koa", "@hapi/hapi")
LOCKFILES = (("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn"), ("package-lock.json", "npm"))
# Read by the package manager during install: copied with the manifests.
INSTALL_CONFIG = (".npmrc", ".yarnrc", ".yarnrc.yml")
_NPM_NO_TEST = 'echo "Error: no test specified" && exit 1'

_ENV = (
    re.compile(rf"""\bprocess\.env\.({NAME})"""),
    re.compile(rf"""\bprocess\.env\[\s*["'`]({NAME})["'`]\s*\]"""),
)
_DESTRUCTURE = re.compile(r"\{([^{}]*)\}\s*=\s*process\.env\b")
# Port variables and their defaults, most specific first: `process.env.PORT ?? 3000`, a Joi or
# envalid schema key, a JSON-schema property (@fastify/env), then a bare `process.env.PORT`.
_PORT_ENV = (
    re.compile(r"""process\.env\.(\w*PORT\w*)\s*(?:\|\||\?\?)\s*["']?(\d{2,5})"""),
    re.compile(r"""\b(\w*PORT\w*)\s*:\s*Joi\.number\(\)[^\n]*?\.default\(\s*(\d{2,5})\s*\)"""),
    re.compile(r"""\b(\w*PORT\w*)\s*:\s*port\(\s*\{[^}]*?default:\s*(\d{2,5})"""),
    re.compile(
        r"""\b(\w*PORT\w*)\s*:\s*\{[^{}]*?type:\s*["'](?:number|integer)["'][^{}]*?default:\s*(\d{2,5})"""
    ),
    re.compile(r"""process\.env\.(\w*PORT\w*)()"""),
)
_PORT_LITERAL = (
    re.compile(r"""\.listen\(\s*(\d{2,5})\b"""),
    re.compile(r"""\.listen\(\s*\{[^}]*?\bport:\s*(\d{2,5})\b"""),
)
# A port variable of something the app connects to, not of the server itself.
_CLIENT_PORT = re.compile(
    r"^(SMTP|MAIL|EMAIL|MYSQL|MARIADB|PG|POSTGRES|DB|DATABASE|REDIS|MONGO|RABBIT|AMQP|ELASTIC|KAFKA|NATS|"
    r"MQTT|SENTRY|METRICS|DEBUG|INSPECT|PROXY|SMTPS|LDAP|MEMCACHED?|CACHE|QUEUE|BROKER)"
)
_REQUIRED_LIST = re.compile(r"""\brequired\s*:\s*\[([^\]]*)\]""")
_QUOTED = re.compile(r"""["'`](\w+)["'`]""")
_JOI_REQUIRED = re.compile(r"""\b(\w+)\s*:\s*Joi\.[^\n]*?\.required\(\)""")
_ENVALID_REQUIRED = re.compile(
    r"""\b([A-Z][A-Z0-9_]*)\s*:\s*(?:str|num|bool|port|url|email|host|json)\(\s*\)"""
)
_SCHEMA_DEFAULT = re.compile(r"""\b(\w+)\s*:\s*\{[^{}]*?\bdefault\s*:""")
_STRING_DEFAULT = (
    # A schema property's string default (a regex quantifier such as {2} may come before it).
    re.compile(r"""\b(\w+)\s*:\s*\{(?:[^{}]|\{\d*,?\d*\})*?\bdefault\s*:\s*["'`]([^"'`]*)["'`]"""),
    re.compile(r"""process\.env\.(\w+)\s*(?:\?\?|\|\|)\s*["'`]([^"'`]*)["'`]"""),
)
_HEALTHY_ROUTE = re.compile(r"(?i)(healthz?|livez|readyz|ping)")

# Client packages (runtime dependencies) that reach each backing service.
BACKING_PACKAGES: dict[str, frozenset[str]] = {
    "postgres": frozenset({"pg", "postgres", "pg-promise"}),
    "redis": frozenset({"redis", "ioredis"}),
    "mongodb": frozenset({"mongodb", "mongoose"}),
    "mysql": frozenset({"mysql", "mysql2", "@fastify/mysql"}),
    "rabbitmq": frozenset({"amqplib", "amqp-connection-manager", "rascal"}),
}


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
    config = tuple(f for f in INSTALL_CONFIG if tree.exists(f))
    found = Detected(
        language="node",
        package_manager=manager,
        dependency_files=("package.json", *([lock] if lock else []), *config),
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
    sources = dict(tree.sources(*SOURCE_SUFFIXES))
    code = [strip_comments(t) for t in sources.values()]
    found.env_vars = find_names(_ENV, code) | _destructured(code) | env_file_names(tree)
    scripts = package.get("scripts", {}) if isinstance(package.get("scripts"), dict) else {}
    typescript = _typescript(tree, scripts, found, manager)
    entry = _entry(found, scripts.get("start"), package.get("main"), tree, typescript)
    _port(found, code)
    found.listen = listen.node(sources, found.framework)
    defaults = {name: value for p in _STRING_DEFAULT for text in code for name, value in p.findall(text)}
    found.writes = writes.node_writes(sources, _runs_from(typescript), defaults)
    _health(found, app_routes(sources, entry), code)
    found.metrics_path = "/metrics" if has_metrics(code) or "prom-client" in deps else None
    found.skip_scripts = _dev_tool_scripts(scripts, package)
    test = scripts.get("test")
    found.test_command = (manager, "test") if test and test != _NPM_NO_TEST else ("node", "--test")
    if not lock:
        found.assumptions.append(f"no lock file: `{manager} install` resolves versions at build time")
    for service, clients in BACKING_PACKAGES.items():
        if set(runtime_deps) & clients:
            found.backing_services.add(service)
    if "knex" in runtime_deps and {"mysql", "mysql2"} & set(runtime_deps):
        found.backing_services.add("mysql")
    _required(found, code, tree)
    return found


def _dev_tool_scripts(scripts: dict[str, Any], package: dict[str, Any]) -> tuple[str, ...]:
    """Install-time scripts (``prepare``) whose tool is a dev dependency (``husky install``): a
    production install has no such binary and would fail, so the builder drops them first."""
    dev = package.get("devDependencies", {})
    runtime = package.get("dependencies", {})
    skipped = []
    for name in ("prepare",):
        script = scripts.get(name)
        if not isinstance(script, str):
            continue
        words = [w for w in re.split(r"[\s;&|]+", script) if w and w not in ("npx", "yarn", "pnpm", "exec")]
        if words and isinstance(dev, dict) and words[0] in dev and words[0] not in runtime:
            skipped.append(name)
    return tuple(skipped)


def _node_version(tree: ProjectTree, package: dict[str, Any]) -> str | None:
    default = DEFAULT_VERSION["node"]
    for rel in (".nvmrc", ".node-version"):
        text = (tree.read(rel) or "").strip().lstrip("v")
        if text and text[0].isdigit():
            return _version_of("==" + text, default)
    engines = package.get("engines", {})
    return _version_of(engines.get("node") if isinstance(engines, dict) else None, default)


def _jsonc(text: str | None) -> dict[str, Any]:
    """tsconfig.json: JSON with comments and trailing commas."""
    if not text:
        return {}
    try:
        data = json.loads(re.sub(r",(\s*[}\]])", r"\1", strip_comments(text)))
    except json.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


class _TypeScript:
    """Where tsc reads sources (rootDir) and writes JavaScript (outDir)."""

    def __init__(self, root_dir: str, out_dir: str) -> None:
        self.root_dir, self.out_dir = root_dir, out_dir

    def output_of(self, source: str) -> str:
        rel = posixpath.relpath(source, self.root_dir) if self.root_dir != "." else source
        return posixpath.join(self.out_dir, re.sub(r"\.(m|c)?ts$", lambda m: f".{m.group(1) or ''}js", rel))

    def source_of(self, output: str) -> str:
        rel = posixpath.relpath(output, self.out_dir)
        return posixpath.normpath(posixpath.join(self.root_dir, re.sub(r"\.(m|c)?js$", r".\1ts", rel)))


def _typescript(
    tree: ProjectTree, scripts: dict[str, Any], found: Detected, manager: str
) -> _TypeScript | None:
    """A TypeScript project compiled by its ``build`` script: the build command and output folder."""
    if not tree.exists("tsconfig.json") or not isinstance(scripts.get("build"), str):
        return None
    options = _jsonc(tree.read("tsconfig.json")).get("compilerOptions", {})
    options = options if isinstance(options, dict) else {}
    out_dir = _rel(options.get("outDir")) or _out_dir_of(scripts.get("start")) or "dist"
    root_dir = _rel(options.get("rootDir")) or ("src" if any(tree.files(".ts")) and _has_src(tree) else ".")
    found.build_command = (manager, "run", "build")
    found.build_output = out_dir
    found.assumptions.append(
        f"TypeScript: the builder runs `{manager} run build` with dev dependencies and ships {out_dir}/ "
        "with production dependencies only"
    )
    return _TypeScript(root_dir, out_dir)


def _runs_from(ts: _TypeScript | None) -> Callable[[str], str]:
    """The file that runs for a source file: TypeScript's compiled output under outDir."""
    if ts is None:
        return lambda rel: rel
    inside = "" if ts.root_dir == "." else ts.root_dir + "/"
    return lambda rel: ts.output_of(rel) if rel.startswith(inside) and rel.endswith(".ts") else rel


def _rel(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    rel = posixpath.normpath(value.strip().removeprefix("./"))
    return None if rel.startswith(("..", "/")) else rel


def _has_src(tree: ProjectTree) -> bool:
    return any(rel.startswith("src/") for rel in tree.files(".ts"))


def _out_dir_of(start: Any) -> str | None:
    argv = _node_argv(start)
    if argv and len(argv) > 1 and "/" in argv[1]:
        return argv[1].split("/", 1)[0]
    return None


def _node_argv(script: Any) -> tuple[str, ...] | None:
    """``node FILE ...`` of a start script, the last step when steps are chained with ``&&``."""
    if not isinstance(script, str):
        return None
    try:
        argv = shlex.split(script.split("&&")[-1])
    except ValueError:
        return None
    if (
        len(argv) >= 2
        and argv[0] == "node"
        and all("$" not in a and "&" not in a and ";" not in a for a in argv)
    ):
        return tuple(argv)
    return None


def _entry(found: Detected, start: Any, main: Any, tree: ProjectTree, ts: _TypeScript | None) -> str | None:
    """Set the exec-form start command (npm would not forward signals) and return the source
    file the app starts from, for route discovery."""
    argv = _node_argv(start)
    script = next((a for a in argv[1:] if not a.startswith("-")), None) if argv else None
    if argv and script and tree.exists(script):
        found.start_command = argv
        return script
    if argv and script and ts and script.startswith(ts.out_dir + "/"):
        found.start_command = argv
        return ts.source_of(script)
    if ts is not None:
        sources = [ts.source_of(main)] if isinstance(main, str) and main.startswith(ts.out_dir + "/") else []
        sources += [
            f"{ts.root_dir}/{n}".removeprefix("./") for n in ("server.ts", "index.ts", "main.ts", "app.ts")
        ]
        source = next((s for s in sources if tree.exists(s)), None)
        if source:
            found.start_command = ("node", ts.output_of(source))
            return source
    for candidate in (main, "server.js", "index.js", "src/server.js", "src/index.js", "app.js"):
        if isinstance(candidate, str) and candidate and tree.exists(candidate):
            found.start_command = ("node", candidate)
            return candidate
    return None


def _port(found: Detected, code: list[str]) -> None:
    """The server's port: the variable it reads (PORT first, never a database's or mail server's
    port variable) with its default, else a literal ``listen(3000)``, else 3000."""
    candidates: list[tuple[int, str, int | None]] = []
    for rank, pattern in enumerate(_PORT_ENV):
        for text in code:
            for name, default in pattern.findall(text):
                if not _CLIENT_PORT.match(name):
                    candidates.append((rank, name, int(default) if default else None))
    if candidates:
        preferred = (
            min(c[0] for c in candidates if c[1] == "PORT")
            if any(c[1] == "PORT" for c in candidates)
            else None
        )
        name = "PORT" if preferred is not None else sorted(candidates)[0][1]
        defaults = [d for _, n, d in sorted(candidates) if n == name and d]
        found.port_env = name
        found.env_vars.add(name)
        found.port = defaults[0] if defaults else None
    if found.port is None:
        literal = next((int(m.group(1)) for p in _PORT_LITERAL for t in code for m in p.finditer(t)), None)
        found.port = literal or 3000


def _health(found: Detected, routes: list[Route], code: list[str]) -> None:
    """A health-like GET route with its mount prefixes; else ``/`` when the app itself answers it
    (no guard hook); else None. Without any discovered route, the plain string scan."""
    named = sorted(
        {r.path for r in routes if _HEALTHY_ROUTE.search(r.path) and not re.search(r"[:*{(]", r.path)},
        key=lambda p: (not re.search(r"(?i)health|livez|readyz", p), len(p), p),
    )
    if named:
        found.health_path = named[0]
    elif any(r.path == "/" and not r.guarded for r in routes):
        found.health_path = "/"
        found.assumptions.append(
            "no health route: probes request GET / (a route that answers without parameters); "
            "add a /health route"
        )
    elif not routes:
        found.health_path = health_path(code)


def _required(found: Detected, code: list[str], tree: ProjectTree) -> None:
    """Variables the config schema requires (@fastify/env ``required``, Joi ``.required()``,
    envalid without default) and, for the non-secret ones, the project's example value."""
    required: set[str] = set()
    for text in code:
        if re.search(r"@fastify/env|env-schema|envSchema", text):
            defaults = set(_SCHEMA_DEFAULT.findall(text))
            for block in _REQUIRED_LIST.findall(text):
                required |= set(_QUOTED.findall(block)) - defaults
        required |= set(_JOI_REQUIRED.findall(text)) | set(_ENVALID_REQUIRED.findall(text))
    found.required_env = required & found.env_vars if found.env_vars else required
    found.runtime_env |= example_values(tree, found.required_env, found.backing_services, found.port_env)


def _destructured(sources: Any) -> set[str]:
    names: set[str] = set()
    for text in sources:
        for group in _DESTRUCTURE.findall(text):
            for part in group.split(","):
                name = part.split(":")[0].split("=")[0].strip()
                if re.fullmatch(NAME, name):
                    names.add(name)
    return names
