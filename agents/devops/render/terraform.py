"""Terraform (terraform/): the same ECS Fargate service as the CloudFormation stack, for teams
that run Terraform. Remote state in S3 with native lockfile locking, a pinned provider, typed
variables, and an ECR repository with immutable tags and scan on push.

HCL is written as text; JSON-shaped values (container definitions, IAM policies) go through
:func:`hcl` so they are rendered once, in ``terraform fmt`` style.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agents.devops.render.aws import (
    BAKE_MINUTES,
    CANARY_BAKE_MINUTES,
    EXECUTION_POLICY,
    INFRASTRUCTURE_POLICY,
    STRATEGY,
    container_definition,
    secret_arn,
)
from agents.devops.render.common import comment, header, lb_health_check, writable_mounts
from agents.devops.render.kubernetes import BACKING_PORTS
from agents.devops.render.rollout import CONTAINER
from agents.devops.skips import inline_skip
from agents.devops.spec import AWS_KINDS, AppSpec

AWS_PROVIDER = "~> 6.14"
TERRAFORM_VERSION = ">= 1.10.0"
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class Raw:
    """An HCL expression written as is (a reference or a for expression), not a string."""

    def __init__(self, expression: str) -> None:
        self.expression = expression


def hcl(value: Any, indent: int = 0) -> str:
    """``value`` as an HCL expression with ``terraform fmt`` layout (aligned ``=`` per group)."""
    pad = "  " * (indent + 1)
    if isinstance(value, Raw):
        return value.expression
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        if not value:
            return "[]"
        items = [hcl(v, indent + 1) for v in value]
        if all("\n" not in i for i in items) and sum(len(i) for i in items) < 80:
            return "[" + ", ".join(items) + "]"
        return "[\n" + "".join(f"{pad}{i},\n" for i in items) + "  " * indent + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        keys = [k if _IDENT.match(k) else json.dumps(k) for k in value]
        rendered = [hcl(v, indent + 1) for v in value.values()]
        return "{\n" + _aligned(keys, rendered, pad) + "  " * indent + "}"
    raise TypeError(f"cannot render {type(value).__name__} as HCL")


def _aligned(keys: list[str], values: list[str], pad: str) -> str:
    """``key = value`` lines, ``=`` aligned across each run of single-line values (fmt's rule)."""
    out, group = "", []
    for key, value in zip(keys, values, strict=True):
        if "\n" in value:  # a multi-line value ends the run and is not aligned itself
            out += _flush(group, pad) + f"{pad}{key} = {value}\n"
            group = []
        else:
            group.append((key, value))
    return out + _flush(group, pad)


def _flush(group: list[tuple[str, str]], pad: str) -> str:
    if not group:
        return ""
    width = max(len(k) for k, _ in group)
    return "".join(f"{pad}{k.ljust(width)} = {v}\n" for k, v in group)


def _attrs(pairs: dict[str, Any], indent: int = 1) -> str:
    """Block body attributes in fmt style."""
    keys = list(pairs)
    values = [v.expression if isinstance(v, Raw) else hcl(v, indent) for v in pairs.values()]
    return _aligned(keys, values, "  " * indent)


def _block(kind: str, labels: list[str], body: str) -> str:
    head = " ".join([kind, *(json.dumps(label) for label in labels)])
    return f"{head} {{\n{body}}}\n"


def render(spec: AppSpec) -> dict[str, str]:
    """terraform/versions.tf, variables.tf, main.tf and outputs.tf."""
    return {
        "terraform/versions.tf": versions(spec),
        "terraform/variables.tf": variables(spec),
        "terraform/main.tf": main(spec),
        "terraform/outputs.tf": outputs(spec),
    }


def versions(spec: AppSpec) -> str:
    provider_tags = {"service": spec.name, "environment": Raw("var.environment"), "managed-by": "terraform"}
    return (
        header(spec, "Terraform settings")
        + comment(
            "State: one key per environment, e.g.\n"
            f'  terraform init -backend-config="bucket=<state bucket>" -backend-config="key={spec.name}/'
            f'{spec.primary_environment}.tfstate"\n'
            "Commit .terraform.lock.hcl after the first init so every run uses the same provider build."
        )
        + "terraform {\n"
        + f'  required_version = "{TERRAFORM_VERSION}"\n\n'
        + "  required_providers {\n"
        + "    aws = {\n"
        + '      source  = "hashicorp/aws"\n'
        + f'      version = "{AWS_PROVIDER}"\n'
        + "    }\n"
        + "  }\n\n"
        + "  # Remote state with locking (S3 lockfile, no DynamoDB table needed since Terraform 1.10).\n"
        + '  backend "s3" {\n'
        + f'    region       = "{spec.aws_region}"\n'
        + "    encrypt      = true\n"
        + "    use_lockfile = true\n"
        + "  }\n"
        + "}\n\n"
        + 'provider "aws" {\n'
        + "  region = var.aws_region\n\n"
        + "  default_tags {\n"
        + f"    tags = {hcl(provider_tags, 2)}\n"
        + "  }\n"
        + "}\n"
    )


def _secret_map(spec: AppSpec) -> dict[str, dict[str, str]]:
    return {
        env: {
            r.env_var: secret_arn(spec, r.kind, r.reference, r.key)
            for r in spec.refs(*AWS_KINDS, environment=env)
        }
        for env in spec.environments
    }


def _variable(
    name: str, type_: str, description: str, default: Any = None, validation: tuple[str, str] | None = None
) -> str:
    body = _attrs(
        {"type": Raw(type_), "description": description} | ({} if default is None else {"default": default})
    )
    if validation:
        condition, message = validation
        body += (
            "\n  validation {\n"
            + _attrs({"condition": Raw(condition), "error_message": message}, 2)
            + "  }\n"
        )
    return _block("variable", [name], body)


def variables(spec: AppSpec) -> str:
    envs = hcl(list(spec.environments))
    blocks = [
        _variable(
            "environment",
            "string",
            "Deployment environment",
            validation=(
                f"contains({envs}, var.environment)",
                f"environment must be one of {', '.join(spec.environments)}.",
            ),
        ),
        _variable("aws_region", "string", "AWS region", spec.aws_region),
        _variable(
            "image_tag",
            "string",
            "Image tag to run (the commit sha CI pushed)",
            validation=(
                'can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag))',
                "image_tag must be a valid tag.",
            ),
        ),
        _variable(
            "create_repository", "bool", "Create the shared ECR repository (once, in one state)", False
        ),
        _variable("vpc_id", "string", "VPC of the environment"),
        _variable("private_subnet_ids", "list(string)", "Private subnets for the tasks (no public IPs)"),
        _variable("listener_arn", "string", "HTTPS listener of the shared load balancer"),
        _variable("load_balancer_security_group_id", "string", "Security group of the load balancer"),
        _variable("listener_rule_priority", "number", "Unique priority of this service's listener rule", 100),
        _variable("alarm_topic_arn", "string", "SNS topic that receives alarms"),
        _variable(
            "desired_count",
            "number",
            "Tasks at rest (autoscaling may add more)",
            spec.replicas,
            validation=("var.desired_count >= 2", "Run at least two tasks."),
        ),
        _variable("max_count", "number", "Autoscaling ceiling", spec.max_replicas),
        _variable(
            "secret_arns",
            "map(map(string))",
            "Per environment: variable name -> Secrets Manager / SSM ARN (references, never values)",
            _secret_map(spec),
        ),
        _variable("log_retention_days", "number", "CloudWatch log retention", spec.log_retention_days),
    ]
    return header(spec, "Terraform variables") + "\n".join(blocks)


def _policy(statements: list[dict[str, Any]]) -> Raw:
    return Raw("jsonencode(" + hcl({"Version": "2012-10-17", "Statement": statements}, 1) + ")")


def _assume(principal: str) -> Raw:
    return _policy(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": principal},
                "Action": "sts:AssumeRole",
                "Condition": {
                    "StringEquals": {"aws:SourceAccount": Raw("data.aws_caller_identity.current.account_id")}
                },
            }
        ]
    )


def main(spec: AppSpec) -> str:
    facts = spec.facts
    name = spec.name
    two_groups = spec.strategy != "rolling"
    blocks: list[str] = []

    def resource(kind: str, label: str, body: str) -> None:
        blocks.append(_block("resource", [kind, label], body))

    blocks.append(
        "locals {\n"
        + _attrs(
            {
                "name": Raw(f'"{name}-${{var.environment}}"'),
                "secrets": Raw("lookup(var.secret_arns, var.environment, {})"),
                # IAM needs the secret ARN without ":json-key::" and with Secrets Manager's random suffix.
                "secret_policy_arns": Raw(
                    "[for arn in values(lookup(var.secret_arns, var.environment, {})) : "
                    'startswith(arn, "arn:aws:secretsmanager:")'
                    ' ? "${join(":", slice(split(":", arn), 0, 7))}-??????" : arn]'
                ),
                "image": Raw(f'"{spec.image_repository}:${{var.image_tag}}"'),
            }
        )
        + "}\n"
    )
    blocks.append('data "aws_caller_identity" "current" {}\n')
    blocks.append('data "aws_partition" "current" {}\n')

    resource(
        "aws_kms_key",
        "service",
        _attrs(
            {
                "description": Raw('"${local.name} logs and images"'),
                "enable_key_rotation": True,
                "deletion_window_in_days": 30,
                "policy": _policy(
                    [
                        {
                            "Sid": "AccountAdministration",
                            "Effect": "Allow",
                            "Principal": {
                                "AWS": Raw(
                                    '"arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"'
                                )
                            },
                            "Action": "kms:*",
                            "Resource": "*",
                        },
                        {
                            "Sid": "CloudWatchLogs",
                            "Effect": "Allow",
                            "Principal": {"Service": f"logs.{spec.aws_region}.amazonaws.com"},
                            "Action": [
                                "kms:Encrypt*",
                                "kms:Decrypt*",
                                "kms:ReEncrypt*",
                                "kms:GenerateDataKey*",
                                "kms:Describe*",
                            ],
                            "Resource": "*",
                        },
                    ]
                ),
            }
        ),
    )
    resource(
        "aws_ecr_repository",
        "app",
        _attrs(
            {
                "count": Raw("var.create_repository ? 1 : 0"),
                "name": name,
                "image_tag_mutability": "IMMUTABLE",
                "force_delete": False,
            }
        )
        + "\n  image_scanning_configuration {\n    scan_on_push = true\n  }\n"
        + "\n  encryption_configuration {\n"
        + _attrs({"encryption_type": "KMS", "kms_key": Raw("aws_kms_key.service.arn")}, 2)
        + "  }\n",
    )
    lifecycle = {
        "rules": [
            {
                "rulePriority": 1,
                "description": "keep the last 100 images",
                "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 100},
                "action": {"type": "expire"},
            }
        ]
    }
    resource(
        "aws_ecr_lifecycle_policy",
        "app",
        _attrs(
            {
                "count": Raw("var.create_repository ? 1 : 0"),
                "repository": Raw("aws_ecr_repository.app[0].name"),
                "policy": Raw("jsonencode(" + hcl(lifecycle, 1) + ")"),
            }
        ),
    )
    resource(
        "aws_cloudwatch_log_group",
        "app",
        _attrs(
            {
                "name": Raw('"/ecs/${local.name}"'),
                "retention_in_days": Raw("var.log_retention_days"),
                "kms_key_id": Raw("aws_kms_key.service.arn"),
            }
        ),
    )
    resource(
        "aws_ecs_cluster",
        "this",
        _attrs({"name": Raw("local.name")})
        + "\n  setting {\n"
        + _attrs({"name": "containerInsights", "value": "enhanced"}, 2)
        + "  }\n",
    )
    for role, principal, policy in (
        ("execution", "ecs-tasks.amazonaws.com", EXECUTION_POLICY),
        ("task", "ecs-tasks.amazonaws.com", None),
        *((("ecs_infrastructure", "ecs.amazonaws.com", INFRASTRUCTURE_POLICY),) if two_groups else ()),
    ):
        resource(
            "aws_iam_role",
            role,
            _attrs(
                {
                    "name": Raw(f'"${{local.name}}-{role.replace("_", "-")}"'),
                    "assume_role_policy": _assume(principal),
                }
            ),
        )
        if policy:
            resource(
                "aws_iam_role_policy_attachment",
                role,
                _attrs({"role": Raw(f"aws_iam_role.{role}.name"), "policy_arn": policy}),
            )
    resource(
        "aws_iam_role_policy",
        "read_secrets",
        _attrs(
            {
                "count": Raw("length(local.secrets) > 0 ? 1 : 0"),
                "name": "read-service-secrets",
                "role": Raw("aws_iam_role.execution.id"),
                "policy": _policy(
                    [
                        {
                            "Effect": "Allow",
                            "Action": ["secretsmanager:GetSecretValue", "ssm:GetParameters"],
                            "Resource": Raw(
                                '[for arn in values(local.secrets) : replace(arn, "/:[^:]*::$/", "*")]'
                            ),
                        }
                    ]
                ),
            }
        ),
    )
    container = container_definition(
        spec,
        image=Raw("local.image"),
        secrets=Raw("[for key, arn in local.secrets : { name = key, valueFrom = arn }]"),
        log_group=Raw("aws_cloudwatch_log_group.app.name"),
    )
    container["logConfiguration"]["options"]["awslogs-region"] = Raw("var.aws_region")
    resource(
        "aws_ecs_task_definition",
        "app",
        _attrs(
            {
                "family": Raw("local.name"),
                "requires_compatibilities": ["FARGATE"],
                "network_mode": "awsvpc",
                "cpu": spec.ecs_cpu,
                "memory": spec.ecs_memory,
                "execution_role_arn": Raw("aws_iam_role.execution.arn"),
                "task_role_arn": Raw("aws_iam_role.task.arn"),
                "container_definitions": Raw("jsonencode([" + hcl(container, 1) + "])"),
            }
        )
        + "\n  runtime_platform {\n"
        + _attrs({"operating_system_family": "LINUX", "cpu_architecture": "X86_64"}, 2)
        + "  }\n"
        + "".join(f'\n  volume {{\n    name = "{name}"\n  }}\n' for name, _ in writable_mounts(spec)),
    )
    resource(
        "aws_security_group",
        "service",
        _attrs(
            {
                "name": Raw('"${local.name}-service"'),
                "description": "Tasks: HTTP from the load balancer only",
                "vpc_id": Raw("var.vpc_id"),
            }
        ),
    )
    resource(
        "aws_vpc_security_group_ingress_rule",
        "from_load_balancer",
        _attrs(
            {
                "security_group_id": Raw("aws_security_group.service.id"),
                "description": "HTTP from the load balancer",
                "referenced_security_group_id": Raw("var.load_balancer_security_group_id"),
                "ip_protocol": "tcp",
                "from_port": facts.port,
                "to_port": facts.port,
            }
        ),
    )
    egress = [("https", (443,), "0.0.0.0/0", "HTTPS to AWS APIs and upstreams")]
    egress += [(b, BACKING_PORTS[b], "10.0.0.0/8", f"{b} inside the VPC") for b in facts.backing_services]
    for label, ports, cidr, why in egress:
        resource(
            "aws_vpc_security_group_egress_rule",
            label,
            _attrs(
                {
                    "security_group_id": Raw("aws_security_group.service.id"),
                    "description": why,
                    "cidr_ipv4": cidr,
                    "ip_protocol": "tcp",
                    "from_port": min(ports),
                    "to_port": max(ports),
                }
            ),
        )
    groups = ["blue", "green"] if two_groups else ["blue"]
    for group in groups:
        resource(
            "aws_lb_target_group",
            group,
            f"  {inline_skip('terraform', 'CKV_AWS_378')}\n"
            + _attrs(
                {
                    "name": Raw(f'substr("${{local.name}}-{group}", 0, 32)'),
                    "vpc_id": Raw("var.vpc_id"),
                    "target_type": "ip",
                    "protocol": "HTTP",
                    "port": facts.port,
                    "deregistration_delay": 30,
                }
            )
            + "\n  health_check {\n"
            + _attrs(
                {
                    "enabled": True,
                    "path": lb_health_check(spec)[0],
                    "matcher": lb_health_check(spec)[1],
                    "interval": 15,
                    "healthy_threshold": 2,
                    "unhealthy_threshold": 3,
                },
                2,
            )
            + "  }\n",
        )
    if two_groups:
        action = (
            '\n  action {\n    type = "forward"\n\n    forward {\n'
            + "".join(
                "      target_group {\n"
                + _attrs({"arn": Raw(f"aws_lb_target_group.{g}.arn"), "weight": w}, 4)
                + "      }\n"
                for g, w in (("blue", 100), ("green", 0))
            )
            + "    }\n  }\n"
        )
    else:
        action = (
            "\n  action {\n"
            + _attrs({"type": "forward", "target_group_arn": Raw("aws_lb_target_group.blue.arn")}, 2)
            + "  }\n"
        )
    resource(
        "aws_lb_listener_rule",
        "app",
        _attrs({"listener_arn": Raw("var.listener_arn"), "priority": Raw("var.listener_rule_priority")})
        + action
        + "\n  condition {\n    host_header {\n"
        + _attrs({"values": [Raw(f'"${{var.environment}}.{spec.host}"')]}, 3)
        + "    }\n  }\n",
    )
    resource(
        "aws_cloudwatch_metric_alarm",
        "http_5xx",
        _attrs(
            {
                "alarm_name": Raw('"${local.name}-5xx"'),
                "alarm_description": "Targets answer 5xx: fails (and rolls back) a running deployment",
                "namespace": "AWS/ApplicationELB",
                "metric_name": "HTTPCode_Target_5XX_Count",
                "statistic": "Sum",
                "period": 60,
                "evaluation_periods": 3,
                "datapoints_to_alarm": 2,
                "threshold": 5,
                "comparison_operator": "GreaterThanThreshold",
                "treat_missing_data": "notBreaching",
                "alarm_actions": [Raw("var.alarm_topic_arn")],
                "dimensions": {
                    "TargetGroup": Raw("aws_lb_target_group.blue.arn_suffix"),
                    "LoadBalancer": Raw('join("/", slice(split("/", var.listener_arn), 1, 4))'),
                },
            }
        ),
    )
    deployment = {"strategy": STRATEGY[str(spec.strategy)]}
    if two_groups:
        deployment["bake_time_in_minutes"] = BAKE_MINUTES  # type: ignore[assignment]
    deployment_body = _attrs(deployment, 2)
    if spec.strategy == "canary":
        deployment_body += (
            "\n    canary_configuration {\n"
            + _attrs(
                {
                    "canary_percent": float(spec.canary_weight),
                    "canary_bake_time_in_minutes": CANARY_BAKE_MINUTES,
                },
                3,
            )
            + "    }\n"
        )
    advanced = ""
    if two_groups:
        advanced = (
            "\n    advanced_configuration {\n"
            + _attrs(
                {
                    "alternate_target_group_arn": Raw("aws_lb_target_group.green.arn"),
                    "production_listener_rule": Raw("aws_lb_listener_rule.app.arn"),
                    "role_arn": Raw("aws_iam_role.ecs_infrastructure.arn"),
                },
                3,
            )
            + "    }\n"
        )
    resource(
        "aws_ecs_service",
        "app",
        _attrs(
            {
                "name": name,
                "cluster": Raw("aws_ecs_cluster.this.id"),
                "task_definition": Raw("aws_ecs_task_definition.app.arn"),
                "desired_count": Raw("var.desired_count"),
                "launch_type": "FARGATE",
                "platform_version": "LATEST",
                "health_check_grace_period_seconds": 60,
                "enable_ecs_managed_tags": True,
                "propagate_tags": "SERVICE",
                "enable_execute_command": False,
            }
        )
        + "\n  network_configuration {\n"
        + _attrs(
            {
                "subnets": Raw("var.private_subnet_ids"),
                "security_groups": [Raw("aws_security_group.service.id")],
                "assign_public_ip": False,
            },
            2,
        )
        + "  }\n\n  load_balancer {\n"
        + _attrs(
            {
                "target_group_arn": Raw("aws_lb_target_group.blue.arn"),
                "container_name": CONTAINER,
                "container_port": facts.port,
            },
            2,
        )
        + advanced
        + "  }\n\n  deployment_circuit_breaker {\n    enable   = true\n    rollback = true\n  }\n"
        + "\n  deployment_configuration {\n"
        + deployment_body
        + "  }\n\n  alarms {\n"
        + _attrs(
            {
                "alarm_names": [Raw("aws_cloudwatch_metric_alarm.http_5xx.alarm_name")],
                "enable": True,
                "rollback": True,
            },
            2,
        )
        + "  }\n\n  lifecycle {\n    # Autoscaling owns the running count after creation.\n"
        + "    ignore_changes = [desired_count]\n  }\n\n"
        + "  depends_on = [aws_lb_listener_rule.app]\n",
    )
    resource(
        "aws_appautoscaling_target",
        "app",
        _attrs(
            {
                "service_namespace": "ecs",
                "scalable_dimension": "ecs:service:DesiredCount",
                "resource_id": Raw('"service/${aws_ecs_cluster.this.name}/${aws_ecs_service.app.name}"'),
                "min_capacity": Raw("var.desired_count"),
                "max_capacity": Raw("var.max_count"),
            }
        ),
    )
    resource(
        "aws_appautoscaling_policy",
        "cpu",
        _attrs(
            {
                "name": Raw('"${local.name}-cpu"'),
                "policy_type": "TargetTrackingScaling",
                "service_namespace": Raw("aws_appautoscaling_target.app.service_namespace"),
                "scalable_dimension": Raw("aws_appautoscaling_target.app.scalable_dimension"),
                "resource_id": Raw("aws_appautoscaling_target.app.resource_id"),
            }
        )
        + "\n  target_tracking_scaling_policy_configuration {\n"
        + _attrs(
            {"target_value": spec.target_cpu_percent, "scale_in_cooldown": 300, "scale_out_cooldown": 60}, 2
        )
        + "\n    predefined_metric_specification {\n"
        + '      predefined_metric_type = "ECSServiceAverageCPUUtilization"\n    }\n  }\n',
    )
    resource(
        "aws_cloudwatch_metric_alarm",
        "cpu_high",
        _attrs(
            {
                "alarm_name": Raw('"${local.name}-cpu-high"'),
                "alarm_description": "Service CPU stays above 85% although autoscaling is at work",
                "namespace": "AWS/ECS",
                "metric_name": "CPUUtilization",
                "statistic": "Average",
                "period": 60,
                "evaluation_periods": 10,
                "threshold": 85,
                "comparison_operator": "GreaterThanThreshold",
                "alarm_actions": [Raw("var.alarm_topic_arn")],
                "dimensions": {
                    "ClusterName": Raw("aws_ecs_cluster.this.name"),
                    "ServiceName": Raw("aws_ecs_service.app.name"),
                },
            }
        ),
    )
    return header(spec, "Terraform: ECS Fargate service") + "\n".join(blocks)


def outputs(spec: AppSpec) -> str:
    items = {
        "cluster_name": ("ECS cluster", "aws_ecs_cluster.this.name"),
        "service_name": ("ECS service", "aws_ecs_service.app.name"),
        "task_definition_arn": ("Task definition revision in use", "aws_ecs_task_definition.app.arn"),
        "log_group_name": ("Application logs", "aws_cloudwatch_log_group.app.name"),
        "service_security_group_id": ("Security group of the tasks", "aws_security_group.service.id"),
        "repository_url": (
            "ECR repository (when created here)",
            "one(aws_ecr_repository.app[*].repository_url)",
        ),
    }
    blocks = [
        _block("output", [name], _attrs({"description": why, "value": Raw(expr)}))
        for name, (why, expr) in items.items()
    ]
    return header(spec, "Terraform outputs") + "\n".join(blocks)
