import hashlib

import numpy as np
import pytest
from PIL import Image

from ctc.datasets import (
    SKIMAGE_PHOTOS,
    DatasetError,
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
