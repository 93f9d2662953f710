"""Paths an app writes at run time, read from its code: SQLite files, log and upload folders,
folders it creates. Static reading only; a path the code computes from something unknown is left
out rather than guessed.

Each finding says how its path is anchored: ``cwd`` (relative to the working directory, as
``open('logs/app.log')`` is), ``app`` (relative to the app's folder, as a path built from
``__file__`` or ``__dirname`` is) or ``abs``. :mod:`agents.inspection.writable` turns them into
volumes.
"""

from __future__ import annotations

import ast
import posixpath
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from agents.inspection.detect.scan import NAME, strip_comments

Base = Literal["cwd", "app", "abs"]
Kind = Literal["file", "dir"]

# Settings that name where uploaded files go (Django, Flask, and the usual spellings).
UPLOAD_SETTINGS = frozenset({"MEDIA_ROOT", "UPLOAD_FOLDER", "UPLOAD_DIR", "UPLOADS_DIR", "UPLOAD_PATH"})
_PY_MKDIR = frozenset({"os.makedirs", "os.mkdir", "makedirs", "mkdir"})
_PY_SQLITE_CONNECT = frozenset({"sqlite3.connect", "aiosqlite.connect"})


@dataclass(frozen=True)
class Write:
    """One path the app writes: ``path`` anchored at ``base``; a ``file`` (its folder must be
    writable: SQLite also writes a journal next to it) or a ``dir``. ``where`` is file:line,
    ``what`` a few words, ``env`` the variable whose default the path is (a value set for that
    variable replaces it), ``sqlite`` whether it is a SQLite database and ``url`` whether the
    variable holds it as a ``sqlite:///`` URL (else as a plain path)."""

    path: str
    base: Base
    kind: Kind
    what: str
    where: str
    env: str | None = None
    sqlite: bool = False
    url: bool = False


def _anchored(path: str, default: Base = "cwd") -> tuple[Base, str]:
    return ("abs", posixpath.normpath(path)) if path.startswith("/") else (default, path)


def _sqlite_path(dsn: str) -> str | None:
    """The file of a ``sqlite:///`` URL (``sqlite:////abs`` for an absolute one), or None for an
    in-memory database."""
    rest = dsn.split("?", 1)[0].removeprefix("file:")
    if "://" in rest:
        rest = rest.split("://", 1)[1]
        rest = rest[1:] if rest.startswith("/") else rest  # sqlite:///x -> x, sqlite:////x -> /x
    return None if not rest or ":memory:" in rest or rest.startswith("mode=memory") else rest


def _plausible(path: str) -> bool:
    """Test databases and templated paths are not the running service's."""
    return bool(path) and "test" not in path.lower() and not re.search(r"[{}$%*<>]", path)


# --- Python -------------------------------------------------------------------------------------


_Value = tuple[Base, str, str | None]  # (anchor, path, the variable it is the default of)


class _PyModule:
    """Module-level (and class-level) assignments of path expressions, evaluated in order."""

    def __init__(self, rel: str) -> None:
        self.rel = rel
        self.names: dict[str, _Value] = {}
        self.claimed: set[int] = set()  # literals already read as an environment default

    def value(self, node: ast.expr) -> _Value | None:
        """The path ``node`` evaluates to, when it is built from literals, ``__file__``, names
        assigned earlier, os.path / pathlib calls and environment lookups with a default."""
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return (*_anchored(node.value), None)
        if isinstance(node, ast.Name):
            if node.id == "__file__":
                return ("app", self.rel, None)
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute) and node.attr == "parent":
            return self._dirname(self.value(node.value))
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return self._join(self.value(node.left), [node.right])
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            args = node.args
            if name in ("os.path.dirname", "dirname") and args:
                return self._dirname(self.value(args[0]))
            if name in ("os.path.abspath", "abspath", "os.path.realpath", "realpath", "Path", "str") and args:
                return self._join(self.value(args[0]), args[1:]) if name == "Path" else self.value(args[0])
            if name in ("os.path.join", "join") and args:
                return self._join(self.value(args[0]), args[1:])
            if isinstance(node.func, ast.Attribute) and node.func.attr in ("resolve", "absolute"):
                return self.value(node.func.value)
            if name in ("os.environ.get", "os.getenv", "environ.get", "getenv") and len(args) == 2:
                variable = args[0].value if isinstance(args[0], ast.Constant) else None
                found = self.value(args[1])
                if found is not None and isinstance(variable, str):
                    return (found[0], found[1], variable)
        return None

    def _dirname(self, value: _Value | None) -> _Value | None:
        if value is None:
            return None
        base, path, env = value
        if base == "app" and path in ("", "."):
            return None  # above the app's folder: not something the image holds
        return (base, posixpath.dirname(path), env)

    def _join(self, value: _Value | None, parts: list[ast.expr]) -> _Value | None:
        if value is None:
            return None
        base, path, env = value
        for part in parts:
            piece = self.value(part)
            if piece is None or piece[0] == "app":
                return None
            if piece[0] == "abs":
                base, path = "abs", piece[1]
            else:
                path = posixpath.join(path, piece[1]) if path else piece[1]
            env = env or piece[2]
        return (base, path, env)


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else node.attr
    return ""


def python_writes(sources: dict[str, str]) -> list[Write]:
    """What Python code writes: folders it creates (``os.makedirs``, ``Path.mkdir``), log files
    (``*FileHandler``), SQLite databases (``sqlite:///`` URLs, ``sqlite3.connect``, Django's
    sqlite3 ``NAME``) and upload folders (``MEDIA_ROOT``, ``UPLOAD_FOLDER``)."""
    found: list[Write] = []
    for rel in sorted(sources):
        text = sources[rel]
        if not re.search(r"sqlite|mkdir|makedirs|FileHandler|MEDIA_ROOT|UPLOAD", text):
            continue
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        module = _PyModule(rel)
        for statement in _statements(tree.body):
            _py_assign(module, statement, found)
        for node in ast.walk(tree):
            _py_node(module, node, found)
    return found


def _statements(body: list[ast.stmt]) -> Iterable[ast.stmt]:
    """Module and class bodies in order (a Flask ``Config`` class holds its settings)."""
    for statement in body:
        yield statement
        if isinstance(statement, ast.ClassDef):
            yield from _statements(statement.body)


def _py_assign(module: _PyModule, statement: ast.stmt, found: list[Write]) -> None:
    if isinstance(statement, ast.Assign):
        targets, value = statement.targets, statement.value
    elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
        targets, value = [statement.target], statement.value
    else:
        return
    evaluated = module.value(value)
    for target in targets:
        name = target.id if isinstance(target, ast.Name) else _subscript_key(target)
        if name is None:
            continue
        if evaluated is not None and isinstance(target, ast.Name):
            module.names[name] = evaluated
        if name in UPLOAD_SETTINGS and evaluated is not None and _plausible(evaluated[1]):
            found.append(
                Write(evaluated[1], evaluated[0], "dir", f"upload folder ({name})", _at(module, statement))
            )


def _subscript_key(node: ast.expr) -> str | None:
    """``app.config["UPLOAD_FOLDER"]`` -> ``UPLOAD_FOLDER``."""
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        key = node.slice.value
        return key if isinstance(key, str) else None
    return None


def _py_node(module: _PyModule, node: ast.AST, found: list[Write]) -> None:
    where = _at(module, node)
    if isinstance(node, ast.Call):
        _py_call(module, node, found, where)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("sqlite:"):
        if id(node) not in module.claimed:  # ast.walk yields a call before its arguments
            _sqlite_literal(node, found, where, env=None)
    elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        if isinstance(node.left, ast.Constant) and node.left.value in ("sqlite:///", "sqlite:////"):
            _add(found, module.value(node.right), "file", "SQLite database", where, sqlite=True)
    elif isinstance(node, ast.Dict):
        _django_sqlite(module, node, found, where)


def _py_call(module: _PyModule, node: ast.Call, found: list[Write], where: str) -> None:
    name = _dotted(node.func)
    first = node.args[0] if node.args else _keyword(node, "filename", "path", "database")
    method = node.func.attr if isinstance(node.func, ast.Attribute) else ""
    if method == "mkdir" and not name.startswith("os."):  # Path("x").mkdir()
        _add(found, module.value(node.func.value), "dir", "folder it creates", where)  # type: ignore[attr-defined]
    elif first is None:
        return
    elif name in _PY_MKDIR:
        _add(found, module.value(first), "dir", "folder it creates", where)
    elif name.endswith("FileHandler"):
        _add(found, module.value(first), "file", "log file", where)
    elif name in _PY_SQLITE_CONNECT:
        _add(found, module.value(first), "file", "SQLite database", where, sqlite=True)
    elif name in ("os.environ.get", "os.getenv", "environ.get", "getenv") and len(node.args) == 2:
        module.claimed.add(id(node.args[1]))
        _sqlite_literal(node.args[1], found, where, env=_constant(node.args[0]))


def _sqlite_literal(node: ast.expr, found: list[Write], where: str, *, env: str | None) -> None:
    """A ``sqlite:///path`` string (the default of ``env`` when it is one)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("sqlite:"):
        path = _sqlite_path(node.value)
        if path is not None:
            base, rel = _anchored(path)
            _add(found, (base, rel, env), "file", "SQLite database", where, sqlite=True, url=True)


def _django_sqlite(module: _PyModule, node: ast.Dict, found: list[Write], where: str) -> None:
    """``{"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}``."""
    entries = {_constant(k): v for k, v in zip(node.keys, node.values, strict=True) if k is not None}
    engine = entries.get("ENGINE")
    if isinstance(engine, ast.Constant) and "sqlite3" in str(engine.value) and "NAME" in entries:
        _add(found, module.value(entries["NAME"]), "file", "SQLite database", where, sqlite=True)


def _keyword(node: ast.Call, *names: str) -> ast.expr | None:
    return next((k.value for k in node.keywords if k.arg in names), None)


def _constant(node: ast.expr | None) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _at(module: _PyModule, node: ast.AST) -> str:
    return f"{module.rel}:{getattr(node, 'lineno', 0)}"


def _add(
    found: list[Write],
    value: _Value | None,
    kind: Kind,
    what: str,
    where: str,
    *,
    sqlite: bool = False,
    url: bool = False,
) -> None:
    if value is None:
        return
    base, path, env = value
    if _plausible(path) and path not in (".", ""):
        found.append(Write(posixpath.normpath(path), base, kind, what, where, env, sqlite, url))


# --- Node.js ------------------------------------------------------------------------------------

_JS_CONST = re.compile(r"\b(?:const|let|var)\s+(\w+)\s*=\s*([^;\n]+)")
_JS_WRITES: tuple[tuple[re.Pattern[str], Kind, str], ...] = (
    (re.compile(r"\b(?:fs\.|fsp\.|promises\.)?mkdir(?:Sync)?\(\s*"), "dir", "folder it creates"),
    (
        re.compile(r"\b(?:fs\.|fsp\.|promises\.)?(?:writeFile|appendFile)(?:Sync)?\(\s*"),
        "file",
        "file it writes",
    ),
    (re.compile(r"\bcreateWriteStream\(\s*"), "file", "file it writes"),
    (re.compile(r"\bnew\s+(?:sqlite3\.)?Database\(\s*"), "file", "SQLite database"),
    (re.compile(r"\btransports\.File\(\s*\{[^}]*?\bfilename\s*:\s*"), "file", "log file"),
)
_JS_STRING = re.compile(r"""^(["'`])([^"'`$]*)\1$""")
_JS_ENV_DEFAULT = re.compile(rf"""^process\.env\.({NAME})\s*(?:\?\?|\|\|)\s*(["'`][^"'`]*["'`])$""")
_JS_CONFIG = re.compile(rf"""^(?:\w+\.)*(?:config|env)\.({NAME})$""")
_JS_DIRNAME = frozenset({"__dirname", "import.meta.dirname"})


def node_writes(
    sources: dict[str, str], runs_from: Callable[[str], str], defaults: dict[str, str]
) -> list[Write]:
    """What Node.js code writes: folders it creates (``fs.mkdirSync``), files it writes or streams
    to, SQLite databases and winston log files. ``runs_from`` maps a source file to the file that
    runs (TypeScript: its compiled output), for paths built from ``__dirname``; ``defaults`` are
    the default values of the app's configuration variables (a path read from one of them)."""
    found: list[Write] = []
    for rel in sorted(sources):
        text = strip_comments(sources[rel])
        if not re.search(r"mkdir|writeFile|appendFile|createWriteStream|Database\(|transports\.File", text):
            continue
        names = {m.group(1): m.group(2).strip() for m in _JS_CONST.finditer(text)}
        here = posixpath.dirname(runs_from(rel))
        for pattern, kind, what in _JS_WRITES:
            for match in pattern.finditer(text):
                argument = _first_argument(text, match.end())
                value = _js_value(argument, names, here, defaults, depth=0)
                where = f"{rel}:{text.count(chr(10), 0, match.start()) + 1}"
                if value is not None:
                    _add(found, value, kind, what, where, sqlite=what == "SQLite database")
    return found


def _first_argument(text: str, start: int) -> str:
    """The first argument of a call whose arguments start at ``start`` (up to a top-level , or ))."""
    depth, out = 0, []
    for char in text[start : start + 400]:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                break
            depth -= 1
        elif char == "," and depth == 0:
            break
        out.append(char)
    return "".join(out).strip()


def _split_arguments(inner: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in inner:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def _js_value(
    expr: str, names: dict[str, str], here: str, defaults: dict[str, str], *, depth: int
) -> _Value | None:
    """A path expression: a string, ``__dirname``, a const defined in the file, ``path.join`` /
    ``path.resolve`` of those, ``process.env.X ?? 'default'`` or ``config.X`` with a known default."""
    if depth > 4:
        return None
    expr = expr.strip()
    if (match := _JS_STRING.match(expr)) is not None:
        return (*_anchored(match.group(2)), None)
    if expr in _JS_DIRNAME:
        return ("app", here, None)
    if expr == "process.cwd()":
        return ("cwd", "", None)
    if (match := _JS_ENV_DEFAULT.match(expr)) is not None:
        inner = _JS_STRING.match(match.group(2))
        return (*_anchored(inner.group(2)), match.group(1)) if inner else None
    if (match := _JS_CONFIG.match(expr)) is not None and match.group(1) in defaults:
        return (*_anchored(defaults[match.group(1)]), match.group(1))
    if re.fullmatch(r"\w+", expr) and expr in names:
        return _js_value(names[expr], names, here, defaults, depth=depth + 1)
    call = re.fullmatch(r"(?:path\.)?(join|resolve)\((.*)\)", expr, re.DOTALL)
    if call is None:
        return None
    base: Base = "cwd"
    path, env = "", None
    for argument in _split_arguments(call.group(2)):
        value = _js_value(argument, names, here, defaults, depth=depth + 1)
        if value is None:
            return None
        if value[0] == "cwd":
            path = posixpath.join(path, value[1]) if path else value[1]
        else:
            base, path = value[0], value[1]
        env = env or value[2]
    return (base, posixpath.normpath(path) if path else ".", env)


# --- Go -----------------------------------------------------------------------------------------

_GO_WRITES: tuple[tuple[re.Pattern[str], Kind, str], ...] = (
    (re.compile(r'\bOpen\(\s*"sqlite3?"\s*,\s*"([^"]+)"'), "file", "SQLite database"),
    (re.compile(r'\bsqlite\.Open\(\s*"([^"]+)"'), "file", "SQLite database"),
    (re.compile(r'\bos\.Mkdir(?:All)?\(\s*"([^"]+)"'), "dir", "folder it creates"),
    (re.compile(r'\bos\.(?:Create|OpenFile|WriteFile)\(\s*"([^"]+)"'), "file", "file it writes"),
)


def go_writes(files: dict[str, str]) -> list[Write]:
    """What Go code writes, from string literals: SQLite files (``gorm.Open("sqlite3", path)``,
    ``sqlite.Open(path)``), folders it creates and files it creates."""
    found: list[Write] = []
    for rel in sorted(files):
        text = files[rel]
        for pattern, kind, what in _GO_WRITES:
            for match in pattern.finditer(text):
                raw = match.group(1)
                path = _sqlite_path(raw) if what == "SQLite database" else raw
                if path is None:
                    continue
                where = f"{rel}:{text.count(chr(10), 0, match.start()) + 1}"
                _add(found, (*_anchored(path), None), kind, what, where, sqlite=what == "SQLite database")
    return found
