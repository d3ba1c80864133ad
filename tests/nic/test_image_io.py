import os
import struct
import zlib

import numpy as np
import pytest
from image_files import display_profile, exif_orientation, write_pnm, write_zero_png
from PIL import Image, ImageFile

from nic.image_io import (
    MAX_PIXELS,
    ImageConversionWarning,
    ImageFormatError,
    read_rgb8,
    write_rgb8,
)


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


# --- the shared reading rules, through nic's API and CLI ---------------------------------------


def test_16bit_pgm_depth_comes_from_maxval_not_the_values(tmp_path):
    g = np.array([[0, 100, 200, 255]], dtype=np.uint16)  # maxval 65535: all near black
    write_pnm(tmp_path / "g.pgm", g, 65535)
    with pytest.warns(ImageConversionWarning, match=r"16-bit samples \(PNM maxval 65535\)"):
        out = read_rgb8(tmp_path / "g.pgm")
    np.testing.assert_array_equal(out[0, :, 0], [0, 0, 1, 1])


@pytest.mark.parametrize("suffix", [".jpg", ".tif", ".png"])
def test_exif_orientation_is_applied_with_a_warning(tmp_path, suffix):
    stored = np.zeros((16, 32, 3), np.uint8)
    stored[:8, :8] = 255
    Image.fromarray(stored).save(tmp_path / f"a{suffix}", exif=exif_orientation(6))
    with pytest.warns(ImageConversionWarning, match="EXIF orientation 6 applied"):
        out = read_rgb8(tmp_path / f"a{suffix}")
    assert out.shape == (32, 16, 3) and out[:8, -8:].min() > 200


def test_a_non_srgb_profile_is_converted_with_a_warning(tmp_path):
    rgb = np.full((4, 4, 3), (200, 30, 30), np.uint8)
    Image.fromarray(rgb).save(tmp_path / "p.png", icc_profile=display_profile())
    with pytest.warns(ImageConversionWarning, match="'Color LCD' .not sRGB. converted to sRGB"):
        assert not np.array_equal(read_rgb8(tmp_path / "p.png"), rgb)


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    """An 11000x8000 PNG of 257 KB."""
    return write_zero_png(tmp_path_factory.mktemp("huge") / "huge.png", 11000, 8000)


def test_a_huge_image_is_refused_before_decoding(tmp_path, huge_png, monkeypatch):
    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageFormatError, match="11000x8000 image has 88000000 pixels, over the"):
        read_rgb8(huge_png)
    with pytest.raises(ImageFormatError, match="side over 65536"):
        read_rgb8(write_zero_png(tmp_path / "long.png", 100_000, 3))


def test_max_pixels_can_be_lowered_and_raised(tmp_path):
    path = write_zero_png(tmp_path / "a.png", 300, 200)
    with pytest.raises(ImageFormatError, match="over the limit of 50000; raise the limit"):
        read_rgb8(path, max_pixels=50_000)
    assert read_rgb8(path, max_pixels=None).shape == (200, 300, 3)
    assert MAX_PIXELS == 1 << 26


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    os.mkfifo(tmp_path / "x.png")
    with pytest.raises(ImageFormatError, match=r"not a regular file \(a FIFO\)"):
        read_rgb8(tmp_path / "x.png")


@pytest.mark.parametrize("kind", ["fifo", "huge", "cmyk"])
def test_nic_encode_refuses_bad_input_in_one_line(tmp_path, huge_png, capsys, kind):
    from nic.cli import main

    path = tmp_path / "in.png"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "huge":
        path = huge_png
    else:
        Image.new("CMYK", (4, 4)).save(path, "JPEG")  # a format nic reads, a mode it refuses
    assert main(["encode", str(path), str(tmp_path / "out.nic")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"nic: error: {path}: ")
    assert "Traceback" not in err and not (tmp_path / "out.nic").exists()


def test_write_rgb8_refuses_a_lossy_format(tmp_path, rgb):
    with pytest.raises(ImageFormatError, match="losslessly"):
        write_rgb8(tmp_path / "a.jpg", rgb)
    assert not (tmp_path / "a.jpg").exists()
