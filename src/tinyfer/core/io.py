"""Load images from paths, bytes, arrays or PIL images into uint8 arrays, and stream video
frames, with clear errors."""

from __future__ import annotations

import io as _io
import logging
import os
import stat
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tinyfer.errors import ImageError, ImageTooLarge, TinyferError, VideoError

log = logging.getLogger(__name__)

#: Images above this many pixels are refused before decoding (a decompression-bomb guard).
MAX_PIXELS = 50_000_000
#: Images longer than this many times their width (or wider than this many times their height)
#: are refused before decoding: no face fits such a strip, and the work on one (padding and
#: enlarging for the detector) scales with its longer side (a 1x50M PNG asked for 17 GB).
MAX_ASPECT = 20
#: Image files above this size are refused before reading (a 50-megapixel BMP is 150 MB).
MAX_FILE_BYTES = 256 * 1024 * 1024
#: The raster formats Pillow may open (never EPS, which it would hand to Ghostscript, nor
#: formats tinyfer does not list as images).
PIL_FORMATS = ("JPEG", "PNG", "BMP", "TIFF", "WEBP", "PPM", "GIF")

IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".gif"}
)
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
)


def load_image(
    source: Any, *, gray: bool = False, max_pixels: int = MAX_PIXELS, name: str | None = None
) -> np.ndarray:
    """Return ``source`` as a uint8 array: ``(H, W)`` gray or ``(H, W, 3)`` BGR.

    ``source`` is a path, encoded bytes, a numpy array (gray, BGR or BGRA; any integer or
    float dtype) or a PIL image. 16-bit images are scaled to 8 bits, palette images are expanded
    and alpha is dropped; an EXIF orientation is applied (a phone photo comes out upright).
    Raises :class:`ImageError` naming the file (``name``, for bytes: where they came from) and
    the problem.
    """
    if isinstance(source, np.ndarray):
        if source.ndim >= 2:
            _check_shape(source.shape[1], source.shape[0], name or "<array>", max_pixels)
        return _from_array(source, gray=gray)
    if isinstance(source, (str, Path)):
        path = Path(source)
        return _decode(read_file(path), name=str(path), gray=gray, max_pixels=max_pixels)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return _decode(bytes(source), name=name or "<bytes>", gray=gray, max_pixels=max_pixels)
    if hasattr(source, "mode") and hasattr(source, "size"):  # a PIL image
        return _from_pil(source, name="<PIL image>", gray=gray, max_pixels=max_pixels)
    raise ImageError(
        f"cannot read an image from {type(source).__name__}; "
        "give a path, bytes, a numpy array or a PIL image"
    )


def read_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of an image file; :class:`ImageError` for anything that is not a readable
    regular file of a sane size (a folder, a device such as /dev/zero, a FIFO, no permission)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{path}: is a folder, not an image")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"{path}: not a regular file (a device, pipe or socket)")
    if st.st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")
    if st.st_size > max_bytes:
        raise ImageError(f"{path}: file too large for an image ({st.st_size / 2**20:.0f} MB; "
                         f"the limit is {max_bytes / 2**20:.0f} MB)")  # fmt: skip
    try:
        with open(path, "rb") as f:
            return f.read(max_bytes + 1)
    except OSError as exc:
        raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _decode(data: bytes, *, name: str, gray: bool, max_pixels: int) -> np.ndarray:
    try:
        with warnings.catch_warnings():  # the size is checked below, with a clearer message
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(_io.BytesIO(data), formats=PIL_FORMATS)
    except UnidentifiedImageError:
        raise ImageError(f"{name}: not an image file (unrecognised format)") from None
    except Image.DecompressionBombError as exc:
        raise ImageTooLarge(f"{name}: image too large ({exc})") from None
    except Exception as exc:  # Pillow's plugins raise many kinds on a bad header
        raise ImageError(f"{name}: cannot read image header ({_why(exc)})") from None
    return _from_pil(img, name=name, gray=gray, max_pixels=max_pixels)


def _check_shape(width: int, height: int, name: str, max_pixels: int) -> None:
    """ImageTooLarge for an image over ``max_pixels``, ImageError for one beyond
    :data:`MAX_ASPECT`: checked before any allocation that grows with the image."""
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{name}: image too large ({width}x{height} = {width * height / 1e6:.0f} megapixels; "
            f"the limit is {max_pixels / 1e6:.0f}); downscale it first"
        )
    if max(width, height) > MAX_ASPECT * max(min(width, height), 1):
        raise ImageError(f"{name}: a {width}x{height} image is too elongated to hold a face "
                         f"(sides more than {MAX_ASPECT}:1); crop it first")  # fmt: skip


def _from_pil(img: Any, *, name: str, gray: bool, max_pixels: int) -> np.ndarray:
    _check_shape(*img.size, name, max_pixels)
    try:
        img.load()
        img = _upright(img)
    except Exception as exc:  # the decoders raise many kinds on bad data
        raise ImageError(f"{name}: corrupt or truncated image ({_why(exc)})") from None
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _from_array(np.asarray(img), gray=gray)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode not in ("L", "RGB"):
        img = img.convert("L" if img.mode in ("1", "LA", "La") else "RGB")
    arr = np.array(img)  # writable: turned to BGR (or gray) without another colour copy
    if arr.ndim == 2:
        return arr
    if gray:
        return cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(arr, cv2.COLOR_RGB2BGR, dst=arr)


def _why(exc: Exception) -> str:
    return str(exc) or type(exc).__name__


def _upright(img: Any) -> Any:
    """``img`` turned as its EXIF orientation says (cameras store portrait photos sideways)."""
    orientation = img.getexif().get(0x0112, 1) if hasattr(img, "getexif") else 1
    return ImageOps.exif_transpose(img) if orientation not in (1, None) else img


def _from_array(arr: np.ndarray, *, gray: bool) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3) or arr.size == 0:
        raise ImageError(
            f"expected an image array of shape (H, W), (H, W, 3) or (H, W, 4); got {arr.shape}"
        )
    if arr.dtype != np.uint8:
        arr = _to_uint8(arr)
    if gray and arr.ndim == 3:
        arr = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(arr)


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.floating):
        # Floats in [0, 1] are the common convention; anything else is clipped to 0..255.
        scale = 255.0 if float(np.nanmax(arr)) <= 1.0 else 1.0
        return np.clip(np.nan_to_num(arr) * scale, 0, 255).round().astype(np.uint8)
    info = np.iinfo(arr.dtype)
    if info.max > 255:
        # 16-bit data (PNG/TIFF) uses the full range; 32-bit PIL "I" images rarely do.
        top = 65535 if int(arr.max()) <= 65535 else int(arr.max())
        return (arr.astype(np.float64) * (255.0 / top)).round().clip(0, 255).astype(np.uint8)
    return np.clip(arr, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Frame:
    """One video frame: its index in the stream, its time in seconds, the BGR image, and the
    stream's frames per second (0.0 when the source does not say, as cameras often do not)."""

    index: int
    time: float
    image: np.ndarray
    fps: float = 0.0


def iter_frames(source: str | Path | int, *, every: int = 1) -> Iterator[Frame]:
    """Stream every ``every``-th frame of a video file, or of a camera given by its index.

    Frames are decoded one at a time (skipped ones are only grabbed), so memory stays flat
    however long the video. Raises :class:`VideoError` when the source cannot be opened.
    """
    if every < 1:
        raise VideoError(f"every must be 1 or more; got {every}")
    if isinstance(source, int):
        name = f"camera {source}"
        cap = cv2.VideoCapture(source)
        if not cap.isOpened():
            raise VideoError(f"{name}: no camera at this index, or it cannot be opened")
    else:
        name = str(source)
        if not Path(source).is_file():
            raise VideoError(f"{name}: no such file")
        cap = cv2.VideoCapture(name)
        if not cap.isOpened():
            raise VideoError(f"{name}: not a video OpenCV can read (unsupported or corrupt)")
    try:
        fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
        index = 0
        while cap.grab():
            if index % every == 0:
                ok, image = cap.retrieve()
                if not ok:
                    raise VideoError(f"{name}: frame {index} cannot be decoded")
                seconds = index / fps if fps > 0 else cap.get(cv2.CAP_PROP_POS_MSEC) / 1000
                yield Frame(index, round(seconds, 4), image, fps)
            index += 1
        if index == 0:
            raise VideoError(f"{name}: no frame could be read (empty or corrupt video)")
        expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if not isinstance(source, int) and index < expected - 1:
            log.warning("%s: the video ended after %d of its %d frames (cut short or damaged)",
                        name, index, expected)  # fmt: skip
    finally:
        cap.release()


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary name beside ``path`` (its folder made) for the block to write; renamed onto
    ``path`` when the block ends without error, removed otherwise. Readers see the old file or
    the whole new one, never half of one; the name is unique per process and thread."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_writable(path: str | Path, what: str) -> Path:
    """``path`` if a file can be written there (its folder exists and is writable, and it is
    not a folder); a :class:`TinyferError` naming ``what`` (the option) otherwise. For outputs
    written at the end of long work, checked before the work starts."""
    path = Path(path)
    folder = path.parent
    if path.is_dir():
        problem = "is a folder, not a file"
    elif not folder.is_dir():
        problem = f"its folder {folder} does not exist"
    elif not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        problem = "cannot be written (permission denied)"
    else:
        return path
    raise TinyferError(f"{path}: {what}: {problem}")
