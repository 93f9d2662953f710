"""The AsyncAPI 3.0 document of the bus, built from the subject table and the event schemas.

One channel per event type (its subject, with the task id as parameter), one message per event
type whose payload is that type's JSON Schema, and per agent one ``receive`` operation for each
event type it consumes and one ``send`` operation for each it publishes (``ROUTES``), plus what
a client program does (send ``task.requested``, receive ``status.changed``).
"""

from __future__ import annotations

import copy
import inspect
import re
from typing import Any

from contracts.envelope import SCHEMA_VERSION
from contracts.payloads import PAYLOADS, EventType
from contracts.subjects import EVENTS_STREAM, PREFIX, ROUTES, Route, durable_name, event_subject

ASYNCAPI_VERSION = "3.0.0"
# Programs outside the orchestra (the CLI, a Node client): what they publish and follow.
CLIENT_ROUTE = Route(
    "client",
    consumes=(EventType.STATUS_CHANGED,),
    publishes=(EventType.TASK_REQUESTED, EventType.KNOWLEDGE_NOTE),
)
_DEFS_REF = re.compile(r"^#/\$defs/")

DESCRIPTION = f"""\
Agents cooperate through events on NATS JetStream. Every event is a JSON envelope (the
message payloads below; the same schemas are published as JSON Schema 2020-12 files next to
this document) on the subject `{PREFIX}.evt.<event type>.<task id>`, stored in the stream
`{EVENTS_STREAM}`.

- Publish with the header `Nats-Msg-Id` set to the event id and wait for the PubAck: a retry
  with the same id within the stream's duplicate window is stored once.
- All events of one task: subscribe to `{PREFIX}.evt.*.*.<task id>` (event types contain a
  dot, so `{PREFIX}.evt.*.<task id>` matches nothing).
- Deployment status of one task: `{event_subject(EventType.STATUS_CHANGED, "<task id>")}`.
"""


def _component_refs(node: Any) -> Any:
    """``node`` with JSON Schema ``#/$defs/X`` references pointing at ``#/components/schemas/X``."""
    if isinstance(node, dict):
        return {
            k: (_DEFS_REF.sub("#/components/schemas/", v) if k == "$ref" else _component_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_component_refs(v) for v in node]
    return node


def _components(schemas: dict[EventType, dict]) -> dict[str, dict]:
    """Every event schema and every schema it refers to, under one name each."""
    out: dict[str, dict] = {}
    for schema in schemas.values():
        schema = copy.deepcopy(schema)
        for name, sub in schema.pop("$defs", {}).items():
            sub = _component_refs(sub)
            # Models shared by several events (ServiceSpec, Target...) must be the same model.
            assert out.setdefault(name, sub) == sub, f"two different schemas named {name}"
        for key in ("$schema", "$id"):
            schema.pop(key)
        out[schema["title"]] = _component_refs(schema)
    return dict(sorted(out.items()))


def _message(event_type: EventType, schema: dict) -> dict:
    doc = PAYLOADS[event_type].__doc__
    return {
        "name": event_type.value,
        "title": schema["title"],
        "summary": schema["description"],
        **({"description": inspect.cleandoc(doc)} if doc else {}),
        "contentType": "application/json",
        "correlationId": {
            "description": "The task this event belongs to (also the last subject token).",
            "location": "$message.payload#/task_id",
        },
        "headers": {
            "type": "object",
            "properties": {
                "Nats-Msg-Id": {
                    "type": "string",
                    "description": "The event id: a repeat within the duplicate window is stored once.",
                },
                "traceparent": {"type": "string", "description": "W3C trace context."},
            },
        },
        "payload": {"$ref": f"#/components/schemas/{schema['title']}"},
    }


def _channel(event_type: EventType) -> dict:
    return {
        "address": event_subject(event_type, "{task_id}"),
        "title": event_type.value,
        "description": f"`{event_type.value}` events, one subject per task (stream {EVENTS_STREAM}).",
        "parameters": {
            "task_id": {"description": "The task id: one subject token, 1-64 of A-Z a-z 0-9 _ -."}
        },
        "messages": {event_type.value: {"$ref": f"#/components/messages/{event_type.value}"}},
    }


def _operations(route: Route) -> dict[str, dict]:
    out = {}
    for action, types in (("receive", route.consumes), ("send", route.publishes)):
        for event_type in types:
            if action == "receive" and route is not CLIENT_ROUTE:
                how = f"durable consumer `{_durable(route, event_type)}`"
            elif action == "receive":
                how = "an ordered (ephemeral) consumer filtered on the task"
            else:
                how = "JetStream publish, PubAck awaited"
            out[f"{route.agent}.{action}.{event_type.value}"] = {
                "action": action,
                "title": f"{route.agent} {action}s {event_type.value}",
                "summary": f"{route.agent}: {how}.",
                "channel": {"$ref": f"#/channels/{event_type.value}"},
                "messages": [{"$ref": f"#/channels/{event_type.value}/messages/{event_type.value}"}],
                "tags": [{"name": route.agent}],
            }
    return out


def _durable(route: Route, event_type: EventType) -> str:
    return route.agent if route.consumes_everything else durable_name(route.agent, event_type)


def asyncapi_document(schemas: dict[EventType, dict]) -> dict:
    """The AsyncAPI 3.0 document for ``schemas`` (``{event type: its JSON Schema}``)."""
    operations: dict[str, dict] = {}
    for route in (*ROUTES.values(), CLIENT_ROUTE):
        operations |= _operations(route)
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "Orchestra bus",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"},
            "tags": [{"name": route.agent} for route in (*ROUTES.values(), CLIENT_ROUTE)],
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": "A local NATS server with JetStream (the URL `orchestra up` prints).",
            }
        },
        "channels": {t.value: _channel(t) for t in schemas},
        "operations": dict(sorted(operations.items())),
        "components": {
            "schemas": _components(schemas),
            "messages": {t.value: _message(t, s) for t, s in schemas.items()},
        },
    }
