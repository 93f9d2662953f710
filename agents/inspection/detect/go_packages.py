"""Go sources read as packages: which main package serves HTTP, what it listens on, its routes.

Text analysis only (no Go toolchain): imports give the package graph of the module, listen calls
(``http.ListenAndServe``, ``http.Server{Addr:}``, ``net.Listen``, gin ``Run``, echo ``Start``,
fiber ``Listen``) give the port or the variable it comes from, and router groups give route
prefixes. Comments are stripped first, so ``r.Run() // listen on :8080`` is not a port.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from agents.inspection.detect.scan import strip_comments

_PACKAGE = re.compile(r"^package\s+(\w+)", re.MULTILINE)
_IMPORT_BLOCK = re.compile(r"^import\s*\((.*?)\)", re.MULTILINE | re.DOTALL)
_IMPORT_ONE = re.compile(r"""^import\s+(?:([\w.]+)\s+)?"([^"]+)\"""", re.MULTILINE)
_IMPORT_SPEC = re.compile(r"""^\s*(?:([\w.]+)\s+)?"([^"]+)\"""", re.MULTILINE)
_MAIN_FUNC = re.compile(r"^func\s+main\s*\(\s*\)", re.MULTILINE)
_FUNC = re.compile(r"^func\s+(?:\([^)]*\)\s*)?(\w+)", re.MULTILINE)
_BUILD_TAG = re.compile(r"^//\s*(?:go:build|\+build)\s+(\w+)\s*$", re.MULTILINE)

# A listen call and the expression that names its address (group "addr"; absent for gin's Run()).
_LISTEN = (
    re.compile(r"\bhttp\.ListenAndServe(?:TLS)?\(\s*(?P<addr>[^,\n]+),"),
    re.compile(r"\bnet\.Listen\(\s*\"tcp[46]?\"\s*,\s*(?P<addr>[^)\n]+)\)"),
    re.compile(r"\bhttp\.Server\s*\{[^}]*?\bAddr:\s*(?P<addr>[^,\n}]+)", re.DOTALL),
)
_FRAMEWORK_LISTEN = {
    "github.com/gin-gonic/gin": re.compile(r"\.Run(?:TLS)?\(\s*(?P<addr>[^,)\n]*)"),
    "github.com/labstack/echo": re.compile(r"\.Start(?:TLS)?\(\s*(?P<addr>[^,)\n]+)"),
    "github.com/gofiber/fiber": re.compile(r"\.Listen(?:TLS)?\(\s*(?P<addr>[^,)\n]+)"),
}
# Listeners beside the service (pprof, TLS redirects, metrics), named by their enclosing function.
_SIDE_FUNC = re.compile(r"(?i)debug|pprof|redirect|metric|profil|admin")
_SIDE_PORTS = frozenset({6060})
# A main package that builds a server from one of the module's own packages.
_CONSTRUCTS_SERVER = re.compile(r"\b\w+\.(?:NewServer|NewHTTPServer|NewAPI|NewRouter)\(|&\w+\.Server\{")
_SERVER_NAME = re.compile(r"(?i)(server|serve|api|web|http|daemon|svc|service|backend|app)")
_TOOL_NAME = re.compile(
    r"(?i)(storybook|cli|ctl|tool|migrat|seed|gen|example|bench|admin|worker|job|cron|script|client)"
)

_GETENV = re.compile(r"""\bos\.(?:Getenv|LookupEnv)\(\s*"(\w+)"\s*\)""")
_PORT_LITERAL = re.compile(r""""[\w.\-\[\]]*:(\d{2,5})\"""")
_BARE_PORT = re.compile(r""""(\d{2,5})\"""")
_IDENT = re.compile(r"^[A-Za-z_]\w*$")

_GROUP = re.compile(r"""(\w+)\s*:?=\s*([\w.]+)\.Group\(\s*"([^"]*)\"""")
_SUBROUTER = re.compile(r"""(\w+)\s*:?=\s*([\w.]+)\.PathPrefix\(\s*"([^"]*)"\s*\)\.Subrouter\(\)""")
_ROUTE = re.compile(r"""([\w.]+)\.(?:GET|Get|HEAD|Head|Any|HandleFunc|Handle)\(\s*"([^"]*)\"""")


@dataclass
class GoPackage:
    """One directory of the module: its package name, non-test files (comments stripped) and imports."""

    dir: str
    name: str
    files: dict[str, str] = field(default_factory=dict)
    imports: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)

    @property
    def text(self) -> str:
        return "\n".join(self.files[rel] for rel in sorted(self.files))

    @property
    def is_main(self) -> bool:
        return self.name == "main" and any(_MAIN_FUNC.search(t) for t in self.files.values())


@dataclass(frozen=True)
class Listen:
    """One listen call: where, in which function, and what its address resolved to."""

    dir: str
    function: str
    port: int | None
    env: str | None
    resolved: bool

    @property
    def side(self) -> bool:
        return bool(_SIDE_FUNC.search(self.function)) or self.port in _SIDE_PORTS


def packages(sources: dict[str, str]) -> dict[str, GoPackage]:
    """Non-test Go files grouped by directory (``.`` for the module root)."""
    out: dict[str, GoPackage] = {}
    for rel, raw in sources.items():
        directory = rel.rsplit("/", 1)[0] if "/" in rel else "."
        text = strip_comments(raw)
        name = _PACKAGE.search(text)
        if name is None:
            continue
        package = out.setdefault(directory, GoPackage(directory, name.group(1)))
        package.files[rel] = text
        package.imports |= _imports(text)
        package.tags |= set(_BUILD_TAG.findall(raw))
    return out


def _imports(text: str) -> set[str]:
    found = {path for _, path in _IMPORT_ONE.findall(text)}
    for block in _IMPORT_BLOCK.findall(text):
        found |= {path for _, path in _IMPORT_SPEC.findall(block)}
    return found


def reachable(pkgs: dict[str, GoPackage], start: str, module: str) -> list[str]:
    """``start`` and every package of the module it imports, directly or not, in a stable order."""
    seen: list[str] = []
    todo = [start]
    while todo:
        current = todo.pop(0)
        if current in seen or current not in pkgs:
            continue
        seen.append(current)
        for path in sorted(pkgs[current].imports):
            if module and (path == module or path.startswith(module + "/")):
                todo.append(path[len(module) + 1 :] or ".")
    return seen


def imported(pkgs: dict[str, GoPackage], dirs: list[str]) -> set[str]:
    """Every import path of the given packages (their direct runtime dependencies)."""
    return set().union(*(pkgs[d].imports for d in dirs)) if dirs else set()


def listens(pkgs: dict[str, GoPackage], dirs: list[str]) -> list[Listen]:
    """Listen calls in the given packages, in package order then source order."""
    found: list[Listen] = []
    for directory in dirs:
        package = pkgs[directory]
        patterns = list(_LISTEN) + [
            p for mod, p in _FRAMEWORK_LISTEN.items() if _imports_module(package, mod)
        ]
        for rel in sorted(package.files):
            text = package.files[rel]
            sites = sorted((m.start(), m.group("addr") or "") for p in patterns for m in p.finditer(text))
            for offset, addr in sites:
                port, env, resolved = _address(addr.strip(), text, framework_default=not addr.strip())
                found.append(Listen(directory, _function_at(text, offset), port, env, resolved))
    return found


def _imports_module(package: GoPackage, module: str) -> bool:
    return any(path == module or path.startswith(module + "/") for path in package.imports)


def _function_at(text: str, offset: int) -> str:
    names = [m.group(1) for m in _FUNC.finditer(text, 0, offset)]
    return names[-1] if names else ""


def _address(expr: str, text: str, *, framework_default: bool) -> tuple[int | None, str | None, bool]:
    """(port, env var, resolved) of a listen address expression, following one or two levels of
    local variables (``addr := ":" + port``, ``port := os.Getenv("PORT")``, ``port = "8080"``)."""
    if framework_default:
        return 8080, "PORT", True  # gin's Run() with no address reads PORT, else :8080
    port, env = _scan_expr(expr)
    pending = [t for t in re.split(r"[^\w.]+", expr) if _IDENT.match(t)]
    seen: set[str] = set()
    while pending and (port is None or env is None):
        name = pending.pop(0)
        if name in seen or name in ("os", "fmt", "http", "net", "strconv"):
            continue
        seen.add(name)
        for rhs in re.findall(rf"(?<![\w.]){re.escape(name)}\s*:?=\s*([^\n]+)", text):
            rhs_port, rhs_env = _scan_expr(rhs, bare=True)
            port, env = port or rhs_port, env or rhs_env
            pending += [t for t in re.split(r"[^\w.]+", rhs) if _IDENT.match(t)]
    return port, env, port is not None or env is not None


def _scan_expr(expr: str, *, bare: bool = False) -> tuple[int | None, str | None]:
    env = next(iter(_GETENV.findall(expr)), None)
    literal = _PORT_LITERAL.search(expr) or (_BARE_PORT.search(expr) if bare else None)
    port = int(literal.group(1)) if literal and 1 <= int(literal.group(1)) <= 65_535 else None
    return port, env


def main_package(pkgs: dict[str, GoPackage], module: str) -> tuple[str | None, list[str]]:
    """The main package that serves HTTP (and every main package found, for the decision note).

    Scores each ``package main``: a listen call of its own or a server built from the module's
    packages counts most, a listener anywhere in what it imports less; names help break ties
    (``wtfd`` next to ``wtf``, ``server``, ``api``) and tool names count against (``storybook``,
    ``migrate``, ``cli``). The module root wins ties, then the shallowest, then alphabetical.
    """
    mains = sorted(d for d, p in pkgs.items() if p.is_main)
    if not mains:
        return None, []
    base_names = {d.rsplit("/", 1)[-1] for d in mains} | {module.rsplit("/", 1)[-1]}

    def score(directory: str) -> tuple[int, int, int, str]:
        own = [site for site in listens(pkgs, [directory]) if not site.side]
        deps = [site for site in listens(pkgs, reachable(pkgs, directory, module)[1:]) if not site.side]
        name = directory.rsplit("/", 1)[-1]
        points = 3 if own else 0
        points += 3 if _CONSTRUCTS_SERVER.search(pkgs[directory].text) and deps else 0
        points += 1 if deps else 0
        if directory != "." and (
            _SERVER_NAME.search(name) or (name.endswith("d") and name[:-1] in base_names)
        ):
            points += 2
        if directory != "." and _TOOL_NAME.search(name):
            points -= 3
        return (-points, directory != ".", directory.count("/"), directory)

    return sorted(mains, key=score)[0], mains


def routes(pkgs: dict[str, GoPackage], dirs: list[str]) -> list[str]:
    """Full paths of the routes registered in the given packages, with router group prefixes
    (gin/echo ``Group``, gorilla ``PathPrefix().Subrouter()``) of the same file applied."""
    found: list[str] = []
    for directory in dirs:
        for rel in sorted(pkgs[directory].files):
            text = pkgs[directory].files[rel]
            prefix: dict[str, str] = {}
            for pattern in (_GROUP, _SUBROUTER):
                for var, parent, path in pattern.findall(text):
                    prefix[var] = prefix.get(parent, "") + path
            for receiver, path in _ROUTE.findall(text):
                path = path.split(" ", 1)[-1]  # Go 1.22 patterns: "GET /healthz"
                if path.startswith("/") or receiver in prefix:
                    found.append(_join(prefix.get(receiver, ""), path))
    return found


def _join(prefix: str, path: str) -> str:
    """gin/echo joining: ``/api/ping`` + ``/`` is the distinct route ``/api/ping/``; + ``""`` the prefix."""
    if not path:
        return prefix or "/"
    full = (prefix.rstrip("/") + "/" + path.lstrip("/")) if prefix else path
    if path.endswith("/") and not full.endswith("/"):
        full += "/"
    return re.sub(r"/{2,}", "/", full) or "/"


def production_tags(pkgs: dict[str, GoPackage], dirs: list[str]) -> tuple[str, ...]:
    """Build tags that select production files (``//go:build production``) in the built packages."""
    tags = set().union(*(pkgs[d].tags for d in dirs)) if dirs else set()
    return tuple(sorted(tags & {"production", "prod"}))
