"""The process pool: workers that cannot inherit another thread's held lock, and a dead worker."""

import subprocess
import sys
import textwrap
from concurrent.futures.process import BrokenProcessPool

import pytest

from tinyfer.core.progress import parallel_map

# A lock another thread holds while the pool starts: a forked worker would copy it held
# and wait forever the first time it takes it.
HELD_LOCK_SCRIPT = textwrap.dedent(
    """
    import threading

    from tinyfer.core.progress import parallel_map

    LOCK = threading.Lock()


    def double(x):
        with LOCK:
            return 2 * x


    if __name__ == "__main__":
        held, done = threading.Event(), threading.Event()

        def hold():
            with LOCK:
                held.set()
                done.wait(5)

        threading.Thread(target=hold, daemon=True).start()
        held.wait()
        out = parallel_map(double, list(range(16)), workers=2, min_parallel=1, progress=False)
        done.set()
        print(out == [2 * x for x in range(16)])
    """
)


def test_workers_do_not_inherit_a_lock_another_thread_holds(tmp_path):
    script = tmp_path / "held_lock.py"
    script.write_text(HELD_LOCK_SCRIPT)
    try:
        run = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired:
        pytest.fail("parallel_map hung: a worker inherited a lock held by another thread")
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "True"


def test_a_worker_that_dies_raises_instead_of_hanging():
    import os

    with pytest.raises(BrokenProcessPool):
        parallel_map(os._exit, [3] * 8, workers=2, min_parallel=1, progress=False)


def test_small_work_runs_in_this_process_in_order():
    assert parallel_map(abs, [-3, 2, -1], workers=2, progress=False) == [3, 2, 1]
