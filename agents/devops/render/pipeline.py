"""What every CI provider runs, as shell lines: test, build, scan, push, deploy, promote, rollback.

ci.py serialises these into GitHub Actions, GitLab CI or Jenkins, so the three pipelines do the
same thing. Scripts read ``$IMAGE`` (repository) and ``$IMAGE_TAG`` (the commit sha); deploy
scripts read environment-scoped CI variables named in :func:`deploy_variables`.
"""

from __future__ import annotations

from typing import Literal

from agents.devops.render import kubernetes
from agents.devops.render.docker import node_install
from agents.devops.render.rollout import ecs_names, helm_deploy, k8s_deploy, k8s_promote, k8s_rollback
from agents.devops.spec import AppSpec, Target
from agents.inspection import images

Platform = Literal["helm", "k8s", "ecs", "terraform", "image"]
TRIVY_IMAGE = "aquasec/trivy:0.58.1"
IMAGE_TAR = "image.tar"
CFN_TEMPLATE = "cloudformation/infrastructure.yaml"
PREVIOUS = "previous-task-definition.txt"


def deploy_platform(spec: AppSpec) -> Platform:
    """Where deploy jobs ship to; one platform per pipeline (Helm over raw manifests, ECS via its
    CloudFormation stack over Terraform, else promote environment image tags)."""
    for target, platform in (
        (Target.HELM, "helm"),
        (Target.K8S, "k8s"),
        (Target.ECS, "ecs"),
        (Target.TERRAFORM, "terraform"),
    ):
        if spec.has(target):
            return platform  # type: ignore[return-value]
    return "image"


def uses_aws(spec: AppSpec) -> bool:
    """Deploys (EKS, ECS, Terraform) or the registry (ECR) need AWS credentials via OIDC."""
    return deploy_platform(spec) != "image" or "amazonaws.com" in spec.image_repository


def deploy_variables(spec: AppSpec) -> dict[str, str]:
    """Environment-scoped CI variables (not secrets: identifiers) the deploy scripts read."""
    platform = deploy_platform(spec)
    out: dict[str, str] = {}
    if uses_aws(spec):
        out["AWS_DEPLOY_ROLE_ARN"] = "IAM role the pipeline assumes through OIDC (no stored keys)"
    if platform in ("helm", "k8s"):
        out["EKS_CLUSTER_NAME"] = "EKS cluster of the environment"
    if platform in ("ecs", "terraform"):
        out["VPC_ID"] = "VPC of the environment"
        out["PRIVATE_SUBNET_IDS"] = "comma-separated private subnets for the tasks"
        out["ALB_LISTENER_ARN"] = "HTTPS listener of the shared load balancer"
        out["ALB_SECURITY_GROUP_ID"] = "security group of that load balancer (allowed to reach the tasks)"
        out["ALARM_TOPIC_ARN"] = "SNS topic for alarms"
    if platform == "terraform":
        out["TF_STATE_BUCKET"] = "S3 bucket holding Terraform state (S3 lockfile locking)"
    return out


def native_test(spec: AppSpec) -> list[str]:
    """Install dependencies and run the detected test command, in the language's build image."""
    facts = spec.facts
    test = " ".join(facts.test_command)
    manager = facts.package_manager
    if manager == "uv":
        return [
            f"python -m pip install --no-cache-dir uv=={images.UV_VERSION}",
            "uv sync --frozen",
            f"uv run --frozen {test}",
        ]
    if manager == "poetry":
        return [
            f"python -m pip install --no-cache-dir poetry=={images.POETRY_VERSION}",
            "poetry install --no-root --no-interaction",
            f"poetry run {test}",
        ]
    if manager == "pip":
        files = [f for f in (*facts.dependency_files, *facts.dev_dependency_files) if f.endswith(".txt")]
        install = " ".join(f"-r {f}" for f in files) if files else "."
        return [f"python -m pip install --no-cache-dir {install}", test]
    if manager == "go":
        return ["go vet ./...", test]
    # The Dockerfile's own install command (its test stage): yarn classic without corepack.
    return [node_install(facts, production=False), test]


def build() -> list[str]:
    """Build the runtime stage once and save it, so scan and push use the very same image."""
    return [
        'docker build --target runtime --tag "$IMAGE:$IMAGE_TAG" .',
        f'docker save "$IMAGE:$IMAGE_TAG" --output {IMAGE_TAR}',
    ]


def scan(image_tar: str = IMAGE_TAR) -> list[str]:
    """Trivy over the saved image: fail on fixable HIGH or CRITICAL vulnerabilities."""
    return [
        f'docker run --rm -v "$PWD:/work" -w /work {TRIVY_IMAGE} image --input {image_tar} '
        "--severity HIGH,CRITICAL --ignore-unfixed --exit-code 1 --no-progress",
    ]


def push() -> list[str]:
    """Push the scanned image under its commit sha (tags are immutable in ECR)."""
    return [f"docker load --input {IMAGE_TAR}", 'docker push "$IMAGE:$IMAGE_TAG"']


def ecr_login(spec: AppSpec) -> list[str]:
    registry = spec.image_repository.split("/", 1)[0]
    return [
        f"aws ecr get-login-password --region {spec.aws_region} | "
        f"docker login --username AWS --password-stdin {registry}"
    ]


def password_login(user: str, password: str, registry: str) -> list[str]:
    """``docker login`` reading the password from a variable on stdin (never on the command line)."""
    return [f'printf "%s" "${password}" | docker login --username "${user}" --password-stdin {registry}']


def cluster_access(spec: AppSpec) -> list[str]:
    """kubectl/helm credentials for the environment's EKS cluster (after OIDC role assumption)."""
    if deploy_platform(spec) not in ("helm", "k8s"):
        return []
    return [f'aws eks update-kubeconfig --name "$EKS_CLUSTER_NAME" --region {spec.aws_region}']


def _k8s_apply(spec: AppSpec) -> list[str]:
    files = kubernetes.manifest_paths(spec)
    repo = spec.image_repository
    deployment = "k8s/deployment.yaml"
    set_image = f'sed "s|image: {repo}:.*|image: $IMAGE:$IMAGE_TAG|" {deployment} | kubectl apply -f -'
    if spec.strategy == "rolling":
        static = [f for f in files if f not in (deployment, "k8s/secrets.yaml")]
        return [
            "kubectl apply " + " ".join(f"-f {f}" for f in static),
            set_image,
            f"kubectl -n {spec.ns} rollout status deployment/{spec.name} --timeout=10m",
        ]
    # Blue-green and canary: the live Service selector, canary weight and per-track images are
    # state the rollout commands own, so manifests holding them are applied only on first install.
    owned = {deployment, "k8s/secrets.yaml", "k8s/service.yaml" if spec.strategy == "blue-green" else ""}
    static = [f for f in files if f not in owned]
    bootstrap = [set_image] + (["kubectl apply -f k8s/service.yaml"] if spec.strategy == "blue-green" else [])
    probe = f"{spec.name}-{'blue' if spec.strategy == 'blue-green' else 'canary'}"
    return [
        "kubectl apply " + " ".join(f"-f {f}" for f in static),
        f"if ! kubectl -n {spec.ns} get deployment {probe} >/dev/null 2>&1; then {'; '.join(bootstrap)}; fi",
        *k8s_deploy(spec, "$IMAGE:$IMAGE_TAG"),
    ]


def _helm(spec: AppSpec, environment: str) -> list[str]:
    base = helm_deploy(spec, environment, "$IMAGE_TAG")
    if spec.strategy == "rolling":
        return [base]
    reuse = base.replace(" --set image.tag=$IMAGE_TAG", " --reset-then-reuse-values")
    ns, name = spec.ns, spec.name
    first = f"if ! helm -n {ns} status {name} >/dev/null 2>&1; then {base}; fi"
    if spec.strategy == "blue-green":
        return [
            first,
            f"active=$(kubectl -n {ns} get service {name} -o jsonpath='{{.spec.selector.slot}}' "
            "2>/dev/null || true)",
            'active=${active:-blue}; if [ "$active" = blue ]; then idle=green; else idle=blue; fi',
            "# 1) new version on the idle slot, traffic unchanged; 2) switch the Service to it",
            f'{reuse} --set blueGreen.activeSlot="$active" --set "blueGreen.slots.$idle.tag=$IMAGE_TAG"',
            f'{reuse} --set blueGreen.activeSlot="$idle"',
        ]
    return [first, f"{reuse} --set canary.tag=$IMAGE_TAG"]


def deploy(spec: AppSpec, environment: str) -> list[str]:
    """Ship ``$IMAGE:$IMAGE_TAG`` to one environment with the spec's strategy."""
    platform = deploy_platform(spec)
    if platform == "helm":
        return [*cluster_access(spec), *_helm(spec, environment)]
    if platform == "k8s":
        return [*cluster_access(spec), *_k8s_apply(spec)]
    if platform == "ecs":
        stack = f"{spec.name}-{environment}"
        return [
            f"aws cloudformation deploy --stack-name {stack} --template-file {CFN_TEMPLATE} "
            "--capabilities CAPABILITY_NAMED_IAM --no-fail-on-empty-changeset --parameter-overrides "
            f'Environment={environment} ImageTag="$IMAGE_TAG" VpcId="$VPC_ID" '
            'PrivateSubnetIds="$PRIVATE_SUBNET_IDS" ListenerArn="$ALB_LISTENER_ARN" '
            'LoadBalancerSecurityGroupId="$ALB_SECURITY_GROUP_ID" '
            'AlarmTopicArn="$ALARM_TOPIC_ARN"',
            f"aws ecs wait services-stable --cluster {stack} --services {spec.name}",
        ]
    if platform == "terraform":
        cluster, service = ecs_names(spec, environment)
        return [
            # Remember what runs now, so a failed apply can put it back (see rollback()).
            f"aws ecs describe-services --cluster {cluster} --services {service} "
            f"--query 'services[0].taskDefinition' --output text > {PREVIOUS} 2>/dev/null || true",
            'terraform -chdir=terraform init -input=false -backend-config="bucket=$TF_STATE_BUCKET" '
            f'-backend-config="key={spec.name}/{environment}.tfstate"',
            'TF_VAR_private_subnet_ids="$(printf \'%s\' "$PRIVATE_SUBNET_IDS" | jq -R -c \'split(",")\')"',
            "export TF_VAR_private_subnet_ids",
            f'terraform -chdir=terraform apply -input=false -auto-approve -var="environment={environment}" '
            '-var="image_tag=$IMAGE_TAG" -var="vpc_id=$VPC_ID" '
            '-var="listener_arn=$ALB_LISTENER_ARN" '
            '-var="load_balancer_security_group_id=$ALB_SECURITY_GROUP_ID" '
            '-var="alarm_topic_arn=$ALARM_TOPIC_ARN"',
        ]
    return [
        # Keep the tag being replaced as <env>-previous: that is what a rollback points back to.
        f'docker buildx imagetools create --tag "$IMAGE:{environment}-previous" "$IMAGE:{environment}" '
        "|| true",
        f'docker buildx imagetools create --tag "$IMAGE:{environment}" "$IMAGE:$IMAGE_TAG"',
    ]


def promote(spec: AppSpec, environment: str) -> list[str] | None:
    """Canary only: after the canary held, move the stable track to the new image."""
    if spec.strategy != "canary" or deploy_platform(spec) not in ("helm", "k8s"):
        return None
    if deploy_platform(spec) == "helm":
        base = helm_deploy(spec, environment, "$IMAGE_TAG")
        reuse = base.replace(" --set image.tag=$IMAGE_TAG", " --reset-then-reuse-values")
        return [*cluster_access(spec), f"{reuse} --set image.tag=$IMAGE_TAG"]
    return [*cluster_access(spec), *k8s_promote(spec, "$IMAGE:$IMAGE_TAG")]


def rollback(spec: AppSpec, environment: str) -> list[str]:
    """Undo a failed deploy of one environment (CloudFormation and ``helm --atomic`` roll back by
    themselves; this covers what they do not)."""
    platform = deploy_platform(spec)
    if platform == "helm":
        return [*cluster_access(spec), f"helm -n {spec.ns} rollback {spec.name} --wait"]
    if platform == "k8s":
        return [*cluster_access(spec), *k8s_rollback(spec)]
    if platform == "ecs":
        # A failed stack update rolls back by itself; show why it failed.
        stack = f"{spec.name}-{environment}"
        return [f"aws cloudformation describe-stack-events --stack-name {stack} --max-items 20"]
    if platform == "terraform":
        cluster, service = ecs_names(spec, environment)
        return [
            f'if [ -s {PREVIOUS} ] && [ "$(cat {PREVIOUS})" != None ]; then '
            f"aws ecs update-service --cluster {cluster} --service {service} "
            f'--task-definition "$(cat {PREVIOUS})"; fi',
        ]
    return [f'docker buildx imagetools create --tag "$IMAGE:{environment}" "$IMAGE:{environment}-previous"']
