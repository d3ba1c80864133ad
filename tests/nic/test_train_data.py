"""Training data: the batched patch sampler and the packed training set (nic prepare-data)."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata
from torch.nn import functional as F

from nic.cli import main
from nic.train.data import PatchSampler, list_images, read_training_image, resampling_weights
from nic.train.prepare import detail_windows, is_held_out, prepare_training_set


@pytest.fixture
def photos(tmp_path, astronaut):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(astronaut).save(folder / "astronaut.png")
    Image.fromarray(skdata.coffee()).save(folder / "coffee.png")
    Image.fromarray(skdata.chelsea()).save(folder / "chelsea.webp", lossless=True)
    return folder


def _one_patch(image: np.ndarray, draw, i: int, patch: int) -> torch.Tensor:
    """Patch i of `draw` the way the sampler made it one patch at a time."""
    top, left, side = draw.top[i], draw.left[i], draw.crop[i]
    x = torch.from_numpy(image).permute(2, 0, 1)[:, top : top + side, left : left + side]
    x = x.float()[None] / 255
    if side != patch:
        x = F.interpolate(x, size=(patch, patch), mode="bicubic", antialias=True).clamp(0, 1)
    x = x[0].flip(-1) if draw.flip[i] else x[0]
    return torch.rot90(x, int(draw.turns[i]), dims=(1, 2))


def test_a_batch_is_each_patch_cropped_resized_flipped_and_turned(photos):
    files = list_images([photos])
    sampler = PatchSampler(files, patch=128, min_scale=0.4, seed=3)
    state = sampler.state()
    draw = sampler.draw(48)
    sampler.set_state(state)
    batch = sampler.batch(48)
    assert batch.shape == (48, 3, 128, 128) and batch.dtype == torch.float32
    assert set(draw.turns) == {0, 1, 2, 3} and set(draw.flip) == {False, True}
    assert len(set(draw.crop)) > 20 and draw.crop.min() >= 128 and set(draw.image) == {0, 1, 2}
    images = [read_training_image(f) for f in files]
    expected = torch.stack([_one_patch(images[draw.image[i]], draw, i, 128) for i in range(48)])
    assert torch.allclose(batch, expected, atol=1e-5)
    assert 0 <= batch.min() and batch.max() <= 1


def test_crops_of_the_patch_side_are_copied_exactly(photos):
    sampler = PatchSampler(list_images([photos]), patch=256, min_scale=1.0, seed=0)
    draw = sampler.draw(8)
    assert (draw.crop == 256).all()
    images = [read_training_image(f) for f in list_images([photos])]
    patches = sampler.cut(draw)
    for i in range(8):
        expected = _one_patch(images[draw.image[i]], draw, i, 256)
        assert torch.equal(patches[i], expected)  # no resampling: the pixels / 255 themselves


def test_resampling_weights_are_the_identity_at_scale_one():
    w = resampling_weights(torch.tensor([128, 200]), 200, 128)
    assert w.shape == (2, 128, 200)
    assert torch.equal(w[0, :, :128], torch.eye(128)) and not w[0, :, 128:].any()
    assert torch.allclose(w[1].sum(1), torch.ones(128)) and w[1].count_nonzero(1).max() > 4


def test_batches_follow_the_seed_and_resume_from_the_state(photos):
    files = list_images([photos])
    a = PatchSampler(files, patch=64, seed=5)
    b = PatchSampler(files, patch=64, seed=5)
    assert torch.equal(a.batch(6), b.batch(6))
    state = a.state()
    first = a.batch(6)
    assert not torch.equal(first, a.batch(6))
    b.set_state(state)
    assert torch.equal(first, b.batch(6))
    assert not torch.equal(first, PatchSampler(files, patch=64, seed=6).batch(6))


def test_webp_is_read_losslessly_and_a_fake_is_refused(photos, tmp_path):
    assert np.array_equal(read_training_image(photos / "chelsea.webp"), skdata.chelsea())
    fake = tmp_path / "fake.webp"
    fake.write_bytes((photos / "coffee.png").read_bytes())
    with pytest.raises(ValueError, match="fake.webp: not a WebP image"):
        read_training_image(fake)
    with pytest.raises(ValueError, match="no training image is at least 1024x1024"):
        PatchSampler(list_images([photos]), patch=1024)


def test_the_holdout_split_follows_the_file_name_only():
    names = [f"photo-{i}.png" for i in range(4000)]
    held = [n for n in names if is_held_out(n, 5.0)]
    assert 0.04 < len(held) / len(names) < 0.06
    assert held == [n for n in names if is_held_out(n, 5.0)]
    assert not any(is_held_out(n, 0.0) for n in names)
    assert set(held) <= {n for n in names if is_held_out(n, 10.0)}


def test_detail_windows_start_where_the_detail_is():
    rng = np.random.default_rng(0)
    image = np.full((256, 640, 3), 120, np.uint8)  # flat, except a textured band at 384..640
    image[:, 384:] = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    windows = detail_windows(image, 128)
    assert windows[0][1] >= 384 and windows[-1][1] + 128 <= 384  # textured first, flat last
    assert len(windows) >= 6
    for i, (t, left) in enumerate(windows):
        for u, other in windows[i + 1 :]:
            assert abs(t - u) >= 128 or abs(left - other) >= 128
    assert detail_windows(image[:100], 128) == []


def _pack_photos(folder, astronaut):
    """Six photos: four PNGs, one JPEG of quality 75 (halved when packed), one of quality 95."""
    folder.mkdir()
    names = []
    for i in range(4):
        name = f"p{i}.png"
        Image.fromarray(np.roll(astronaut, 37 * i, axis=1)).save(folder / name)
        names.append(name)
    Image.fromarray(astronaut).save(folder / "q75.jpg", quality=75)
    Image.fromarray(skdata.coffee()).save(folder / "q95.jpg", quality=95)
    return names + ["q75.jpg", "q95.jpg"]


def test_a_pack_holds_lossless_crops_and_keeps_the_holdout_out_of_train(tmp_path, astronaut):
    names = _pack_photos(tmp_path / "src", astronaut)
    held = [n for n in names if is_held_out(n, 40.0)]
    assert 0 < len(held) < len(names)  # a share that holds out some of these six names
    out = tmp_path / "pack"
    s = prepare_training_set([tmp_path / "src"], out, budget_mib=2.0, crop=128, holdout_percent=40)
    manifest = json.loads((out / "pack.json").read_text())
    crops = manifest["crops"]
    train = sorted(p.name for p in (out / "train").iterdir())
    holdout = sorted(p.name for p in (out / "holdout").iterdir())
    assert s.photos == 6 and s.held_out == len(held) and s.halved == 1 and s.too_small == 0
    assert (
        (s.train_crops, s.holdout_crops)
        == (len(train), len(holdout))
        == (
            sum(c["file"].startswith("train/") for c in crops),
            len(held),
        )
    )
    assert s.train_crops > 2 * (6 - len(held))  # the budget left room for several rounds
    assert s.bytes == sum(p.stat().st_size for p in out.glob("*/*.webp")) <= 2 * 2**20
    assert s.pixels == len(crops) * 128 * 128
    assert {c["photo"] for c in crops if c["file"].startswith("train/")}.isdisjoint(held)
    assert {c["photo"] for c in crops if c["file"].startswith("holdout/")} == set(held)
    for c in crops:  # every crop is the photo's pixels, losslessly, at the recorded place
        source = read_training_image(tmp_path / "src" / c["photo"])
        if c["halved"]:
            assert c["photo"] == "q75.jpg"
            h, w = source.shape[:2]
            source = np.asarray(
                Image.fromarray(source).resize((w // 2, h // 2), Image.Resampling.LANCZOS)
            )
        t, left = c["top"], c["left"]
        tile = read_training_image(out / c["file"])
        assert np.array_equal(tile, source[t : t + 128, left : left + 128])

    small = prepare_training_set([tmp_path / "src"], tmp_path / "small", 0.1, 128, 40)
    assert small.bytes <= 0.1 * 2**20 and 0 < small.train_crops < s.train_crops
    assert small.holdout_crops == len(held)  # the holdout is packed first


def test_pack_errors_are_one_clear_line(tmp_path, astronaut, capsys):
    _pack_photos(tmp_path / "src", astronaut)
    out = tmp_path / "pack"
    for options, message in [
        (["--crop", "100"], "the crop side must be a multiple of 64 pixels, not 100"),
        (["--holdout", "60"], "the holdout share must be from 0 to 50 %, not 60.0"),
    ]:
        assert main(["prepare-data", str(tmp_path / "src"), "--output", str(out), *options]) == 1
        assert capsys.readouterr().err == f"nic: error: {message}\n"
    inside = tmp_path / "src" / "pack"
    assert main(["prepare-data", str(tmp_path / "src"), "--output", str(inside)]) == 1
    assert "its crops would be packed again" in capsys.readouterr().err
    assert main(["prepare-data", str(tmp_path / "src"), "--output", str(out), "--crop", "128"]) == 0
    assert "train/" in capsys.readouterr().out
    assert main(["prepare-data", str(tmp_path / "src"), "--output", str(out), "--crop", "128"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds files; remove it" in err
    with pytest.raises(SystemExit) as exit_:
        main(["prepare-data", str(tmp_path / "src"), "--output", str(out), "--budget", "nan"])
    assert exit_.value.code == 2
