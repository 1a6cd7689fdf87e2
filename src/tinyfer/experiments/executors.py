"""Where an experiment's trainings run: one after another in this process, in ``jobs`` local
processes, or as Ray tasks on a cluster. Each executor calls ``fn(shared, item)`` for every
item and yields an :class:`Outcome` as each finishes; ``shared`` (the prepared data) goes to
each worker once. A worker that dies (a native crash, a kill, a lost node) has its item run
again up to ``retries`` times; an exception raised by ``fn`` is not retried (it would raise
again) but reported, and the other items go on."""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing as mp
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import torch

from tinyfer.core.progress import callers_script_not_rerun
from tinyfer.inference.cluster import connect

log = logging.getLogger(__name__)

Work = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class Outcome:
    """One item's end: its ``result``, or ``error`` (why it failed, after any retries)."""

    item: Any
    result: Any = None
    error: str | None = None
    seconds: float = 0.0


@contextlib.contextmanager
def _torch_threads(threads: int):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _prepare_worker(threads: int) -> None:
    """A worker process's torch threads, and its logs quieted: a worker's per-epoch lines
    would interleave with the others'; the driver reports each item's start and end
    instead."""
    import lightning.pytorch  # noqa: F401  (its import sets its loggers to INFO: set them after)

    torch.set_num_threads(threads)
    for name in ("tinyfer", "lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _timed(fn: Work, shared: Any, item: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    return fn(shared, item), time.perf_counter() - start


def _describe(exc: BaseException) -> str:
    """An exception as its last traceback line (type and message), enough to name the fault."""
    return traceback.format_exception_only(type(exc), exc)[-1].strip()


def run_here(
    fn: Work, items: Sequence, shared: Any, *, threads: int, on_start: Callable[[Any], None]
) -> Iterator[Outcome]:
    """In this process, one item after another; an exception stops the run (nothing else is
    running, and the next item would likely fail the same way)."""
    with _torch_threads(threads):
        for item in items:
            on_start(item)
            result, seconds = _timed(fn, shared, item)
            yield Outcome(item, result, seconds=seconds)


# A local worker's state, set once by its initializer.
_worker: dict[str, Any] = {}


def _init_process(fn: Work, shared: Any, threads: int) -> None:
    _prepare_worker(threads)
    _worker.update(fn=fn, shared=shared)


def _call_in_process(item: Any) -> tuple[Any, float]:
    return _timed(_worker["fn"], _worker["shared"], item)


def run_processes(
    fn: Work,
    items: Sequence,
    shared: Any,
    *,
    jobs: int,
    threads: int,
    retries: int,
    on_start: Callable[[Any], None],
) -> Iterator[Outcome]:
    """On ``jobs`` processes of this machine (started fresh, not forked: torch's thread pools
    do not survive a fork). When a worker dies, the pool is lost with every item running in
    it: each of those counts a try and is run again in a new pool."""
    pending = deque(range(len(items)))
    tries = [0] * len(items)
    while pending:
        broken = False
        with (
            callers_script_not_rerun(),
            cf.ProcessPoolExecutor(
                jobs,
                mp_context=mp.get_context("spawn"),
                initializer=_init_process,
                initargs=(fn, shared, threads),
            ) as pool,
        ):
            running: dict[cf.Future, int] = {}
            while (pending and not broken) or running:
                while pending and not broken and len(running) < jobs:
                    i = pending.popleft()
                    tries[i] += 1
                    on_start(items[i])
                    running[pool.submit(_call_in_process, items[i])] = i
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    i = running.pop(future)
                    try:
                        result, seconds = future.result()
                    except BrokenProcessPool:
                        broken = True
                        if tries[i] <= retries:
                            log.warning("%s: its worker process died; running it again", items[i])
                            pending.appendleft(i)
                        else:
                            yield Outcome(items[i], error=f"its worker process died "
                                                          f"({tries[i]} tries)")  # fmt: skip
                    except Exception as exc:
                        yield Outcome(items[i], error=_describe(exc))
                    else:
                        yield Outcome(items[i], result, seconds=seconds)


def _call_on_ray(fn: Work, shared: Any, item: Any, threads: int) -> tuple[Any, float]:
    _prepare_worker(threads)
    return _timed(fn, shared, item)


def run_ray(
    fn: Work,
    items: Sequence,
    shared: Any,
    *,
    address: str | None,
    num_cpus: int | None,
    cpus: int,
    gpus: float,
    retries: int,
    on_start: Callable[[Any], None],
) -> Iterator[Outcome]:
    """As Ray tasks, each asking for ``cpus`` CPUs (its torch threads) and ``gpus`` GPUs, on
    the cluster at ``address`` (None: a Ray instance on this machine with ``num_cpus``).
    ``shared`` is put once in Ray's object store; Ray re-runs a task whose worker or node
    died, up to ``retries`` times."""
    with connect(address, num_cpus=num_cpus) as ray:
        task = ray.remote(_call_on_ray).options(
            num_cpus=cpus, num_gpus=gpus, max_retries=retries, retry_exceptions=False
        )
        shared_ref = ray.put(shared)
        refs = {}
        for item in items:
            on_start(item)
            refs[task.remote(fn, shared_ref, item, cpus)] = item
        while refs:
            (ready,), _ = ray.wait(list(refs), num_returns=1)
            item = refs.pop(ready)
            try:
                result, seconds = ray.get(ready)
            except ray.exceptions.RayTaskError as exc:  # fn raised: not retried
                yield Outcome(item, error=_describe(exc.cause or exc))
            except ray.exceptions.RayError as exc:  # its worker or node died, retries spent
                yield Outcome(item, error=f"its Ray worker died ({retries + 1} tries): "
                                          f"{type(exc).__name__}")  # fmt: skip
            else:
                yield Outcome(item, result, seconds=seconds)
