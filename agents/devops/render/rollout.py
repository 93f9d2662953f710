"""Deploy, verify and rollback commands per strategy and platform.

One source for the commands that CI pipelines run and that the docs tell people to run, so the
two never drift apart. ``image`` is a shell expression such as ``"$IMAGE"``.
"""

from __future__ import annotations

from agents.devops.render.common import track_key, workload_name
from agents.devops.spec import AppSpec

CONTAINER = "app"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


def k8s_apply_files(spec: AppSpec, files: list[str]) -> str:
    """``kubectl apply`` for the manifests in order, leaving out the Secret template (values are
    created out of band; applying the template would blank them)."""
    args = " ".join(f"-f {f}" for f in files if not f.endswith("/secrets.yaml"))
    return f"kubectl apply {args}"


def _slots(spec: AppSpec) -> list[str]:
    """Shell lines that set $active (slot the Service sends traffic to) and $idle (the other one)."""
    key = track_key(spec)
    return [
        f"active=$(kubectl -n {spec.ns} get service {spec.name} -o jsonpath='{{.spec.selector.{key}}}')",
        'if [ "$active" = blue ]; then idle=green; else idle=blue; fi',
    ]


def _switch(spec: AppSpec, service: str, slot_var: str) -> str:
    patch = '{\\"spec\\":{\\"selector\\":{\\"' + track_key(spec) + '\\":\\"' + slot_var + '\\"}}}'
    return f'kubectl -n {spec.ns} patch service {service} -p "{patch}"'


def k8s_deploy(spec: AppSpec, image: str) -> list[str]:
    """Shell lines that roll out ``image`` with the spec's strategy and wait until it is ready."""
    ns, name = spec.ns, spec.name
    if spec.strategy == "blue-green":
        return [
            *_slots(spec),
            f"kubectl -n {ns} set image deployment/{name}-$idle {CONTAINER}={image}",
            f"kubectl -n {ns} rollout status deployment/{name}-$idle --timeout=5m",
            _switch(spec, name, "$idle"),
            _switch(spec, f"{name}-preview", "$active"),
        ]
    if spec.strategy == "canary":
        canary = workload_name(spec, "canary")
        return [
            f"kubectl -n {ns} set image deployment/{canary} {CONTAINER}={image}",
            f"kubectl -n {ns} rollout status deployment/{canary} --timeout=5m",
            f"kubectl -n {ns} annotate ingress {canary} {CANARY_WEIGHT}={spec.canary_weight} --overwrite",
        ]
    return [
        f"kubectl -n {ns} set image deployment/{name} {CONTAINER}={image}",
        f"kubectl -n {ns} rollout status deployment/{name} --timeout=10m",
    ]


def k8s_promote(spec: AppSpec, image: str) -> list[str]:
    """Canary only: after the canary held, move the stable Deployment to ``image``."""
    ns, name = spec.ns, spec.name
    return [
        f"kubectl -n {ns} set image deployment/{name} {CONTAINER}={image}",
        f"kubectl -n {ns} rollout status deployment/{name} --timeout=10m",
    ]


def k8s_rollback(spec: AppSpec) -> list[str]:
    """Shell lines that undo the last rollout of the spec's strategy."""
    ns, name = spec.ns, spec.name
    if spec.strategy == "blue-green":
        # The previous slot still runs the previous version: switching back is instant.
        return [*_slots(spec), _switch(spec, name, "$idle"), _switch(spec, f"{name}-preview", "$active")]
    if spec.strategy == "canary":
        canary = workload_name(spec, "canary")
        return [
            f"kubectl -n {ns} annotate ingress {canary} {CANARY_WEIGHT}=0 --overwrite",
            f"kubectl -n {ns} rollout undo deployment/{canary}",
            f"kubectl -n {ns} rollout status deployment/{canary} --timeout=5m",
        ]
    return [
        f"kubectl -n {ns} rollout undo deployment/{name}",
        f"kubectl -n {ns} rollout status deployment/{name} --timeout=5m",
    ]


def helm_deploy(spec: AppSpec, environment: str, tag: str) -> str:
    """``helm upgrade --install`` of the chart for one environment with an image tag."""
    chart = f"charts/{spec.name}"
    return (
        f"helm upgrade --install {spec.name} {chart} --namespace {spec.ns} --create-namespace "
        f"-f {chart}/values-{environment}.yaml --set image.tag={tag} --atomic --wait --timeout 10m"
    )


def helm_rollback(spec: AppSpec) -> list[str]:
    """Return to the previous Helm release (``--atomic`` already rolls back failed upgrades)."""
    return [
        f"helm -n {spec.ns} history {spec.name}",
        f"helm -n {spec.ns} rollback {spec.name} --wait  # previous revision; add a number for an older one",
    ]


def ecs_names(spec: AppSpec, environment: str) -> tuple[str, str]:
    """(cluster, service) names of one environment, as CloudFormation and Terraform create them."""
    return f"{spec.name}-{environment}", spec.name


def ecs_rollback(spec: AppSpec, environment: str) -> list[str]:
    """Stop an in-flight ECS deployment with rollback, or return to the previous revision."""
    cluster, service = ecs_names(spec, environment)
    return [
        "# during a deployment (bake time included): ECS moves traffic back to the previous revision",
        f"arn=$(aws ecs list-service-deployments --cluster {cluster} --service {service} "
        "--status IN_PROGRESS --query 'serviceDeployments[0].serviceDeploymentArn' --output text)",
        'aws ecs stop-service-deployment --service-deployment-arn "$arn" --stop-type ROLLBACK',
        "# after it completed: deploy the previous task definition revision",
        f"aws ecs list-task-definitions --family-prefix {spec.name}-{environment} --sort DESC --max-items 3",
        f"aws ecs update-service --cluster {cluster} --service {service} "
        f"--task-definition {spec.name}-{environment}:<previous revision>",
        f"aws ecs wait services-stable --cluster {cluster} --services {service}",
    ]
