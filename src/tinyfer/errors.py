"""User-facing exceptions; each message says what was expected and how to fix it."""

from __future__ import annotations


class TinyferError(Exception):
    """Base class of every error tinyfer raises for a user's mistake or bad input."""


class ImageError(TinyferError):
    """An image that cannot be used: missing, empty, corrupt, truncated or too large."""


class ImageTooLarge(ImageError):
    """An image over the pixel limit, refused before it is decoded."""


class UnknownLabelError(TinyferError):
    """A label name that maps onto no canonical emotion."""


class DatasetError(TinyferError):
    """A dataset path or layout that cannot be read as asked."""


class ConfigError(TinyferError):
    """A configuration with an unknown key or a value of the wrong type."""


class SplitError(TinyferError):
    """A split that cannot be made, e.g. too few subjects for k folds."""


class VideoError(TinyferError):
    """A video or camera that cannot be opened or read."""
