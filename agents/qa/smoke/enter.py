"""Enter a smoke-boot sandbox and exec one command in it (run as its own process).

Standard library only, and run with ``python -I -S`` as a script, so it starts fast and
imports nothing from the project. It takes one argument: a JSON spec file written by
agents.qa.smoke.sandbox. Steps: a private mount namespace; the stage's filesystem assembled
at the spec's mount point from overlay layers (the machine's OS folders copy-on-write, the
stage's own layers above them, ``upper`` receiving every write); /dev, /proc, /sys; build cache
mounts; optionally a read-only view of another stage or of staged files (COPY);
then pivot_root (the machine's root is detached, not just hidden as with chroot), the
capability set Docker gives a container (no CAP_SYS_ADMIN: the command cannot mount its way
out), working directory, user, and exec. Everything mounted dies with the namespace when the
command's last process ends, so nothing is left mounted on the machine.

Exit codes of its own: 197 when the sandbox cannot be set up (the machine, not the project),
127/126 when the command cannot be started; otherwise the command's own.
"""

import ctypes
import json
import os
import platform
import sys
import warnings  # noqa: F401  (os.execvpe imports it lazily: after chroot it could not)

SETUP_FAILED = 197
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2
CLONE_NEWNS = 0x00020000
PR_CAPBSET_DROP = 24
# Docker's default capabilities: chown, dac_override, fowner, fsetid, kill, setgid, setuid, setpcap,
# net_bind_service, net_raw, sys_chroot, mknod, audit_write, setfcap. Every other one is dropped.
DOCKER_CAPS = {0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31}
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_libc = ctypes.CDLL(None, use_errno=True)


class SetupError(Exception):
    pass


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(errno)}")


def _mount(source, target, fstype, flags, data=None):
    encoded = data.encode() if data else None
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            encoded,
        ),
        f"mount {fstype or 'bind'} {source or ''} on {target}",
    )


def _bind(source, target, readonly, recursive=False):
    _mount(source, target, None, MS_BIND | (MS_REC if recursive else 0))
    if readonly:
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def _layered(target, layer):
    """Mount one overlay (or a read-only bind when there is a single lower and no upper)."""
    lower = layer["lower"]
    if layer.get("upper"):
        data = f"lowerdir={':'.join(lower)},upperdir={layer['upper']},workdir={layer['work']}"
    elif len(lower) == 1:
        _bind(lower[0], target, readonly=True)
        return
    else:
        data = f"lowerdir={':'.join(lower)}"
    if len(data) > 4000:
        raise SetupError(f"too many layers for one overlay mount ({len(lower)})")
    _mount("overlay", target, "overlay", 0, data)


def _assemble(mountpoint, view):
    _layered(mountpoint, view["root"])
    for top in view["tops"]:
        _layered(os.path.join(mountpoint, top["name"]), top)


def _enter_root(root):
    """Make ``root`` the filesystem root: pivot_root and detach the old root (chroot if the
    architecture's syscall number is unknown)."""
    number = SYS_PIVOT_ROOT.get(platform.machine())
    os.chdir(root)
    if number is None:
        os.chroot(root)
    else:
        # pivot_root(".", "."): the old root ends up stacked on "." and is then detached.
        _check(_libc.syscall(number, b".", b"."), "pivot_root")
        _check(_libc.umount2(b".", MNT_DETACH), "detach the old root")
    os.chdir("/")


def _drop_capabilities():
    """Shrink the bounding set to Docker's defaults; exec then grants root no more than those."""
    try:
        with open("/proc/sys/kernel/cap_last_cap") as handle:
            last = int(handle.read())
    except (OSError, ValueError):
        last = 40
    for cap in range(last + 1):
        if cap not in DOCKER_CAPS:
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"drop capability {cap}")


def _setup(spec):
    os.chdir(spec["base"])
    _check(_libc.unshare(CLONE_NEWNS), "unshare(mount namespace)")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    root = os.path.abspath(spec["mountpoint"])
    _assemble(root, spec)
    _bind("/dev", f"{root}/dev", readonly=False, recursive=True)
    _mount("tmpfs", f"{root}/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    _bind("/proc", f"{root}/proc", readonly=False, recursive=True)
    _bind("/proc/sys", f"{root}/proc/sys", readonly=True)
    _bind("/sys", f"{root}/sys", readonly=True, recursive=True)
    for cache in spec.get("caches", []):  # RUN --mount=type=cache: the mount point appears, as in BuildKit
        os.makedirs(root + cache["target"], exist_ok=True)
        _bind(cache["source"], root + cache["target"], readonly=False)
    view = spec.get("view")
    if view:
        _assemble(root + view["at"], view)
    for path in spec.get("host_files", []):
        if os.path.isfile(path) and os.path.isfile(root + path):
            _bind(path, root + path, readonly=True)
    _enter_root(root)
    _drop_capabilities()
    cwd = spec.get("cwd") or "/"
    os.makedirs(cwd, exist_ok=True)
    os.chdir(cwd)
    uid, gid = spec.get("uid", 0), spec.get("gid", 0)
    if uid or gid:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)


def main():
    with open(sys.argv[1], encoding="utf-8") as handle:
        spec = json.load(handle)
    try:
        _setup(spec)
    except (SetupError, OSError) as exc:
        print(f"orchestra-sandbox: {exc}", file=sys.stderr, flush=True)
        os._exit(SETUP_FAILED)
    argv = spec["argv"]
    try:
        os.execvpe(argv[0], argv, spec["env"])
    except OSError as exc:
        print(f"orchestra-sandbox: cannot run {argv[0]}: {exc.strerror}", file=sys.stderr, flush=True)
        os._exit(126 if isinstance(exc, PermissionError) else 127)


if __name__ == "__main__":
    main()
