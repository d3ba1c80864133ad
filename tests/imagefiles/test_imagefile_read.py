"""imagefile.read_rgb8 under both policies: nic's (allow_lossy=True) and ctc's (False)."""

import io
import os
import subprocess
import sys
import textwrap
import time
import zlib

import numpy as np
import pytest
from image_files import (
    display_profile,
    exif_orientation,
    srgb_profile,
    write_bmp,
    write_png,
    write_pnm,
    write_zero_png,
)
from PIL import Image, ImageCms, ImageFile, ImageOps

import imagefile
from imagefile import ImageFileError, ImageTooLargeError, LossyConversionError, read_rgb8

POLICIES = [True, False]


@pytest.fixture
def rgb():
    return np.random.default_rng(0).integers(0, 256, (6, 8, 3), dtype=np.uint8)


def notes_of(path, **kw):
    return [str(n) for n in read_rgb8(path, allow_lossy=True, **kw).notes]


def read_both(path):
    """The lossy reading, after checking that the lossless policy refuses it."""
    with pytest.raises(LossyConversionError, match="cannot be read exactly as 8-bit sRGB"):
        read_rgb8(path, allow_lossy=False)
    return read_rgb8(path, allow_lossy=True)


# --- plain 8-bit RGB ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".ppm", ".tif", ".bmp"])
@pytest.mark.parametrize("allow_lossy", POLICIES)
def test_8bit_rgb_reads_as_stored_with_no_notes(tmp_path, rgb, suffix, allow_lossy):
    Image.fromarray(rgb).save(tmp_path / f"a{suffix}")
    decoded = read_rgb8(tmp_path / f"a{suffix}", allow_lossy=allow_lossy)
    np.testing.assert_array_equal(decoded.pixels, rgb)
    assert decoded.pixels.flags.writeable and decoded.pixels.flags.c_contiguous
    assert decoded.notes == ()


def test_jpeg_reads_as_pillow_decodes_it(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=90)
    decoded = read_rgb8(tmp_path / "a.jpg", allow_lossy=True)
    np.testing.assert_array_equal(decoded.pixels, np.asarray(Image.open(tmp_path / "a.jpg")))
    assert decoded.notes == ()


def test_a_caller_may_accept_fewer_formats(tmp_path, rgb):
    Image.fromarray(rgb).save(tmp_path / "a.jpg")
    with pytest.raises(ImageFileError, match="JPEG files are not accepted here"):
        read_rgb8(tmp_path / "a.jpg", allow_lossy=False, formats=("PNG", "PNM", "TIFF", "BMP"))


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_other_formats_are_refused(tmp_path, rgb, fmt):
    Image.fromarray(rgb).save(tmp_path / "a.img", fmt)
    with pytest.raises(ImageFileError, match="not a readable image .not a PNG, PNM"):
        read_rgb8(tmp_path / "a.img", allow_lossy=True)


# --- sample depth comes from the file ----------------------------------------------------------


def test_16bit_pgm_with_small_values_is_16bit(tmp_path):
    """maxval 65535 with every sample <= 255: near-black, not 8-bit data."""
    g = np.array([[0, 128, 200, 255, 255]], dtype=np.uint16)
    decoded = read_both(write_pnm(tmp_path / "g.pgm", g, 65535))
    np.testing.assert_array_equal(decoded.pixels[..., 0], np.round(g / 257.0).astype(np.uint8))
    assert decoded.pixels.max() == 1
    assert "16-bit samples (PNM maxval 65535)" in str(decoded.notes[0])


@pytest.mark.parametrize("maxval", [1023, 4095, 300])
@pytest.mark.parametrize("plain", [False, True])
def test_pnm_deep_maxval_is_rounded_exactly(tmp_path, maxval, plain):
    v = np.arange(maxval + 1, dtype=np.uint16)
    gray = read_both(write_pnm(tmp_path / "g.pgm", v[None, :], maxval, plain)).pixels[0, :, 0]
    expected = np.array([round(int(x) * 255 / maxval) for x in v], np.uint8)  # halves to even
    np.testing.assert_array_equal(gray, expected)
    colour = np.stack([v, v[::-1], v], axis=-1)[None]
    rgb = read_both(write_pnm(tmp_path / "c.ppm", colour, maxval, plain)).pixels[0]
    np.testing.assert_array_equal(rgb[:, 0], expected)


def test_pnm_maxval_under_255_is_scaled_and_lossy(tmp_path):
    v = np.arange(101, dtype=np.uint8)
    decoded = read_both(write_pnm(tmp_path / "g.pgm", v[None, :], 100))
    expected = [round(int(x) * 255 / 100) for x in v]  # halves to even
    np.testing.assert_array_equal(decoded.pixels[0, :, 0], expected)
    assert "7-bit samples (PNM maxval 100)" in str(decoded.notes[0])


@pytest.mark.parametrize("maxval", [1, 3, 15, 85])
def test_pnm_maxval_dividing_255_is_exact(tmp_path, maxval):
    v = np.arange(maxval + 1, dtype=np.uint8)
    decoded = read_rgb8(write_pnm(tmp_path / "g.pgm", v[None, :], maxval), allow_lossy=False)
    np.testing.assert_array_equal(decoded.pixels[0, :, 0], v * (255 // maxval))


def test_16bit_png_gray_and_colour(tmp_path):
    g = np.array([[0, 128, 255, 257, 65535, 40000]], dtype=np.uint16)
    decoded = read_both(write_png(tmp_path / "g.png", g, 16))
    np.testing.assert_array_equal(decoded.pixels[0, :, 0], np.round(g[0] / 257.0))
    c = np.random.default_rng(1).integers(0, 65536, (3, 5, 3)).astype(np.uint16)
    decoded = read_both(write_png(tmp_path / "c.png", c, 16))
    np.testing.assert_array_equal(decoded.pixels, c >> 8)
    assert "high byte" in str(decoded.notes[0])


def test_16bit_tiff_gray_and_colour(tmp_path):
    import tifffile

    g = np.array([[0, 128, 255, 40000]], dtype=np.uint16)
    tifffile.imwrite(tmp_path / "g.tif", g)
    decoded = read_both(tmp_path / "g.tif")
    np.testing.assert_array_equal(decoded.pixels[0, :, 0], np.round(g[0] / 257.0))
    tifffile.imwrite(tmp_path / "w.tif", g, photometric="miniswhite")
    white_is_zero = read_both(tmp_path / "w.tif").pixels[0, :, 0]
    np.testing.assert_array_equal(white_is_zero, np.round((65535 - g[0]) / 257.0))
    c = np.random.default_rng(2).integers(0, 65536, (3, 5, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", c, photometric="rgb")
    np.testing.assert_array_equal(read_both(tmp_path / "c.tif").pixels, c >> 8)


def test_16bit_bmp_is_lossy(tmp_path, rgb):
    decoded = read_both(write_bmp(tmp_path / "a.bmp", rgb, bits=16))
    assert np.abs(decoded.pixels.astype(int) - rgb).max() <= 8
    assert "16-bit BMP samples" in str(decoded.notes[0])


@pytest.mark.parametrize("bits", [1, 2, 4])
def test_low_bit_png_gray_is_exact(tmp_path, bits):
    levels = np.arange(1 << bits, dtype=np.uint8) * (255 // ((1 << bits) - 1))
    Image.fromarray(levels[None, :]).save(tmp_path / "g.png", bits=bits)
    decoded = read_rgb8(tmp_path / "g.png", allow_lossy=False)
    np.testing.assert_array_equal(decoded.pixels[0, :, 1], levels)


@pytest.mark.parametrize("allow_lossy", POLICIES)
def test_signed_float_and_cmyk_are_refused(tmp_path, allow_lossy):
    import tifffile

    tifffile.imwrite(tmp_path / "s.tif", np.zeros((4, 4), np.int16))
    tifffile.imwrite(tmp_path / "f.tif", np.zeros((4, 4), np.float32))
    Image.new("CMYK", (4, 4)).save(tmp_path / "k.jpg")
    Image.new("CMYK", (4, 4)).save(tmp_path / "k.tif")
    cases = {"s.tif": "16-bit|signed", "f.tif": "floating-point", "k.jpg": "CMYK", "k.tif": "CMYK"}
    for name, problem in cases.items():
        with pytest.raises(ImageFileError, match=problem):
            read_rgb8(tmp_path / name, allow_lossy=allow_lossy)


# --- palette and transparency ------------------------------------------------------------------


@pytest.mark.parametrize("allow_lossy", POLICIES)
def test_palette_and_opaque_alpha_are_lossless(tmp_path, rgb, allow_lossy):
    Image.fromarray(rgb).quantize(colors=8).save(tmp_path / "p.png")
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])).save(
        tmp_path / "a.png"
    )
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("RGB"))
    np.testing.assert_array_equal(
        read_rgb8(tmp_path / "p.png", allow_lossy=allow_lossy).pixels, expected
    )
    np.testing.assert_array_equal(
        read_rgb8(tmp_path / "a.png", allow_lossy=allow_lossy).pixels, rgb
    )
    assert notes_of(tmp_path / "a.png") == ["alpha channel (fully opaque) removed"]


def test_transparency_is_dropped_or_refused(tmp_path, rgb):
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    alpha[0, :3] = 0
    Image.fromarray(np.dstack([rgb, alpha])).save(tmp_path / "a.png")
    decoded = read_both(tmp_path / "a.png")
    np.testing.assert_array_equal(decoded.pixels, rgb)
    assert "transparency (3 of 48 pixels, alpha channel)" in str(decoded.notes[0])


def test_png_colour_keys(tmp_path, rgb):
    key = (b"tRNS", rgb[2, 3].astype(">u2").tobytes())
    decoded = read_both(write_png(tmp_path / "k.png", rgb, chunks=(key,)))
    assert "transparency (1 of 48 pixels, tRNS colour key)" in str(decoded.notes[0])
    g = np.array([[0, 300, 65535]], np.uint16)
    chunk = (b"tRNS", np.array([300], ">u2").tobytes())
    deep = read_both(write_png(tmp_path / "g.png", g, 16, chunks=(chunk,)))
    assert "1 of 3 pixels" in str(deep.notes[1])
    unused = (b"tRNS", np.array([7], ">u2").tobytes())
    decoded = read_rgb8(
        write_png(tmp_path / "u.png", rgb[..., 0] & 0xF0, chunks=(unused,)), allow_lossy=False
    )
    assert decoded.pixels.shape == (6, 8, 3)


def test_a_low_bit_gray_key_is_scaled_like_the_samples(tmp_path):
    Image.fromarray(np.array([[0, 85, 170, 255]], np.uint8)).save(
        tmp_path / "g.png", bits=2, transparency=2
    )
    assert "1 of 4 pixels" in str(read_both(tmp_path / "g.png").notes[0])


# --- orientation -------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".jpg", ".tif", ".png"])
@pytest.mark.parametrize("allow_lossy", POLICIES)
def test_exif_orientation_6_is_applied_in_every_format(tmp_path, suffix, allow_lossy):
    stored = np.zeros((16, 32, 3), np.uint8)
    stored[:8, :8] = 255  # a white block at the top left of the stored pixels
    Image.fromarray(stored).save(tmp_path / f"a{suffix}", exif=exif_orientation(6))
    if suffix == ".jpg" and not allow_lossy:
        return  # same reader; JPEG's decoded pixels are compared below
    decoded = read_rgb8(tmp_path / f"a{suffix}", allow_lossy=allow_lossy)
    assert decoded.pixels.shape == (32, 16, 3)  # displayed upright: rotated 90° clockwise
    assert decoded.pixels[:8, -8:].min() > 200 and decoded.pixels[-8:, :8].max() < 50
    assert [str(n) for n in decoded.notes] == ["EXIF orientation 6 applied (rotated 90° clockwise)"]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_orientation_matches_pillow_exif_transpose(tmp_path, rgb, orientation):
    Image.fromarray(rgb).save(tmp_path / "a.png", exif=exif_orientation(orientation))
    Image.fromarray(rgb).save(tmp_path / "a.tif", exif=exif_orientation(orientation))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(tmp_path / "a.png")))
    for suffix in (".png", ".tif"):
        pixels = read_rgb8(tmp_path / f"a{suffix}", allow_lossy=False).pixels
        np.testing.assert_array_equal(pixels, expected)


# --- colour ------------------------------------------------------------------------------------


def test_an_srgb_profile_changes_nothing(tmp_path, rgb):
    for suffix in (".png", ".tif"):
        Image.fromarray(rgb).save(tmp_path / f"a{suffix}", icc_profile=srgb_profile())
        decoded = read_rgb8(tmp_path / f"a{suffix}", allow_lossy=False)
        np.testing.assert_array_equal(decoded.pixels, rgb)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".jpg", ".bmp"])
def test_a_non_srgb_profile_is_converted_or_refused(tmp_path, rgb, suffix):
    path = tmp_path / f"a{suffix}"
    if suffix == ".bmp":
        write_bmp(path, rgb, cs_type=b"DEBM", profile=display_profile())
    else:
        Image.fromarray(rgb).save(path, icc_profile=display_profile())
    stored = np.asarray(Image.open(path).convert("RGB"))
    decoded = read_both(path)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(display_profile()))
    expected = ImageCms.profileToProfile(
        Image.fromarray(stored), profile, ImageCms.createProfile("sRGB")
    )
    np.testing.assert_array_equal(decoded.pixels, np.asarray(expected))
    assert not np.array_equal(decoded.pixels, stored)
    assert [str(n) for n in decoded.notes] == [
        "colour profile 'Color LCD' (not sRGB) converted to sRGB (perceptual intent)"
    ]


@pytest.mark.parametrize("allow_lossy", POLICIES)
def test_colour_declarations_that_cannot_be_applied_are_refused(tmp_path, rgb, allow_lossy):
    cases = {
        "bad profile": (b"iCCP", b"x\0\0" + zlib.compress(b"not a profile")),
        "gAMA 1 is not": (b"gAMA", (100000).to_bytes(4, "big")),
        "cHRM": (
            b"cHRM",
            np.array([31270, 32900, 70800, 29200, 17000, 79700, 13100, 4600], ">u4").tobytes(),
        ),
        "cICP colour description .9, 16, 0, 1.": (b"cICP", bytes([9, 16, 0, 1])),
    }
    for problem, chunk in cases.items():
        path = write_png(tmp_path / "a.png", rgb, chunks=(chunk,))
        match = "unreadable colour profile" if problem == "bad profile" else problem
        with pytest.raises(ImageFileError, match=match) as e:
            read_rgb8(path, allow_lossy=allow_lossy)
        assert not isinstance(e.value, LossyConversionError)
    with pytest.raises(ImageFileError, match="calibrated BMP colour space"):
        read_rgb8(
            write_bmp(tmp_path / "c.bmp", rgb, cs_type=bytes(4), calibration=b"\1" * 48),
            allow_lossy=allow_lossy,
        )
    with pytest.raises(ImageFileError, match="linked"):
        read_rgb8(write_bmp(tmp_path / "l.bmp", rgb, cs_type=b"KNIL"), allow_lossy=allow_lossy)


def test_colour_rules_hold_for_16bit_grayscale(tmp_path):
    g = np.array([[0, 40000]], np.uint16)
    gamma = (b"gAMA", (100000).to_bytes(4, "big"))
    with pytest.raises(ImageFileError, match="gAMA 1 is not"):
        read_rgb8(write_png(tmp_path / "a.png", g, 16, chunks=(gamma,)), allow_lossy=True)
    rgb_profile = (b"iCCP", b"p\0\0" + zlib.compress(display_profile()))
    with pytest.raises(ImageFileError, match="colour profile is for RGB, the image is L"):
        read_rgb8(write_png(tmp_path / "b.png", g, 16, chunks=(rgb_profile,)), allow_lossy=True)


def test_srgb_declarations_are_accepted(tmp_path, rgb):
    for chunk in [
        (b"gAMA", (45455).to_bytes(4, "big")),
        (b"cICP", bytes([1, 13, 0, 1])),
        (b"sRGB", b"\0"),
    ]:
        path = write_png(tmp_path / "a.png", rgb, chunks=(chunk,))
        np.testing.assert_array_equal(read_rgb8(path, allow_lossy=False).pixels, rgb)
    path = write_bmp(tmp_path / "a.bmp", rgb, cs_type=bytes(4))  # calibrated, all zero
    np.testing.assert_array_equal(read_rgb8(path, allow_lossy=False).pixels, rgb)


# --- frames ------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_several_frames_are_refused(tmp_path, rgb, suffix):
    frames = [Image.fromarray(rgb), Image.fromarray(255 - rgb)]
    frames[0].save(tmp_path / f"a{suffix}", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageFileError, match="several frames"):
        read_rgb8(tmp_path / f"a{suffix}", allow_lossy=True)


# --- size, before decoding ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory):
    return write_zero_png(tmp_path_factory.mktemp("huge") / "huge.png", 11000, 8000)


def test_a_huge_image_is_refused_from_its_header(huge_png, monkeypatch):
    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert huge_png.stat().st_size < 300_000
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError) as e:
        read_rgb8(huge_png, allow_lossy=True, limit_hint="raise it with --max-pixels")
    assert time.perf_counter() - start < 1
    assert str(e.value) == (
        f"{huge_png}: 11000x8000 image has 88000000 pixels, over the limit of 67108864; "
        "raise it with --max-pixels"
    )


def test_refusing_a_huge_image_allocates_nothing(huge_png):
    script = textwrap.dedent(
        f"""
        import resource
        import imagefile
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            imagefile.read_rgb8({str(huge_png)!r}, allow_lossy=True)
        except imagefile.ImageTooLargeError:
            pass
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) < 20_000  # KiB; decoding would take 264 MB


def test_sides_are_limited_whatever_the_pixel_limit(tmp_path):
    path = write_zero_png(tmp_path / "long.png", 100_000, 3)
    with pytest.raises(ImageTooLargeError, match="100000x3 image has a side over 65536"):
        read_rgb8(path, allow_lossy=True, max_pixels=None)


def test_the_limit_can_be_raised_past_pillows_bomb_check(tmp_path, monkeypatch):
    path = write_zero_png(tmp_path / "a.png", 300, 200)
    with pytest.raises(ImageTooLargeError, match="60000 pixels, over the limit of 50000"):
        read_rgb8(path, allow_lossy=True, max_pixels=50_000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow's global limit is not used
    assert read_rgb8(path, allow_lossy=True, max_pixels=None).pixels.shape == (200, 300, 3)
    assert imagefile.MAX_PIXELS == 1 << 26 and imagefile.MAX_SIDE == 65536


def test_a_text_chunk_bomb_is_one_error(tmp_path, rgb):
    bomb = b"k\0\0" + zlib.compress(bytes(20 << 20))
    path = write_png(tmp_path / "z.png", rgb, chunks=((b"zTXt", bomb),))
    with pytest.raises(ImageFileError, match="not a readable image .Decompressed data too large"):
        read_rgb8(path, allow_lossy=True)


# --- what is not a regular image file ----------------------------------------------------------


def test_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "x.png")
    script = (
        "import imagefile\n"
        f"try: imagefile.read_rgb8({str(tmp_path / 'x.png')!r}, allow_lossy=True)\n"
        "except imagefile.ImageFileError as e: print(e)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert (
        out.stdout.strip()
        == f"{tmp_path / 'x.png'}: not a regular file (a FIFO); give an image file"
    )


def test_directories_devices_links_and_missing_files(tmp_path):
    (tmp_path / "d.png").mkdir()
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    for path, problem in [
        (tmp_path / "d.png", "not a regular file .a directory."),
        ("/dev/zero", "not a regular file .a character device."),
        (tmp_path / "loop.png", "cannot open .Too many levels of symbolic links."),
    ]:
        with pytest.raises(ImageFileError, match=problem):
            read_rgb8(path, allow_lossy=True)
    with pytest.raises(FileNotFoundError):
        read_rgb8(tmp_path / "missing.png", allow_lossy=True)


@pytest.mark.parametrize("data", [b"", b"hello", b"\x89PNG\r\n\x1a\n" + bytes(40), b"P5\n3 x\n"])
def test_malformed_files_are_one_error(tmp_path, data):
    (tmp_path / "x").write_bytes(data)
    with pytest.raises(ImageFileError, match="not a readable image"):
        read_rgb8(tmp_path / "x", allow_lossy=True)
