"""Go detection on layouts of real projects, written as small fixtures: which main package is the
service, what it listens on, its routes, its build (cgo, tags, code generation) and base images.

Pure generator tests: no Go toolchain, no server.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from agents.devops.generate import generate
from agents.devops.spec import AppSpec
from agents.inspection import images
from agents.inspection.inspect import InspectionError, inspect_project
from contracts.payloads import ServiceSpec
from contracts.vocabulary import Target

MODULE = "example.com/acme/dial"


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def gomod(go: str = "1.22", requires: str = "") -> str:
    return f"module {MODULE}\n\ngo {go}\n\nrequire (\n{requires})\n"


def files_of(spec: AppSpec) -> dict[str, str]:
    return {f.path: f.content for f in generate(spec)}


# A module with a CLI first in alphabetical order, a UI storybook that listens on its own, and the
# daemon that builds the server from the module's http package (whose listen address is a field).
CLI_SERVER_STORYBOOK = {
    "go.mod": gomod(),
    "http/server.go": (
        'package http\n\nimport (\n\t"net"\n\tnethttp "net/http"\n)\n\n'
        "type Server struct{ Addr string; ln net.Listener }\n\n"
        "func NewServer() *Server { return &Server{} }\n\n"
        "func (s *Server) Open() (err error) {\n"
        '\tif s.ln, err = net.Listen("tcp", s.Addr); err != nil {\n\t\treturn err\n\t}\n'
        "\tgo nethttp.Serve(s.ln, nil)\n\treturn nil\n}\n\n"
        "// ListenAndServeDebug serves pprof.\n"
        'func ListenAndServeDebug() error { return nethttp.ListenAndServe(":6060", nil) }\n'
    ),
    "http/client.go": "package http\n\ntype Client struct{ URL string }\n",
    "cmd/dial/main.go": (
        f'package main\n\nimport (\n\t"flag"\n\n\t"{MODULE}/http"\n)\n\n'
        'func main() {\n\tflag.Parse()\n\t_ = http.Client{URL: "https://example.com"}\n}\n'
    ),
    "cmd/dial-storybook/main.go": (
        'package main\n\nimport "net/http"\n\nfunc main() { http.ListenAndServe(":3001", nil) }\n'
    ),
    "cmd/diald/main.go": (
        f'package main\n\nimport (\n\t"flag"\n\n\t"{MODULE}/http"\n)\n\n'
        "func main() {\n"
        "\tvar path string\n"
        '\tflag.StringVar(&path, "config", "~/diald.conf", "config path")\n'
        "\tflag.Parse()\n"
        "\ts := http.NewServer()\n\t_ = s.Open()\n}\n"
    ),
}


def test_the_main_package_that_serves_http_is_built_not_the_first_cmd(tmp_path: Path) -> None:
    root = write(tmp_path / "dial", CLI_SERVER_STORYBOOK)
    facts = inspect_project(
        root, ServiceSpec(port=8080, start_command=["/app/server", "-config", "/etc/d.conf"])
    )
    assert facts.build_target == "./cmd/diald"
    assert any("./cmd/dial, ./cmd/dial-storybook" in a for a in facts.assumptions)
    dockerfile = files_of(AppSpec(facts=facts, targets=(Target.DOCKER,)))["Dockerfile"]
    assert re.search(r"go build .* -o /out/server \./cmd/diald$", dockerfile, re.MULTILINE)


def test_a_listen_address_from_a_config_file_is_refused_naming_the_flags(tmp_path: Path) -> None:
    root = write(tmp_path / "dial", CLI_SERVER_STORYBOOK)
    with pytest.raises(InspectionError) as refused:
        inspect_project(root)
    message = str(refused.value)
    assert "./cmd/diald" in message and "configuration file (-config flag)" in message
    assert message.endswith("pass --port and --config-file") and "\n" not in message
    assert "the start command becomes '/app/server -config <path>'" in message
    # An explicit start command still does (the operator mounts the file it names).
    facts = inspect_project(
        root, ServiceSpec(port=8080, start_command=["/app/server", "-config", "/etc/d.conf"])
    )
    assert facts.port == 8080 and facts.start_command == ("/app/server", "-config", "/etc/d.conf")


def test_a_config_file_comes_from_a_secret_mounted_at_its_path(tmp_path: Path) -> None:
    """--config-file names where the app's configuration file is mounted: the start command passes
    it with the app's own flag; Compose mounts a secret file there, Kubernetes and Helm a key of the
    <service>-files Secret (subPath, read-only); the image never holds it."""
    root = write(tmp_path / "dial", CLI_SERVER_STORYBOOK)
    facts = inspect_project(root, ServiceSpec(port=3000, config_files=["/etc/diald/diald.conf"]))
    assert facts.start_command == ("/app/server", "-config", "/etc/diald/diald.conf")
    assert facts.config_files == ("/etc/diald/diald.conf",)
    files = files_of(AppSpec(facts=facts))
    assert not [
        line for line in files["Dockerfile"].splitlines() if "diald.conf" in line and "CMD" not in line
    ]
    for name in ("docker-compose.yml", "docker-compose.prod.yml"):
        doc = yaml.safe_load(files[name])
        assert {"source": "diald_conf", "target": "/etc/diald/diald.conf"} in doc["services"]["app"][
            "secrets"
        ]
        assert doc["secrets"]["diald_conf"]["file"].endswith("/diald.conf")
    pod = yaml.safe_load(files["k8s/deployment.yaml"].split("\n---\n")[-1])["spec"]["template"]["spec"]
    mount = {"name": "config-diald-conf", "mountPath": "/etc/diald/diald.conf", "subPath": "diald.conf"}
    assert {**mount, "readOnly": True} in pod["containers"][0]["volumeMounts"]
    volume = next(v for v in pod["volumes"] if v["name"] == "config-diald-conf")
    assert volume["secret"]["secretName"] == "dial-files" and volume["secret"]["items"] == [
        {"key": "diald.conf", "path": "diald.conf"}
    ]
    assert "--from-file=diald.conf=./secrets/diald.conf" in files["k8s/secrets.yaml"]
    values = yaml.safe_load(files["charts/dial/values.yaml"])
    assert values["configFiles"] == [
        {"name": "config-diald-conf", "mountPath": "/etc/diald/diald.conf", "key": "diald.conf"}
    ]
    assert any("ECS cannot mount a secret as a file" in a for a in facts.assumptions)


GIN_APP = {
    "go.mod": gomod(
        "1.15",
        "\tgithub.com/gin-gonic/gin v1.8.1\n\tgithub.com/jinzhu/gorm v1.9.16\n"
        "\tgithub.com/lib/pq v1.10.0 // indirect\n\tgithub.com/go-sql-driver/mysql v1.5.0 // indirect\n"
        "\tgithub.com/mattn/go-sqlite3 v1.14.15 // indirect\n",
    ),
    "go.sum": "",
    "common/database.go": (
        'package common\n\nimport (\n\t"github.com/jinzhu/gorm"\n'
        '\t_ "github.com/jinzhu/gorm/dialects/sqlite"\n)\n\n'
        'func Init() *gorm.DB { db, _ := gorm.Open("sqlite3", "./app.db"); return db }\n'
    ),
    "main.go": (
        f'package main\n\nimport (\n\t"net/http"\n\n\t"github.com/gin-gonic/gin"\n\t"{MODULE}/common"\n)\n\n'
        'func debug() { http.ListenAndServe(":6060", nil) }\n\n'
        "func main() {\n\tcommon.Init()\n\tr := gin.Default()\n"
        '\tv1 := r.Group("/api")\n\tv1.GET("/articles/:slug", nil)\n'
        '\tping := r.Group("/api/ping")\n\tping.GET("/", nil)\n'
        "\tgo debug()\n"
        "\tr.Run() // listen and serve on 0.0.0.0:9999\n}\n"
    ),
}


def test_gin_run_without_address_reads_port_and_group_prefixes_make_the_health_path(tmp_path: Path) -> None:
    facts = inspect_project(write(tmp_path / "realworld", GIN_APP))
    assert (facts.port, facts.port_env) == (8080, "PORT")  # not 9999 (a comment), not 6060 (pprof)
    assert facts.health_path == "/api/ping/"
    assert facts.build_target == "."


def test_indirect_database_modules_add_no_backing_service(tmp_path: Path) -> None:
    facts = inspect_project(write(tmp_path / "realworld", GIN_APP))
    assert facts.backing_services == ()  # lib/pq and go-sql-driver/mysql are only indirect in go.mod


def test_cgo_sqlite_builds_with_gcc_and_runs_on_glibc(tmp_path: Path) -> None:
    facts = inspect_project(write(tmp_path / "realworld", GIN_APP))
    assert facts.cgo and facts.base_image == images.GO_CGO_RUNTIME
    dockerfile = files_of(AppSpec(facts=facts, targets=(Target.DOCKER,)))["Dockerfile"]
    assert "CGO_ENABLED=1" in dockerfile and "CGO_ENABLED=0" not in dockerfile
    runtime = dockerfile[dockerfile.rindex("\nFROM ") :]
    assert runtime.startswith(f"\nFROM {images.GO_CGO_RUNTIME} AS runtime")
    assert "useradd" in runtime and "adduser -S" not in runtime  # Debian, not Alpine, tools
    assert '"bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080' in runtime and "wget" not in runtime


def test_go_lines_older_than_any_bookworm_image_are_raised_to_a_real_tag(tmp_path: Path) -> None:
    facts = inspect_project(write(tmp_path / "realworld", GIN_APP))
    assert facts.language_version == images.GO_OLDEST
    assert facts.build_image == f"golang:{images.GO[images.GO_OLDEST]}-bookworm" == "golang:1.19.13-bookworm"
    assert any("go.mod declares go 1.15" in a for a in facts.assumptions)


@pytest.mark.parametrize(("go", "tag"), [("1.19", "1.19.13"), ("1.21", "1.21.13"), ("1.21.4", "1.21.13")])
def test_known_go_versions_use_the_pinned_bookworm_patch(tmp_path: Path, go: str, tag: str) -> None:
    root = write(tmp_path / "svc", {"go.mod": gomod(go), "main.go": GO_ENV_PORT})
    assert inspect_project(root).build_image == f"golang:{tag}-bookworm"


def test_the_go_image_table_starts_at_bookworm() -> None:
    assert min(images.GO, key=lambda v: tuple(map(int, v.split(".")))) == images.GO_OLDEST == "1.19"
    assert all(patch.startswith(minor + ".") for minor, patch in images.GO.items())


GO_ENV_PORT = (
    'package main\n\nimport (\n\t"net/http"\n\t"os"\n)\n\n'
    "func main() {\n"
    '\tport := os.Getenv("WHOAMI_PORT_NUMBER")\n'
    '\tif port == "" {\n\t\tport = "8081"\n\t}\n'
    '\thttp.HandleFunc("GET /healthz", nil)\n'
    '\thttp.ListenAndServe(":"+port, nil)\n}\n'
)


def test_a_port_read_from_a_named_variable_is_set_in_every_artifact(tmp_path: Path) -> None:
    facts = inspect_project(write(tmp_path / "whoami", {"go.mod": gomod(), "main.go": GO_ENV_PORT}))
    assert (facts.port, facts.port_env, facts.health_path) == (8081, "WHOAMI_PORT_NUMBER", "/healthz")
    files = files_of(AppSpec(facts=facts))
    assert "ENV WHOAMI_PORT_NUMBER=8081" in files["Dockerfile"]
    for path in ("docker-compose.yml", "docker-compose.test.yml", "docker-compose.prod.yml"):
        app = yaml.safe_load(files[path])["services"]["app"]
        assert app["environment"]["WHOAMI_PORT_NUMBER"] == "8081", path
    configmap = next(d for d in yaml.safe_load_all(files["k8s/configmap.yaml"]) if d)
    assert configmap["data"]["WHOAMI_PORT_NUMBER"] == "8081"
    task = yaml.safe_load(files["ecs-task-definition.json"])
    assert {"name": "WHOAMI_PORT_NUMBER", "value": "8081"} in task["containerDefinitions"][0]["environment"]


def test_build_tags_and_code_generation_run_in_the_builder(tmp_path: Path) -> None:
    root = write(
        tmp_path / "gen",
        {
            "go.mod": gomod(),
            "Makefile": "default: generate\n\ngenerate:\n\tgo run example.com/tool ./views\n",
            "assets/prod.go": "//go:build production\n\npackage assets\n\nvar Embedded = true\n",
            "assets/dev.go": "//go:build !production\n\npackage assets\n\nvar Embedded = false\n",
            "main.go": (
                f'package main\n\nimport (\n\t"net/http"\n\n\t"{MODULE}/assets"\n)\n\n'
                'func main() {\n\t_ = assets.Embedded\n\thttp.ListenAndServe(":8080", nil)\n}\n'
            ),
        },
    )
    facts = inspect_project(root)
    assert facts.build_tags == ("production",) and facts.build_command == ("make", "generate")
    dockerfile = files_of(AppSpec(facts=facts, targets=(Target.DOCKER,)))["Dockerfile"]
    generate_at, build_at = dockerfile.index("make generate"), dockerfile.index("go build -tags production")
    assert dockerfile.index("COPY . .") < generate_at < build_at


def test_backing_services_come_from_the_imports_of_the_built_packages(tmp_path: Path) -> None:
    root = write(
        tmp_path / "orders",
        {
            "go.mod": gomod(),
            "store/store.go": 'package store\n\nimport _ "go.mongodb.org/mongo-driver/mongo"\n',
            "queue/queue.go": 'package queue\n\nimport _ "github.com/rabbitmq/amqp091-go"\n',
            "tools/seed/main.go": 'package main\n\nimport _ "github.com/lib/pq"\n\nfunc main() {}\n',
            "main.go": (
                f'package main\n\nimport (\n\t"net/http"\n\n\t_ "{MODULE}/queue"\n\t_ "{MODULE}/store"\n)\n\n'
                'func main() { http.ListenAndServe(":8080", nil) }\n'
            ),
        },
    )
    facts = inspect_project(root)
    assert facts.backing_services == ("mongodb", "rabbitmq")  # not postgres: only a tool imports lib/pq
    assert not facts.cgo


def test_a_sqlite_file_the_binary_opens_lands_in_a_data_volume(tmp_path: Path) -> None:
    """``./app.db`` from /app would be beside the binary on a read-only root: the binary runs in
    /data instead, a volume in every target, created and owned by the app user in the image."""
    facts = inspect_project(write(tmp_path / "realworld", GIN_APP))
    assert facts.writable_paths == ("/data",) and facts.run_dir == "/data" and facts.workdir == "/data"
    assert any("/data is a writable volume (SQLite database app.db" in a for a in facts.assumptions)
    files = files_of(AppSpec(facts=facts))
    runtime = files["Dockerfile"].rsplit("\nFROM ", 1)[1]
    assert "RUN mkdir -p /data \\\n && chown 10001:10001 /data\nWORKDIR /data\n" in runtime
    assert 'VOLUME ["/tmp", "/data"]' in runtime and runtime.index("VOLUME") < runtime.index("USER")
    pod = yaml.safe_load(files["k8s/deployment.yaml"].split("\n---\n")[-1])["spec"]["template"]["spec"]
    assert {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
    assert {"name": "data", "mountPath": "/data"} in pod["containers"][0]["volumeMounts"]
    task = json.loads(files["ecs-task-definition.json"])
    assert {"name": "data"} in task["volumes"]
    assert {"sourceVolume": "data", "containerPath": "/data", "readOnly": False} in task[
        "containerDefinitions"
    ][0]["mountPoints"]
    assert "data:/data" in yaml.safe_load(files["docker-compose.prod.yml"])["services"]["app"]["volumes"]


def test_a_path_above_the_working_directory_moves_the_working_directory_into_the_volume(
    tmp_path: Path,
) -> None:
    """gin's realworld example opens ``./../gorm.db``: from /app that is /gorm.db (the root, not
    writable); from /data/run it is /data/gorm.db, in the volume."""
    files = dict(GIN_APP)
    files["common/database.go"] = files["common/database.go"].replace('"./app.db"', '"./../gorm.db"')
    facts = inspect_project(write(tmp_path / "realworld", files))
    assert facts.writable_paths == ("/data",) and facts.run_dir == "/data/run"
    runtime = files_of(AppSpec(facts=facts, targets=(Target.DOCKER,)))["Dockerfile"].rsplit("\nFROM ", 1)[1]
    assert (
        "RUN mkdir -p /data /data/run \\\n && chown 10001:10001 /data /data/run\nWORKDIR /data/run\n"
        in runtime
    )


def test_a_tcp_probe_on_the_glibc_runtime_uses_bash_not_nc(tmp_path: Path) -> None:
    files = dict(GIN_APP)
    files["main.go"] = files["main.go"].replace('\tping := r.Group("/api/ping")\n\tping.GET("/", nil)\n', "")
    facts = inspect_project(write(tmp_path / "realworld", files))
    assert facts.probe == "tcp" and facts.cgo
    runtime = files_of(AppSpec(facts=facts, targets=(Target.DOCKER,)))["Dockerfile"].rsplit("\nFROM ", 1)[1]
    assert '["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]' in runtime and '"nc"' not in runtime


def test_a_loopback_listen_address_is_refused_naming_the_line(tmp_path: Path) -> None:
    files = dict(GIN_APP)
    files["main.go"] = files["main.go"].replace("r.Run()", 'r.Run("127.0.0.1:8080")')
    assert 'r.Run("127.0.0.1:8080")' in files["main.go"]
    root = write(tmp_path / "realworld", files)
    with pytest.raises(InspectionError) as refused:
        inspect_project(root)
    line = next(i for i, text in enumerate(files["main.go"].splitlines(), 1) if "127.0.0.1:8080" in text)
    assert str(refused.value).startswith(f"main.go:{line} listens on localhost only (a loopback address")
    assert 'listen on ":8080" (every interface)' in str(refused.value)
    assert inspect_project(root, ServiceSpec(allow_loopback=True)).port == 8080
