import hashlib
import os
import weakref

import numpy as np
import pytest
from image_files import display_profile, exif_orientation, write_png, write_pnm, write_zero_png
from PIL import Image

from ctc import datasets
from ctc.datasets import (
    SKIMAGE_PHOTOS,
    DatasetError,
    DatasetWarning,
    folder_dataset,
    remote_dataset,
    resolve_dataset,
)
from ctc.fetch import RemoteDataset
from ctc.images import ImageError, load_image, pixel_sha256


def test_skimage_default_is_colour_png_photos():
    ds = resolve_dataset("skimage")
    assert [im.name for im in ds.images] == sorted(p.removesuffix(".png") for p in SKIMAGE_PHOTOS)
    for im in ds.images:
        assert im.path.suffix == ".png"
        pixels = im.load()
        assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
        assert min(pixels.shape[:2]) >= 300


def test_folder_dataset_and_its_checksums(crop_folder, crops):
    ds = resolve_dataset(crop_folder)
    assert [im.name for im in ds.images] == sorted(crops)
    sums = ds.checksums()
    for name, image in crops.items():
        assert sums[name] == hashlib.sha256(image.tobytes()).hexdigest() == pixel_sha256(image)


def test_folder_errors(tmp_path):
    with pytest.raises(DatasetError, match="no dataset 'missing'"):
        resolve_dataset("missing")
    with pytest.raises(DatasetError, match="has no images"):
        folder_dataset(tmp_path)
    image = np.zeros((4, 4, 3), np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(image).save(tmp_path / "a.ppm")
    with pytest.raises(DatasetError, match="two images named 'a'"):
        folder_dataset(tmp_path)


def test_lossless_conversions_are_accepted(tmp_path):
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    assert np.array_equal(load_image(tmp_path / "grey.png"), np.stack([grey] * 3, axis=-1))
    rgba = np.dstack([np.full((6, 8, 3), 7, np.uint8), np.full((6, 8), 255, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "opaque.png")
    assert load_image(tmp_path / "opaque.png").shape == (6, 8, 3)
    palette = Image.fromarray(np.full((6, 8, 3), 9, np.uint8)).quantize(colors=4)
    palette.save(tmp_path / "pal.png")
    assert (load_image(tmp_path / "pal.png") == 9).all()


def test_lossy_conversions_are_refused(tmp_path):
    rgba = np.dstack([np.zeros((6, 8, 3), np.uint8), np.full((6, 8), 100, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    with pytest.raises(ImageError, match="transparency"):
        load_image(tmp_path / "alpha.png")
    Image.fromarray(np.full((6, 8), 40000, np.uint16)).save(tmp_path / "deep.png")
    with pytest.raises(ImageError, match="16-bit"):
        load_image(tmp_path / "deep.png")
    (tmp_path / "junk.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    with pytest.raises(ImageError, match="not a readable image"):
        load_image(tmp_path / "junk.png")


def test_a_fetched_dataset_is_verified_on_use(tmp_path, crops):
    pins = {f"{n}.png": (im.shape[1], im.shape[0], pixel_sha256(im)) for n, im in crops.items()}
    remote = RemoteDataset("mini", "http://127.0.0.1:9/", pins)
    with pytest.raises(DatasetError, match="ctc dataset fetch mini"):
        remote_dataset(remote, tmp_path)
    for name, image in crops.items():
        Image.fromarray(image).save(tmp_path / f"{name}.png")
    assert len(remote_dataset(remote, tmp_path).images) == 3
    Image.fromarray(crops["cat"][::-1]).save(tmp_path / "cat.png")
    with pytest.raises(DatasetError, match="cat.png: pixel checksum mismatch"):
        remote_dataset(remote, tmp_path)


# --- originals: the shared reading rules with lossy conversions refused ------------------------


def test_16bit_originals_are_refused_in_every_format(tmp_path):
    import tifffile

    small = np.full((4, 6), 200, np.uint16)  # 16-bit files whose values all fit in 8 bits
    colour = np.full((4, 6, 3), 200, np.uint16)
    files = [
        write_png(tmp_path / "g.png", small, 16),
        write_png(tmp_path / "c.png", colour, 16),
        write_pnm(tmp_path / "g.pgm", small, 65535),
        write_pnm(tmp_path / "c.ppm", colour, 65535),
    ]
    tifffile.imwrite(tmp_path / "g.tif", small)
    tifffile.imwrite(tmp_path / "c.tif", colour, photometric="rgb")
    for path in [*files, tmp_path / "g.tif", tmp_path / "c.tif"]:
        with pytest.raises(ImageError, match="16-bit samples.* cannot be read exactly"):
            load_image(path)
    with pytest.raises(ImageError, match=r"10-bit samples \(PNM maxval 1023\)"):
        load_image(write_pnm(tmp_path / "d.pgm", small, 1023))


def test_exact_conversions_are_accepted(tmp_path):
    v = np.arange(16, dtype=np.uint8)[None, :]
    assert np.array_equal(load_image(write_pnm(tmp_path / "a.pgm", v, 15))[0, :, 2], v[0] * 17)
    stored = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    for suffix in (".png", ".tif"):
        Image.fromarray(stored).save(tmp_path / f"o{suffix}", exif=exif_orientation(6))
        assert np.array_equal(load_image(tmp_path / f"o{suffix}"), np.rot90(stored, -1))


def test_refused_originals(tmp_path):
    Image.new("RGB", (4, 4)).save(tmp_path / "a.jpg")
    with pytest.raises(ImageError, match="JPEG files are not accepted here"):
        load_image(tmp_path / "a.jpg")
    Image.new("RGB", (4, 4)).save(tmp_path / "p.png", icc_profile=display_profile())
    with pytest.raises(ImageError, match="colour profile 'Color LCD' .not sRGB."):
        load_image(tmp_path / "p.png")
    os.mkfifo(tmp_path / "f.png")
    with pytest.raises(ImageError, match=r"not a regular file \(a FIFO\)"):
        load_image(tmp_path / "f.png")
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "missing.png")
    big = write_zero_png(tmp_path / "big.png", 300, 200)
    with pytest.raises(ImageError, match="60000 pixels, over the limit of 50000; raise the"):
        load_image(big, max_pixels=50_000)
    assert load_image(big, max_pixels=60_000).shape == (200, 300, 3)


# --- folders: nothing skipped silently, every bad image named at once --------------------------


@pytest.fixture
def messy_folder(tmp_path):
    folder = tmp_path / "messy"
    folder.mkdir()
    image = np.full((4, 4, 3), 9, np.uint8)
    Image.fromarray(image).save(folder / "good.png")
    Image.fromarray(image).save(folder / "photo.jpg")
    Image.fromarray(image).save(folder / ".hidden.png")
    (folder / "notes.txt").write_text("x")
    (folder / "sub").mkdir()
    (folder / "dir.png").mkdir()
    (folder / "loop.png").symlink_to(folder / "loop.png")
    write_png(folder / "deep.png", np.zeros((4, 4), np.uint16), 16)
    (folder / "junk.ppm").write_bytes(b"P6\n4 4\n255\n")
    return folder


def test_a_folder_names_what_it_skips(messy_folder):
    with pytest.warns(DatasetWarning) as caught:
        ds = folder_dataset(messy_folder)
    assert [im.name for im in ds.images] == ["deep", "dir", "good", "junk", "loop"]
    (warning,) = caught
    assert str(warning.message) == (
        f"dataset 'messy': skipping in {messy_folder}: .hidden.png (hidden), "
        "notes.txt (not .png/.ppm/.pgm/.pbm/.pnm/.bmp/.tif/.tiff), "
        "photo.jpg (JPEG: lossy-compressed originals are not used), sub (a folder)"
    )


def test_every_bad_image_is_named_in_one_error(messy_folder):
    with pytest.warns(DatasetWarning):
        ds = folder_dataset(messy_folder)
    with pytest.raises(DatasetError) as e:
        ds.checksums()
    lines = str(e.value).split("\n")
    assert lines[0] == "dataset 'messy': 4 of 5 images cannot be used:"
    expected = [
        "deep.png: 16-bit samples",
        "dir.png: not a regular file (a directory)",
        "junk.ppm: not a readable image",
        "loop.png: cannot open (Too many levels of symbolic links)",
    ]
    assert len(lines) == 5
    for line, start in zip(lines[1:], expected, strict=True):
        assert line.startswith(f"  {messy_folder / start.split(':')[0]}: ")
        assert start.split(": ", 1)[1] in line


def test_checksums_hold_one_image_at_a_time(crop_folder, monkeypatch):
    alive = []

    def load(path, max_pixels):
        assert all(ref() is None for ref in alive), "an earlier image is still held"
        image = np.zeros((4, 4, 3), np.uint8)
        alive.append(weakref.ref(image))
        return image

    monkeypatch.setattr(datasets, "load_image", load)
    assert len(folder_dataset(crop_folder).checksums()) == 3


def test_ctc_run_names_every_bad_image_and_no_traceback(messy_folder, tmp_path, capsys):
    from ctc.cli import main

    code = main(
        ["run", "quick", "--dataset", str(messy_folder), "--codec", "jpeg"]
        + ["--out", str(tmp_path / "out"), "--no-progress"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    (skipped,) = [line for line in err.splitlines() if line.startswith("ctc: warning:")]
    assert "photo.jpg" in skipped
    assert "ctc: error: dataset 'messy': 4 of 5 images cannot be used:" in err
    for name in ("deep.png", "dir.png", "junk.ppm", "loop.png"):
        assert f"{messy_folder / name}: " in err


def test_ctc_run_max_pixels_bounds_the_originals(tmp_path, capsys):
    from ctc.cli import main

    folder = tmp_path / "sizes"
    folder.mkdir()
    Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(folder / "small.png")
    Image.fromarray(np.full((8, 16, 3), 9, np.uint8)).save(folder / "wide.png")
    args = ["run", "quick", "--dataset", str(folder), "--codec", "jpeg", "--no-progress"]
    code = main([*args, "--out", str(tmp_path / "a"), "--max-pixels", "64"])
    err = capsys.readouterr().err
    assert code == 2 and "1 of 2 images cannot be used" in err and "wide.png" in err
    assert "--max-pixels" in err
    assert main([*args, "--out", str(tmp_path / "b"), "--max-pixels", "128"]) == 0
