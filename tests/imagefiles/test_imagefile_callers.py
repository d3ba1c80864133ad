"""nic and ctc read every file the same way: the same pixels where ctc accepts the file, the
same finding where ctc refuses what nic converts, the same error where both refuse."""

import warnings

import numpy as np
import pytest
from image_files import display_profile, exif_orientation, write_bmp, write_png, write_pnm
from PIL import Image

from ctc.images import ImageError, load_image
from nic.image_io import ImageConversionWarning, ImageFormatError, read_rgb8

RGB = np.random.default_rng(3).integers(0, 256, (5, 7, 3), dtype=np.uint8)
TRANSPARENT = np.dstack(
    [RGB, np.where(np.arange(7) < 2, 0, 255).astype(np.uint8)[None].repeat(5, 0)]
)


def lossless_files(folder):
    Image.fromarray(RGB).save(folder / "rgb.png")
    Image.fromarray(RGB).save(folder / "rgb.tif")
    Image.fromarray(RGB).save(folder / "rgb.bmp")
    Image.fromarray(RGB).save(folder / "rgb.ppm")
    Image.fromarray(RGB[..., 0]).save(folder / "gray.pgm")
    Image.fromarray(RGB).quantize(colors=16).save(folder / "palette.png")
    Image.fromarray(RGB).quantize(colors=16).save(folder / "palette.bmp")
    Image.fromarray(RGB).save(folder / "turned.png", exif=exif_orientation(8))
    Image.fromarray(RGB).save(folder / "turned.tif", exif=exif_orientation(5))
    write_pnm(folder / "low.pgm", RGB[..., 0] >> 4, 15)
    return sorted(folder.iterdir())


def lossy_files(folder):
    write_png(folder / "deep.png", RGB.astype(np.uint16) * 3, 16)
    write_pnm(folder / "deep.pgm", RGB[..., 0].astype(np.uint16), 65535)
    write_pnm(folder / "odd.ppm", RGB // 3, 100)
    write_bmp(folder / "deep.bmp", RGB, bits=16)
    Image.fromarray(TRANSPARENT).save(folder / "alpha.png")
    Image.fromarray(TRANSPARENT).save(folder / "alpha.tif")
    Image.fromarray(RGB).save(folder / "profile.png", icc_profile=display_profile())
    Image.fromarray(RGB).save(folder / "profile.tif", icc_profile=display_profile())
    return sorted(folder.iterdir())


def refused_files(folder):
    Image.new("CMYK", (4, 4)).save(folder / "cmyk.tif")
    write_png(folder / "linear.png", RGB, chunks=((b"gAMA", (100000).to_bytes(4, "big")),))
    (folder / "dir.png").mkdir()
    frames = [Image.fromarray(RGB), Image.fromarray(RGB[::-1])]
    frames[0].save(folder / "pages.tif", save_all=True, append_images=frames[1:])
    (folder / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(30))
    return sorted(folder.iterdir())


def test_lossless_files_give_the_same_pixels(tmp_path):
    for path in lossless_files(tmp_path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ImageConversionWarning)
            nic_pixels = read_rgb8(path)
        assert np.array_equal(nic_pixels, load_image(path)), path.name


def test_what_nic_converts_with_a_warning_ctc_refuses_naming_it(tmp_path):
    for path in lossy_files(tmp_path):
        with pytest.warns(ImageConversionWarning) as caught:
            read_rgb8(path)
        with pytest.raises(ImageError, match="cannot be read exactly as 8-bit sRGB") as refused:
            load_image(path)
        finding = str(refused.value).split(f"{path}: ")[1].split(" cannot be read")[0]
        assert finding in str(caught[0].message), path.name


def test_what_one_refuses_the_other_refuses_with_the_same_message(tmp_path):
    for path in refused_files(tmp_path):
        with pytest.raises(ImageFormatError) as nic_error:
            read_rgb8(path)
        with pytest.raises(ImageError) as ctc_error:
            load_image(path)
        assert str(nic_error.value) == str(ctc_error.value), path.name
