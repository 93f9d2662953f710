"""COPY inside the sandbox: the source is shown read-only at /.orchestra-from and copied with the
machine's coreutils, so overlay semantics (existing folders merge, symlinks stay links) hold."""

from __future__ import annotations

from agents.qa.smoke.sandbox import FROM_VIEW

# $1 source path, $2 destination, $3 owner uid:gid, $4 chmod mode ("" = keep), $5 "dir" or "auto".
# New entries are owned by $3 (root unless --chown), as Docker creates them; folders that
# already existed at the destination keep their owner.
SCRIPT = r"""
set -e
src=$1 dest=$2 owner=$3 mode=$4 kind=$5
fix() { xargs -0 -r chown -h "$owner"; }
fixmode() { if [ -n "$mode" ]; then xargs -0 -r chmod "$mode"; else cat >/dev/null; fi; }
if [ "$kind" = dir ] || { [ -d "$src" ] && [ ! -L "$src" ]; }; then
  mkdir -p "$dest"
  cp -a --no-preserve=ownership "$src/." "$dest/"
  (cd "$src" && find . -mindepth 1 -print0) | (cd "$dest" && fix)
  (cd "$src" && find . -mindepth 1 ! -type l -print0) | (cd "$dest" && fixmode)
else
  if [ -d "$dest" ] || [ "${dest%/}" != "$dest" ]; then
    mkdir -p "$dest"
    target="${dest%/}/$(basename "$src")"
  else
    mkdir -p "$(dirname "$dest")"
    target=$dest
  fi
  cp -a --no-preserve=ownership "$src" "$target"
  chown -h "$owner" "$target"
  if [ -n "$mode" ] && [ ! -L "$target" ]; then chmod "$mode" "$target"; fi
fi
"""


def command(source: str, dest: str, *, uid: int, gid: int, mode: str | None, whole_dir: bool) -> list[str]:
    """The argv that copies ``source`` (a path inside the read-only view) to ``dest``."""
    path = f"{FROM_VIEW}/{source.strip('/')}".rstrip("/") if source.strip("/") else FROM_VIEW
    return [
        "/bin/sh",
        "-c",
        SCRIPT,
        "copy",
        path,
        dest,
        f"{uid}:{gid}",
        mode or "",
        "dir" if whole_dir else "auto",
    ]
