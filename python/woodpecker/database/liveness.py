"""Who holds a claim, and whether the claim still holds.

A worker is named "host:pid" (`worker_name`). A claim expires when its lease has passed, or when
its worker is a process of this host that no longer exists (`os.kill(pid, 0)`): a `wpk tune`
that was killed gives its claims back at once. A claim without a lease (`lease_expires` None:
candidates exported to be measured on another host) never expires. Hosts are told apart by
`socket.gethostname()`; pids of other hosts are never checked.
"""

from __future__ import annotations

import os
import socket


def this_host() -> str:
    return socket.gethostname()


def worker_name(host: str | None = None, pid: int | None = None) -> str:
    """This process's worker name, "host:pid"."""
    return f"{host or this_host()}:{os.getpid() if pid is None else pid}"


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def claim_expired(worker: str, lease_expires: float | None, now: float, host: str) -> bool:
    """Whether a claim by `worker` with lease until `lease_expires` may be taken over at `now`."""
    if lease_expires is None:
        return False
    if now >= lease_expires:
        return True
    worker_host, _, pid = worker.rpartition(":")
    return worker_host == host and pid.isdigit() and not process_alive(int(pid))
