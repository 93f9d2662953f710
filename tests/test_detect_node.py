"""Node.js detection on layouts of real projects, written as small fixtures: TypeScript builds,
route prefixes (Express routers, Fastify autoload), the port variable, required configuration,
backing services and the install commands that must work in a slim image.

Pure generator tests: nothing is installed or started here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from agents.devops.generate import generate
from agents.devops.render.pipeline import native_test
from agents.devops.spec import AppSpec
from agents.inspection.inspect import InspectionError, inspect_project
from contracts.payloads import ServiceSpec
from contracts.vocabulary import CIProvider, Target


def write(root: Path, files: dict[str, Any]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    return root


def dockerfile(root: Path) -> str:
    facts = inspect_project(root)
    return next(
        f.content for f in generate(AppSpec(facts=facts, targets=(Target.DOCKER,))) if f.path == "Dockerfile"
    )


TS_FASTIFY = {
    "package.json": {
        "name": "ts-demo",
        "type": "module",
        "scripts": {"build": "tsc", "start": "npm run build && node dist/server.js", "test": "tsx --test"},
        "dependencies": {"fastify": "^5.0.0", "@fastify/autoload": "^6.0.0", "@fastify/env": "^7.0.0"},
        "devDependencies": {"typescript": "~5.6.0", "tsx": "^4.0.0"},
    },
    "package-lock.json": "{}",
    "tsconfig.json": (
        '{\n  // compiled to dist\n  "compilerOptions": {"outDir": "dist", "rootDir": "src",},\n}\n'
    ),
    ".npmrc": "ignore-scripts=true\n",
    ".env.example": "COOKIE_NAME=session_id\nCOOKIE_SECRET=change-me-please\nRATE_LIMIT_MAX=4 # tests\n",
    "src/server.ts": (
        "import Fastify from 'fastify'\nimport serviceApp from './app.js'\n"
        "const app = Fastify()\napp.register(serviceApp)\n"
        "await app.listen({ port: process.env.PORT ?? 3000, host: '0.0.0.0' })\n"
    ),
    "src/app.ts": (
        "import path from 'node:path'\nimport fastifyAutoload from '@fastify/autoload'\n"
        "export default async function serviceApp (fastify) {\n"
        "  fastify.register(fastifyAutoload, { dir: path.join(import.meta.dirname, 'plugins') })\n"
        "  fastify.register(fastifyAutoload, {\n    dir: path.join(import.meta.dirname, 'routes'),\n"
        "    autoHooks: true,\n    options: { ...opts }\n  })\n}\n"
    ),
    "src/plugins/env.ts": (
        "import env from '@fastify/env'\n"
        "const schema = { type: 'object',\n"
        "  required: ['MYSQL_HOST', 'COOKIE_SECRET', 'COOKIE_NAME', 'RATE_LIMIT_MAX'],\n"
        "  properties: { MYSQL_HOST: { type: 'string', default: 'localhost' }, MYSQL_PORT: { type: 'number', "
        "default: 3306 }, COOKIE_SECRET: { type: 'string' }, COOKIE_NAME: { type: 'string' },\n"
        "  RATE_LIMIT_MAX: { type: 'number', default: 100 } } }\n"
        "export const autoConfig = { schema, data: process.env }\nexport default env\n"
        "const names = [process.env.MYSQL_PASSWORD, process.env.MYSQL_USER]\n"
    ),
    "src/routes/home.ts": (
        "export default async function (fastify) {\n  fastify.get('/', async () => ({ ok: 1 }))\n}\n"
    ),
    "src/routes/api/autohooks.ts": (
        "export default async function (fastify) {\n"
        "  fastify.addHook('onRequest', async (request, reply) => { reply.unauthorized() })\n}\n"
    ),
    "src/routes/api/index.ts": (
        "export default async function (fastify) {\n  fastify.get('/', async () => 1)\n}\n"
    ),
}


def test_typescript_apps_are_built_and_start_the_compiled_entry(tmp_path: Path) -> None:
    root = write(tmp_path / "ts-demo", TS_FASTIFY)
    facts = inspect_project(root)
    assert facts.start_command == ("node", "dist/server.js")
    assert facts.build_command == ("npm", "run", "build") and facts.build_output == "dist"
    assert ".npmrc" in facts.dependency_files  # the install reads it: copied with the manifests
    text = dockerfile(root)
    stages = re.findall(r"^FROM \S+ AS (\w+)", text, re.MULTILINE)
    assert stages == ["deps", "builder", "test", "runtime"]
    deps, builder = text.split("AS builder")[0], text.split("AS builder")[1].split("AS test")[0]
    assert "npm ci --omit=dev" in deps and "npm ci --include=dev" in builder
    assert builder.index("COPY . .") < builder.index("RUN npm run build")
    runtime = text[text.rindex("\nFROM ") :]
    assert "COPY --from=deps --chown=10001:10001 /app/node_modules ./node_modules" in runtime
    assert "COPY --from=builder --chown=10001:10001 /app/dist ./dist" in runtime
    assert runtime.rstrip().endswith('CMD ["node", "dist/server.js"]')


def test_typescript_entry_is_mapped_through_root_and_out_dir(tmp_path: Path) -> None:
    files = dict(TS_FASTIFY)
    files["package.json"] = {**TS_FASTIFY["package.json"], "scripts": {"build": "tsc"}}  # no start script
    files["tsconfig.json"] = '{"compilerOptions": {"outDir": "./build", "rootDir": "./src"}}'
    facts = inspect_project(write(tmp_path / "ts-demo", files))
    assert facts.start_command == ("node", "build/server.js") and facts.build_output == "build"


def test_fastify_autoload_folders_are_route_prefixes_and_guarded_folders_are_skipped(tmp_path: Path) -> None:
    facts = inspect_project(write(tmp_path / "ts-demo", TS_FASTIFY))
    # /api/ answers 401 (its autohooks guard every request); / answers without data.
    assert facts.health_path == "/"
    assert any("no health route: probes request GET /" in a for a in facts.assumptions)
    files = dict(TS_FASTIFY)
    files["src/routes/api/health/index.ts"] = "export default async (f) => { f.get('/', async () => 1) }\n"
    assert inspect_project(write(tmp_path / "ts-demo2", files)).health_path == "/api/health"


def test_fastify_listen_without_host_is_refused_naming_the_line_and_the_change(tmp_path: Path) -> None:
    """fastify's listen() binds localhost unless given a host: a set that no probe or load balancer
    can reach is refused, naming file:line, the code change, and the flag to generate anyway."""
    files = dict(TS_FASTIFY)
    files["src/server.ts"] = TS_FASTIFY["src/server.ts"].replace(", host: '0.0.0.0'", "")
    project = write(tmp_path / "ts-demo", files)
    with pytest.raises(InspectionError) as refused:
        inspect_project(project)
    call = "await app.listen({ port: process.env.PORT ?? 3000 })"
    line = files["src/server.ts"].splitlines().index(call) + 1
    assert str(refused.value).startswith(f"src/server.ts:{line} listens on localhost only (fastify's")
    assert "`listen({ port: process.env.PORT ?? 3000, host: '0.0.0.0' })`" in str(refused.value)
    assert "pass --allow-loopback (or set allow_loopback: in .orchestra.yaml)" in str(refused.value)
    allowed = inspect_project(project, ServiceSpec(allow_loopback=True))
    assert any("generated anyway (allow_loopback)" in a for a in allowed.assumptions)
    assert not any("localhost" in a for a in inspect_project(write(tmp_path / "ok", TS_FASTIFY)).assumptions)


def test_a_folder_the_compiled_app_creates_from_its_config_is_a_volume(tmp_path: Path) -> None:
    """fastify/demo's layout: a plugin compiled to dist/plugins/external/ creates
    ``path.join(import.meta.dirname, '../../..', fastify.config.UPLOAD_DIRNAME)``, whose default
    sits in the env schema (after a regex quantifier): /app/uploads, owned by the app user."""
    files = dict(TS_FASTIFY)
    files["src/plugins/env.ts"] = TS_FASTIFY["src/plugins/env.ts"].replace(
        "RATE_LIMIT_MAX: { type: 'number', default: 100 } }",
        "RATE_LIMIT_MAX: { type: 'number', default: 100 },\n"
        "  UPLOAD_DIRNAME: { type: 'string', pattern: '^(?!.*\\\\.{2}).*$', default: 'uploads' } }",
    )
    files["src/plugins/external/static.ts"] = (
        "import fs from 'node:fs'\nimport path from 'node:path'\n"
        "export const autoConfig = (fastify) => {\n"
        "  const dirPath = path.join(import.meta.dirname, '../../..', fastify.config.UPLOAD_DIRNAME)\n"
        "  if (!fs.existsSync(dirPath)) {\n    fs.mkdirSync(dirPath)\n  }\n  return { root: dirPath }\n}\n"
    )
    facts = inspect_project(write(tmp_path / "ts-demo", files))
    assert facts.writable_paths == ("/app/uploads",)
    assert any("src/plugins/external/static.ts:6" in a for a in facts.assumptions)
    dockerfile = next(f.content for f in generate(AppSpec(facts=facts)) if f.path == "Dockerfile")
    runtime = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "RUN mkdir -p /app/uploads \\\n && chown 10001:10001 /app/uploads\n" in runtime


def test_a_listen_host_read_from_a_variable_is_set_to_every_interface(tmp_path: Path) -> None:
    """``host: process.env.HOST``: HOST=0.0.0.0 in every artifact is the fix, no flag needed."""
    files = dict(TS_FASTIFY)
    files["src/server.ts"] = TS_FASTIFY["src/server.ts"].replace("host: '0.0.0.0'", "host: process.env.HOST")
    facts = inspect_project(write(tmp_path / "ts-demo", files))
    assert facts.runtime_env["HOST"] == "0.0.0.0" and "HOST" in facts.env_vars
    for explicit in ("app.listen(3000, 'localhost')", "server.listen(PORT, '127.0.0.1')"):
        files = {"package.json": {"name": "x", "dependencies": {"express": "4"}}, "index.js": explicit + "\n"}
        with pytest.raises(InspectionError, match=r"index.js:1 listens on localhost only \(an explicit"):
            inspect_project(write(tmp_path / explicit[:6], files))


def test_required_settings_get_the_projects_example_values_but_never_secrets(tmp_path: Path) -> None:
    facts = inspect_project(write(tmp_path / "ts-demo", TS_FASTIFY))
    # RATE_LIMIT_MAX and MYSQL_HOST have schema defaults: not required, so the example's test value
    # (RATE_LIMIT_MAX=4) is not copied; COOKIE_SECRET is a secret.
    assert facts.runtime_env == {"COOKIE_NAME": "session_id"}
    assert set(facts.required_env) == {"COOKIE_NAME", "COOKIE_SECRET"}
    assert "change-me-please" not in facts.model_dump_json()
    assert AppSpec(facts=facts).config_map()["COOKIE_NAME"] == "session_id"


EXPRESS_ROUTERS = {
    "package.json": {
        "name": "boilerplate",
        "main": "src/index.js",
        "scripts": {"start": "pm2 start ecosystem.config.json --no-daemon", "prepare": "husky install"},
        "dependencies": {"express": "^4.17.1", "mongoose": "^5.7.7", "joi": "^17.3.0"},
        "devDependencies": {"husky": "7.0.4", "jest": "^26.0.1", "mongodb-memory-server": "^9.0.0"},
    },
    "yarn.lock": "# THIS IS AN AUTOGENERATED FILE.\n# yarn lockfile v1\n",
    "src/index.js": (
        "const mongoose = require('mongoose');\nconst app = require('./app');\n"
        "const config = require('./config');\n"
        "mongoose.connect(config.url).then(() => app.listen(config.port));\n"
    ),
    "src/config.js": (
        "const Joi = require('joi');\nconst schema = Joi.object().keys({\n"
        "  PORT: Joi.number().default(3001),\n  SMTP_PORT: Joi.number().default(587),\n"
        "  MONGODB_URL: Joi.string().required().description('Mongo DB url'),\n"
        "  JWT_ACCESS_EXPIRATION_MINUTES: Joi.number().default(30),\n}).unknown();\n"
        "const { value } = schema.validate(process.env);\n"
        "module.exports = { port: value.PORT, url: process.env.MONGODB_URL };\n"
    ),
    "src/app.js": (
        "const express = require('express');\nconst routes = require('./routes/v1');\n"
        "const app = express();\napp.use('/v1', routes);\nmodule.exports = app;\n"
    ),
    "src/routes/v1/index.js": (
        "const express = require('express');\nconst authRoute = require('./auth.route');\n"
        "const healthRoute = require('./health.route');\nconst router = express.Router();\n"
        "const defaultRoutes = [\n  { path: '/auth', route: authRoute },\n"
        "  { path: '/status', route: healthRoute },\n];\n"
        "defaultRoutes.forEach((r) => router.use(r.path, r.route));\nmodule.exports = router;\n"
    ),
    "src/routes/v1/auth.route.js": (
        "const router = require('express').Router();\nrouter.post('/login', () => {});\n"
        "module.exports = router;\n"
    ),
    "src/routes/v1/health.route.js": (
        "const router = require('express').Router();\nrouter.get('/health', (req, res) => res.send('ok'));\n"
        "module.exports = router;\n"
    ),
}


def test_express_router_mounts_are_prefixes_of_the_health_route(tmp_path: Path) -> None:
    facts = inspect_project(write(tmp_path / "boilerplate", EXPRESS_ROUTERS))
    assert facts.health_path == "/v1/status/health"  # not "/health": the prefixes are kept
    assert facts.start_command == ("node", "src/index.js")  # pm2 in the start script: main, exec form


def test_port_variable_and_default_come_from_the_config_schema_not_other_ports(tmp_path: Path) -> None:
    facts = inspect_project(write(tmp_path / "boilerplate", EXPRESS_ROUTERS))
    assert (facts.port, facts.port_env) == (3001, "PORT")  # SMTP_PORT's 587 is a client port


def test_only_runtime_dependencies_add_backing_services(tmp_path: Path) -> None:
    facts = inspect_project(write(tmp_path / "boilerplate", EXPRESS_ROUTERS))
    assert facts.backing_services == ("mongodb",)  # mongodb-memory-server is a dev dependency
    files = dict(EXPRESS_ROUTERS)
    files["package.json"] = {
        **EXPRESS_ROUTERS["package.json"],
        "dependencies": {"express": "4", "mysql2": "3", "amqplib": "0.10", "ioredis": "5"},
    }
    assert inspect_project(write(tmp_path / "b2", files)).backing_services == ("mysql", "rabbitmq", "redis")


def test_yarn_classic_installs_without_corepack_and_drops_dev_tool_prepare(tmp_path: Path) -> None:
    root = write(tmp_path / "boilerplate", EXPRESS_ROUTERS)
    facts = inspect_project(root)
    assert facts.skip_scripts == ("prepare",)
    text = dockerfile(root)
    assert "corepack" not in text
    assert "npm pkg delete scripts.prepare && yarn install --frozen-lockfile --production" in text
    assert "yarn install --frozen-lockfile --production=false" in text  # the test stage
    assert native_test(AppSpec(facts=facts))[0] == "yarn install --frozen-lockfile --production=false"


def test_npm_production_install_drops_a_husky_prepare_script(tmp_path: Path) -> None:
    files = dict(EXPRESS_ROUTERS)
    del files["yarn.lock"]
    files["package-lock.json"] = "{}"
    text = dockerfile(write(tmp_path / "boilerplate", files))
    assert "npm pkg delete scripts.prepare && npm ci --omit=dev" in text


@pytest.mark.parametrize("provider", list(CIProvider))
def test_ci_test_job_gets_the_backing_service_and_values_for_every_variable(
    tmp_path: Path, provider: CIProvider
) -> None:
    facts = inspect_project(write(tmp_path / "boilerplate", EXPRESS_ROUTERS))
    spec = AppSpec(facts=facts, targets=(Target.CI,), ci=provider)
    text = generate(spec)[0].content
    assert "mongo:7.0.15-jammy" in text and "corepack" not in text
    if provider == CIProvider.GITHUB:
        job = yaml.safe_load(text)["jobs"]["test"]
        assert job["services"]["mongo"]["ports"] == ["27017:27017"]
        assert job["steps"][-1]["env"]["MONGODB_URL"] == "mongodb://127.0.0.1:27017/app"
    elif provider == CIProvider.GITLAB:
        job = yaml.safe_load(text)["test"]
        assert job["services"] == [{"name": "mongo:7.0.15-jammy", "alias": "mongo"}]
        assert job["variables"]["MONGODB_URL"] == "mongodb://mongo:27017/app"
    else:
        assert "MONGODB_URL = 'mongodb://mongo:27017/app'" in text and "--link ${svc_mongo.id}:mongo" in text
        assert "svc_mongo.stop()" in text
