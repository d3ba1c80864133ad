"""Training the importance map against the frozen anchor: it runs, resumes, refuses a foreign
checkpoint, leaves the anchor's weights alone, and exports weights that the tool codes with."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from skimage import data as skdata

from nic import codec
from nic.bitstream import unpack
from nic.ctc_codec import NicReference
from nic.model_file import load_model_file
from nic.train.checkpoint import CheckpointError
from nic_tools.importance_map import ImportanceMapCodec, ImportanceMapTool
from nic_tools.importance_map.train import main


def test_training_runs_resumes_and_exports_weights_the_tool_codes_with(
    tmp_path, capsys, small_photo
):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name, image in (("a", skdata.astronaut()), ("b", skdata.coffee())):
        Image.fromarray(image[:96, :96]).save(photos / f"{name}.png")
    anchor = NicReference().model
    before = {k: v.clone() for k, v in anchor.net.state_dict().items()}
    args = ["--data", str(photos), "--out", str(tmp_path / "run"), "--batch", "2", "--patch",
            "64", "--every", "1"]  # fmt: skip
    assert main([*args, "--steps", "2"]) == 0
    weights = tmp_path / "w.pt"
    assert main([*args, "--steps", "3", "--export", str(weights)]) == 0
    out = capsys.readouterr().out
    assert "resumed at step 2" in out and "step 3:" in out and "step 1:" in out
    after = anchor.net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the anchor stays frozen
    tool = ImportanceMapTool(weights)
    assert "weights sha256:" in tool.version()
    stream = codec.encode(small_photo, anchor, 3, tool=tool)
    assert unpack(stream)[0].tool == "importance-map"
    assert codec.decode(stream, anchor, tool=tool).shape == small_photo.shape
    (tmp_path / "bad").mkdir()
    torch.save({"net": {}}, tmp_path / "bad" / "checkpoint.pt")
    with pytest.raises(CheckpointError, match="not an importance-map checkpoint"):
        main([*args[:2], "--patch", "64", "--out", str(tmp_path / "bad"), "--steps", "1"])


def test_fine_tuning_trains_the_anchors_synthesis_and_the_tool_codes_with_its_model(
    tmp_path, small_photo
):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(skdata.astronaut()[:96, :96]).save(photos / "a.png")
    zoo_before = {k: v.clone() for k, v in NicReference().model.net.state_dict().items()}
    args = ["--data", str(photos), "--out", str(tmp_path / "run"), "--batch", "2", "--patch",
            "64", "--every", "1", "--anchor", "fine-tune"]  # fmt: skip
    weights = tmp_path / "w.pt"
    assert main([*args, "--steps", "2", "--export", str(weights)]) == 0
    model_file = tmp_path / "model.pt"
    assert model_file.is_file()
    with pytest.raises(CheckpointError, match="trained with --anchor fine-tune, not frozen"):
        main([*args[:-2], "--steps", "3"])
    zoo_after = NicReference().model.net.state_dict()
    assert all(torch.equal(zoo_before[k], zoo_after[k]) for k in zoo_before)  # the zoo's copy
    tuned = load_model_file(model_file)
    changed = [k for k in zoo_before if not torch.equal(zoo_before[k], tuned.net.state_dict()[k])]
    assert changed and all("g_s" in k for k in changed)
    codec = ImportanceMapCodec(model=model_file)
    codec.tool = ImportanceMapTool(weights)
    stream = codec.encode(small_photo, 3)
    assert unpack(stream)[0].weights_hash == tuned.weights_hash
    assert codec.decode(stream).shape == small_photo.shape
    assert ImportanceMapCodec("off", model=model_file).model.name == NicReference().model.name
