import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from nic.image_io import ImageConversionWarning, ImageFormatError, read_rgb8, write_rgb8


def write_png16(path, array):
    """A minimal 16-bit PNG writer (Pillow cannot write 16-bit colour PNGs)."""
    h, w = array.shape[:2]
    colour_type = 2 if array.ndim == 3 else 0
    raw = b"".join(b"\x00" + array[i].astype(">u2").tobytes() for i in range(h))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    ihdr = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".ppm"])
def test_rgb8_round_trips_without_warning(tmp_path, rgb, suffix, recwarn):
    path = tmp_path / f"a{suffix}"
    write_rgb8(path, rgb)
    np.testing.assert_array_equal(read_rgb8(path), rgb)
    assert not [w for w in recwarn if w.category is ImageConversionWarning]


def test_grayscale_is_replicated_with_a_warning(tmp_path, rgb):
    Image.fromarray(rgb[:, :, 0], "L").save(tmp_path / "g.png")
    with pytest.warns(ImageConversionWarning, match="grayscale"):
        out = read_rgb8(tmp_path / "g.png")
    np.testing.assert_array_equal(out, np.repeat(rgb[:, :, :1], 3, axis=2))


def test_alpha_is_dropped_with_a_warning(tmp_path, rgb):
    rgba = np.dstack([rgb, np.full(rgb.shape[:2], 7, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    with pytest.warns(ImageConversionWarning, match="alpha"):
        np.testing.assert_array_equal(read_rgb8(tmp_path / "a.png"), rgb)


def test_palette_is_expanded_losslessly(tmp_path, rgb):
    Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=256).save(
        tmp_path / "p.png"
    )
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    with pytest.warns(ImageConversionWarning, match="palette"):
        np.testing.assert_array_equal(read_rgb8(tmp_path / "p.png"), expected)


def test_16bit_grayscale_is_rounded(tmp_path):
    g = np.array([[0, 128, 257, 65535, 40000]], dtype=np.uint16)
    write_png16(tmp_path / "g16.png", g)
    with pytest.warns(ImageConversionWarning, match="16-bit"):
        out = read_rgb8(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[0, :, 0], np.round(g[0] / 257.0).astype(np.uint8))


def test_16bit_colour_keeps_the_high_byte(tmp_path):
    a = np.random.default_rng(1).integers(0, 65536, (4, 6, 3)).astype(np.uint16)
    write_png16(tmp_path / "c16.png", a)
    with pytest.warns(ImageConversionWarning, match="high byte"):
        out = read_rgb8(tmp_path / "c16.png")
    np.testing.assert_array_equal(out, (a >> 8).astype(np.uint8))


def test_not_an_image_is_a_clear_error(tmp_path):
    (tmp_path / "x.png").write_bytes(b"hello")
    with pytest.raises(ImageFormatError, match="not a readable image"):
        read_rgb8(tmp_path / "x.png")
    with pytest.raises(FileNotFoundError):
        read_rgb8(tmp_path / "missing.png")
