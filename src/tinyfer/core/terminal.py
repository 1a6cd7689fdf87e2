"""Rich consoles for tinyfer's output. On a terminal they fit its width; piped or logged to a
file, rich would cut tables and wrap lines at 80 columns, so there lines are never cut."""

from __future__ import annotations

import sys

from rich.console import Console

#: Wide enough for any table tinyfer prints; rich only pads to what a table needs.
_UNCUT = 1000


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr), uncut when that stream is not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(stderr=stderr, width=None if tty else _UNCUT)
