import io

import cv2
import numpy as np
import pytest
from PIL import Image

from tinyfer.core.io import MAX_PIXELS, load_image
from tinyfer.errors import ImageError


def _png(tmp_path, name, img: Image.Image):
    path = tmp_path / name
    img.save(path)
    return path


def test_jpeg_gray_and_color(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0] = 200  # red in RGB
    path = _png(tmp_path, "red.png", Image.fromarray(rgb))
    bgr = load_image(path)
    assert bgr.shape == (20, 30, 3) and bgr[0, 0].tolist() == [0, 0, 200]
    assert load_image(path, gray=True).shape == (20, 30)


def test_sixteen_bit_is_scaled_to_eight(tmp_path):
    arr = np.full((8, 8), 65535, np.uint16)
    arr[0, 0] = 0
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), arr)
    out = load_image(path)
    assert out.dtype == np.uint8 and out.max() == 255 and out[0, 0] == 0


def test_palette_and_rgba_are_converted(tmp_path):
    pal = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).convert("P")
    assert load_image(_png(tmp_path, "p.png", pal)).shape == (8, 8, 3)
    rgba = Image.fromarray(np.full((8, 8, 4), 100, np.uint8), "RGBA")
    out = load_image(_png(tmp_path, "a.png", rgba))
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"this is not an image at all", "not an image"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 10, "(corrupt|cannot read|not an image)"),
    ],
)
def test_bad_files_name_the_file_and_problem(tmp_path, content, message):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=f"bad.jpg.*{message}"):
        load_image(path)


def test_truncated_jpeg_is_an_error(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8)).save(buf, "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match="cut.jpg.*(corrupt|truncated)"):
        load_image(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="is a folder"):
        load_image(tmp_path)


def test_image_over_fifty_megapixels_is_refused_before_decoding(tmp_path):
    side = int(MAX_PIXELS**0.5) + 10
    path = tmp_path / "huge.png"
    cv2.imwrite(str(path), np.zeros((side, side), np.uint8))
    with pytest.raises(ImageError, match="huge.png.*too large.*megapixels"):
        load_image(path)


def test_arrays_and_pil_images():
    assert load_image(np.ones((4, 4), np.float32)).max() == 255
    assert load_image(np.zeros((4, 4, 4), np.uint8)).shape == (4, 4, 3)
    assert load_image(Image.new("L", (5, 3))).shape == (3, 5)
    with pytest.raises(ImageError, match="shape"):
        load_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ImageError, match="cannot read an image from int"):
        load_image(3)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"P6\n128 m28\n255\n", "cannot read image header"),  # PPM with a broken size
        (b"P5\n4 4\n255\n\x00", "corrupt or truncated"),  # PGM cut short
        (b"DDS |\x00\x00\x00" + b"\x00" * 120, "not an image"),  # DDS: not a format we read
        (
            b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n",
            "not an image",
        ),  # never Ghostscript
        (b"#define x_width 8\n#define x_height 8\nstatic char x_bits[] = {0};\n", "not an image"),
    ],
)
def test_malformed_headers_are_image_errors(tmp_path, content, message):
    path = tmp_path / "x.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageError, match=f"x.jpg: {message}"):
        load_image(path)


def test_devices_pipes_huge_and_unreadable_files_are_refused_unread(tmp_path, monkeypatch):
    import os

    with pytest.raises(ImageError, match="/dev/zero: not a regular file"):
        load_image("/dev/zero")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match="pipe.jpg: not a regular file"):
        load_image(fifo)  # opening a FIFO would wait for a writer forever
    huge = tmp_path / "huge.jpg"
    with open(huge, "wb") as f:
        f.truncate(300 * 2**20)  # sparse: no disk used
    with pytest.raises(ImageError, match="huge.jpg: file too large"):
        load_image(huge)
    good = tmp_path / "a.png"
    cv2.imwrite(str(good), np.zeros((8, 8), np.uint8))

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tinyfer.core.io.open", denied, raising=False)  # root reads anything
    with pytest.raises(ImageError, match="a.png: cannot read \\(Permission denied\\)"):
        load_image(good)


def test_exif_orientation_is_applied(tmp_path):
    """A phone photo stored sideways (orientation 6: turn 90 degrees clockwise to view)."""
    stored = np.zeros((20, 40), np.uint8)
    stored[:5, :5] = 255  # a mark in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif.tobytes(), quality=95)
    shown = load_image(path, gray=True)
    assert shown.shape == (40, 20)  # upright: portrait
    assert shown[:5, -5:].mean() > 200 and shown[:5, :5].mean() < 50  # now top-right


def _jpeg_header(path, width: int, height: int):
    """A JPEG whose header claims ``width`` x ``height`` (the scan data is a small image's)."""
    buf = io.BytesIO()
    Image.new("L", (16, 16), 128).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    path.write_bytes(bytes(data))
    return path


def test_extreme_shapes_are_refused_before_decoding(tmp_path):
    import resource

    strip = tmp_path / "strip.png"  # 1 x 50M: under the pixel limit, and 17 GB for OpenCV
    Image.new("L", (MAX_PIXELS, 1), 90).save(strip, compress_level=9)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageError, match=r"strip.png: a 50000000x1 image is too elongated"):
        load_image(strip)
    with pytest.raises(ImageError, match=r"<array>: a 1x400 image is too elongated"):
        load_image(np.zeros((400, 1), np.uint8))
    header = _jpeg_header(tmp_path / "huge.jpg", 20000, 20000)
    with pytest.raises(ImageError, match=r"huge.jpg: image too large \(Image size \(400000000"):
        load_image(header)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, grown_mb  # nothing decoded (the strip's own creation aside)
    assert load_image(np.zeros((40, 800), np.uint8)).shape == (40, 800)  # 20:1 is still allowed


def test_the_cli_skips_extreme_shapes_and_goes_on(tmp_path, face_frames):
    from typer.testing import CliRunner

    from tinyfer.cli import app

    Image.new("L", (MAX_PIXELS, 1), 90).save(tmp_path / "strip.png", compress_level=9)
    _jpeg_header(tmp_path / "huge.jpg", 20000, 20000)
    result = CliRunner().invoke(app, ["predict", str(tmp_path / "strip.png"), str(tmp_path /
                                      "huge.jpg"), str(face_frames[0]), "--detector", "haar",
                                      "--format", "json", "--prior", "training"])  # fmt: skip
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    assert "strip.png: a 50000000x1 image is too elongated" in result.stderr
    assert "huge.jpg: image too large" in result.stderr
    assert "1 image(s): 1 face(s); 2 input(s) skipped" in result.stderr


def test_atomic_path_writes_whole_files_or_none(tmp_path):
    from tinyfer.core.io import atomic_path

    target = tmp_path / "sub" / "file.txt"
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("first")
        assert not target.exists()  # nothing there until the block ends
    assert target.read_text() == "first"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "first" and sorted(p.name for p in target.parent.iterdir()) == [
        "file.txt"
    ]
