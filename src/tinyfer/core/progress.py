"""Progress for long loops, and a process pool that reports through it."""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from typing import TypeVar

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from tinyfer.core.terminal import console

T = TypeVar("T")
R = TypeVar("R")


def track(items: Iterable[T], *, total: int, description: str, enabled: bool = True) -> Iterator[T]:
    """Yield ``items``, showing a rich progress bar on stderr when ``enabled``."""
    if not enabled:
        yield from items
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


def default_workers() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def parallel_map(
    fn: Callable[[T], R],
    items: list[T],
    *,
    workers: int | None = None,
    initializer: Callable[..., None] | None = None,
    initargs: tuple = (),
    description: str = "working",
    progress: bool = True,
    min_parallel: int = 256,
) -> list[R]:
    """``[fn(x) for x in items]`` in order, on ``workers`` processes when there is enough work.

    The workers start from a fork server, not by forking this process: a fork copies locks
    that other threads (torch's, onnxruntime's, logging's) hold at that moment, and a worker
    that then takes one waits forever. A worker that dies raises ``BrokenProcessPool``
    instead of leaving the pool waiting for it. ``fn`` and ``initializer`` must be importable
    by name (a module's, not the calling script's).
    """
    workers = workers or default_workers()
    if workers <= 1 or len(items) < min_parallel:
        if initializer is not None:
            initializer(*initargs)
        return list(
            track(map(fn, items), total=len(items), description=description, enabled=progress)
        )

    chunk = max(1, min(64, len(items) // (workers * 8)))
    context = mp.get_context("forkserver")
    # The server imports fn's module once (when it starts), so that each pool's workers,
    # forked from it, start with it loaded.
    context.set_forkserver_preload([fn.__module__])
    with (
        callers_script_not_rerun(),
        ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=initializer,
            initargs=initargs,
        ) as pool,
    ):
        return list(
            track(
                pool.map(fn, items, chunksize=chunk),
                total=len(items),
                description=description,
                enabled=progress,
            )
        )


@contextmanager
def callers_script_not_rerun() -> Iterator[None]:
    """While workers start (fork server or spawn): they take tinyfer's functions by name,
    and without this they would first run the calling script again (multiprocessing's rule
    for processes not forked), which a script without an ``if __name__ == "__main__":``
    guard does not survive. Marking the script's module as imported by the name
    ``__main__`` makes the workers skip it."""
    main = sys.modules.get("__main__")
    if main is None or getattr(main, "__spec__", None) is not None or not hasattr(main, "__file__"):
        yield  # run with -m, or interactive: nothing is run again
        return
    main.__spec__ = ModuleSpec("__main__", None)
    try:
        yield
    finally:
        main.__spec__ = None
