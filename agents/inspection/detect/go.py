"""Go projects: go.mod; net/http, gin, echo, chi or fiber.

The binary is the main package that serves HTTP (not the alphabetically first ``cmd/*``, which is
often a CLI); port, routes, environment variables, backing services and cgo are read from that
package and the module packages it imports, so a CLI or a test helper elsewhere does not count.
"""

from __future__ import annotations

import re

from agents.inspection.detect import Detected, listen, writes
from agents.inspection.detect import go_packages as gp
from agents.inspection.detect.scan import NAME, env_file_names, find_names, has_metrics, health_path
from agents.inspection.tree import ProjectTree

FRAMEWORKS = (
    ("github.com/gin-gonic/gin", "gin"),
    ("github.com/labstack/echo", "echo"),
    ("github.com/go-chi/chi", "chi"),
    ("github.com/gofiber/fiber", "fiber"),
)
BINARY = "/app/server"

_ENV = (re.compile(rf"""\bos\.(?:Getenv|LookupEnv)\(\s*"({NAME})"\s*\)"""),)
_GO_LINE = re.compile(r"^go\s+(\d+\.\d+(?:\.\d+)?)\s*$", re.MULTILINE)
_MODULE = re.compile(r"^module\s+(\S+)", re.MULTILINE)
_CONFIG_FLAG = re.compile(r"""\.String(?:Var)?\([^)]*?"(config|conf|c|config-file)"\s*,""")
_MAKE_GENERATE = re.compile(r"^generate\s*:", re.MULTILINE)
_GO_GENERATE = re.compile(r"^//go:generate\s", re.MULTILINE)

# Import path prefixes of the packages a service uses to reach each backing service. Imports, not
# go.mod lines: go.mod also lists indirect modules the service never opens.
BACKING_IMPORTS: dict[str, tuple[str, ...]] = {
    "postgres": (
        "github.com/lib/pq",
        "github.com/jackc/pgx",
        "gorm.io/driver/postgres",
        "github.com/jinzhu/gorm/dialects/postgres",
    ),
    "mysql": (
        "github.com/go-sql-driver/mysql",
        "gorm.io/driver/mysql",
        "github.com/jinzhu/gorm/dialects/mysql",
    ),
    "mongodb": ("go.mongodb.org/mongo-driver", "gopkg.in/mgo.v2", "github.com/globalsign/mgo"),
    "redis": ("github.com/redis/go-redis", "github.com/go-redis/redis", "github.com/gomodule/redigo"),
    "rabbitmq": ("github.com/rabbitmq/amqp091-go", "github.com/streadway/amqp"),
}
# Packages that only build with cgo (a C compiler in the builder, glibc at run time).
CGO_IMPORTS = (
    "C",
    "github.com/mattn/go-sqlite3",
    "github.com/jinzhu/gorm/dialects/sqlite",
    "gorm.io/driver/sqlite",
    "github.com/confluentinc/confluent-kafka-go",
)
SQLITE_IMPORTS = (
    "github.com/mattn/go-sqlite3",
    "gorm.io/driver/sqlite",
    "github.com/jinzhu/gorm/dialects/sqlite",
)
_HEALTHY_ROUTE = re.compile(r"(?i)(healthz?|livez|readyz|ping|status|version)")


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
    match = _MODULE.search(gomod)
    module = match.group(1) if match else ""
    found.name = module.rsplit("/", 1)[-1] if module else None
    version = _GO_LINE.search(gomod)
    found.language_version = ".".join(version.group(1).split(".")[:2]) if version else None
    found.framework = next((name for path, name in FRAMEWORKS if path in gomod), "net/http")
    sources = dict(tree.sources(".go"))
    pkgs = gp.packages(sources)
    main, mains = gp.main_package(pkgs, module)
    found.start_command = (BINARY,)
    found.test_command = ("go", "test", "./...")
    found.env_vars = env_file_names(tree)
    if main is None:
        found.start_command = None
        return found
    found.build_target = "." if main == "." else "./" + main
    if len(mains) > 1:
        others = ", ".join("./" + d if d != "." else "." for d in mains if d != main)
        found.assumptions.append(
            f"main package {found.build_target} serves HTTP and is built; the other main packages "
            f"({others}) are not: pass --start-command and --build-command to ship another one"
        )
    dirs = gp.reachable(pkgs, main, module)
    texts = [pkgs[d].text for d in dirs]
    found.env_vars |= find_names(_ENV, texts)
    imports = gp.imported(pkgs, dirs)
    for service, prefixes in BACKING_IMPORTS.items():
        if any(path == p or path.startswith(p + "/") for path in imports for p in prefixes):
            found.backing_services.add(service)
    found.cgo = bool(imports & set(CGO_IMPORTS))
    found.build_tags = gp.production_tags(pkgs, dirs)
    files = {rel: t for d in dirs for rel, t in pkgs[d].files.items()}
    found.writes = writes.go_writes(files)
    if imports & set(SQLITE_IMPORTS) and not any(w.sqlite for w in found.writes):
        found.unknown_writes = "the app opens a SQLite database at a path it reads at run time"
    found.listen = listen.go(files)
    _port(found, gp.listens(pkgs, dirs), pkgs[main])
    _health(found, gp.routes(pkgs, dirs), texts)
    found.metrics_path = "/metrics" if has_metrics(texts) else None
    if tree.exists("Makefile") and _MAKE_GENERATE.search(tree.read("Makefile") or ""):
        found.build_command = ("make", "generate")
        found.assumptions.append("the Makefile has a generate target: the builder runs `make generate` first")
    elif any(_GO_GENERATE.search(text) for text in sources.values()):
        found.build_command = ("go", "generate", "./...")
    return found


def _port(found: Detected, sites: list[gp.Listen], main: gp.GoPackage) -> None:
    """The port of the service's own listener (not pprof, TLS-redirect or metrics side listeners):
    a literal, or the variable it reads (then every artifact sets that variable)."""
    service = [s for s in sites if not s.side]
    resolved = [s for s in service if s.resolved]
    if resolved:
        site = resolved[0]
        found.port = site.port or 8080
        if site.env:
            found.port_env = site.env
            found.env_vars.add(site.env)
        if site.port is None:
            found.assumptions.append(
                f"the port comes from {site.env} with no default in the code: using 8080"
            )
        return
    if service:
        config = _CONFIG_FLAG.search(main.text)
        source = (
            f"its configuration file (-{config.group(1)} flag)" if config else "a value computed at run time"
        )
        found.needs["port"] = (
            f"{found.build_target} listens on an address read from {source}, not from the code or an "
            "environment variable"
        )
        if config:
            found.config_flag = config.group(1)
            found.needs["config_files"] = (
                f"and it exits without that file: name the path it is mounted at from a secret (the start "
                f"command becomes '{BINARY} -{config.group(1)} <path>')"
            )
        return
    found.port = 8080
    found.assumptions.append("no listen call found in the built packages: assuming port 8080")


def _health(found: Detected, paths: list[str], texts: list[str]) -> None:
    """A health-like route with its router group prefixes; a version or ping route answers without
    data too. Without any registered route, the plain string scan of before."""
    candidates = sorted(
        {p for p in paths if _HEALTHY_ROUTE.search(p) and not re.search(r"[:{*]", p)},
        key=lambda p: (not re.search(r"(?i)health|livez|readyz", p), len(p), p),
    )
    if candidates:
        found.health_path = candidates[0]
    elif not paths:
        found.health_path = health_path(texts)
