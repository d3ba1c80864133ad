"""ctc.complexity_cache and `ctc complexity`'s use of it: hits, misses, damaged and foreign
files, keys that hold the version; the sheet's new rows (GPU, tile size, training lineage) and
that it shows no path of the training machine."""

import json
import os

import numpy as np
import openpyxl
import pytest
import torch
from ctc_testing import PATH_LIKE

from ctc import complexity
from ctc.cli import main
from ctc.codec import Knob
from ctc.complexity_cache import ENV, ComplexityCache, cache_dir, make_key, picture_key
from ctc.report.complexity_sheet import write_complexity
from nic.ctc_codec import NicCodec


def _cells(ws) -> list[str]:
    return [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]


def _measure(codec, **options):
    return complexity.measure(codec, complexity.test_picture(32, 24), repeat=1, **options)


class PlainCodec:
    """A real codec without networks: raw bytes."""

    name = "plain"
    knob = Knob("q", "integer", 0, 2, True)

    def __init__(self, version: str = "plain 1") -> None:
        self._version = version

    def version(self) -> str:
        return self._version

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        return bytes([image.shape[0], image.shape[1]]) + image.tobytes()

    def decode(self, data: bytes) -> np.ndarray:
        return np.frombuffer(data[2:], np.uint8).reshape(data[0], data[1], 3).copy()


class DeviceCodec(PlainCodec):
    """A codec with a (1x1 convolution) network that declares a tile size, can run on a torch
    device, and records training metadata with machine paths and a lineage whose parent is
    missing."""

    tile_size = (16, 8)

    def __init__(self, device: str = "cpu") -> None:
        super().__init__("device 1")
        self.net = torch.nn.Conv2d(3, 3, 1, bias=False).to(device)
        with torch.no_grad():
            self.net.weight.copy_(torch.eye(3)[:, :, None, None])
        self.metadata = {
            "training": {
                "data": {"paths": ["/home/someone/secret-data"], "images": 3,
                         "description": "/home/someone/secret-data: three photos"},
                "wall_time_s": 30.0, "init": "parent-model",
            },
            "exported": {"file": "C:\\Users\\someone\\model.pt"},
        }  # fmt: skip

    @torch.inference_mode()
    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().to(self.net.weight.device)
        y = self.net(x).round().clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).cpu()
        return super().encode(np.ascontiguousarray(y.numpy()), knob_value)

    def on_device(self, device: str) -> "DeviceCodec":
        return DeviceCodec(device)

    def training_lineage(self) -> list[dict]:
        return [
            {"model": "device-model", "training": self.metadata["training"]},
            {"model": "parent-model", "training": None},
        ]


def test_cache_folder_from_the_environment(tmp_path, monkeypatch, cache_folder):
    assert cache_dir() == cache_folder
    monkeypatch.delenv(ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "nic-ctc" / "complexity"


def test_hit_miss_damaged_and_foreign_files(cache_folder):
    codec = PlainCodec()
    picture = complexity.test_picture(32, 24)
    result = complexity.measure(codec, picture, repeat=1)
    cache = ComplexityCache()
    key = make_key(codec.name, codec.version(), picture_key(picture, "p"), None, 1)
    assert cache.get(key) == (None, "none cached")
    path = cache.put(key, result, 1.5)
    assert path.parent == cache_folder and not list(cache_folder.glob(".tmp-*"))
    entry, why = cache.get(key)
    assert why is None and entry.result == result and entry.seconds == 1.5
    # The key holds the version, the picture's content, the knob, the repeat and the machine.
    other_version = make_key(codec.name, "plain 2", picture_key(picture, "p"), None, 1)
    other_pixels = make_key(codec.name, codec.version(), picture_key(picture[::-1], "p"), None, 1)
    other_knob = make_key(codec.name, codec.version(), picture_key(picture, "p"), 1.0, 1)
    for other in (other_version, other_pixels, other_knob):
        assert cache.path(other) != path and cache.get(other) == (None, "none cached")
    assert key["machine"]["torch_threads"] >= 1 and "cpu" in key["machine"]
    # Damaged, foreign and non-regular files are ignored with a reason, never raised.
    hollow = {**result, "encoder": {}}  # valid JSON, every section there, its fields not
    short_platform = {**result, "platform": {"cpu": "x"}}
    contents = (b"{not json", b"\xff\xfe", b"[]", json.dumps({"key": key, "result": {}}))
    contents += tuple(json.dumps({"key": key, "result": r}) for r in (hollow, short_platform))
    for content in contents:
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        entry, why = cache.get(key)
        assert entry is None and str(path) in why
    path.write_text(json.dumps({"key": other_version, "result": result}))
    assert "another measurement" in cache.get(key)[1]
    path.unlink()
    path.mkdir()
    assert "not a regular file" in cache.get(key)[1]
    path.rmdir()
    os.mkfifo(path)  # a FIFO is refused without waiting for a writer
    assert "not a regular file" in cache.get(key)[1]
    path.unlink()
    cache.put(key, result, None)  # replaces atomically
    assert cache.get(key)[0].seconds is None


def test_cli_complexity_caches_and_reuses(cache_folder, capsys):
    args = ["complexity", "jpeg", "--size", "32x24", "--repeat", "1", "--json"]
    assert main(args) == 0
    first = capsys.readouterr()
    assert "ctc: complexity of jpeg: measuring on 32x24" in first.err
    assert "timing encode 1/1" in first.err and "cached in" in first.err
    (stored,) = cache_folder.glob("*.json")
    mtime = stored.stat().st_mtime_ns
    assert main(args) == 0
    second = capsys.readouterr()
    assert "using the measurement cached" in second.err and "measuring on" not in second.err
    assert json.loads(second.out) == json.loads(first.out)
    assert stored.stat().st_mtime_ns == mtime
    stored.write_text('{"truncated": ')  # a damaged file: measured again, replaced
    assert main(args) == 0
    third = capsys.readouterr().err
    assert "ignoring a cached measurement" in third and "measuring on" in third
    assert json.loads(stored.read_text())["result"]["codec"] == "jpeg"
    assert main([*args, "--remeasure"]) == 0
    assert "measuring on" in capsys.readouterr().err
    assert main([*args[:-1], "--size", "16x16", "--no-cache"]) == 0
    assert "cached" not in capsys.readouterr().err
    assert len(list(cache_folder.glob("*.json"))) == 1


def test_a_changed_version_is_measured_again(cache_folder, capsys, test_codecs, monkeypatch):
    import ctc_testing

    args = ["complexity", "quantzlib", "--size", "16x16", "--repeat", "1"]
    assert main(args) == 0 and "measuring on" in capsys.readouterr().err
    assert main(args) == 0 and "using the measurement cached" in capsys.readouterr().err
    monkeypatch.setattr(ctc_testing.QuantZlibCodec, "version", lambda self: "quantzlib 2")
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "measuring on" in captured.err and "quantzlib: quantzlib 2" in captured.out
    assert len(list(cache_folder.glob("quantzlib-*.json"))) == 2


def test_gpu_rows_time_the_codec_on_its_device():
    """The accelerator path, run on the CPU device (no GPU here): encode and decode times
    separately, with the device named."""
    result = _measure(DeviceCodec(), device="cpu")
    gpu = result["gpu"]
    assert gpu["device"] == "cpu" and gpu["device_name"] == complexity.cpu_model()
    assert len(gpu["encode_seconds"]) == len(gpu["decode_seconds"]) == 1
    assert gpu["encode_seconds_median"] > 0 and gpu["decode_seconds_median"] > 0
    ws = openpyxl.Workbook().active
    write_complexity(ws, [result])
    rows = {r[0]: r for r in ws.iter_rows(values_only=True) if r[0]}
    label = f"GPU time on {gpu['device_name']} (cpu), median (s)"
    assert rows[label][1:3] == (gpu["encode_seconds_median"], gpu["decode_seconds_median"])
    # kMAC/pixel of the 1x1 convolution, and the GMAC a 3840x2160 picture would take from it
    assert result["encoder"]["kmac_per_pixel"] == pytest.approx(9 / 1e3)
    derived = rows["Complexity (GMAC per 3840×2160 picture, derived)"]
    assert derived[1] == pytest.approx(9 * 3840 * 2160 / 1e9) and "32×24" in derived[3]


def test_without_a_gpu_or_device_support_the_sheet_says_why():
    plain = _measure(PlainCodec())
    assert plain["gpu"]["encode_seconds_median"] is None
    if not complexity.gpu_names():
        assert plain["gpu"]["note"] == "not measured: no GPU on this machine"
    assert "offers no on_device" in _measure(PlainCodec(), device="cpu")["gpu"]["note"]
    ws = openpyxl.Workbook().active
    write_complexity(ws, [plain])
    rows = {r[0]: r for r in ws.iter_rows(values_only=True) if r[0]}
    assert rows["GPU time, median (s)"][3] == plain["gpu"]["note"]
    assert rows["Inference patch / tile size (pixels)"][1] == "not declared"


def test_sheet_tile_size_training_lineage_and_no_paths(tmp_path):
    result = _measure(DeviceCodec())
    assert result["tiling"] == {"declared": True, "tile_size": [16, 8]}
    lineage = result["training_lineage"]
    assert lineage["total_wall_time_s"] == 30.0 and not lineage["complete"]
    assert "parent-model's training is not recorded" in lineage["note"]
    ws = openpyxl.Workbook().active
    write_complexity(ws, [result], notes=[f"a note naming {tmp_path}/x"])
    cells = _cells(ws)
    rows = {r[0]: r for r in ws.iter_rows(values_only=True) if r[0]}
    assert rows["Inference patch / tile size (pixels)"][1:3] == ("16×8", "16×8")
    assert rows["Total training time, whole lineage (h)"][1] == pytest.approx(30 / 3600)
    assert "three photos" in " ".join(cells)
    leaks = [c for c in cells if "someone" in c or str(tmp_path) in c or PATH_LIKE.search(c)]
    assert not leaks
    # An older measurement (no tiling, lineage or GPU times) still makes a sheet.
    old = {k: v for k, v in result.items() if k not in ("tiling", "training_lineage")}
    old["gpu"] = {"present": False, "names": [], "seconds": None, "note": "no GPU"}
    write_complexity(openpyxl.Workbook().active, [old])


def test_nic_declares_its_tiles_and_its_training_lineage():
    codec = NicCodec("nic-masked-n128-v2")
    assert codec.tile_size == (1024, 1024)
    chain = codec.training_lineage()
    assert [link["model"] for link in chain] == ["nic-masked-n128-v2", "nic-mshp-n128-v2"]
    data = chain[0]["training"]["data"]
    assert "BSDS500" in data["name"] and "non-commercial" in data["licence"]
    assert "paths" not in data
    text = json.dumps(chain)
    assert not PATH_LIKE.search(text.replace("benchmarks/", "")), text
    lineage = complexity.training_lineage(chain, followed=True)
    walls = [link["training"]["wall_time_s"] for link in chain]
    assert lineage["complete"] and lineage["total_wall_time_s"] == pytest.approx(sum(walls))
    # on_device: its own copy of the model there (here the CPU), coding as the original does
    moved = codec.on_device("cpu")
    assert moved.model is not codec.model and moved.version() == codec.version()
    picture = complexity.test_picture(32, 32)
    assert moved.encode(picture, 2.5) == codec.encode(picture, 2.5)


def test_without_paths():
    scrub = complexity.without_paths
    assert scrub({"paths": ["/a"], "n": 1, "d": {"path": "x"}}) == {"n": 1, "d": {}}
    assert scrub("../shared/data/train: 737 photos") == "(path withheld): 737 photos"
    kept = "N=128/M=192, 1/256, benchmarks/masked_vs_separate.py, https://example.org/a"
    assert scrub(kept) == kept
    assert scrub("at ~/x and C:\\data\\y") == "at (path withheld) and (path withheld)"


def test_a_complexity_file_with_hollow_sections_is_one_usage_line(tmp_path, capsys):
    from ctc_testing import QuantZlibCodec

    result = complexity.measure(QuantZlibCodec(), complexity.test_picture(32, 24), repeat=1)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**result, "encoder": {}}))
    (tmp_path / "run").mkdir()
    assert main(["report", str(tmp_path / "run"), "--complexity", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "entry 1 is not `ctc complexity --json` output" in err
