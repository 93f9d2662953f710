"""CI/CD pipelines: GitHub Actions, GitLab CI or Jenkins, per ``spec.ci``.

All three run the same stages from :mod:`pipeline`: test -> build -> scan (Trivy) -> push (tag =
commit sha, main branch only) -> deploy per environment in order, the last one gated (GitHub
environment protection, GitLab manual job, Jenkins input). Cloud access uses OIDC / workload
identity, never stored keys; application secrets are referenced by name, never written here.
"""

from __future__ import annotations

import shlex
from typing import Any

from agents.devops.render import appenv, pipeline
from agents.devops.render.common import comment, dump_yaml, header, wrapped
from agents.devops.spec import AppSpec, SecretKind

# Actions pinned to the commit of a release (tags can move); the comment names the release.
ACTIONS: dict[str, tuple[str, str, str]] = {
    "checkout": ("actions/checkout", "11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2"),
    "setup-python": ("actions/setup-python", "0b93645e9fea7318ecaed2b359559ac225c90a2b", "v5.3.0"),
    "setup-go": ("actions/setup-go", "3041bf56c941b39c61721a86cd11f3bb1338122a", "v5.2.0"),
    "setup-node": ("actions/setup-node", "39370e3970a6d050c480ffad4ff0ed4d3fdee5af", "v4.1.0"),
    "upload-artifact": ("actions/upload-artifact", "b4b15b8c7c6ac21ea08fcf65892d2ee8f75cf882", "v4.4.3"),
    "download-artifact": ("actions/download-artifact", "fa0a91b85d4f404e444e00e005971372dc801d16", "v4.1.8"),
    "docker-login": ("docker/login-action", "9780b0c442fbb1117ed29e0efdff1e18412f7567", "v3.3.0"),
    "aws-credentials": (
        "aws-actions/configure-aws-credentials",
        "e3dd6a429d7300a6a4c196c26e071d42e0343502",
        "v4.0.2",
    ),
    "setup-helm": ("azure/setup-helm", "fe7b79cd5ee1e45176fcad797de68ecaf3ca4814", "v4.2.0"),
    "setup-kubectl": ("azure/setup-kubectl", "3e0aec4d80787158d308d7b364cb1b702e7feb7f", "v4.0.0"),
    "setup-terraform": ("hashicorp/setup-terraform", "b9cd54a3c349d3f38e8881555d616ced269862dd", "v3.1.2"),
}
TOOL_VERSIONS = {"helm": "v3.16.3", "kubectl": "v1.30.7", "terraform": "1.10.3"}
DOCKER_IMAGE = "docker:27.4.1"
DEPLOY_IMAGES = {
    "helm": "alpine/k8s:1.30.7",
    "k8s": "alpine/k8s:1.30.7",
    "ecs": "amazon/aws-cli:2.22.20",
    "terraform": "hashicorp/terraform:1.10.3",
    "image": DOCKER_IMAGE,
}


def render(spec: AppSpec) -> dict[str, str]:
    """The pipeline file of the chosen provider only."""
    if spec.ci == "gitlab":
        return {".gitlab-ci.yml": gitlab(spec)}
    if spec.ci == "jenkins":
        return {"Jenkinsfile": jenkins(spec)}
    return {".github/workflows/ci-cd.yml": github(spec)}


def ci_secrets(spec: AppSpec, environment: str) -> dict[str, str]:
    """env var -> CI secret name, for one environment's ``ci_secret`` references."""
    return {ref.env_var: ref.reference for ref in spec.refs(SecretKind.CI_SECRET, environment=environment)}


def _script(lines: list[str]) -> str:
    return "\n".join(wrapped(lines)) + "\n"


# --- GitHub Actions ----------------------------------------------------------------------------


def _uses(key: str) -> str:
    repo, sha, _ = ACTIONS[key]
    return f"{repo}@{sha}"


def _pin_comments(text: str) -> str:
    for repo, sha, version in ACTIONS.values():
        text = text.replace(f"uses: {repo}@{sha}\n", f"uses: {repo}@{sha}  # {version}\n")
    return text


def _checkout() -> dict[str, Any]:
    return {"uses": _uses("checkout"), "with": {"persist-credentials": False}}


def _gh_setup(spec: AppSpec) -> dict[str, Any]:
    facts = spec.facts
    if facts.language == "go":
        return {"uses": _uses("setup-go"), "with": {"go-version": facts.language_version}}
    if facts.language == "node":
        return {"uses": _uses("setup-node"), "with": {"node-version": facts.language_version}}
    return {"uses": _uses("setup-python"), "with": {"python-version": facts.language_version}}


def _health_options(healthcheck: tuple[str, ...]) -> str:
    """``docker create`` options that make a service container report healthy."""
    command = " ".join(shlex.quote(part) for part in healthcheck)
    return f'--health-cmd "{command}" --health-interval 5s --health-timeout 5s --health-retries 20'


def _gh_services(spec: AppSpec) -> dict[str, Any]:
    """Service containers for the test job, published on the runner's localhost."""
    services: dict[str, Any] = {}
    for service, env in appenv.test_services(spec):
        body: dict[str, Any] = {"image": service.image}
        if env:
            body["env"] = env
        body["ports"] = [f"{service.port}:{service.port}"]
        body["options"] = _health_options(service.healthcheck)
        services[service.host] = body
    return services


def _gh_test(spec: AppSpec) -> dict[str, Any]:
    """The test job: the language toolchain, the backing services, throwaway values for secrets."""
    step: dict[str, Any] = {"name": "Unit tests"}
    env = appenv.test_environment(spec, appenv.localhost, runner=True)
    if env:
        step["env"] = env
    step["run"] = _script(pipeline.native_test(spec))
    services = _gh_services(spec)
    return _gh_job(
        None, 15, [_checkout(), _gh_setup(spec), step], **({"services": services} if services else {})
    )


def _gh_aws(spec: AppSpec) -> dict[str, Any]:
    return {
        "name": "AWS credentials (OIDC, no stored keys)",
        "uses": _uses("aws-credentials"),
        "with": {"role-to-assume": "${{ vars.AWS_DEPLOY_ROLE_ARN }}", "aws-region": spec.aws_region},
    }


def _gh_tools(spec: AppSpec) -> list[dict[str, Any]]:
    platform = pipeline.deploy_platform(spec)
    steps = []
    if platform in ("helm", "k8s"):
        steps.append({"uses": _uses("setup-kubectl"), "with": {"version": TOOL_VERSIONS["kubectl"]}})
    if platform == "helm":
        steps.append({"uses": _uses("setup-helm"), "with": {"version": TOOL_VERSIONS["helm"]}})
    if platform == "terraform":
        steps.append(
            {
                "uses": _uses("setup-terraform"),
                "with": {"terraform_version": TOOL_VERSIONS["terraform"], "terraform_wrapper": False},
            }
        )
    return steps


def _gh_job(
    needs: list[str] | None, timeout: int, steps: list[dict[str, Any]], **extra: Any
) -> dict[str, Any]:
    job: dict[str, Any] = {}
    if needs:
        job["needs"] = needs
    job.update(extra)
    job.update({"runs-on": "ubuntu-24.04", "timeout-minutes": timeout, "steps": steps})
    return job


def github(spec: AppSpec) -> str:
    """.github/workflows/ci-cd.yml"""
    aws = pipeline.uses_aws(spec)
    on_main = "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    artifact = {"name": "image"}
    jobs: dict[str, Any] = {
        "test": _gh_test(spec),
        "build": _gh_job(
            ["test"],
            20,
            [
                _checkout(),
                {"name": "Build the runtime image", "run": _script(pipeline.build())},
                {
                    "uses": _uses("upload-artifact"),
                    "with": {
                        **artifact,
                        "path": pipeline.IMAGE_TAR,
                        "retention-days": 1,
                        "if-no-files-found": "error",
                    },
                },
            ],
        ),
        "scan": _gh_job(
            ["build"],
            15,
            [
                {"uses": _uses("download-artifact"), "with": artifact},
                {"name": "Trivy: fail on fixable HIGH/CRITICAL", "run": _script(pipeline.scan())},
            ],
        ),
    }
    login: list[dict[str, Any]]
    if "amazonaws.com" in spec.image_repository:
        login = [_gh_aws(spec), {"name": "Log in to ECR", "run": _script(pipeline.ecr_login(spec))}]
        push_permissions = {"contents": "read", "id-token": "write"}
    else:
        registry = spec.image_repository.split("/", 1)[0]
        login = [
            {
                "uses": _uses("docker-login"),
                "with": {
                    "registry": registry,
                    "username": "${{ github.actor }}",
                    "password": "${{ secrets.GITHUB_TOKEN }}",
                },
            }
        ]
        push_permissions = {"contents": "read", "packages": "write"}
    jobs["push"] = _gh_job(
        ["scan"],
        15,
        [
            {"uses": _uses("download-artifact"), "with": artifact},
            *login,
            {"name": "Push (tag = commit sha)", "run": _script(pipeline.push())},
        ],
        **{"if": on_main, "permissions": push_permissions},
    )
    previous = "push"
    deploy_permissions = {"contents": "read", "id-token": "write"} if aws else {"contents": "read"}
    if pipeline.deploy_platform(spec) == "image":
        deploy_permissions = push_permissions  # promoting an environment tag is a registry write
    variables = {name: f"${{{{ vars.{name} }}}}" for name in pipeline.deploy_variables(spec)}
    for env in spec.environments:
        secrets = {var: f"${{{{ secrets.{name} }}}}" for var, name in ci_secrets(spec, env).items()}
        steps = [_checkout(), *([_gh_aws(spec)] if aws else []), *_gh_tools(spec)]
        if pipeline.deploy_platform(spec) == "image":
            steps.append(login[-1])
        deploy_step: dict[str, Any] = {"name": f"Deploy to {env} ({spec.strategy})"}
        if secrets:
            deploy_step["env"] = secrets  # only this step sees them, not the setup actions
        deploy_step["run"] = _script(pipeline.deploy(spec, env))
        steps += [
            deploy_step,
            {
                "name": "On failure: roll back",
                "if": "failure()",
                "run": _script(pipeline.rollback(spec, env)),
            },
        ]
        jobs[f"deploy-{env}"] = _gh_job(
            [previous],
            30,
            steps,
            **{
                "if": on_main,
                "environment": {
                    "name": env,
                    "url": f"https://{spec.env_host(env)}",
                },
                "permissions": deploy_permissions,
                "concurrency": {"group": f"deploy-{env}", "cancel-in-progress": False},
                **({"env": variables} if variables else {}),
            },
        )
        previous = f"deploy-{env}"
        promote = pipeline.promote(spec, env)
        if promote is not None:
            jobs[f"promote-{env}"] = _gh_job(
                [previous],
                20,
                [
                    _checkout(),
                    *([_gh_aws(spec)] if aws else []),
                    *_gh_tools(spec),
                    {"name": f"Promote the canary in {env}", "run": _script(promote)},
                ],
                **{
                    "if": on_main,
                    "environment": {"name": f"{env}-promotion"},
                    "permissions": deploy_permissions,
                    "concurrency": {"group": f"deploy-{env}", "cancel-in-progress": False},
                    **({"env": variables} if variables else {}),
                },
            )
            previous = f"promote-{env}"
    workflow = {
        "name": "ci-cd",
        "on": {
            "push": {"branches": ["main"]},
            "pull_request": {"branches": ["main"]},
            "workflow_dispatch": None,
        },
        "permissions": {"contents": "read"},
        # Never cancel a running pipeline: it may be half-way through a deploy.
        "concurrency": {"group": "${{ github.workflow }}-${{ github.ref }}", "cancel-in-progress": False},
        "env": {"IMAGE": spec.image_repository, "IMAGE_TAG": "${{ github.sha }}"},
        "jobs": jobs,
    }
    note = (
        "Stages: test -> build -> scan (Trivy) -> push (tag = commit sha) -> "
        + " -> ".join(f"deploy {e}" for e in spec.environments)
        + ".\nConfigure GitHub environments "
        + ", ".join(spec.environments)
        + " (required reviewers on the last) with these variables: "
        + ", ".join(pipeline.deploy_variables(spec) or {"(none)": ""})
        + "."
    )
    text = dump_yaml(workflow, head=header(spec, "GitHub Actions pipeline") + comment(note))
    return _pin_comments(text.replace("workflow_dispatch: null", "workflow_dispatch: {}"))


# --- GitLab CI -------------------------------------------------------------------------------


def _gitlab_aws(spec: AppSpec) -> list[str]:
    # GitLab's OIDC token as a web identity: the AWS CLI, SDKs and Terraform pick it up from env.
    return [
        'printf "%s" "$AWS_ID_TOKEN" > "$CI_BUILDS_DIR/web-identity-token"',
        'export AWS_ROLE_ARN="$AWS_DEPLOY_ROLE_ARN"',
        'export AWS_WEB_IDENTITY_TOKEN_FILE="$CI_BUILDS_DIR/web-identity-token"',
        f"export AWS_REGION={spec.aws_region}",
    ]


def _gitlab_test(spec: AppSpec) -> dict[str, Any]:
    """The test job in the build image, with service containers reachable by their Compose names."""
    job: dict[str, Any] = {"stage": "test", "image": spec.facts.build_image, "timeout": "15m"}
    services = []
    for service, env in appenv.test_services(spec):
        entry: dict[str, Any] = {"name": service.image, "alias": service.host}
        if env:
            entry["variables"] = env
        services.append(entry)
    if services:
        job["services"] = services
    variables = appenv.test_environment(spec, appenv.compose_host, runner=True)
    if variables:
        job["variables"] = variables
    job["script"] = pipeline.native_test(spec)
    return job


def gitlab(spec: AppSpec) -> str:
    """.gitlab-ci.yml"""
    aws = pipeline.uses_aws(spec)
    main = {"if": "$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH"}
    id_tokens = {"AWS_ID_TOKEN": {"aud": "sts.amazonaws.com"}}
    ecr = "amazonaws.com" in spec.image_repository
    doc: dict[str, Any] = {
        "workflow": {
            "rules": [{"if": '$CI_PIPELINE_SOURCE == "merge_request_event"'}, main, {"if": "$CI_COMMIT_TAG"}]
        },
        "stages": ["test", "build", "scan", "push", "deploy"],
        "variables": {"IMAGE": spec.image_repository, "IMAGE_TAG": "$CI_COMMIT_SHA"},
        "default": {"interruptible": True, "retry": {"max": 1, "when": ["runner_system_failure"]}},
        ".docker": {
            "image": DOCKER_IMAGE,
            "services": [f"{DOCKER_IMAGE}-dind"],
            "variables": {"DOCKER_TLS_CERTDIR": "/certs"},
        },
        "test": _gitlab_test(spec),
        "build": {
            "extends": ".docker",
            "stage": "build",
            "timeout": "20m",
            "script": pipeline.build(),
            "artifacts": {"paths": [pipeline.IMAGE_TAR], "expire_in": "1 day"},
        },
        "scan": {
            "extends": ".docker",
            "stage": "scan",
            "needs": ["build"],
            "timeout": "15m",
            "script": pipeline.scan(),
        },
    }
    if ecr:
        login = ["apk add --no-cache aws-cli", *_gitlab_aws(spec), *pipeline.ecr_login(spec)]
    else:
        login = pipeline.password_login("CI_REGISTRY_USER", "CI_REGISTRY_PASSWORD", '"$CI_REGISTRY"')
    push: dict[str, Any] = {
        "extends": ".docker",
        "stage": "push",
        "needs": ["build", "scan"],
        "timeout": "15m",
        "rules": [main],
        "script": [*login, *pipeline.push()],
    }
    if ecr:
        push["id_tokens"] = id_tokens
    doc["push"] = push
    image = DEPLOY_IMAGES[pipeline.deploy_platform(spec)]
    previous = "push"
    for index, env in enumerate(spec.environments):
        last = index == len(spec.environments) - 1
        job: dict[str, Any] = {
            "stage": "deploy",
            "image": {"name": image, "entrypoint": [""]},
            "needs": [previous],
            "timeout": "30m",
            "resource_group": env,
            "environment": {"name": env, "url": f"https://{spec.env_host(env)}"},
            "rules": [{**main, "when": "manual"} if last else main],
        }
        if aws:
            job["id_tokens"] = id_tokens
        secrets = ci_secrets(spec, env)
        if secrets:
            job["variables"] = {var: f"${name}" for var, name in secrets.items()}
        job["script"] = [*(_gitlab_aws(spec) if aws else []), *pipeline.deploy(spec, env)]
        doc[f"deploy-{env}"] = job
        rollback = {k: v for k, v in job.items() if k not in ("script", "rules", "variables")}
        rollback.update(
            {
                "rules": [{**main, "when": "manual"}],
                "script": [*(_gitlab_aws(spec) if aws else []), *pipeline.rollback(spec, env)],
            }
        )
        rollback["environment"] = {"name": env, "action": "access"}
        doc[f"rollback-{env}"] = rollback
        previous = f"deploy-{env}"
        promote = pipeline.promote(spec, env)
        if promote is not None:
            promotion = {k: v for k, v in job.items() if k not in ("script", "rules", "variables")}
            promotion.update(
                {
                    "needs": [previous],
                    "rules": [{**main, "when": "manual"}],
                    "script": [*(_gitlab_aws(spec) if aws else []), *promote],
                }
            )
            doc[f"promote-{env}"] = promotion
            previous = f"promote-{env}"
    note = (
        "Environment-scoped CI/CD variables: "
        + ", ".join(pipeline.deploy_variables(spec) or {"(none)": ""})
        + ".\nThe last environment deploys only when started by hand; rollback jobs are manual."
    )
    for job in doc.values():
        if isinstance(job, dict) and "script" in job:
            job["script"] = wrapped(job["script"])
    return dump_yaml(doc, head=header(spec, "GitLab CI pipeline") + comment(note))


# --- Jenkins ---------------------------------------------------------------------------------


def _sh(lines: list[str], indent: int) -> str:
    """A ``sh`` step with a single-quoted Groovy string, so Groovy never interpolates secrets."""
    pad = " " * indent
    rows = "\n".join(wrapped(lines)).splitlines()
    body = "\n".join(f"{pad}  {line}" for line in rows).replace("\\", "\\\\").replace("'''", "\\'\\'\\'")
    return f"{pad}sh '''\n{body}\n{pad}'''"


def _jenkins_sidecars(spec: AppSpec, services: list[tuple[Any, dict[str, str]]]) -> list[str]:
    """Test stage body with backing services as sidecar containers (Docker Pipeline plugin): run
    them, wait until healthy, run the tests in the build image linked to them, always stop them."""
    names = [f"svc_{service.host}" for service, _ in services]
    lines = ["        script {"]
    for (service, env), var in zip(services, names, strict=True):
        options = [
            *(f"-e {shlex.quote(f'{k}={v}')}" for k, v in env.items()),
            _health_options(service.healthcheck),
        ]
        groovy = "'" + " ".join(options).replace("\\", "\\\\").replace("'", "\\'") + "'"
        lines.append(f"          def {var} = docker.image('{service.image}').run({groovy})")
    links = " ".join(
        f"--link ${{{var}.id}}:{service.host}" for (service, _), var in zip(services, names, strict=True)
    )
    lines += [
        "          try {",
        f"            for (c in [{', '.join(names)}]) {{",
        "              timeout(time: 3, unit: 'MINUTES') {",
        "                waitUntil { sh(script: \"docker inspect -f '{{.State.Health.Status}}' ${c.id} \" +",
        "                  '| grep -qx healthy', returnStatus: true) == 0 }",
        "              }",
        "            }",
        f"            docker.image('{spec.facts.build_image}').inside(\"{links}\") {{",
        _sh(pipeline.native_test(spec), 14),
        "            }",
        "          } finally {",
        *(f"            {var}.stop()" for var in names),
        "          }",
        "        }",
    ]
    return lines


def jenkins(spec: AppSpec) -> str:
    """Jenkinsfile (declarative)."""
    facts = spec.facts
    ecr = "amazonaws.com" in spec.image_repository
    stages: list[str] = []

    def stage(name: str, body: list[str], *, when_main: bool = False, extra: str = "") -> None:
        parts = [f"    stage('{name}') {{"]
        if when_main:
            parts.append("      when { branch 'main' }")
        if extra:
            parts.append(extra)
        parts.append("      steps {")
        parts += body
        parts.append("      }")
        parts.append("    }")
        stages.append("\n".join(parts))

    test_env = "\n".join(
        f"        {name} = '{value}'"
        for name, value in appenv.test_environment(spec, appenv.compose_host, runner=True).items()
    )
    env_block = f"      environment {{\n{test_env}\n      }}" if test_env else ""
    services = appenv.test_services(spec)
    if services:
        stage("Test", _jenkins_sidecars(spec, services), extra=env_block)
    else:
        agent = f"      agent {{ docker {{ image '{facts.build_image}'; reuseNode true }} }}"
        stage("Test", [_sh(pipeline.native_test(spec), 8)], extra="\n".join(filter(None, [agent, env_block])))
    stage("Build", [_sh(pipeline.build(), 8)])
    stage("Scan", [_sh(pipeline.scan(), 8)])
    if ecr:
        push_body = [_sh([*pipeline.ecr_login(spec), *pipeline.push()], 8)]
    else:
        registry = spec.image_repository.split("/", 1)[0]
        push_body = [
            "        withCredentials([usernamePassword(credentialsId: 'registry-credentials', "
            "usernameVariable: 'REGISTRY_USER', passwordVariable: 'REGISTRY_PASSWORD')]) {",
            _sh(
                [*pipeline.password_login("REGISTRY_USER", "REGISTRY_PASSWORD", registry), *pipeline.push()],
                10,
            ),
            "        }",
        ]
    stage("Push", push_body, when_main=True)
    for index, env in enumerate(spec.environments):
        last = index == len(spec.environments) - 1
        secrets = ci_secrets(spec, env)
        env_lines = [f"        {var} = credentials('{name}')" for var, name in secrets.items()]
        extra = []
        if last:
            extra.append(f"      input {{ message 'Deploy {facts.name} to {env}?'; ok 'Deploy' }}")
        if env_lines:
            extra.append("      environment {\n" + "\n".join(env_lines) + "\n      }")
        # DEPLOYING names the environment in flight, so the pipeline's failure handler rolls it back.
        stage(
            f"Deploy {env}",
            [
                f"        script {{ env.DEPLOYING = '{env}' }}",
                _sh(pipeline.deploy(spec, env), 8),
                "        script { env.DEPLOYING = '' }",
            ],
            when_main=True,
            extra="\n".join(extra),
        )
        promote = pipeline.promote(spec, env)
        if promote is not None:
            stage(
                f"Promote {env}",
                [_sh(promote, 8)],
                when_main=True,
                extra=f"      input {{ message 'Promote the canary in {env}?'; ok 'Promote' }}",
            )
    rollbacks = " else ".join(
        f"if (env.DEPLOYING == '{env}') {{\n{_sh(pipeline.rollback(spec, env), 10)}\n        }}"
        for env in spec.environments
    )
    variables = "\n".join(
        f"    // {name}: {why} (set per environment on the agent or folder)"
        for name, why in pipeline.deploy_variables(spec).items()
    )
    return (
        header(spec, "Jenkins declarative pipeline", "//")
        + "// Needs: Docker on the agent, the Docker Pipeline plugin, and cloud access through the agent's\n"
        + "// workload identity (IAM role), never stored cloud keys.\n"
        + "pipeline {\n"
        + "  agent { label 'docker' }\n"
        + "  options {\n"
        + "    timeout(time: 60, unit: 'MINUTES')\n"
        + "    disableConcurrentBuilds()\n"
        + "    buildDiscarder(logRotator(numToKeepStr: '30'))\n"
        + "    timestamps()\n"
        + "  }\n"
        + "  environment {\n"
        + f"    IMAGE = '{spec.image_repository}'\n"
        + '    IMAGE_TAG = "${env.GIT_COMMIT}"\n'
        + (variables + "\n" if variables else "")
        + "  }\n"
        + "  stages {\n"
        + "\n".join(stages)
        + "\n  }\n"
        + "  post {\n"
        + "    always {\n"
        + f"      sh 'rm -f {pipeline.IMAGE_TAR}; docker image rm \"$IMAGE:$IMAGE_TAG\" || true'\n"
        + "    }\n"
        + "    failure {\n"
        + f'      echo "{facts.name}: pipeline failed at ${{env.STAGE_NAME}}; see docs/ROLLBACK.md"\n'
        + "      script {\n"
        + f"        {rollbacks}\n"
        + "      }\n"
        + "    }\n"
        + "  }\n"
        + "}\n"
    )
