"""The state of a stage while it is built, and the image configuration the app starts from."""

from __future__ import annotations

import dataclasses
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from agents.qa.smoke.sandbox import read_file
from agents.qa.smoke.toolchains import Toolchain

DEFAULT_SHELL = ("/bin/sh", "-c")
_URL = re.compile(r"https?://[^\s'\"\\)]+")


@dataclass(frozen=True)
class Step:
    """One executed instruction: where it is, what it was, how long it took, whether cached."""

    line: int
    text: str
    seconds: float
    cached: bool


@dataclass
class StageState:
    """A stage's filesystem (``layers``, bottom first, with the cache ``key`` of the top) and
    its configuration (what ``docker inspect`` shows: env, workdir, user, cmd...)."""

    toolchain: Toolchain
    key: str
    layers: list[Path] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    args: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    user: str = ""
    shell: tuple[str, ...] = DEFAULT_SHELL
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    healthcheck: tuple[str, ...] | None = None
    expose: tuple[int, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = "SIGTERM"
    steps: list[Step] = field(default_factory=list)

    def child(self) -> StageState:
        """A copy for ``FROM <this stage>``: same filesystem and config, its own lists."""
        return dataclasses.replace(
            self, layers=list(self.layers), env=dict(self.env), args={}, steps=list(self.steps)
        )

    @property
    def scope(self) -> dict[str, str]:
        """Variables an instruction may expand: declared ARGs, overridden by ENV."""
        return {**self.args, **self.env}

    def resolve(self, path: str) -> str:
        """An instruction's path made absolute against the working directory (a trailing / kept)."""
        absolute = posixpath.normpath(posixpath.join(self.workdir, path))
        return absolute + "/" if path.endswith("/") and absolute != "/" else absolute

    def argv(self) -> list[str]:
        """What ``docker run`` starts: ENTRYPOINT + CMD (empty when neither is set)."""
        return [*(self.entrypoint or ()), *(self.cmd or ())]

    def ids(self, user: str | None = None) -> tuple[int, int]:
        """(uid, gid) of ``user`` (default: the stage's USER), names looked up in the stage's
        own /etc/passwd and /etc/group. KeyError when a name is unknown."""
        spec = self.user if user is None else user
        if not spec:
            return 0, 0
        name, _, group = spec.partition(":")
        uid, primary = _lookup(self.layers, "/etc/passwd", name, gid_field=True)
        gid = _lookup(self.layers, "/etc/group", group)[0] if group else primary
        return uid, gid

    def health_url(self) -> str | None:
        """The first http(s) URL in the HEALTHCHECK command, if it names one."""
        for part in self.healthcheck or ():
            if match := _URL.search(part):
                return match[0]
        return None


def _lookup(layers: Sequence[Path], table: str, name: str, *, gid_field: bool = False) -> tuple[int, int]:
    """(id, primary gid) for a user or group name or number in the stage's passwd/group file."""
    if name.isdigit():
        number = int(name)
        return number, _primary_gid(layers, number) if gid_field else number
    for line in (read_file(layers, table) or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name and fields[2].isdigit():
            gid = int(fields[3]) if gid_field and len(fields) > 3 and fields[3].isdigit() else int(fields[2])
            return int(fields[2]), gid
    raise KeyError(f"unable to find {'user' if gid_field else 'group'} {name} in {table}")


def _primary_gid(layers: Sequence[Path], uid: int) -> int:
    for line in (read_file(layers, "/etc/passwd") or "").splitlines():
        fields = line.split(":")
        if len(fields) > 3 and fields[2] == str(uid) and fields[3].isdigit():
            return int(fields[3])
    return 0  # Docker: a user with no entry runs with the root group
