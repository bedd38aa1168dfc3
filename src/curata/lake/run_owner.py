"""Which process owns a run, and whether that process is gone.

A run records the process that started it: host name, pid, and on Linux the boot id, the pid
namespace and the process's start time. Reading the run back on the same machine (same boot,
same pid namespace) tells whether that process still exists; a run whose process is gone can
never finish, so it is shown as ``abandoned`` instead of ``running``. Elsewhere (another host, a
container with its own pids, after a reboot) nothing can be told, and the run stays
``running``.
"""

from __future__ import annotations

import os
import socket
from typing import Any

_PROC = "/proc"


def current_owner() -> dict[str, Any]:
    """This process, as a run records it."""
    return {"host": socket.gethostname(), "pid": os.getpid(), **_identity("self")}


def owner_is_gone(owner: dict[str, Any] | None) -> bool:
    """True when ``owner`` is a process of this machine and pid namespace that no longer
    exists (or is a zombie, or its pid now belongs to another process); False when it lives
    or when that cannot be told from here."""
    if not owner or os.name != "posix" or owner.get("host") != socket.gethostname():
        return False
    here = _identity("self")
    if any(owner.get(key) != here.get(key) for key in ("boot_id", "pid_ns")):
        return False
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, as another user's process
        pass
    state, started = _stat(str(pid))
    if state == "Z":
        return True
    return started is not None and owner.get("started") not in (None, started)


def _identity(pid: str) -> dict[str, Any]:
    """Boot id, pid namespace and start time of process ``pid`` (``self``), where readable."""
    found: dict[str, Any] = {}
    try:
        with open(f"{_PROC}/sys/kernel/random/boot_id") as f:
            found["boot_id"] = f.read().strip()
        found["pid_ns"] = os.stat(f"{_PROC}/{pid}/ns/pid").st_ino
    except OSError:
        return found
    started = _stat(pid)[1]
    if started is not None:
        found["started"] = started
    return found


def _stat(pid: str) -> tuple[str | None, int | None]:
    """State letter and start time (clock ticks after boot) of process ``pid``."""
    try:
        with open(f"{_PROC}/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None, None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = text.rpartition(")")[2].split()
    try:
        return fields[0], int(fields[19])
    except (IndexError, ValueError):
        return None, None
