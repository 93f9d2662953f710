"""Routes of a Node.js app with their mount prefixes, read from the source text.

Follows the app from its entry file through local ``require``/``import``: Express routers mounted
with ``app.use('/v1', routes)`` (also the ``{ path: '/auth', route: authRoute }`` tables that
boilerplates loop over), Fastify plugins registered with ``{ prefix: '/v1' }`` and
``@fastify/autoload`` folders, whose sub-folders become prefixes (``routes/api/users`` ->
``/api/users``). Folders with an ``autohooks`` file that hooks every request are marked guarded:
their routes are not offered as health checks unless they are named like one.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from agents.inspection.detect.scan import strip_comments

SOURCE_SUFFIXES = (".js", ".mjs", ".cjs", ".ts", ".mts", ".cts")
_Q = r"""['"`]"""
_LOCAL_IMPORT = (
    re.compile(rf"""(?:const|let|var)\s+(\w+)\s*=\s*require\(\s*{_Q}(\.[^'"`]+){_Q}\s*\)"""),
    re.compile(rf"""import\s+(\w+)(?:\s*,\s*\{{[^}}]*\}})?\s+from\s+{_Q}(\.[^'"`]+){_Q}"""),
)
_NAMED_IMPORT = re.compile(rf"""import\s+\{{([^}}]*)\}}\s+from\s+{_Q}(\.[^'"`]+){_Q}""")
_NAMED_REQUIRE = re.compile(
    rf"""(?:const|let|var)\s+\{{([^}}]*)\}}\s*=\s*require\(\s*{_Q}(\.[^'"`]+){_Q}\s*\)"""
)
_BARE_REQUIRE = re.compile(
    rf"""(?:^|[;\s(=])(?:require\(|import\s*\(?)\s*{_Q}(\.[^'"`]+){_Q}""", re.MULTILINE
)
_ROUTE = re.compile(rf"""\b(\w+)\s*\.\s*(get|all|head)\(\s*{_Q}(/[^'"`]*){_Q}""")
_CHAINED = re.compile(rf"""\b(\w+)\s*\.\s*route\(\s*{_Q}(/[^'"`]*){_Q}\s*\)\s*\.\s*(?:get|all)\(""")
_ROUTE_OBJECT = re.compile(
    rf"""\b(\w+)\s*\.\s*route\(\s*\{{[^}}]*?method:\s*\[?\s*{_Q}(?:GET|HEAD){_Q}[^}}]*?url:\s*{_Q}(/[^'"`]*){_Q}""",
    re.DOTALL,
)
_MOUNT = re.compile(rf"""\b(\w+)\s*\.\s*use\(\s*{_Q}(/[^'"`]*){_Q}\s*,\s*(?:[^;]*?,\s*)?(\w+)\s*\)""")
_MOUNT_TABLE = re.compile(rf"""path:\s*{_Q}(/[^'"`]*){_Q}\s*,\s*route:\s*(\w+)""")
_REGISTER = re.compile(rf"""\.register\(\s*(\w+)\s*,\s*\{{[^}}]*?prefix:\s*{_Q}(/[^'"`]*){_Q}""", re.DOTALL)
_AUTOLOAD = re.compile(r"""\.register\(\s*(\w*[Aa]uto[Ll]oad\w*)\s*,\s*\{(.*?)\}\s*\)""", re.DOTALL)
_AUTOLOAD_DIR = re.compile(r"""dir:\s*(?:path\.)?(?:join|resolve)\(([^)]*)\)""")
_SEGMENT = re.compile(r"""['"`]([^'"`]+)['"`]""")
_AUTOLOAD_PREFIX = re.compile(rf"""prefix:\s*{_Q}(/[^'"`]*){_Q}""")
_AUTO_PREFIX = re.compile(rf"""export\s+const\s+autoPrefix\s*=\s*{_Q}(/[^'"`]*){_Q}""")
_GUARD_HOOK = re.compile(r"""addHook\(\s*['"](?:onRequest|preHandler|preValidation)['"]""")
MAX_FILES = 400


@dataclass(frozen=True)
class Route:
    """A GET route's full path, and whether a hook on every request of its folder guards it."""

    path: str
    guarded: bool = False


class RouteFinder:
    """Walks the app's modules from an entry file; ``sources`` maps relative paths to their text."""

    def __init__(self, sources: dict[str, str]) -> None:
        self.sources = sources
        self.texts: dict[str, str] = {}
        self.visited: set[tuple[str, str]] = set()
        self.routes: list[Route] = []

    def text(self, rel: str) -> str:
        if rel not in self.texts:
            self.texts[rel] = strip_comments(self.sources.get(rel, ""))
        return self.texts[rel]

    def resolve(self, importer: str, spec: str) -> str | None:
        """The source file a relative import names: exact, with a suffix, ``index.*``, or the
        ``.ts`` source of a ``.js`` import (TypeScript ESM imports name the output file)."""
        base = posixpath.normpath(posixpath.join(posixpath.dirname(importer), spec))
        stem = re.sub(r"\.(c|m)?js$", "", base)
        candidates = [base, *(base + s for s in SOURCE_SUFFIXES), *(stem + s for s in SOURCE_SUFFIXES)]
        candidates += [f"{base}/index{s}" for s in SOURCE_SUFFIXES]
        return next((c for c in candidates if c in self.sources), None)

    def walk(self, rel: str, prefix: str = "", guarded: bool = False) -> None:
        """Collect the routes of ``rel`` under ``prefix``, then of everything it mounts or imports."""
        if (rel, prefix) in self.visited or len(self.visited) >= MAX_FILES or rel not in self.sources:
            return
        self.visited.add((rel, prefix))
        text = self.text(rel)
        local = self._imports(rel, text)
        var_prefix: dict[str, str] = {}
        mounted: set[str] = set()
        for parent, path, child in _MOUNT.findall(text):
            var_prefix[child] = join(var_prefix.get(parent, ""), path)
        for path, child in _MOUNT_TABLE.findall(text):
            var_prefix[child] = join("", path)
        for child, path in _REGISTER.findall(text):
            var_prefix[child] = join("", path)
        for receiver, _method, path in _ROUTE.findall(text):
            self._add(join(prefix, join(var_prefix.get(receiver, ""), path)), guarded)
        for pattern in (_CHAINED, _ROUTE_OBJECT):
            for receiver, path in pattern.findall(text):
                self._add(join(prefix, join(var_prefix.get(receiver, ""), path)), guarded)
        for name, target in local.items():
            if name in var_prefix:
                mounted.add(target)
                self.walk(target, join(prefix, var_prefix[name]), guarded)
        for _loader, options in _AUTOLOAD.findall(text):
            self._autoload(rel, options, prefix, guarded)
        for target in sorted(set(local.values()) | self._bare_imports(rel, text)):
            if target not in mounted:
                self.walk(target, prefix, guarded)

    def _add(self, path: str, guarded: bool) -> None:
        self.routes.append(Route(path, guarded))

    def _imports(self, rel: str, text: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for pattern in _LOCAL_IMPORT:
            for name, spec in pattern.findall(text):
                target = self.resolve(rel, spec)
                if target:
                    found[name] = target
        for pattern in (_NAMED_IMPORT, _NAMED_REQUIRE):
            for names, spec in pattern.findall(text):
                target = self.resolve(rel, spec)
                for part in names.split(","):
                    name = re.split(r"\s+as\s+|:", part.strip())[-1].strip()
                    if target and re.fullmatch(r"\w+", name):
                        found[name] = target
        return found

    def _bare_imports(self, rel: str, text: str) -> set[str]:
        return {t for spec in _BARE_REQUIRE.findall(text) if (t := self.resolve(rel, spec))}

    def _autoload(self, rel: str, options: str, prefix: str, guarded: bool) -> None:
        folder = _AUTOLOAD_DIR.search(options)
        if folder is None:
            return
        segments = _SEGMENT.findall(folder.group(1))
        if not segments:
            return
        root = posixpath.normpath(posixpath.join(posixpath.dirname(rel), *segments))
        extra = _AUTOLOAD_PREFIX.search(options)
        base = join(prefix, extra.group(1) if extra else "")
        files = sorted(f for f in self.sources if f.startswith(root + "/"))
        hooked = {
            posixpath.dirname(f)
            for f in files
            if posixpath.basename(f).startswith("autohooks") and _GUARD_HOOK.search(self.text(f))
        }
        for rel_file in files:
            if posixpath.basename(rel_file).startswith("autohooks"):
                continue
            folder_path = posixpath.dirname(rel_file)[len(root) :]
            auto = _AUTO_PREFIX.search(self.text(rel_file))
            file_prefix = join(base, folder_path)
            if auto:
                file_prefix = join(file_prefix, auto.group(1))
            under_hook = any(folder_path.startswith(h[len(root) :]) for h in hooked)
            self.walk(rel_file, file_prefix, guarded or under_hook)


def join(prefix: str, path: str) -> str:
    """Express/Fastify prefix joining: ``/v1`` + ``/`` is ``/v1``; slashes never double."""
    if not prefix:
        return path or "/"
    if path in ("", "/"):
        return prefix
    return re.sub(r"/{2,}", "/", prefix.rstrip("/") + "/" + path.lstrip("/"))


def app_routes(sources: dict[str, str], entry: str | None) -> list[Route]:
    """Every GET route reachable from ``entry`` (or from every file when the entry is unknown)."""
    finder = RouteFinder(sources)
    for start in [entry] if entry in sources else sorted(sources):
        finder.walk(start)
    return finder.routes
