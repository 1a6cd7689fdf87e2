"""Rich consoles for tinyfer's output. On a terminal they fit its width; piped or logged to a
file, rich would cut tables and wrap lines at 80 columns, so there lines are never cut.

Text on these consoles is never read as rich markup, and :func:`printable` shows control
characters as escapes: a file named ``x[/y].jpg`` or one holding a terminal escape sequence is
printed as the characters it has, never interpreted."""

from __future__ import annotations

import logging
import sys
import unicodedata

from rich.console import Console
from rich.text import Text

#: Wide enough for any table tinyfer prints; rich only pads to what a table needs.
_UNCUT = 1000


def printable(text: object, *, one_line: bool = False) -> str:
    """``text`` with control and format characters (ESC, BEL, bidi overrides...) written as
    escapes (``\\x1b``, ``\\u202e``); newlines and tabs are kept unless ``one_line`` (a file
    name in a one-line message must not start a line of its own)."""
    s = str(text)
    if s.isprintable():
        return s
    keep = "" if one_line else "\n\t"
    return "".join(
        ch if ch in keep or unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp")
        else ch.encode("unicode_escape").decode("ascii")
        for ch in s
    )  # fmt: skip


class _PlainConsole(Console):
    """A console whose strings are shown as written (see the module docstring)."""

    def print(self, *objects, **kwargs) -> None:
        kwargs.setdefault("highlight", False)
        super().print(*(printable(o) if isinstance(o, str) else o for o in objects), **kwargs)


def console(stderr: bool = False) -> Console:
    """A console on stdout (or stderr), uncut when that stream is not a terminal."""
    stream = sys.stderr if stderr else sys.stdout
    tty = hasattr(stream, "isatty") and stream.isatty()
    return _PlainConsole(stderr=stderr, width=None if tty else _UNCUT, markup=False)


def styled(label: str, style: str, rest: object) -> Text:
    """``label`` in ``style``, then ``rest``, both :func:`printable` (e.g. a red ``error:``)."""
    return Text.assemble((printable(label), style), " ", printable(rest))


class PrintableRecords(logging.Filter):
    """Makes every log record's message :func:`printable` (file names reach logs too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = printable(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
