"""Servers that listen on the loopback interface only, read from the code.

In a container, ``localhost`` is the container itself: a server bound there passes its own
in-container health check, yet Kubernetes and ECS probes, load balancers and published ports
never reach it. The generator cannot change code, so a finding names the file, line and the
change; when the host comes from a variable (``host: process.env.HOST``), setting that variable
to 0.0.0.0 is the fix and needs no flag.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from agents.inspection.detect.scan import strip_comments

ANY = "0.0.0.0"
_LOOPBACK = r"(?:localhost|127\.0\.0\.1|::1|\[::1\])"


@dataclass(frozen=True)
class Listen:
    """A listen call's host: ``loopback`` names where and why it is loopback only, with the code
    change (``fix``); ``env`` the variable the host comes from (set it to 0.0.0.0 instead)."""

    where: str
    loopback: str | None = None
    fix: str = ""
    env: str | None = None

    def refusal(self) -> str:
        """The finding in a sentence: where, why nothing outside reaches it, the change."""
        return (
            f"{self.where} listens on localhost only ({self.loopback}): nothing outside its container "
            f"(Kubernetes and ECS probes, the load balancer, published ports) can reach it; change the code "
            f"to {self.fix}"
        )


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


# --- Node.js ------------------------------------------------------------------------------------

_NODE_LISTEN = re.compile(r"\.listen\(\s*")
_NODE_HOST_ENV = re.compile(r"""\bhost\s*:\s*(?:process\.env|(?:\w+\.)*config)\.(\w+)""")
_NODE_HOST_LOOPBACK = re.compile(rf"""\bhost\s*:\s*["'`]{_LOOPBACK}["'`]""")
_NODE_ARG_ENV = re.compile(r"""^process\.env\.(\w+)""")
_NODE_ARG_LOOPBACK = re.compile(rf"""^["'`]{_LOOPBACK}["'`]""")


def node(sources: dict[str, str], framework: str | None) -> Listen | None:
    """Fastify's ``listen({ port })`` (its default host is localhost), an explicit loopback host,
    or a host read from a variable; None when every listen call binds every interface."""
    for rel in sorted(sources):
        text = strip_comments(sources[rel])
        for match in _NODE_LISTEN.finditer(text):
            arguments = _balanced(text, match.end())
            where = f"{rel}:{_line(text, match.start())}"
            found = _node_call(arguments, where, framework)
            if found is not None:
                return found
    return None


def _node_call(arguments: str, where: str, framework: str | None) -> Listen | None:
    if arguments.startswith("{"):
        if env := _NODE_HOST_ENV.search(arguments):
            return Listen(where, env=env.group(1))
        if _NODE_HOST_LOOPBACK.search(arguments):
            return Listen(where, "an explicit loopback host", "listen on host '0.0.0.0'")
        if framework == "fastify" and not re.search(r"\bhost\s*:", arguments):
            port = re.search(r"\bport\s*:\s*([^,}]+)", arguments)
            shown = port.group(1).strip() if port else "port"
            return Listen(
                where,
                "fastify's listen() without a host binds localhost",
                f"`listen({{ port: {shown}, host: '0.0.0.0' }})`",
            )
        return None
    parts = _top_level(arguments)
    if len(parts) > 1:
        host = parts[1].strip()
        if env := _NODE_ARG_ENV.match(host):
            return Listen(where, env=env.group(1))
        if _NODE_ARG_LOOPBACK.match(host):
            return Listen(where, "an explicit loopback host", f"`listen({parts[0].strip()}, '0.0.0.0')`")
    return None


def _balanced(text: str, start: int) -> str:
    """The text of a call's arguments from ``start`` to the matching ``)``."""
    depth, out = 0, []
    for char in text[start : start + 600]:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            if depth == 0:
                break
            depth -= 1
        out.append(char)
    return "".join(out).strip()


def _top_level(arguments: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in arguments:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


# --- Python -------------------------------------------------------------------------------------

_PY_GETENV = frozenset({"os.environ.get", "os.getenv", "environ.get", "getenv"})


def python_main(sources: dict[str, str], module_rel: str) -> Listen | None:
    """The ``.run(...)`` of the ``__main__`` block in ``module_rel`` (Flask's ``app.run`` and
    ``uvicorn.run`` bind 127.0.0.1 unless given a host)."""
    text = sources.get(module_rel, "")
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return None
    for node_ in tree.body:
        if not (isinstance(node_, ast.If) and "__main__" in ast.unparse(node_.test)):
            continue
        for call in ast.walk(node_):
            func = call.func if isinstance(call, ast.Call) else None
            if isinstance(call, ast.Call) and isinstance(func, ast.Attribute) and func.attr == "run":
                return _python_run(call, f"{module_rel}:{call.lineno}")
    return None


def _python_run(call: ast.Call, where: str) -> Listen | None:
    host = next((k.value for k in call.keywords if k.arg == "host"), None)
    shown = ast.unparse(call)
    if host is None:
        fixed = shown[:-1] + (", " if call.args or call.keywords else "") + "host='0.0.0.0')"
        return Listen(where, f"`{shown}` binds 127.0.0.1 by default", f"`{fixed}`")
    if isinstance(host, ast.Constant) and re.fullmatch(_LOOPBACK, str(host.value)):
        return Listen(where, "an explicit loopback host", "pass host='0.0.0.0'")
    if isinstance(host, ast.Call) and ast.unparse(host.func) in _PY_GETENV and host.args:
        name = host.args[0]
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            return Listen(where, env=name.value)
    return None


# --- Go -----------------------------------------------------------------------------------------

_GO_LOOPBACK = re.compile(
    rf"""\b(?:ListenAndServe(?:TLS)?|Listen|Run(?:TLS)?|Start(?:TLS)?)\(\s*(?:"tcp[46]?"\s*,\s*)?"{_LOOPBACK}:(\d*)"""
)


def go(files: dict[str, str]) -> Listen | None:
    """A listen call with a loopback address literal (``ListenAndServe("localhost:8080", ...)``,
    gin's ``Run("127.0.0.1:8080")``)."""
    for rel in sorted(files):
        text = files[rel]
        if match := _GO_LOOPBACK.search(text):
            port = match.group(1) or "8080"
            return Listen(
                f"{rel}:{_line(text, match.start())}",
                "a loopback address in the listen call",
                f'listen on ":{port}" (every interface)',
            )
    return None
