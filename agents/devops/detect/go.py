"""Go projects: go.mod; net/http, gin, echo or chi."""

from __future__ import annotations

import re

from agents.devops.detect import Detected
from agents.devops.detect.scan import NAME, env_file_names, find_names, first_port, has_metrics, health_path
from agents.devops.tree import ProjectTree

FRAMEWORKS = (
    ("github.com/gin-gonic/gin", "gin"),
    ("github.com/labstack/echo", "echo"),
    ("github.com/go-chi/chi", "chi"),
    ("github.com/gofiber/fiber", "fiber"),
)
BINARY = "/app/server"

_ENV = (re.compile(rf"""\bos\.(?:Getenv|LookupEnv)\(\s*"({NAME})"\s*\)"""),)
_PORT = (
    re.compile(r"""(?i)\bport\s*(?::=|=)\s*"(\d{2,5})\""""),
    re.compile(r"""":(\d{2,5})\""""),
    re.compile(r"""\.Run\(\s*":(\d{2,5})"\s*\)"""),
)
_GO_LINE = re.compile(r"^go\s+(\d+\.\d+(?:\.\d+)?)\s*$", re.MULTILINE)
_TOOLCHAIN = re.compile(r"^toolchain\s+go(\d+\.\d+\.\d+)\s*$", re.MULTILINE)
_MODULE = re.compile(r"^module\s+(\S+)", re.MULTILINE)


def detect(tree: ProjectTree) -> Detected | None:
    """Findings for a Go module, or None when there is no go.mod at the root."""
    gomod = tree.read("go.mod")
    if gomod is None:
        return None
    locked = tree.exists("go.sum")
    found = Detected(
        language="go",
        package_manager="go",
        dependency_files=("go.mod", "go.sum") if locked else ("go.mod",),
        locked=True,  # go.mod + go.sum pin the full module graph; no go.sum means no dependencies
    )
    module = _MODULE.search(gomod)
    found.name = module.group(1).rsplit("/", 1)[-1] if module else None
    version = _GO_LINE.search(gomod)
    found.language_version = ".".join(version.group(1).split(".")[:2]) if version else None
    found.framework = next((name for path, name in FRAMEWORKS if path in gomod), "net/http")
    sources = dict(tree.sources(".go"))
    found.build_target = _main_package(sources)
    found.env_vars = find_names(_ENV, sources.values()) | env_file_names(tree)
    found.port = first_port(_PORT, sources.values()) or 8080
    found.health_path = health_path(sources.values())
    found.metrics_path = "/metrics" if has_metrics(sources.values()) else None
    found.start_command = (BINARY,)
    found.test_command = ("go", "test", "./...")
    if any(mod in gomod for mod in ("github.com/lib/pq", "github.com/jackc/pgx")):
        found.backing_services.add("postgres")
    if "github.com/redis/go-redis" in gomod or "github.com/go-redis/redis" in gomod:
        found.backing_services.add("redis")
    return found


def _main_package(sources: dict[str, str]) -> str:
    """``.`` when the root holds package main, else the shallowest ``cmd/<name>`` main package."""
    mains = sorted(
        {rel.rsplit("/", 1)[0] if "/" in rel else "." for rel, text in sources.items() if _is_main(text)},
        key=lambda d: (d != ".", d.count("/"), d),
    )
    if not mains or mains[0] == ".":
        return "."
    return "./" + mains[0]


def _is_main(text: str) -> bool:
    return re.search(r"^package main\b", text, re.MULTILINE) is not None and "func main()" in text
