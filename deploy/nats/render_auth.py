"""Per-agent NATS users with publish/subscribe allow-lists, derived from ``contracts.subjects``.

Run ``python -m deploy.nats.render_auth`` (or ``python -m deploy.render``, every deploy generator)
after changing the agent registry (contracts/agents.py): it rewrites ``deploy/nats/auth.conf``
(included by every server config in deploy/nats/) and two generated regions of
``deploy/helm/orchestra/values.yaml``: the ``nats.config.merge`` users (the same users for the
official NATS Helm chart) and ``nats.container.env``, where the NATS pods read each user's
password from the Secret. ``--check`` exits 1 when a file differs from what it would write.

What each user may do is exactly what the bus code does for it (bus/provision.py,
bus/consumer.py, bus/publisher.py, bus/watch.py, nats-py's JetStream and KV calls):

- an agent publishes only its own event types, the dead letters of its own durables, the
  JetStream API calls for its own durables (create with its filter, info, fetch) and acks on
  them, the stream look-ups it binds with, and (devops) the task-state bucket's keys. It never
  creates, updates, purges or deletes a stream;
  an agent that publishes events may read one stored event by sequence (a duplicate PubAck is
  compared with what is stored; events carry no secret values), devops may read the consumer
  info of the agents it waits for (its deadlines measure their silence);
- it subscribes only to its own reply inbox ``_INBOX_<agent>.>``, ``$SRV.>`` (NATS micro
  discovery) and its own micro ``status`` endpoint; knowledge also to the knowledge RPC subjects;
- ``allow_responses`` lets it answer requests (micro PING/INFO/STATS, knowledge RPC) on the
  requester's reply subject only, never on any other subject;
- ``provisioner`` creates and updates the two streams and the task-state bucket (``orchestra
  provision``: the compose one-shot service, the Helm Job) and nothing else: no delete, no purge,
  no consumer, no event;
- ``client`` is for people and programs: submit tasks, store notes, call the knowledge RPC,
  discover services, watch statuses through ordered consumers it names in the API subject
  (``watch-<random>``, bus/watch.py) with the status filter; every agent durable's name is denied
  to it, so it can neither create nor rewrite one;
- ``admin`` may do anything inside the ORCHESTRA account (stream surgery, backups, dead-letter
  replay, knowledge rebuild);
- ``sys`` is the system account user for server monitoring (``nats server report``).

Passwords are never in these files: each user's password is the server's environment variable
``ORCHESTRA_<USER>_PASSWORD`` (letters and digits starting with a letter: nats-server parses the
value like a config value, so a leading digit would turn it into a number).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contracts.agents import AGENTS, AgentSpec
from contracts.payloads import EventType
from contracts.subjects import (
    DLQ_STREAM,
    EVENTS_STREAM,
    RPC_KNOWLEDGE_HISTORY,
    RPC_KNOWLEDGE_SEARCH,
    TASKS_BUCKET,
    TASKS_BUCKET_STREAM,
    Route,
    agent_status_subject,
    dlq_subject,
    durable_name,
    event_filter,
    inbox_prefix,
    routes,
    status_filter,
)
from deploy.generated import ROOT, Reader, read_text, splice, sync

AUTH_CONF = ROOT / "deploy/nats/auth.conf"
HELM_VALUES = ROOT / "deploy/helm/orchestra/values.yaml"
HELM_USERS = "deploy/nats/render_auth.py"  # the tag of the users' region in values.yaml
HELM_PASSWORDS = "deploy/nats/render_auth.py (passwords)"

ACCOUNT = "ORCHESTRA"
SYSTEM_ACCOUNT = "SYS"
CLIENT = "client"
PROVISIONER = "provisioner"
ADMIN = "admin"
SYSTEM_USER = "sys"

API = "$JS.API"
KV_STREAM = TASKS_BUCKET_STREAM
# Reading one stored event by sequence (or the first on a subject): bus/publisher.py compares what a
# duplicate PubAck points at, the architect and the client look up a task's first task.requested,
# devops reads back its artifact set.
READ_BACK = f"{API}.STREAM.MSG.GET.{EVENTS_STREAM}"
MICRO = "$SRV.>"


def status_endpoint(agent: str) -> str:
    """The micro ``status`` endpoint of an agent (agents/discovery.py registers it)."""
    return agent_status_subject(agent)


def password_env(user: str) -> str:
    """The server-side environment variable that holds ``user``'s password (or its bcrypt hash)."""
    return f"ORCHESTRA_{user.upper()}_PASSWORD"


@dataclass(frozen=True)
class User:
    """One NATS user: publish/subscribe allow-lists (``None``: no permissions block at all), and
    publish subjects denied although an allow pattern matches them."""

    name: str
    publish: tuple[str, ...] | None
    subscribe: tuple[str, ...] | None
    allow_responses: bool = False
    deny_publish: tuple[str, ...] = ()
    account: str = ACCOUNT
    comment: str = ""

    @property
    def password_env(self) -> str:
        return password_env(self.name)


def _stream_binding() -> list[str]:
    """What an agent may ask about the streams: whether they exist (it waits until they do)."""
    return [f"{API}.INFO", *(f"{API}.STREAM.INFO.{stream}" for stream in (EVENTS_STREAM, DLQ_STREAM))]


def _stream_provisioning() -> list[str]:
    """Create or update the two streams, create the bucket (bus/provision.py); never delete or
    purge anything."""
    subjects = [f"{API}.INFO"]
    for stream in (EVENTS_STREAM, DLQ_STREAM):
        subjects += [f"{API}.STREAM.{verb}.{stream}" for verb in ("INFO", "CREATE", "UPDATE")]
    return [*subjects, f"{API}.STREAM.INFO.{KV_STREAM}", f"{API}.STREAM.CREATE.{KV_STREAM}"]


def _durable(durable: str, filter_subject: str, stream: str = EVENTS_STREAM) -> list[str]:
    """A durable pull consumer: create it (bound to its filter), read its info, fetch and ack."""
    return [
        f"{API}.CONSUMER.CREATE.{stream}.{durable}.{filter_subject}",
        f"{API}.CONSUMER.INFO.{stream}.{durable}",
        f"{API}.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
        dlq_subject(durable),
    ]


def _task_bucket() -> list[str]:
    """The KV bucket: look up, put/update/delete, get (direct and classic), watch/keys."""
    return [
        f"{API}.STREAM.INFO.{KV_STREAM}",
        f"$KV.{TASKS_BUCKET}.>",
        f"{API}.DIRECT.GET.{KV_STREAM}",
        f"{API}.DIRECT.GET.{KV_STREAM}.>",
        f"{API}.STREAM.MSG.GET.{KV_STREAM}",
        f"{API}.CONSUMER.CREATE.{KV_STREAM}",
        f"{API}.CONSUMER.CREATE.{KV_STREAM}.>",
        f"{API}.CONSUMER.INFO.{KV_STREAM}.*",
        f"{API}.CONSUMER.DELETE.{KV_STREAM}.*",
        f"$JS.FC.{KV_STREAM}.>",
    ]


def _awaited_consumers(owner: str, all_routes: Mapping[str, Route]) -> list[str]:
    """The consumer state of the agents the task-state owner waits for: its deadlines measure their
    silence (agents/devops/silence.py)."""
    return [
        f"{API}.CONSUMER.INFO.{EVENTS_STREAM}.{durable_name(r.agent, t)}"
        for r in all_routes.values()
        if not r.consumes_everything
        for t in r.consumes
        if t in all_routes[owner].publishes
    ]


def agent_user(agent: AgentSpec, all_routes: Mapping[str, Route] | None = None) -> User:
    """The user of one agent, from its route: what it publishes, which durables it owns, and (the
    task-state owner) the bucket and the consumers it waits on."""
    all_routes = routes(AGENTS) if all_routes is None else all_routes
    route = all_routes[agent.name]
    inbox = f"{inbox_prefix(route.agent)}.>"
    publish = [event_filter(t) for t in route.publishes]
    publish += _stream_binding()
    for durable, filter_subject in route.consumers():
        publish += _durable(durable, filter_subject)
    if agent.owns_task_state:
        publish += _task_bucket()
    if route.publishes:  # it publishes events: duplicate PubAcks are compared with what is stored
        publish.append(READ_BACK)
    if agent.owns_task_state:
        publish += _awaited_consumers(route.agent, all_routes)
    publish.append(inbox)
    subscribe = [inbox, MICRO, status_endpoint(route.agent)]
    if route.consumes_everything:  # the knowledge subscriber serves the knowledge RPC
        subscribe += [RPC_KNOWLEDGE_SEARCH, RPC_KNOWLEDGE_HISTORY]
    return User(
        name=route.agent,
        publish=tuple(publish),
        subscribe=tuple(subscribe),
        allow_responses=True,
        comment=f"agent {route.agent}: consumes {', '.join(str(t) for t in route.consumes)}",
    )


def agent_durables(agents: Mapping[str, AgentSpec] = AGENTS) -> list[str]:
    """Every agent durable consumer's name, from the subject table."""
    return [durable for route in routes(agents).values() for durable, _ in route.consumers()]


def client_user(agents: Mapping[str, AgentSpec] = AGENTS) -> User:
    """People and programs (``orchestra task|watch|search``, the Python client)."""
    inbox = f"{inbox_prefix(CLIENT)}.>"
    publish = [
        event_filter(EventType.TASK_REQUESTED),
        event_filter(EventType.KNOWLEDGE_NOTE),
        RPC_KNOWLEDGE_SEARCH,
        RPC_KNOWLEDGE_HISTORY,
        MICRO,
        status_endpoint("*"),
        f"{API}.INFO",
        f"{API}.STREAM.NAMES",
        f"{API}.STREAM.INFO.{EVENTS_STREAM}",
        f"{API}.STREAM.INFO.{DLQ_STREAM}",
        READ_BACK,
        # watch (bus/watch.py): a consumer named in the subject, status events only. Never the bare
        # CONSUMER.CREATE.<stream>: it takes any name from the body, an agent durable's too.
        f"{API}.CONSUMER.CREATE.{EVENTS_STREAM}.*.{status_filter()}",
        f"$JS.FC.{EVENTS_STREAM}.>",
        inbox,
    ]
    # The name token above is a wildcard (NATS permissions cannot say "starts with watch-"):
    # each agent durable is denied by name, so the client can neither create nor rewrite one.
    deny = [f"{API}.CONSUMER.CREATE.{EVENTS_STREAM}.{durable}.>" for durable in agent_durables(agents)]
    # `_INBOX.>` too: a client that keeps nats-py's default prefix still gets its replies. No agent
    # can use that prefix (each may only subscribe to its own), so no agent reply lands there.
    subscribe = [inbox, "_INBOX.>"]
    return User(
        name=CLIENT,
        publish=tuple(publish),
        subscribe=tuple(subscribe),
        deny_publish=tuple(deny),
        comment="people and programs: submit, note, search, watch",
    )


def provisioner_user() -> User:
    """The one identity that creates and updates the streams (``orchestra provision``)."""
    inbox = f"{inbox_prefix(PROVISIONER)}.>"
    return User(
        name=PROVISIONER,
        publish=(*_stream_provisioning(), inbox),
        subscribe=(inbox,),
        comment="provisioning: create and update the streams and the task-state bucket, nothing else",
    )


def users(agents: Mapping[str, AgentSpec] = AGENTS) -> list[User]:
    """Every user of the orchestra's NATS server, agents first (in registry order)."""
    all_routes = routes(agents)
    agent_users = [agent_user(agent, all_routes) for agent in agents.values()]
    admin = User(ADMIN, (">",), (">",), comment="operator: anything inside the ORCHESTRA account")
    system = User(
        SYSTEM_USER, None, None, account=SYSTEM_ACCOUNT, comment="system account: server monitoring"
    )
    return [*agent_users, client_user(agents), provisioner_user(), admin, system]


# -- nats-server configuration ------------------------------------------------------------


def _q(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _user_block(user: User, indent: str) -> list[str]:
    i2, i3, i4 = indent + "  ", indent + "    ", indent + "      "
    lines = [f"{indent}# {user.comment}"] if user.comment else []
    lines += [f"{indent}{{", f"{i2}user: {_q(user.name)}", f"{i2}password: ${user.password_env}"]
    if user.publish is not None or user.subscribe is not None:
        lines.append(f"{i2}permissions: {{")
        for key, allow in (("publish", user.publish), ("subscribe", user.subscribe)):
            if allow is None:
                continue
            lines.append(f"{i3}{key}: {{")
            lines.append(f"{i4}allow: [")
            lines += [f"{i4}  {_q(s)}" for s in allow]
            lines.append(f"{i4}]")
            if key == "publish" and user.deny_publish:
                lines.append(f"{i4}deny: [")
                lines += [f"{i4}  {_q(s)}" for s in user.deny_publish]
                lines.append(f"{i4}]")
            lines.append(f"{i3}}}")
        if user.allow_responses:
            lines.append(f"{i3}allow_responses: true")
        lines.append(f"{i2}}}")
    lines.append(f"{indent}}}")
    return lines


def render_conf(all_users: list[User] | None = None) -> str:
    """The ``auth.conf`` text: accounts, users, permissions; passwords as env variable references."""
    all_users = users() if all_users is None else all_users
    out = [
        "# GENERATED by `python -m deploy.nats.render_auth` from contracts/subjects.py: do not edit.",
        "# A test fails when this file and the generator differ.",
        "#",
        "# No secret is in this file. Each password is read from the server's environment:",
        *(f"#   {u.password_env:<36} user {u.name}" for u in all_users),
        "# A variable that is not set stops the server at start-up (no default password exists).",
        "# The server parses a variable's value like a config value: use letters and digits that",
        '# start with a letter (e.g. "p$(openssl rand -hex 24)"); a leading digit makes it a number.',
        "",
        "accounts {",
    ]
    for account, js in ((ACCOUNT, True), (SYSTEM_ACCOUNT, False)):
        members = [u for u in all_users if u.account == account]
        out.append(f"  {account} {{")
        if js:
            out.append("    jetstream: enabled")
        out.append("    users: [")
        for user in members:
            out += _user_block(user, "      ")
        out.append("    ]")
        out.append("  }")
    out.append("}")
    out.append(f"system_account: {SYSTEM_ACCOUNT}")
    return "\n".join(out) + "\n"


# -- the same users for the official NATS Helm chart --------------------------------------


def helm_config_merge(all_users: list[User] | None = None) -> dict[str, Any]:
    """``nats.config.merge`` for the official chart: ``<< $VAR >>`` renders an unquoted variable."""
    all_users = users() if all_users is None else all_users
    accounts: dict[str, Any] = {}
    for account in (ACCOUNT, SYSTEM_ACCOUNT):
        entries = []
        for user in (u for u in all_users if u.account == account):
            entry: dict[str, Any] = {"user": user.name, "password": f"<< ${user.password_env} >>"}
            perms: dict[str, Any] = {}
            if user.publish is not None:
                perms["publish"] = {"allow": list(user.publish)}
                if user.deny_publish:
                    perms["publish"]["deny"] = list(user.deny_publish)
            if user.subscribe is not None:
                perms["subscribe"] = {"allow": list(user.subscribe)}
            if user.allow_responses:
                perms["allow_responses"] = True
            if perms:
                entry["permissions"] = perms
            entries.append(entry)
        accounts[account] = (
            {"jetstream": "enabled", "users": entries} if account == ACCOUNT else {"users": entries}
        )
    return {"accounts": accounts, "system_account": SYSTEM_ACCOUNT}


def helm_users_lines(all_users: list[User] | None = None) -> list[str]:
    """The users' region of values.yaml (under ``nats.config.merge``), unindented."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
            super().increase_indent(flow, False)  # indented lists, as yamllint expects

    body = yaml.dump(
        helm_config_merge(all_users), Dumper=Dumper, sort_keys=False, default_flow_style=False, width=200
    )
    return body.splitlines()


def helm_password_lines(secret: str, all_users: list[User] | None = None) -> list[str]:
    """The passwords' region of values.yaml (``nats.container.env``): each user's password from the
    key of the same name in the Secret ``secret``."""
    all_users = users() if all_users is None else all_users
    lines = []
    for user in all_users:
        lines += [
            f"{user.password_env}:",
            f"  valueFrom: {{secretKeyRef: {{name: {secret}, key: {user.name}}}}}",
        ]
    return lines


def outputs(agents: Mapping[str, AgentSpec] = AGENTS, read: Reader = read_text) -> dict[Path, str]:
    """Each generated file and the text it must have."""
    import yaml

    all_users = users(agents)
    result = {AUTH_CONF: render_conf(all_users)}
    if HELM_VALUES.exists():
        text = read(HELM_VALUES)
        secret = yaml.safe_load(text)["auth"]["existingSecret"]
        text = splice(text, HELM_USERS, helm_users_lines(all_users), where=HELM_VALUES)
        result[HELM_VALUES] = splice(
            text, HELM_PASSWORDS, helm_password_lines(secret, all_users), where=HELM_VALUES
        )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated file is stale")
    args = parser.parse_args(argv)
    return sync(outputs(), check=args.check, command="python -m deploy.nats.render_auth")


if __name__ == "__main__":
    sys.exit(main())
