"""Ray, for work that one machine is too small for: a connection to a cluster, or a Ray
instance on this machine, with errors that say what to do. Ray is the ``ray`` extra."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator

from tinyfer.errors import TinyferError

log = logging.getLogger(__name__)

#: How long an address that answers nothing may take before it is called unreachable.
CONNECT_TIMEOUT_S = 5.0


def _reachable(address: str) -> None:
    """Refuse, within :data:`CONNECT_TIMEOUT_S`, an address nothing listens on (Ray itself
    would retry for a minute or more before it gives up)."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not port.isdigit():
        raise TinyferError(f"Ray address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise TinyferError(
            f"cannot reach the Ray cluster at {address} ({why}); is `ray start --head` "
            "running there, and is the port open?"
        ) from None


@contextlib.contextmanager
def connect(address: str | None = None, *, num_cpus: int | None = None) -> Iterator:
    """Yield the ``ray`` module, connected: to ``address`` (``auto``: the cluster this machine
    belongs to; ``HOST:PORT``; ``ray://HOST:PORT`` through Ray Client), or, when None, to a
    new Ray instance on this machine with ``num_cpus`` CPUs (None: all its cores). An already
    connected process (a test, a notebook) keeps its connection."""
    import ray  # the ray extra: only a command that asks for a cluster needs it

    if ray.is_initialized():
        yield ray
        return
    # Ray's own lines (the instance started, its token made) say nothing a user acts on;
    # with -v (debug logging) they are shown.
    level = logging.INFO if log.isEnabledFor(logging.DEBUG) else logging.ERROR
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report leaves the host
    options = {"include_dashboard": False, "log_to_driver": True, "logging_level": level}
    if address is None:
        ray.init(num_cpus=num_cpus, **options)
    else:
        if address != "auto":
            _reachable(address)
        try:
            ray.init(address=address, **options)
        except ConnectionError as exc:
            raise TinyferError(
                f"no Ray cluster at {address} ({str(exc).splitlines()[0]}); start one with "
                "`ray start --head`, or leave --address out for a Ray instance on this machine"
            ) from None
    try:
        yield ray
    finally:
        ray.shutdown()
