"""The process pool: workers that cannot inherit another thread's held lock, and a dead worker."""

import subprocess
import sys
from concurrent.futures.process import BrokenProcessPool

import pytest

from tinyfer.core.progress import parallel_map

# A lock another thread holds while the pool starts: a forked worker would copy it held
# and wait forever the first time it takes it. The workers' function is a module's.
HELPER = """
import threading

LOCK = threading.Lock()


def double(x):
    with LOCK:
        return 2 * x
"""

HELD_LOCK_SCRIPT = """
import threading

from helper import LOCK, double
from tinyfer.core.progress import parallel_map

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

# A script with no main guard: workers that ran it again would start a pool of their own.
UNGUARDED_SCRIPT = """
from helper import double
from tinyfer.core.progress import parallel_map

print(parallel_map(double, list(range(16)), workers=2, min_parallel=1, progress=False)[-1])
"""


def _run_script(folder, text: str) -> str:
    (folder / "helper.py").write_text(HELPER)
    script = folder / "script.py"
    script.write_text(text)
    try:
        run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             timeout=120, cwd=folder)  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("parallel_map hung")
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout.strip()


def test_workers_do_not_inherit_a_lock_another_thread_holds(tmp_path):
    assert _run_script(tmp_path, HELD_LOCK_SCRIPT) == "True"


def test_a_script_without_a_main_guard_can_use_the_pool(tmp_path):
    assert _run_script(tmp_path, UNGUARDED_SCRIPT) == "30"


def test_a_worker_that_dies_raises_instead_of_hanging():
    import os

    with pytest.raises(BrokenProcessPool):
        parallel_map(os._exit, [3] * 8, workers=2, min_parallel=1, progress=False)


def test_small_work_runs_in_this_process_in_order():
    assert parallel_map(abs, [-3, 2, -1], workers=2, progress=False) == [3, 2, 1]
