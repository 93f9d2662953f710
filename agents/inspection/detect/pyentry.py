"""How a Python web app is started: the server command its authors wrote, or its app object.

Sources, most explicit first: the Procfile's ``web:`` line, start scripts (``boot.sh``,
``entrypoint.sh``, ...), uWSGI ini files, the project's own Dockerfile ``CMD``; then the code: a
module-level app object (``app = FastAPI()``, ``app = create_app()``, ``app = get_application()``),
a factory (``create_app``), or a ``__main__`` block that calls ``uvicorn.run``. The port is the one
that server binds, never any number found in any file.
"""

from __future__ import annotations

import ast
import configparser
import re
import shlex
from dataclasses import dataclass
from pathlib import PurePosixPath

from agents.inspection.detect.pyroutes import module_name
from agents.inspection.tree import ProjectTree

SERVERS = frozenset(
    {"gunicorn", "uvicorn", "uwsgi", "hypercorn", "daphne", "waitress-serve", "fastapi", "granian"}
)
START_SCRIPTS = (
    "boot.sh",
    "start.sh",
    "entrypoint.sh",
    "docker-entrypoint.sh",
    "run.sh",
    "scripts/start.sh",
    "scripts/entrypoint.sh",
    "bin/start.sh",
)
UWSGI_INI = ("uwsgi.ini", "etc/uwsgi.ini", "deploy/uwsgi.ini", "config/uwsgi.ini", "uwsgi/uwsgi.ini")
_RUNNERS = (("poetry", "run"), ("uv", "run"), ("pipenv", "run"), ("pdm", "run"))
_PORT_VAR = re.compile(r"\$\{?PORT(?::?-(\d+))?\}?|\$\(PORT\)")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


@dataclass(frozen=True)
class ServerCommand:
    """A server command found in the project: its words, where it was, what it binds, and the
    commands its authors run before it (migrations: a release step, not part of the container CMD)."""

    argv: tuple[str, ...]
    source: str
    port: int | None
    uses_port_env: bool
    before: tuple[str, ...] = ()

    @property
    def server(self) -> str:
        return PurePosixPath(self.argv[0]).name


def server_commands(tree: ProjectTree) -> list[ServerCommand]:
    """Every server command the project's own files run, most explicit source first."""
    found: list[ServerCommand] = []
    procfile = tree.read("Procfile") or ""
    for line in procfile.splitlines():
        kind, _, command = line.partition(":")
        if kind.strip() == "web":
            found += _from_shell(command, "Procfile")
    for rel in START_SCRIPTS:
        found += _from_shell(tree.read(rel) or "", rel)
    for rel in UWSGI_INI:
        ini = _uwsgi_ini(tree, rel)
        if ini is not None:
            found.append(ini)
    found += _from_dockerfile(tree.read("Dockerfile") or "")
    return found


def release_steps(tree: ProjectTree) -> list[str]:
    """Commands the Procfile's ``release:`` line runs (migrations): done once per deploy, not per pod."""
    steps = []
    for line in (tree.read("Procfile") or "").splitlines():
        kind, _, command = line.partition(":")
        if kind.strip() == "release" and command.strip():
            steps.append(command.strip())
    return steps


def _segments(text: str) -> list[str]:
    # Shell lists: one command per line, ';', '&&' or '||'; continuation lines joined first.
    joined = text.replace("\\\n", " ")
    return [part.strip() for part in re.split(r"\n|;|&&|\|\|", joined) if part.strip()]


def _words(segment: str) -> list[str] | None:
    try:
        words = shlex.split(segment, comments=True)
    except ValueError:
        return None
    while words and (_ASSIGN.match(words[0]) or words[0] in ("exec", "command", "env")):
        words = words[1:]
    for runner in _RUNNERS:
        if tuple(words[:2]) == runner:
            words = words[2:]
    if words and words[:2] == ["python", "-m"] and len(words) > 2 and words[2] in SERVERS:
        words = words[2:]
    return words or None


def _from_shell(text: str, source: str) -> list[ServerCommand]:
    out: list[ServerCommand] = []
    before: list[str] = []
    for segment in _segments(text):
        if segment.startswith(("#", "if ", "then", "fi", "do", "done", "while", "until", "echo ", "sleep ")):
            continue
        words = _words(segment)
        if words is None:
            continue
        name = PurePosixPath(words[0]).name
        if name in SERVERS or _is_runserver(words) or words[:2] == ["flask", "run"]:
            port, env = _bind_port(words)
            out.append(ServerCommand(tuple(words), source, port, env, tuple(before)))
            before = []
        elif name not in ("cd", "set", "export", "break", "exit", "[[", "[", "true"):
            before.append(" ".join(words))
    return out


def _from_dockerfile(text: str) -> list[ServerCommand]:
    """The last ``CMD`` of the project's own Dockerfile (exec or shell form)."""
    commands = re.findall(r"^\s*CMD\s+(.+?)\s*$", text.replace("\\\n", " "), re.MULTILINE | re.IGNORECASE)
    if not commands:
        return []
    raw = commands[-1]
    if raw.startswith("["):
        try:
            words = [str(w) for w in ast.literal_eval(raw)]
        except (ValueError, SyntaxError):
            return []
        if words[:2] in (["sh", "-c"], ["/bin/sh", "-c"], ["bash", "-c"]) and len(words) > 2:
            return _from_shell(words[2], "Dockerfile")
        raw = shlex.join(words)
    # Absolute paths point into the authors' image layout (/code/...), not ours.
    return [cmd for cmd in _from_shell(raw, "Dockerfile") if not any(w.startswith("/") for w in cmd.argv[1:])]


def _is_runserver(words: list[str]) -> bool:
    return len(words) >= 3 and words[0] in ("python", "python3") and words[1:3] == ["manage.py", "runserver"]


def _port_of(value: str) -> tuple[int | None, bool]:
    """``0.0.0.0:8081`` / ``:5000`` / ``8000`` / ``$PORT`` / ``${PORT:-5000}`` -> (port, uses $PORT)."""
    env = _PORT_VAR.search(value)
    if env:
        return (int(env.group(1)) if env.group(1) else None), True
    match = re.search(r"(?:^|:)(\d{2,5})$", value)
    if match and 1 <= int(match.group(1)) <= 65_535:
        return int(match.group(1)), False
    return None, False


def _option(words: list[str], *names: str) -> str | None:
    for i, word in enumerate(words):
        for name in names:
            if word == name and i + 1 < len(words):
                return words[i + 1]
            if name.startswith("--") and word.startswith(name + "="):
                return word.split("=", 1)[1]
            if not name.startswith("--") and word.startswith(name) and len(word) > len(name):
                return word[len(name) :]
    return None


def _bind_port(words: list[str]) -> tuple[int | None, bool]:
    server = PurePosixPath(words[0]).name
    if _is_runserver(words):
        return _port_of(words[3]) if len(words) > 3 else (None, False)
    if server in ("gunicorn", "hypercorn"):
        value = _option(words, "--bind", "-b")
    elif server == "daphne":
        value = _option(words, "--port", "-p") or _option(words, "--bind", "-b")
    elif server == "waitress-serve":
        value = _option(words, "--port", "--listen")
    elif server == "uwsgi":
        value = _option(words, "--http", "--http-socket", "--socket")
    else:  # uvicorn, fastapi run, flask run, granian
        value = _option(words, "--port", "-p")
    if value is None:
        return None, False
    return _port_of(value)


def _uwsgi_ini(tree: ProjectTree, rel: str) -> ServerCommand | None:
    text = tree.read(rel)
    if text is None:
        return None
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    if not parser.has_section("uwsgi"):
        return None
    section = parser["uwsgi"]
    bind = section.get("http-socket") or section.get("http") or section.get("socket") or ""
    port, env = _port_of(bind.strip())
    return ServerCommand(("uwsgi", "--ini", rel), rel, port, env)


def exposed_port(tree: ProjectTree) -> int | None:
    """The first ``EXPOSE`` of the project's own Dockerfile."""
    match = re.search(r"^\s*EXPOSE\s+(\d{2,5})", tree.read("Dockerfile") or "", re.MULTILINE | re.IGNORECASE)
    return int(match.group(1)) if match else None


def dockerfile_env(tree: ProjectTree, name: str) -> str | None:
    """A value the project's own Dockerfile sets with ``ENV NAME=value`` (or ``ENV NAME value``)."""
    pattern = re.compile(rf"^\s*ENV\s+(?:.*\s)?{name}[= ]([\w.:/-]+)", re.MULTILINE | re.IGNORECASE)
    match = pattern.search(tree.read("Dockerfile") or "")
    return match.group(1) if match else None


# --- start commands ------------------------------------------------------------------------------


def normalise(cmd: ServerCommand, port: int) -> tuple[str, ...]:
    """The server command in exec form for a container: ``$PORT`` replaced by the port (exec form
    expands no variables) and the server bound to every interface on that port."""
    words = [
        _PORT_VAR.sub(str(port), w) if _PORT_VAR.search(w) and cmd.server != "uwsgi" else w for w in cmd.argv
    ]
    server = cmd.server
    if server in ("gunicorn", "hypercorn"):
        return tuple(_set_value(words, ("--bind", "-b"), f"0.0.0.0:{port}"))
    if server in ("uvicorn", "flask") or (server == "fastapi" and "run" in words):
        words = _set_value(words, ("--host", "-h") if server == "flask" else ("--host",), "0.0.0.0")
        return tuple(_set_value(words, ("--port", "-p") if server == "flask" else ("--port",), str(port)))
    if _is_runserver(words):
        return (*words[:3], f"0.0.0.0:{port}", *words[4:])
    if server == "uwsgi" and "--die-on-term" not in words:
        # uWSGI 2.0 reloads on SIGTERM, which docker stop, Kubernetes and ECS send to stop it.
        words.append("--die-on-term")
    return tuple(words)


def _set_value(words: list[str], names: tuple[str, ...], value: str) -> list[str]:
    out = list(words)
    for i, word in enumerate(out):
        for name in names:
            if word == name and i + 1 < len(out):
                out[i + 1] = value
                return out
            if word.startswith(name + "=") or (
                not name.startswith("--") and word.startswith(name) and word != name
            ):
                out[i] = f"{name}={value}" if name.startswith("--") else f"{name}{value}"
                return out
    # gunicorn reads best with the bind first; click-based servers (uvicorn, flask run, fastapi run)
    # need options after their subcommand, so those are appended.
    if PurePosixPath(out[0]).name in ("gunicorn", "hypercorn"):
        return [out[0], names[0], value, *out[1:]]
    return [*out, names[0], value]


# --- app objects in code -------------------------------------------------------------------------


@dataclass(frozen=True)
class AppObject:
    """``module:variable`` of an app, or ``module:factory`` when only a factory exists."""

    module: str
    name: str
    factory: bool = False

    @property
    def target(self) -> str:
        return f"{self.module}:{self.name}"


def app_object(sources: dict[str, str], constructor: str) -> AppObject | None:
    """The app the server should load, shallowest file first: a module-level ``app = FastAPI()``,
    ``app = create_app()`` / ``app = get_application()`` (a function that builds one, here or
    imported), else a factory function (``create_app``) to call."""
    trees: dict[str, ast.Module] = {}
    for rel, text in sources.items():
        try:
            trees[module_name(rel)] = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
    builders = {
        (module, node.name)
        for module, tree in trees.items()
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and _calls(node, constructor)
    }
    order = sorted(trees, key=lambda m: (m.count("."), m.endswith(".__init__"), m))
    for module in order:
        imports = _imports(trees[module], module)
        for node in trees[module].body:
            if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
                continue
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            func = node.value.func
            called = (
                func.id
                if isinstance(func, ast.Name)
                else func.attr
                if isinstance(func, ast.Attribute)
                else ""
            )
            if not names or not called:
                continue
            origin = imports.get(called, f"{module}.{called}").rpartition(".")
            if called == constructor or (origin[0], origin[2]) in builders:
                return AppObject(module, names[0])
    for module in order:
        for mod, func in sorted(builders):
            if mod == module and func in (
                "create_app",
                "make_app",
                "build_app",
                "get_app",
                "get_application",
            ):
                return AppObject(module, func, factory=True)
    return None


def _calls(func: ast.FunctionDef, constructor: str) -> bool:
    return any(
        isinstance(n, ast.Call)
        and (
            (isinstance(n.func, ast.Name) and n.func.id == constructor)
            or (isinstance(n.func, ast.Attribute) and n.func.attr == constructor)
        )
        for n in ast.walk(func)
    )


def _imports(tree: ast.Module, module: str) -> dict[str, str]:
    out = {}
    package = module.rpartition(".")[0]
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".") if package else []
                base = ".".join([*parts[: len(parts) - node.level + 1], *([base] if base else [])])
            for alias in node.names:
                out[alias.asname or alias.name] = f"{base}.{alias.name}"
    return out


def main_block_server(sources: dict[str, str]) -> tuple[str, int | None] | None:
    """A module whose ``if __name__ == "__main__":`` block calls ``uvicorn.run`` / ``app.run``:
    (module, the port it passes) — run with ``python -m module``."""
    for rel in sorted(sources, key=lambda r: (r.count("/"), r)):
        text = sources[rel]
        if "__main__" not in text or ".run(" not in text:
            continue
        try:
            tree = ast.parse(text)
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
                for call in ast.walk(node):
                    if (
                        isinstance(call, ast.Call)
                        and isinstance(call.func, ast.Attribute)
                        and call.func.attr == "run"
                    ):
                        return module_name(rel), _run_port(call)
    return None


def _run_port(call: ast.Call) -> int | None:
    for kw in call.keywords:
        if kw.arg == "port":
            if isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, int):
                return kw.value.value
            text = ast.unparse(kw.value)
            match = re.search(r"""["']PORT["']\s*,\s*["']?(\d{2,5})""", text)
            if match:
                return int(match.group(1))
    return None


def script_server(pyproject: dict, sources: dict[str, str]) -> tuple[str, str] | None:
    """A ``[project.scripts]`` / Poetry script whose function starts a server: (module, function)."""
    scripts = {
        **pyproject.get("project", {}).get("scripts", {}),
        **pyproject.get("tool", {}).get("poetry", {}).get("scripts", {}),
    }
    by_module = {module_name(rel): text for rel, text in sources.items()}
    for _, target in sorted(scripts.items()):
        if not isinstance(target, str) or ":" not in target:
            continue
        module, _, func = target.partition(":")
        text = by_module.get(module, "")
        if re.search(r"\b(uvicorn|hypercorn|waitress|gunicorn)\b.*\brun\(|\.run\(", text):
            return module, func.strip()
    return None
