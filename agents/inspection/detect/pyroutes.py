"""The URL paths a Python web app really serves, read from its code (AST only, nothing imported).

FastAPI/Starlette: ``APIRouter(prefix=...)``, route decorators, ``include_router(..., prefix=...)``
and ``mount``; Flask: ``Blueprint(url_prefix=...)``, ``@bp.route`` / ``@bp.get`` and
``register_blueprint(..., url_prefix=...)``; Django: ``urlpatterns`` with ``path``/``include``.
Prefixes given as settings attributes (``prefix=settings.API_V1_STR``) resolve through the string
default of that attribute. A route under a prefix that cannot be resolved is left out rather than
guessed: a wrong probe path restarts healthy pods forever.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath

# Route-registering methods and the HTTP method they imply (None: every method, e.g. Flask route).
_ROUTE_METHODS = {"get": "GET", "head": "GET", "route": None, "api_route": None, "websocket": "WS"}
_INCLUDE = {"include_router": "prefix", "register_blueprint": "url_prefix"}
_ROUTER_CLASSES = {
    "FastAPI": None,
    "Starlette": None,
    "APIRouter": "prefix",
    "Blueprint": "url_prefix",
    "Flask": None,
}
_APP_CLASSES = frozenset({"FastAPI", "Starlette", "Flask"})
_HEALTH = re.compile(r"(^|/)(healthz?|health[-_]?check|livez|readyz|ping)(/|$)", re.IGNORECASE)

Node = tuple[str, str]  # (module, variable)


@dataclass
class _Module:
    name: str
    imports: dict[str, str] = field(default_factory=dict)  # local name -> dotted target
    routers: dict[str, str | None] = field(default_factory=dict)  # variable -> own prefix
    routes: dict[str, list[tuple[str, str | None]]] = field(default_factory=dict)  # var -> (path, method)
    includes: dict[str, list[tuple[ast.expr, ast.expr | None]]] = field(default_factory=dict)
    strings: dict[str, str] = field(default_factory=dict)  # NAME = "literal" and class attribute defaults
    apps: dict[str, str] = field(default_factory=dict)  # variable -> app class


def module_name(rel: str) -> str:
    """Dotted module of a source path: ``app/api/main.py`` -> ``app.api.main``."""
    path = PurePosixPath(rel).with_suffix("")
    parts = path.parts[:-1] if path.name == "__init__" else path.parts
    return ".".join(parts)


class RouteTable:
    """Routes of every app object in ``sources`` ({relative path: text})."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.modules: dict[str, _Module] = {}
        for rel, text in sources.items():
            try:
                tree = ast.parse(text)
            except (SyntaxError, ValueError):
                continue
            name = module_name(rel)
            self.modules[name] = _read_module(name, tree, rel.endswith("__init__.py"))
        self._strings: dict[str, str | None] = {}
        for mod in self.modules.values():
            for key, value in mod.strings.items():
                # An attribute defined twice with different values resolves to nothing.
                self._strings[key] = value if self._strings.get(key, value) == value else None
        # Routes and includes keyed by the object they are registered on, wherever that happens:
        # a blueprint made in app/main/__init__.py gets its routes in app/main/routes.py.
        self._routes: dict[Node, list[tuple[str, str | None]]] = {}
        self._includes: dict[Node, list[tuple[_Module, ast.expr, ast.expr | None]]] = {}
        for mod in self.modules.values():
            for var, routes in mod.routes.items():
                node = self._owner(mod, var)
                if node is not None:
                    self._routes.setdefault(node, []).extend(routes)
            for var, includes in mod.includes.items():
                node = self._owner(mod, var)
                if node is not None:
                    self._includes.setdefault(node, []).extend((mod, c, p) for c, p in includes)

    def _owner(self, mod: _Module, var: str) -> Node | None:
        if var in mod.routers:
            return (mod.name, var)
        return self._resolve(mod, ast.Name(id=var))

    def paths(self, app: Node) -> list[tuple[str, str | None]]:
        """(full path, method) of every route reachable from the app object ``app``."""
        out: list[tuple[str, str | None]] = []
        self._walk(app, "", out, set())
        return sorted(set(out), key=lambda item: (item[0], item[1] or ""))

    def _walk(self, node: Node, prefix: str, out: list[tuple[str, str | None]], seen: set[Node]) -> None:
        if node in seen or len(seen) > 500:
            return
        seen = seen | {node}
        module, var = node
        mod = self.modules.get(module)
        if mod is None:
            return
        own = mod.routers.get(var)
        base = _join(prefix, own or "")
        for path, method in self._routes.get(node, []):
            out.append((_join(base, path), method))
        for where, child_expr, prefix_expr in self._includes.get(node, []):
            child = self._resolve(where, child_expr)
            if child is None:
                continue
            extra = "" if prefix_expr is None else self._string(where, prefix_expr)
            if extra is None:
                continue  # a prefix we cannot read: better no path than a wrong one
            self._walk(child, _join(base, extra), out, seen)

    def _resolve(self, mod: _Module, expr: ast.expr) -> Node | None:
        """The (module, variable) an expression names: a local, an import, or ``module.attr``."""
        if isinstance(expr, ast.Name):
            if expr.id in mod.routers:
                return (mod.name, expr.id)
            target = mod.imports.get(expr.id)
            if target is None:
                return None
            owner, _, attr = target.rpartition(".")
            if owner in self.modules and attr in self.modules[owner].routers:
                return (owner, attr)
            return None
        if isinstance(expr, ast.Attribute) and isinstance(expr.value, ast.Name):
            target = mod.imports.get(expr.value.id)
            if target in self.modules:
                return (target, expr.attr)
        return None

    def _string(self, mod: _Module, expr: ast.expr) -> str | None:
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return expr.value
        if isinstance(expr, ast.Name):
            return mod.strings.get(expr.id) or self._strings.get(expr.id)
        if isinstance(expr, ast.Attribute):
            return self._strings.get(expr.attr)
        if isinstance(expr, ast.JoinedStr):
            parts = []
            for value in expr.values:
                text = (
                    self._string(mod, value.value) if isinstance(value, ast.FormattedValue) else value.value
                )
                if not isinstance(text, str):
                    return None
                parts.append(text)
            return "".join(parts)
        return None

    def apps(self) -> list[Node]:
        """Every variable assigned an app constructor (``FastAPI()``, ``Flask()``, ``Starlette()``),
        at module level or inside a factory function, that is not mounted inside another app."""
        mounted = {
            child
            for includes in self._includes.values()
            for where, expr, _ in includes
            if (child := self._resolve(where, expr)) is not None
        }
        return [
            (name, var)
            for name, mod in sorted(self.modules.items())
            for var in sorted(mod.apps)
            if (name, var) not in mounted
        ]

    def all_paths(self) -> list[tuple[str, str | None]]:
        """Routes reachable from every app object."""
        return sorted(
            {item for app in self.apps() for item in self.paths(app)}, key=lambda i: (i[0], i[1] or "")
        )


def _join(prefix: str, path: str) -> str:
    """``/api/v1`` + ``/utils/health-check/`` -> ``/api/v1/utils/health-check/`` (a trailing slash
    of the route is kept: FastAPI and Django redirect when it is missing)."""
    head = prefix.rstrip("/")
    if not path or path == "/":
        return head + "/" if not head else head if not path else head + "/"
    return f"{head}/{path.lstrip('/')}" if head else "/" + path.lstrip("/")


def _call_name(node: ast.expr) -> str:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return ""


def _keyword(call: ast.Call, name: str | None) -> ast.expr | None:
    if name is None:
        return None
    return next((kw.value for kw in call.keywords if kw.arg == name), None)


def _const(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _read_module(name: str, tree: ast.Module, is_package: bool) -> _Module:
    mod = _Module(name)
    package = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = _absolute(package, node.module, node.level)
            for alias in node.names:
                mod.imports[alias.asname or alias.name] = f"{base}.{alias.name}" if base else alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                mod.imports[alias.asname or alias.name.split(".")[0]] = (
                    alias.name if alias.asname else alias.name.split(".")[0]
                )
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            _read_assign(mod, node)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for deco in node.decorator_list:
                _read_route(mod, deco)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            _read_call(mod, node)
    return mod


def _absolute(package: str, module: str | None, level: int) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".") if package else []
    base = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join([*base, *([module] if module else [])])


def _read_assign(mod: _Module, node: ast.Assign | ast.AnnAssign) -> None:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = [t.id for t in targets if isinstance(t, ast.Name)]
    value = node.value
    if value is None or not names:
        return
    text = _const(value)
    if text is not None:
        for var in names:
            mod.strings[var] = text
        return
    if isinstance(value, ast.Call):
        cls = _call_name(value.func)
        if cls in _ROUTER_CLASSES:
            prefix = _const(_keyword(value, _ROUTER_CLASSES[cls]))
            for var in names:
                mod.routers[var] = prefix
                if cls in _APP_CLASSES:
                    mod.apps[var] = cls
            if cls in ("Starlette", "FastAPI"):
                _read_routes_kw(mod, value, names)


def _read_routes_kw(mod: _Module, call: ast.Call, names: list[str]) -> None:
    """``Starlette(routes=[Route("/health", ...)])`` / ``FastAPI(routes=[...])``."""
    routes = _keyword(call, "routes")
    if not isinstance(routes, ast.List):
        return
    for item in routes.elts:
        if isinstance(item, ast.Call) and _call_name(item.func) in ("Route", "APIRoute") and item.args:
            path = _const(item.args[0])
            if path is not None:
                for var in names:
                    mod.routes.setdefault(var, []).append((path, None))


def _read_route(mod: _Module, deco: ast.expr) -> None:
    if not (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute)):
        return
    owner = deco.func.value
    method = deco.func.attr
    if not isinstance(owner, ast.Name) or method not in (*_ROUTE_METHODS, "post", "put", "patch", "delete"):
        return
    path = _const(deco.args[0]) if deco.args else _const(_keyword(deco, "path") or _keyword(deco, "rule"))
    if path is None:
        return
    verb = _ROUTE_METHODS.get(method, method.upper())
    if method in ("route", "api_route"):
        verb = _methods_keyword(deco)
    mod.routes.setdefault(owner.id, []).append((path, verb))


def _methods_keyword(call: ast.Call) -> str | None:
    methods = _keyword(call, "methods")
    if isinstance(methods, ast.List | ast.Tuple):
        values = {(_const(e) or "").upper() for e in methods.elts}
        return "GET" if "GET" in values else "OTHER"
    return None  # Flask's default: GET (and HEAD, OPTIONS)


def _read_call(mod: _Module, call: ast.Call) -> None:
    func = call.func
    assert isinstance(func, ast.Attribute)
    if not isinstance(func.value, ast.Name):
        return
    owner, method = func.value.id, func.attr
    if method in _INCLUDE and call.args:
        mod.includes.setdefault(owner, []).append((call.args[0], _keyword(call, _INCLUDE[method])))
    elif method == "mount" and len(call.args) >= 2:
        mod.includes.setdefault(owner, []).append((call.args[1], call.args[0]))
    elif method in ("add_api_route", "add_url_rule", "add_route") and call.args:
        path = _const(call.args[0])
        if path is not None:
            verb = "GET" if method != "add_api_route" else _methods_keyword(call) or "GET"
            mod.routes.setdefault(owner, []).append((path, verb))


def health_route(paths: Iterable[tuple[str, str | None]]) -> str | None:
    """The health route among ``paths``: GET-able, no path parameters, ``/health`` style names first,
    then the shortest."""
    candidates = {
        path
        for path, method in paths
        if method in (None, "GET") and _HEALTH.search(path) and not re.search(r"[{<]", path)
    }
    if not candidates:
        return None
    return sorted(candidates, key=lambda p: ("health" not in p.lower(), len(p), p))[0]


# --- Django ------------------------------------------------------------------------------------

_DJANGO_PATH = re.compile(
    r"""\b(path|re_path)\(\s*[rR]?["']([^"']*)["']\s*,\s*(include\()?\s*(?:["']([\w.]+)["'])?"""
)


def django_paths(sources: dict[str, str], root_urlconf: str | None) -> list[tuple[str, str | None]]:
    """Paths of a Django ``urlpatterns`` tree from ``root_urlconf`` (``mysite.urls``), following
    ``include("module")`` and ``include(imported.urls)``."""
    by_module = {module_name(rel): text for rel, text in sources.items()}
    if root_urlconf is None:
        candidates = sorted((m for m in by_module if m.endswith("urls")), key=lambda m: (m.count("."), m))
        if not candidates:
            return []
        root_urlconf = candidates[0]
    out: list[tuple[str, str | None]] = []
    _django_walk(by_module, root_urlconf, "", out, set())
    return out


def _django_walk(
    by_module: dict[str, str], module: str, prefix: str, out: list[tuple[str, str | None]], seen: set[str]
) -> None:
    text = by_module.get(module)
    if text is None or module in seen:
        return
    seen = seen | {module}
    for kind, route, include, target in _DJANGO_PATH.findall(text):
        if kind == "re_path":
            route = route.lstrip("^").rstrip("$")
            if re.search(r"[\\(\[*+?]", route):
                continue
        full = prefix + route
        if include:
            if target:
                _django_walk(by_module, target, full, out, seen)
            continue
        if "<" not in full:
            out.append(("/" + full, None))
