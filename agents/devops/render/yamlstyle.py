"""The one YAML style of every generated file, and a fast emitter for it.

Block style, sequences indented under their key, no anchors, ``---`` before each document,
literal blocks for multi-line text, plain scalars wherever YAML 1.1 reads them back as the same
string (else single quotes, else double quotes). :func:`emit` covers exactly the shapes the
renderers build (dicts, lists, strings, numbers, booleans, None and :class:`Tag`) and is about an
order of magnitude faster than PyYAML's pure-Python emitter; :func:`reference_dump` is PyYAML
configured to the same style, and the tests check the two load to identical data.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import yaml

_RESOLVER = yaml.resolver.Resolver()
_STR = "tag:yaml.org,2002:str"
# Characters that may start a plain scalar (YAML indicators excluded) and that may follow.
_PLAIN = re.compile(r"[A-Za-z0-9_./$(~+=^][\x20-\x7e]*")
_FLOW_UNSAFE = re.compile(r"[,\[\]{}]")


class Tag:
    """A YAML value with an explicit local tag, e.g. CloudFormation's ``!Ref Name``."""

    __slots__ = ("tag", "value")

    def __init__(self, tag: str, value: Any) -> None:
        self.tag, self.value = tag, value


@lru_cache(maxsize=8192)
def _plain_ok(text: str, flow: bool) -> bool:
    if not _PLAIN.fullmatch(text) or text[-1] in " :" or ": " in text or " #" in text:
        return False
    if flow and _FLOW_UNSAFE.search(text):
        return False
    return _RESOLVER.resolve(yaml.ScalarNode, text, (True, False)) == _STR


def _quoted(text: str) -> str:
    if all(" " <= c <= "~" for c in text):
        return "'" + text.replace("'", "''") + "'"
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid double-quoted scalar


def scalar(value: Any, *, flow: bool = False) -> str:
    """One-line scalar text (strings quoted only when they must be)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if not text:
        return "''"
    if _plain_ok(text, flow):
        return text
    return _quoted(text)


def _literal(text: str, indent: int) -> str | None:
    """``|`` block for multi-line text, or None when a literal block cannot hold it exactly."""
    lines = text.split("\n")
    if any(line != line.rstrip(" \t") or "\t" in line for line in lines) or not all(
        " " <= c <= "~" or c == "\n" for c in text
    ):
        return None
    chomp = "-" if not text.endswith("\n") else ("" if not text.endswith("\n\n") else "+")
    body = lines[:-1] if text.endswith("\n") else lines
    if chomp == "+":
        while body and body[-1] == "":
            body.pop()
        body += [""] * (len(text) - len(text.rstrip("\n")) - 1)
    marker = ("2" if body and body[0].startswith(" ") else "") + chomp
    pad = " " * indent
    return "|" + marker + "\n" + "".join(f"{pad}{line}\n" if line else "\n" for line in body)


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list | tuple | Tag)


def _flow_tag(tag: Tag) -> str | None:
    """``!Name [a, !Other b]`` when short and flat enough, as PyYAML would write it."""
    items = tag.value
    nested = any(isinstance(i, Tag | list | tuple | dict) for i in items)
    if nested and len(repr([getattr(i, "value", i) for i in items])) >= 60:
        return None
    parts = []
    for item in items:
        if isinstance(item, Tag):
            if isinstance(item.value, list | tuple):
                inner = _flow_tag(item)
                if inner is None:
                    return None
                parts.append(inner)
            else:
                parts.append(f"{item.tag} {scalar(item.value, flow=True)}")
        elif isinstance(item, dict | list | tuple):
            return None
        else:
            parts.append(scalar(item, flow=True))
    return f"{tag.tag} [" + ", ".join(parts) + "]"


def _value(value: Any, indent: int, out: list[str], lead: str) -> None:
    """Append ``lead`` + value; ``lead`` is ``"key:"`` or ``"-"`` already indented."""
    if isinstance(value, Tag):
        if isinstance(value.value, list | tuple):
            flow = _flow_tag(value)
            if flow is not None:
                out.append(f"{lead} {flow}\n")
                return
            out.append(f"{lead} {value.tag}\n")
            _sequence(list(value.value), indent + 2, out)
            return
        if isinstance(value.value, dict):
            out.append(f"{lead} {value.tag}\n")
            _mapping(value.value, indent + 2, out)
            return
        out.append(f"{lead} {value.tag} {scalar(value.value)}\n")
        return
    if isinstance(value, dict):
        if not value:
            out.append(f"{lead} {{}}\n")
        else:
            out.append(f"{lead}\n")
            _mapping(value, indent + 2, out)
        return
    if isinstance(value, list | tuple):
        if not value:
            out.append(f"{lead} []\n")
        else:
            out.append(f"{lead}\n")
            _sequence(list(value), indent + 2, out)
        return
    if isinstance(value, str) and "\n" in value:
        block = _literal(value, indent + 2)
        out.append(
            f"{lead} {block}" if block is not None else f"{lead} {json.dumps(value, ensure_ascii=False)}\n"
        )
        return
    out.append(f"{lead} {scalar(value)}\n")


def _mapping(data: dict[Any, Any], indent: int, out: list[str]) -> None:
    pad = " " * indent
    for key, value in data.items():
        _value(value, indent, out, f"{pad}{scalar(key)}:")


def _sequence(items: list[Any], indent: int, out: list[str]) -> None:
    pad = " " * indent
    for item in items:
        if isinstance(item, dict) and item:
            first = True
            for key, value in item.items():
                lead = f"{pad}- {scalar(key)}:" if first else f"{pad}  {scalar(key)}:"
                _value(value, indent + 2, out, lead)
                first = False
        elif isinstance(item, list | tuple) and item:
            inner: list[str] = []
            _sequence(list(item), indent + 2, inner)
            inner[0] = f"{pad}- " + inner[0].lstrip(" ")
            out += inner
        else:
            _value(item, indent, out, f"{pad}-")


def emit(data: Any) -> str:
    """One document, started with ``---``."""
    out = ["---\n"]
    if isinstance(data, dict) and data:
        _mapping(data, 0, out)
    elif isinstance(data, list | tuple) and data:
        _sequence(list(data), 0, out)
    else:
        out.append(scalar(data) + "\n")
    return "".join(out)


# --- the reference: PyYAML in the same style ---------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def choose_scalar_style(self) -> str:
        style = super().choose_scalar_style()
        event = self.event
        if style == "'" and event.tag and event.tag.startswith("!") and not event.style:
            plain_ok = self.analysis.allow_flow_plain if self.flow_level else self.analysis.allow_block_plain
            if plain_ok and not self.analysis.empty and not self.analysis.multiline:
                return ""
        return style


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    text = str(value)
    return dumper.represent_scalar(_STR, text, style="|" if "\n" in text else None)


def _tag(dumper: yaml.SafeDumper, tagged: Tag) -> yaml.Node:
    if isinstance(tagged.value, list | tuple):
        nested = any(isinstance(item, Tag | list | tuple | dict) for item in tagged.value)
        flow = not nested or len(repr([getattr(i, "value", i) for i in tagged.value])) < 60
        return dumper.represent_sequence(tagged.tag, list(tagged.value), flow_style=flow)
    if isinstance(tagged.value, dict):
        return dumper.represent_mapping(tagged.tag, tagged.value)
    return dumper.represent_scalar(tagged.tag, str(tagged.value))


_Dumper.add_representer(str, _str)
_Dumper.add_multi_representer(str, _str)
_Dumper.add_representer(tuple, lambda d, v: d.represent_list(list(v)))
_Dumper.add_representer(Tag, _tag)


def reference_dump(data: Any) -> str:
    """The same document through PyYAML (slow; tests compare it with :func:`emit`)."""
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, explicit_start=True, width=4096, allow_unicode=True
    )
