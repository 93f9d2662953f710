"""AWS ECS on Fargate: task definition and service JSON (API input shapes) for the primary
environment, and one CloudFormation template that builds the whole service per environment.

Strategies map onto ECS's built-in deployment strategies: ROLLING, BLUE_GREEN (two target groups,
production traffic switched after a bake time) and CANARY (a share of traffic first). Every
deployment has the circuit breaker and a 5xx alarm wired to automatic rollback.
"""

from __future__ import annotations

import re
from typing import Any

from agents.devops.render.common import (
    Tag,
    comment,
    dump_json,
    dump_yaml,
    header,
    healthcheck_command,
    lb_health_check,
    writable_mounts,
)
from agents.devops.render.kubernetes import BACKING_PORTS
from agents.devops.render.rollout import CONTAINER, ecs_names, ecs_rollback
from agents.devops.spec import AWS_KINDS, AppSpec, SecretKind

STRATEGY = {"rolling": "ROLLING", "blue-green": "BLUE_GREEN", "canary": "CANARY"}
BAKE_MINUTES = 10
CANARY_BAKE_MINUTES = 10
EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
INFRASTRUCTURE_POLICY = "arn:aws:iam::aws:policy/AmazonECSInfrastructureRolePolicyForLoadBalancers"


def render(spec: AppSpec) -> dict[str, str]:
    """ecs-task-definition.json, ecs-service.json and cloudformation/infrastructure.yaml."""
    return {
        "ecs-task-definition.json": dump_json(task_definition(spec)),
        "ecs-service.json": dump_json(service(spec)),
        "cloudformation/infrastructure.yaml": cloudformation(spec),
    }


def secret_arn(spec: AppSpec, kind: SecretKind, reference: str, key: str | None) -> str:
    """``valueFrom`` for a Secrets Manager secret (optionally one JSON key) or an SSM parameter."""
    if kind == SecretKind.SSM_PARAMETER:
        if reference.startswith("arn:"):
            return reference
        return f"arn:aws:ssm:{spec.aws_region}:{spec.aws_account_id}:parameter/{reference.lstrip('/')}"
    arn = (
        reference
        if reference.startswith("arn:")
        else (f"arn:aws:secretsmanager:{spec.aws_region}:{spec.aws_account_id}:secret:{reference}")
    )
    return f"{arn}:{key}::" if key else arn


def container_secrets(spec: AppSpec, environment: str) -> list[dict[str, str]]:
    return [
        {"name": ref.env_var, "valueFrom": secret_arn(spec, ref.kind, ref.reference, ref.key)}
        for ref in spec.refs(*AWS_KINDS, environment=environment)
    ]


def _log_group(spec: AppSpec, environment: str) -> str:
    return f"/ecs/{spec.name}-{environment}"


def _role_arn(spec: AppSpec, environment: str, role: str) -> str:
    return f"arn:aws:iam::{spec.aws_account_id}:role/{spec.name}-{environment}-{role}"


def container_definition(spec: AppSpec, *, image: Any, secrets: Any, log_group: Any) -> dict[str, Any]:
    """The one container of the task, shared by the JSON and the CloudFormation template."""
    facts = spec.facts
    uid = spec.uid
    definition: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "essential": True,
        "user": f"{uid}:{uid}",
        "readonlyRootFilesystem": True,
        "privileged": False,
        "portMappings": [
            {"name": "http", "containerPort": facts.port, "protocol": "tcp", "appProtocol": "http"}
        ],
        "environment": [{"name": k, "value": v} for k, v in spec.config_map().items()],
        "secrets": secrets,
        "healthCheck": {
            "command": ["CMD", *healthcheck_command(spec)],
            "interval": 30,
            "timeout": 5,
            "retries": 3,
            "startPeriod": 20,
        },
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": log_group,
                "awslogs-region": spec.aws_region,
                "awslogs-stream-prefix": CONTAINER,
                "mode": "non-blocking",
                "max-buffer-size": "4m",
            },
        },
        "linuxParameters": {"capabilities": {"drop": ["ALL"]}, "initProcessEnabled": True},
        "mountPoints": [
            {"sourceVolume": name, "containerPath": path, "readOnly": False}
            for name, path in writable_mounts(spec)
        ],
        "stopTimeout": 30,
    }
    return definition


def task_definition(spec: AppSpec) -> dict[str, Any]:
    """RegisterTaskDefinition input for the primary environment."""
    env = spec.primary_environment
    return {
        "family": f"{spec.name}-{env}",
        "taskRoleArn": _role_arn(spec, env, "task"),
        "executionRoleArn": _role_arn(spec, env, "execution"),
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": spec.ecs_cpu,
        "memory": spec.ecs_memory,
        "runtimePlatform": {"operatingSystemFamily": "LINUX", "cpuArchitecture": "X86_64"},
        "containerDefinitions": [
            container_definition(
                spec,
                image=spec.image,
                secrets=container_secrets(spec, env),
                log_group=_log_group(spec, env),
            )
        ],
        "volumes": [{"name": name} for name, _ in writable_mounts(spec)],
        "tags": [{"key": "service", "value": spec.name}, {"key": "environment", "value": env}],
    }


def _deployment_configuration(spec: AppSpec, alarm: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
        "maximumPercent": 200,
        "minimumHealthyPercent": 100,
        "alarms": {"alarmNames": [alarm], "enable": True, "rollback": True},
        "strategy": STRATEGY[str(spec.strategy)],
    }
    if spec.strategy != "rolling":
        config["bakeTimeInMinutes"] = BAKE_MINUTES
    if spec.strategy == "canary":
        config["canaryConfiguration"] = {
            "canaryPercent": float(spec.canary_weight),
            "canaryBakeTimeInMinutes": CANARY_BAKE_MINUTES,
        }
    return config


def service(spec: AppSpec) -> dict[str, Any]:
    """CreateService input for the primary environment. Subnets, security group and target
    groups are created by the CloudFormation stack (or your network team): replace the
    REPLACE_ placeholders with the stack outputs."""
    env = spec.primary_environment
    cluster, name = ecs_names(spec, env)
    prefix = f"arn:aws:elasticloadbalancing:{spec.aws_region}:{spec.aws_account_id}"
    balancer: dict[str, Any] = {
        "targetGroupArn": f"{prefix}:targetgroup/{name}-{env}-blue/REPLACE_TARGET_GROUP_ID",
        "containerName": CONTAINER,
        "containerPort": spec.facts.port,
    }
    if spec.strategy != "rolling":
        balancer["advancedConfiguration"] = {
            "alternateTargetGroupArn": f"{prefix}:targetgroup/{name}-{env}-green/REPLACE_TARGET_GROUP_ID",
            "productionListenerRule": f"{prefix}:listener-rule/app/REPLACE_LISTENER_RULE",
            "roleArn": _role_arn(spec, env, "ecs-infrastructure"),
        }
    return {
        "cluster": cluster,
        "serviceName": name,
        "taskDefinition": f"{spec.name}-{env}",
        "desiredCount": spec.replicas,
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["subnet-REPLACE_PRIVATE_A", "subnet-REPLACE_PRIVATE_B"],
                "securityGroups": ["sg-REPLACE_SERVICE"],
                "assignPublicIp": "DISABLED",
            }
        },
        "loadBalancers": [balancer],
        "healthCheckGracePeriodSeconds": 60,
        "deploymentConfiguration": _deployment_configuration(spec, f"{name}-{env}-5xx"),
        "deploymentController": {"type": "ECS"},
        "enableECSManagedTags": True,
        "propagateTags": "SERVICE",
        "enableExecuteCommand": False,
        "tags": [{"key": "service", "value": name}, {"key": "environment", "value": env}],
    }


# --- CloudFormation ----------------------------------------------------------------------------


def _cfn_keys(value: Any) -> Any:
    """ECS API camelCase -> CloudFormation PascalCase, recursively (values are left alone)."""
    special = {"awslogs-group", "awslogs-region", "awslogs-stream-prefix", "mode", "max-buffer-size"}
    if isinstance(value, dict):
        return {(k if k in special else k[:1].upper() + k[1:]): _cfn_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cfn_keys(v) for v in value]
    return value


def _ref(name: str) -> Tag:
    return Tag("!Ref", name)


def _sub(text: str) -> Tag:
    return Tag("!Sub", text)


def _getatt(target: str) -> Tag:
    return Tag("!GetAtt", target)


def _mapping_key(env_var: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", env_var)


def _secret_mapping(spec: AppSpec) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Per-environment secret ARNs for Mappings; only variables with a reference in every
    environment (a gap would break the deploy of that environment)."""
    per_env = {
        env: {
            r.env_var: secret_arn(spec, r.kind, r.reference, r.key)
            for r in spec.refs(*AWS_KINDS, environment=env)
        }
        for env in spec.environments
    }
    complete = sorted(set.intersection(*(set(v) for v in per_env.values()))) if per_env else []
    mapping = {env: {_mapping_key(n): per_env[env][n] for n in complete} for env in spec.environments}
    return mapping, complete


def _policy(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": statements}


def _assume(service_principal: str) -> dict[str, Any]:
    return _policy(
        [
            {
                "Effect": "Allow",
                "Principal": {"Service": service_principal},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": _ref("AWS::AccountId")}},
            }
        ]
    )


def cloudformation(spec: AppSpec) -> str:
    """cloudformation/infrastructure.yaml: one stack per environment (``Environment`` parameter)."""
    facts = spec.facts
    name = spec.name
    strategy = STRATEGY[str(spec.strategy)]
    mapping, secret_vars = _secret_mapping(spec)
    prefix = f"{name}-${{Environment}}"
    two_groups = spec.strategy != "rolling"

    parameters = {
        "Environment": {
            "Type": "String",
            "AllowedValues": list(spec.environments),
            "Description": "Deployment environment",
        },
        "ImageRepositoryUri": {
            "Type": "String",
            "Default": spec.image_repository,
            "Description": "ECR repository URI",
        },
        "ImageTag": {
            "Type": "String",
            "AllowedPattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
            "Description": "Image tag to run (the commit sha)",
        },
        "VpcId": {"Type": "AWS::EC2::VPC::Id", "Description": "VPC of the environment"},
        "PrivateSubnetIds": {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": "Private subnets for the tasks (no public IPs)",
        },
        "ListenerArn": {
            "Type": "String",
            "AllowedPattern": "^arn:aws[a-z-]*:elasticloadbalancing:.+$",
            "Description": "HTTPS listener of the shared ALB",
        },
        "LoadBalancerSecurityGroupId": {
            "Type": "AWS::EC2::SecurityGroup::Id",
            "Description": "Security group of the ALB (allowed to reach the tasks)",
        },
        "ListenerRulePriority": {
            "Type": "Number",
            "Default": 100,
            "MinValue": 1,
            "MaxValue": 50000,
            "Description": "Unique priority of this service's listener rule",
        },
        "AlarmTopicArn": {
            "Type": "String",
            "AllowedPattern": "^arn:aws[a-z-]*:sns:.+$",
            "Description": "SNS topic that receives alarms",
        },
        "DesiredCount": {
            "Type": "Number",
            "Default": spec.replicas,
            "MinValue": 2,
            "Description": "Tasks at rest (autoscaling may add more)",
        },
        "MaxCount": {
            "Type": "Number",
            "Default": spec.max_replicas,
            "MinValue": 2,
            "Description": "Autoscaling ceiling",
        },
    }
    doc: dict[str, Any] = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"{name}: ECS Fargate service ({spec.strategy} deployments) behind a shared ALB",
        "Parameters": parameters,
    }
    if secret_vars:
        doc["Mappings"] = {"SecretArns": mapping}

    secrets = [
        {"Name": var, "ValueFrom": Tag("!FindInMap", ["SecretArns", _ref("Environment"), _mapping_key(var)])}
        for var in secret_vars
    ]
    container = _cfn_keys(
        container_definition(
            spec,
            image=_sub("${ImageRepositoryUri}:${ImageTag}"),
            secrets=[],
            log_group=_ref("LogGroup"),
        )
    )
    container["Secrets"] = secrets
    if not secrets:
        del container["Secrets"]

    egress = [
        {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "CidrIp": "0.0.0.0/0",
            "Description": "HTTPS to AWS APIs and upstreams",
        }
    ]
    for backing in facts.backing_services:
        ports = BACKING_PORTS[backing]
        egress.append(
            {
                "IpProtocol": "tcp",
                "FromPort": min(ports),
                "ToPort": max(ports),
                "CidrIp": "10.0.0.0/8",
                "Description": f"{backing} inside the VPC",
            }
        )

    resources: dict[str, Any] = {
        "LogKey": {
            "Type": "AWS::KMS::Key",
            "Properties": {
                "Description": _sub(f"{prefix} log encryption"),
                "EnableKeyRotation": True,
                "KeyPolicy": _policy(
                    [
                        {
                            "Sid": "AccountAdministration",
                            "Effect": "Allow",
                            "Principal": {"AWS": _sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
                            "Action": "kms:*",
                            "Resource": "*",
                        },
                        {
                            "Sid": "CloudWatchLogs",
                            "Effect": "Allow",
                            "Principal": {"Service": _sub("logs.${AWS::Region}.amazonaws.com")},
                            "Action": [
                                "kms:Encrypt*",
                                "kms:Decrypt*",
                                "kms:ReEncrypt*",
                                "kms:GenerateDataKey*",
                                "kms:Describe*",
                            ],
                            "Resource": "*",
                            "Condition": {
                                "ArnLike": {
                                    "kms:EncryptionContext:aws:logs:arn": _sub(
                                        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:*"
                                    )
                                }
                            },
                        },
                    ]
                ),
            },
        },
        "LogGroup": {
            "Type": "AWS::Logs::LogGroup",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "LogGroupName": _sub(f"/ecs/{prefix}"),
                "RetentionInDays": spec.log_retention_days,
                "KmsKeyId": _getatt("LogKey.Arn"),
            },
        },
        "Cluster": {
            "Type": "AWS::ECS::Cluster",
            "Properties": {
                "ClusterName": _sub(prefix),
                "ClusterSettings": [{"Name": "containerInsights", "Value": "enhanced"}],
            },
        },
        "ExecutionRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": _sub(f"{prefix}-execution"),
                "AssumeRolePolicyDocument": _assume("ecs-tasks.amazonaws.com"),
                "ManagedPolicyArns": [EXECUTION_POLICY],
            },
        },
        "TaskRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": _sub(f"{prefix}-task"),
                "AssumeRolePolicyDocument": _assume("ecs-tasks.amazonaws.com"),
                "Description": "The application's own AWS permissions: none until it needs some",
            },
        },
        "TaskDefinition": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": _sub(prefix),
                "RequiresCompatibilities": ["FARGATE"],
                "NetworkMode": "awsvpc",
                "Cpu": spec.ecs_cpu,
                "Memory": spec.ecs_memory,
                "RuntimePlatform": {"OperatingSystemFamily": "LINUX", "CpuArchitecture": "X86_64"},
                "ExecutionRoleArn": _getatt("ExecutionRole.Arn"),
                "TaskRoleArn": _getatt("TaskRole.Arn"),
                "ContainerDefinitions": [container],
                "Volumes": [{"Name": name} for name, _ in writable_mounts(spec)],
            },
        },
        "ServiceSecurityGroup": {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupDescription": _sub(f"{prefix} tasks: HTTP from the load balancer only"),
                "VpcId": _ref("VpcId"),
                "SecurityGroupIngress": [
                    {
                        "IpProtocol": "tcp",
                        "FromPort": facts.port,
                        "ToPort": facts.port,
                        "SourceSecurityGroupId": _ref("LoadBalancerSecurityGroupId"),
                        "Description": "HTTP from the ALB",
                    }
                ],
                "SecurityGroupEgress": egress,
            },
        },
    }
    if secret_vars:
        arns = sorted({_base_arn(arn) for env in mapping.values() for arn in env.values()})
        statements = [
            {"Effect": "Allow", "Action": [action], "Resource": matching}
            for action, service_name in (
                ("secretsmanager:GetSecretValue", ":secretsmanager:"),
                ("ssm:GetParameters", ":ssm:"),
            )
            if (matching := [a for a in arns if service_name in a])
        ]
        resources["ExecutionRole"]["Properties"]["Policies"] = [
            {"PolicyName": "read-service-secrets", "PolicyDocument": _policy(statements)}
        ]
    groups = ["TargetGroupBlue", "TargetGroupGreen"] if two_groups else ["TargetGroupBlue"]
    for group in groups:
        resources[group] = {
            "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
            "Properties": {
                "VpcId": _ref("VpcId"),
                "TargetType": "ip",
                "Protocol": "HTTP",
                "Port": facts.port,
                "HealthCheckEnabled": True,
                "HealthCheckPath": lb_health_check(spec)[0],
                "HealthCheckIntervalSeconds": 15,
                "HealthyThresholdCount": 2,
                "UnhealthyThresholdCount": 3,
                "Matcher": {"HttpCode": lb_health_check(spec)[1]},
                "TargetGroupAttributes": [{"Key": "deregistration_delay.timeout_seconds", "Value": "30"}],
            },
        }
    forward: dict[str, Any]
    if two_groups:
        forward = {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": _ref("TargetGroupBlue"), "Weight": 100},
                    {"TargetGroupArn": _ref("TargetGroupGreen"), "Weight": 0},
                ]
            },
        }
    else:
        forward = {"Type": "forward", "TargetGroupArn": _ref("TargetGroupBlue")}
    resources["ListenerRule"] = {
        "Type": "AWS::ElasticLoadBalancingV2::ListenerRule",
        "Properties": {
            "ListenerArn": _ref("ListenerArn"),
            "Priority": _ref("ListenerRulePriority"),
            "Conditions": [
                {
                    "Field": "host-header",
                    "HostHeaderConfig": {"Values": [_sub(f"${{Environment}}.{spec.host}")]},
                }
            ],
            "Actions": [forward],
        },
    }
    resources["Http5xxAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": _sub(f"{prefix}-5xx"),
            "AlarmDescription": "Targets answer 5xx: fails (and rolls back) a running deployment",
            "Namespace": "AWS/ApplicationELB",
            "MetricName": "HTTPCode_Target_5XX_Count",
            "Dimensions": [
                {"Name": "TargetGroup", "Value": _getatt("TargetGroupBlue.TargetGroupFullName")},
                {"Name": "LoadBalancer", "Value": _select_lb()},
            ],
            "Statistic": "Sum",
            "Period": 60,
            "EvaluationPeriods": 3,
            "DatapointsToAlarm": 2,
            "Threshold": 5,
            "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [_ref("AlarmTopicArn")],
        },
    }
    resources["CpuHighAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": _sub(f"{prefix}-cpu-high"),
            "AlarmDescription": "Service CPU stays above 85% although autoscaling is at work",
            "Namespace": "AWS/ECS",
            "MetricName": "CPUUtilization",
            "Dimensions": [
                {"Name": "ClusterName", "Value": _ref("Cluster")},
                {"Name": "ServiceName", "Value": _getatt("Service.Name")},
            ],
            "Statistic": "Average",
            "Period": 60,
            "EvaluationPeriods": 10,
            "Threshold": 85,
            "ComparisonOperator": "GreaterThanThreshold",
            "AlarmActions": [_ref("AlarmTopicArn")],
        },
    }
    balancer: dict[str, Any] = {
        "ContainerName": CONTAINER,
        "ContainerPort": facts.port,
        "TargetGroupArn": _ref("TargetGroupBlue"),
    }
    if two_groups:
        resources["EcsInfrastructureRole"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": _sub(f"{prefix}-ecs-infrastructure"),
                "AssumeRolePolicyDocument": _assume("ecs.amazonaws.com"),
                "ManagedPolicyArns": [INFRASTRUCTURE_POLICY],
            },
        }
        balancer["AdvancedConfiguration"] = {
            "AlternateTargetGroupArn": _ref("TargetGroupGreen"),
            "ProductionListenerRule": _ref("ListenerRule"),
            "RoleArn": _getatt("EcsInfrastructureRole.Arn"),
        }
    deployment = _cfn_keys(_deployment_configuration(spec, _ref("Http5xxAlarm")))
    resources["Service"] = {
        "Type": "AWS::ECS::Service",
        "Properties": {
            "ServiceName": name,
            "Cluster": _ref("Cluster"),
            "LaunchType": "FARGATE",
            "PlatformVersion": "LATEST",
            "TaskDefinition": _ref("TaskDefinition"),
            "DesiredCount": _ref("DesiredCount"),
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {
                    "AssignPublicIp": "DISABLED",
                    "Subnets": _ref("PrivateSubnetIds"),
                    "SecurityGroups": [_ref("ServiceSecurityGroup")],
                }
            },
            "LoadBalancers": [balancer],
            "HealthCheckGracePeriodSeconds": 60,
            "DeploymentController": {"Type": "ECS"},
            "DeploymentConfiguration": deployment,
            "EnableECSManagedTags": True,
            "PropagateTags": "SERVICE",
            "EnableExecuteCommand": False,
        },
    }
    if not two_groups:
        # The target group must sit behind a listener before ECS registers tasks in it.
        resources["Service"] = {"DependsOn": ["ListenerRule"], **resources["Service"]}
    resources["ScalableTarget"] = {
        "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
        "Properties": {
            "ServiceNamespace": "ecs",
            "ScalableDimension": "ecs:service:DesiredCount",
            "ResourceId": _sub("service/${Cluster}/${Service.Name}"),
            "MinCapacity": _ref("DesiredCount"),
            "MaxCapacity": _ref("MaxCount"),
        },
    }
    resources["CpuScalingPolicy"] = {
        "Type": "AWS::ApplicationAutoScaling::ScalingPolicy",
        "Properties": {
            "PolicyName": _sub(f"{prefix}-cpu"),
            "PolicyType": "TargetTrackingScaling",
            "ScalingTargetId": _ref("ScalableTarget"),
            "TargetTrackingScalingPolicyConfiguration": {
                "TargetValue": spec.target_cpu_percent,
                "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
                "ScaleInCooldown": 300,
                "ScaleOutCooldown": 60,
            },
        },
    }
    doc["Resources"] = resources
    doc["Outputs"] = {
        "ClusterName": {"Description": "ECS cluster", "Value": _ref("Cluster")},
        "ServiceName": {"Description": "ECS service", "Value": _getatt("Service.Name")},
        "TaskDefinitionArn": {
            "Description": "Task definition revision in use",
            "Value": _ref("TaskDefinition"),
        },
        "LogGroupName": {"Description": "Application logs", "Value": _ref("LogGroup")},
        "ServiceSecurityGroupId": {
            "Description": "Security group of the tasks",
            "Value": _ref("ServiceSecurityGroup"),
        },
        "TargetGroupArn": {"Description": "Production target group", "Value": _ref("TargetGroupBlue")},
    }
    env = spec.primary_environment
    note = (
        f"One stack per environment ({', '.join(spec.environments)}), strategy {strategy}. "
        "The circuit breaker and the 5xx alarm roll a failed deployment back. Manual rollback:\n"
        + "".join(f"  {line}\n" for line in ecs_rollback(spec, env))
    )
    return dump_yaml(doc, head=header(spec, "CloudFormation stack") + comment(note))


def _base_arn(arn: str) -> str:
    """What IAM should allow for a ``valueFrom``: a Secrets Manager secret without the JSON-key
    suffix, plus AWS's six-character random suffix; SSM parameters as they are."""
    if ":secretsmanager:" in arn:
        return ":".join(arn.split(":")[:7]) + "-??????"
    return arn


def _select_lb() -> Tag:
    # The listener ARN ".../listener/app/<name>/<lb-id>/<listener-id>" holds the load balancer's
    # metric dimension "app/<name>/<lb-id>".
    parts = [Tag("!Select", [i, Tag("!Split", ["/", _ref("ListenerArn")])]) for i in (1, 2, 3)]
    return Tag("!Join", ["/", parts])
