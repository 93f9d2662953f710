"""Build the target stage of a Dockerfile in the sandbox, instruction by instruction.

Only the stages the target needs are built (``FROM <stage>`` and ``COPY --from``), as BuildKit
does. RUN and COPY --from results are cached layers (agents.qa.smoke.layers); a COPY from the
build context is redone every time (cheap, and it is the project's source).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agents.qa.smoke import copying
from agents.qa.smoke.adapters import ADAPTER_VERSION, AdapterError, python_layer
from agents.qa.smoke.context import BuildContext, CopyError
from agents.qa.smoke.dockerfile import (
    Dockerfile,
    DockerfileError,
    Instruction,
    Stage,
    arg_pairs,
    command,
    env_pairs,
    expand,
    json_array,
    split_words,
)
from agents.qa.smoke.image import StageState, Step
from agents.qa.smoke.layers import LayerStore, chain
from agents.qa.smoke.sandbox import FROM_VIEW, LAYOUT_VERSION, Sandbox
from agents.qa.smoke.toolchains import Toolchain, for_image

# This machine's network trust and proxy settings, passed into build steps the way Docker passes
# proxy variables into builds: a build must reach the registries the machine reaches. Paths
# point into /etc, which the sandbox shows. Not part of cache keys (they do not change results).
MACHINE_NETWORK_ENV = (
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT",
    "NODE_EXTRA_CA_CERTS", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
)  # fmt: skip
_ARCHIVES = (".tar", ".gz", ".tgz", ".xz", ".bz2", ".zst")
_CONFIG_ONLY = frozenset({"LABEL", "MAINTAINER", "ONBUILD"})


class BuildFailed(Exception):
    """A build step failed: ``rule`` (SMOKE-BUILD / SMOKE-INSTALL), Dockerfile ``line``, what
    happened, and the tail of the step's output."""

    def __init__(self, rule: str, line: int | None, message: str, output: str = "") -> None:
        super().__init__(message)
        self.rule, self.line, self.message, self.output = rule, line, message, output


class BuildSkipped(Exception):
    """The sandbox cannot stand in for this build (no toolchain, unsupported instruction)."""


@dataclass(frozen=True)
class Built:
    """The built target stage, the machine stand-ins used, and every executed step."""

    state: StageState
    toolchains: tuple[Toolchain, ...]
    steps: tuple[Step, ...]


def needed(dockerfile: Dockerfile, target: Stage) -> list[Stage]:
    """The stages ``target`` depends on (and itself), in Dockerfile order."""
    wanted: set[int] = set()
    todo = [target]
    while todo:
        stage = todo.pop()
        if stage.index in wanted:
            continue
        wanted.add(stage.index)
        refs = [stage.base] + [
            i.flag("from") or "" for i in stage.instructions if i.keyword in ("COPY", "ADD")
        ]
        todo += [s for ref in refs if ref and (s := dockerfile.stage(ref)) and s.index < stage.index]
    return [s for s in dockerfile.stages if s.index in wanted]


def toolchains(dockerfile: Dockerfile, stages: list[Stage]) -> dict[int, Toolchain]:
    """The machine's stand-in for the base image of each stage built on an image.
    BuildSkipped when one has none (e.g. no go toolchain here)."""
    found: dict[int, Toolchain] = {}
    args = {name: value or "" for name, value in dockerfile.global_args}
    for stage in stages:
        base = expand(stage.base, args)
        parent = dockerfile.stage(base)
        if parent is not None and parent.index < stage.index:
            continue
        stand_in = for_image(base)
        if stand_in.missing:
            raise BuildSkipped(f"stage {stage.name or stage.index} ({base}): {stand_in.missing}")
        found[stage.index] = stand_in
    return found


class Builder:
    """Builds stages of ``dockerfile`` from ``context`` in ``sandbox``, caching in ``store``,
    until ``deadline`` (time.monotonic())."""

    def __init__(
        self,
        dockerfile: Dockerfile,
        context: BuildContext,
        sandbox: Sandbox,
        store: LayerStore,
        *,
        deadline: float,
    ) -> None:
        self.dockerfile, self.context, self.sandbox, self.store = dockerfile, context, sandbox, store
        self.deadline = deadline
        self.states: dict[int, StageState] = {}
        self.global_args = {name: value or "" for name, value in dockerfile.global_args}
        self._scratch_count = 0

    def build(self, target: Stage) -> Built:
        """Build ``target`` and what it needs; BuildFailed / BuildSkipped on the way."""
        stages = needed(self.dockerfile, target)
        stand_ins = toolchains(self.dockerfile, stages)
        for stage in stages:
            self.states[stage.index] = self._stage(stage, stand_ins.get(stage.index))
        state = self.states[target.index]
        used = tuple({t.image: t for t in stand_ins.values()}.values())
        # A child stage starts with its parent's steps: keep each step once.
        steps = tuple(dict.fromkeys(step for s in stages for step in self.states[s.index].steps))
        return Built(state=state, toolchains=used, steps=steps)

    # -- stages ---------------------------------------------------------------------------

    def _stage(self, stage: Stage, toolchain: Toolchain | None) -> StageState:
        base = expand(stage.base, self.global_args)
        parent = self.dockerfile.stage(base)
        if toolchain is None and parent is not None:
            state = self.states[parent.index].child()
        else:
            assert toolchain is not None
            state = self._base(toolchain)
        for instruction in stage.instructions:
            started = time.monotonic()
            cached = self._instruction(state, instruction)
            if instruction.keyword in ("RUN", "COPY", "ADD"):
                state.steps.append(
                    Step(instruction.line, instruction.text[:200], time.monotonic() - started, cached)
                )
        return state

    def _base(self, toolchain: Toolchain) -> StageState:
        """A stage on an image: the machine's OS plus the layer that makes its interpreter look
        like the image's (agents.qa.smoke.adapters)."""
        key = chain(LAYOUT_VERSION, "base", toolchain.identity)
        state = StageState(toolchain=toolchain, key=key, env=dict(toolchain.env))
        if toolchain.family == "python":
            state.cmd = ("python3",)
            state.key = chain(key, "python-adapter", ADAPTER_VERSION)
            layer = self.store.get(state.key)
            if layer is None:
                upper = self._partial()
                try:
                    python_layer(toolchain, upper)
                except AdapterError as exc:
                    raise BuildSkipped(str(exc)) from None
                layer = self.store.publish(upper, state.key)
            state.layers.append(layer)
            return state
        if toolchain.family == "node":
            state.cmd = ("node",)
        recipe = _links(toolchain)
        if recipe:
            state.key = chain(key, "adapter", recipe)
            layer = self.store.get(state.key)
            if layer is None:
                upper = self._partial()
                self._sandboxed(state, upper, recipe, line=None, what=f"prepare {toolchain.image} stand-in")
                layer = self.store.publish(upper, state.key)
            state.layers.append(layer)
        return state

    # -- instructions ---------------------------------------------------------------------

    def _instruction(self, state: StageState, ins: Instruction) -> bool:
        """Apply one instruction; True when its result came from the cache."""
        keyword = ins.keyword
        try:
            if keyword == "RUN":
                return self._run(state, ins)
            if keyword in ("COPY", "ADD"):
                return self._copy(state, ins)
            configure(state, ins, self.global_args)
        except DockerfileError as exc:
            raise BuildFailed("SMOKE-BUILD", ins.line, f"{ins.text}: {exc}") from None
        return False

    def _run(self, state: StageState, ins: Instruction) -> bool:
        caches: list[tuple[Path, str]] = []
        for name, value in ins.flags:
            if name == "mount":
                caches.append(self._cache_mount(value, ins))
            elif name not in ("network", "security"):
                raise BuildSkipped(f"line {ins.line}: RUN --{name} is not supported by the sandbox")
        argv = command(ins, state.shell)
        uid, gid = self._ids(state, ins)
        env = self._env(state, uid)
        targets = [t for _, t in caches]
        key = chain(state.key, "RUN", argv, sorted(env.items()), state.workdir, uid, gid, targets)
        machine = {k: v for k, v in os.environ.items() if k in MACHINE_NETWORK_ENV and k not in env}
        env = {**machine, **env}

        def execute(upper: Path) -> None:
            self._sandboxed(
                state, upper, argv, line=ins.line, what=ins.text, env=env, uid=uid, gid=gid, caches=caches
            )

        return self._layer(state, key, execute, cache=True)

    def _copy(self, state: StageState, ins: Instruction) -> bool:
        words = list(ins.exec_form) if ins.exec_form is not None else split_words(ins.args, state.scope)
        if len(words) < 2:
            raise DockerfileError(f"{ins.keyword} needs a source and a destination")
        *sources, dest_word = words
        dest = state.resolve(dest_word)
        if len(sources) > 1 and not dest.endswith("/"):
            dest += "/"
        uid, gid = self._ids(state, ins, ins.flag("chown")) if ins.flag("chown") else (0, 0)
        mode = ins.flag("chmod")
        source = ins.flag("from")
        if source is not None:
            return self._copy_from(state, ins, source, sources, dest, uid, gid, mode)
        if ins.keyword == "ADD" and any(
            "://" in s or s.endswith((".tar", ".gz", ".tgz", ".xz")) for s in sources
        ):
            raise BuildSkipped(f"line {ins.line}: ADD of a URL or archive is not supported by the sandbox")
        self._scratch_count += 1
        staging = self.sandbox.scratch / f"copy-{self._scratch_count}"
        try:
            staged = self.context.stage(sources, dest, staging)
        except CopyError as exc:
            raise BuildFailed("SMOKE-BUILD", ins.line, str(exc)) from None
        key = chain(state.key, "COPY", staged.digest, dest, uid, gid, mode)
        view = {"root": {"lower": [str(staging)]}, "tops": []}
        argv = copying.command(
            staged.single_file or "", dest, uid=uid, gid=gid, mode=mode, whole_dir=staged.single_file is None
        )

        def execute(upper: Path) -> None:
            self._sandboxed(
                state,
                upper,
                argv,
                line=ins.line,
                what=ins.text,
                source=view,
                rule="SMOKE-BUILD",
                label="context",
            )

        return self._layer(state, key, execute, cache=False)

    def _copy_from(
        self,
        state: StageState,
        ins: Instruction,
        ref: str,
        sources: list[str],
        dest: str,
        uid: int,
        gid: int,
        mode: str | None,
    ) -> bool:
        stage = self.dockerfile.stage(ref)
        if stage is None or stage.index not in self.states:
            raise BuildSkipped(f"line {ins.line}: COPY --from={ref} (an image, not a stage) is not supported")
        origin = self.states[stage.index]
        key = chain(state.key, "COPY-FROM", origin.key, sources, dest, uid, gid, mode)

        def execute(upper: Path) -> None:
            view = self.sandbox.view(origin.layers, None)
            for source in sources:
                argv = copying.command(
                    posixpath.normpath(posixpath.join("/", source)),
                    dest,
                    uid=uid,
                    gid=gid,
                    mode=mode,
                    whole_dir=False,
                )
                self._sandboxed(
                    state,
                    upper,
                    argv,
                    line=ins.line,
                    what=ins.text,
                    source=view,
                    rule="SMOKE-BUILD",
                    label=f"stage {ref}",
                )

        return self._layer(state, key, execute, cache=True)

    # -- helpers --------------------------------------------------------------------------

    def _layer(self, state: StageState, key: str, execute: Callable[[Path], None], *, cache: bool) -> bool:
        """Reuse the layer for ``key`` or make it; push it onto ``state``. True when reused."""
        layer = self.store.get(key) if cache else None
        reused = layer is not None
        if layer is None:
            upper = self._partial()
            execute(upper)
            layer = self.store.publish(upper, key) if cache else upper
        state.layers.append(layer)
        state.key = key
        return reused

    def _partial(self) -> Path:
        self._scratch_count += 1
        return self.sandbox.new_layer(self.sandbox.scratch / f"layer-{self._scratch_count}")

    def _sandboxed(
        self,
        state: StageState,
        upper: Path,
        argv: list[str],
        *,
        line: int | None,
        what: str,
        env: dict[str, str] | None = None,
        uid: int = 0,
        gid: int = 0,
        caches: list[tuple[Path, str]] | None = None,
        source: dict[str, object] | None = None,
        rule: str = "SMOKE-INSTALL",
        label: str = "",
    ) -> None:
        """Run ``argv`` in the stage with ``upper`` receiving its writes; BuildFailed with the
        output (where the copy source is shown, ``label`` names it: "stage builder") on failure."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise BuildFailed(rule, line, f"{what}: not started, the smoke-boot time budget is spent")
        sandboxed = self.sandbox.argv(
            state.layers,
            upper,
            argv,
            env=env if env is not None else self._env(state, uid),
            cwd=state.workdir,
            uid=uid,
            gid=gid,
            source=source,
            caches=caches or (),
            host_files=("/etc/resolv.conf", "/etc/hosts"),
        )
        self._scratch_count += 1
        done = self.sandbox.run(
            sandboxed, timeout=remaining, log=self.sandbox.scratch / f"step-{self._scratch_count}.log"
        )
        output = done.output.replace(FROM_VIEW, f"[{label}]") if label else done.output
        if done.timed_out:
            raise BuildFailed(rule, line, f"{what}: timed out after {done.seconds:.0f}s", output)
        if done.code != 0:
            raise BuildFailed(rule, line, f"{what}: exit code {done.code} after {done.seconds:.1f}s", output)

    def _env(self, state: StageState, uid: int) -> dict[str, str]:
        env = {**state.args, **state.env}
        env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        env.setdefault("HOME", "/root" if uid == 0 else "/")
        env.setdefault("HOSTNAME", "orchestra-smoke")
        return env

    def _ids(self, state: StageState, ins: Instruction, user: str | None = None) -> tuple[int, int]:
        try:
            return state.ids(user)
        except KeyError as exc:
            raise BuildFailed("SMOKE-BUILD", ins.line, f"{ins.text}: {exc.args[0]}") from None

    def _cache_mount(self, value: str, ins: Instruction) -> tuple[Path, str]:
        options = dict(part.partition("=")[::2] for part in value.split(","))
        if options.get("type") != "cache":
            raise BuildSkipped(f"line {ins.line}: RUN --mount=type={options.get('type')} is not supported")
        target = options.get("target") or options.get("dst") or options.get("destination") or ""
        if not target.startswith("/"):
            raise BuildFailed("SMOKE-BUILD", ins.line, f"RUN --mount={value}: the target must be absolute")
        ident = options.get("id") or target
        folder = self.sandbox.cache / "mounts" / hashlib.sha256(ident.encode()).hexdigest()[:16]
        folder.mkdir(parents=True, exist_ok=True)
        return folder, target


def configure(state: StageState, ins: Instruction, global_args: Mapping[str, str]) -> None:
    """Apply an instruction that changes only the configuration (ENV, USER, CMD, HEALTHCHECK...)."""
    keyword, scope = ins.keyword, state.scope
    if keyword == "ENV":
        state.env.update(env_pairs(ins.args, scope))
    elif keyword == "ARG":
        for name, value in arg_pairs(ins.args):
            default = expand(value, scope) if value is not None else global_args.get(name, "")
            state.args[name] = default
    elif keyword == "WORKDIR":
        state.workdir = state.resolve(expand(ins.args, scope)).rstrip("/") or "/"
    elif keyword == "USER":
        state.user = expand(ins.args, scope).strip()
    elif keyword == "CMD":
        state.cmd = tuple(command(ins, state.shell))
    elif keyword == "ENTRYPOINT":
        state.entrypoint = tuple(command(ins, state.shell))
        state.cmd = None  # Docker: a new ENTRYPOINT drops the CMD inherited from the base
    elif keyword == "SHELL":
        if ins.exec_form is None:
            raise DockerfileError("SHELL needs the JSON form")
        state.shell = ins.exec_form
    elif keyword == "HEALTHCHECK":
        state.healthcheck = _healthcheck(ins)
    elif keyword == "EXPOSE":
        ports = [word.split("/")[0] for word in split_words(ins.args, scope)]
        state.expose += tuple(int(port) for port in ports if port.isdigit())
    elif keyword == "STOPSIGNAL":
        state.stop_signal = expand(ins.args, scope).strip()
    elif keyword == "VOLUME":  # each becomes a fresh volume seeded from the image when the app runs
        paths = ins.exec_form if ins.exec_form is not None else split_words(ins.args, scope)
        state.volumes += tuple(p for p in (expand(p, scope) for p in paths) if p not in state.volumes)
    elif keyword not in _CONFIG_ONLY:
        raise DockerfileError(f"unknown instruction {keyword}")


def config_of(dockerfile: Dockerfile, target: Stage) -> StageState:
    """The target stage's image configuration without building anything (for the engine path)."""
    args = {name: value or "" for name, value in dockerfile.global_args}
    lineage: list[Stage] = [target]
    while (parent := dockerfile.stage(expand(lineage[-1].base, args))) and parent.index < lineage[-1].index:
        lineage.append(parent)
    state = StageState(toolchain=Toolchain(family="os", image=lineage[-1].base), key="")
    for stage in reversed(lineage):
        for ins in stage.instructions:
            if ins.keyword not in ("RUN", "COPY", "ADD"):
                configure(state, ins, args)
    return state


def _healthcheck(ins: Instruction) -> tuple[str, ...] | None:
    """HEALTHCHECK [options] CMD ... -> its argv (the shell form runs in /bin/sh -c); NONE -> None."""
    rest = ins.args.strip()
    if rest.upper() == "NONE":
        return None
    word, _, body = rest.partition(" ")
    if word.upper() != "CMD":
        raise DockerfileError("HEALTHCHECK needs CMD or NONE")
    body = body.strip()
    return json_array(body) or ("/bin/sh", "-c", body)


def _links(toolchain: Toolchain) -> list[str] | None:
    """Symlinks into /usr/local/bin when the interpreter lives outside the default PATH."""
    if not toolchain.folders or not toolchain.executable:
        return None
    script = 'mkdir -p /usr/local/bin && for f in "$1"/*; do ln -sf "$f" /usr/local/bin/; done'
    return ["/bin/sh", "-c", script, "link", posixpath.dirname(toolchain.executable)]
