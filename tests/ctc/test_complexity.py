"""ctc.complexity: MACs against hand counts, parameter accounting on a small real torch codec,
and the nic codec through the registry."""

import json
import struct

import numpy as np
import openpyxl
import pytest
import torch
from torch import nn

from ctc import complexity
from ctc.cli import main
from ctc.codec import Knob
from ctc.report.complexity_sheet import write_complexity
from nic.ctc_codec import NicCodec

RATE_POINTS = 3


class ToyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, padding=1)  # 4*3*9 + 4 = 112 parameters
        self.fc = nn.Linear(4, 4)  # 16 + 4 = 20
        self.dec = nn.ConvTranspose2d(4, 3, 3, padding=1)  # 4*3*9 + 3 = 111; bias has 3 = R
        self.gain = nn.Parameter(torch.linspace(0.5, 2.0, RATE_POINTS * 4).reshape(-1, 4))
        self.unused = nn.Parameter(torch.zeros(5))


class ToyCodec:
    """A real (tiny) learned codec: conv + fully-connected analysis, a gain vector per rate
    point, 8-bit latents, transposed-conv synthesis."""

    name = "toy"
    knob = Knob("rate_point", "integer", 0, RATE_POINTS - 1, True)

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.holder = {"net": ToyNet()}  # found through a dict, as a model registry would hold it

    def version(self) -> str:
        return "toy 1"

    @torch.inference_mode()
    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        net, k = self.holder["net"], int(knob_value)
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        y = net.enc(x) * net.gain[k][None, :, None, None]
        y = net.fc(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        q = torch.clamp(torch.round(y * 16), -127, 127).to(torch.int8).numpy()
        return struct.pack("<HHB", image.shape[0], image.shape[1], k) + q.tobytes()

    @torch.inference_mode()
    def decode(self, data: bytes) -> np.ndarray:
        net = self.holder["net"]
        h, w, k = struct.unpack("<HHB", data[:5])
        q = np.frombuffer(data[5:], np.int8).reshape(1, 4, h, w)
        y = torch.from_numpy(q.copy()).float() / 16 / net.gain[k][None, :, None, None]
        x = net.dec(y)[0].clamp(0, 1) * 255
        return torch.round(x).to(torch.uint8).permute(1, 2, 0).numpy()


def test_macs_match_a_hand_count():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 16*16 outputs * 8 * (3*3*3)
        nn.ReLU(),
        nn.ConvTranspose2d(8, 4, 4, stride=2, padding=1),  # 16*16 inputs * 8 * 4 * 4*4
        nn.Flatten(),
        nn.Linear(4 * 32 * 32, 10),  # 4096 * 10
    )
    x = torch.rand(1, 3, 16, 16)
    expected = 16 * 16 * 8 * 27 + 16 * 16 * 8 * 4 * 16 + 4096 * 10
    assert complexity.count_macs(lambda: net(x)) == expected


def test_toy_codec_parameters_macs_and_layers():
    codec = ToyCodec()
    picture = complexity.test_picture(40, 24)
    result = complexity.measure(codec, picture, knob_value=1, repeat=1, picture_name="toy")
    assert result["networks"] == ["holder.net"]
    assert result["independent_parameter_names"] == ["holder.net.gain"]
    assert result["unused_parameters"] == 5
    assert result["network_parameters"] == 112 + 20 + 111 + 12 + 5
    enc, dec = result["encoder"], result["decoder"]
    assert enc["parameters"] | {"memory_mb": 0} == {
        "total": 112 + 20 + 12, "shared": 132, "independent_per_rate_point": 4,
        "used_per_rate_point": 136, "precision": ["float32"], "memory_mb": 0,
    }  # fmt: skip
    assert enc["parameters"]["memory_mb"] == pytest.approx(144 * 4 / 1e6)
    assert dec["parameters"]["total"] == 111 + 12
    assert dec["parameters"]["shared"] == 111  # the bias has R entries but is not indexed
    assert dec["parameters"]["used_per_rate_point"] == 115
    pixels = 40 * 24
    assert enc["macs"] == pixels * (4 * 27 + 16)
    assert dec["macs"] == pixels * 4 * 3 * 9
    assert enc["kmac_per_pixel"] == pytest.approx(0.124)
    assert (enc["conv_layers"], enc["fc_layers"], dec["conv_layers"], dec["fc_layers"]) == (
        1, 1, 1, 0,
    )  # fmt: skip
    assert [p["encoder_used"] for p in result["rate_points"]] == [136] * RATE_POINTS
    assert [p["decoder_independent"] for p in result["rate_points"]] == [4] * RATE_POINTS
    # Nonzero weights: the conv and fc weights (not biases, not the gains) the layers receive.
    assert (enc["nonzero_weights"], dec["nonzero_weights"]) == (4 * 27 + 16, 4 * 3 * 9)
    assert {p["encoder_nonzero_weights"] for p in result["rate_points"]} == {4 * 27 + 16}
    assert len(enc["cpu_seconds"]) == 1 and enc["cpu_seconds_median"] > 0
    if enc["peak_memory_mb"] is not None:  # Linux
        assert enc["peak_memory_mb"] >= enc["memory_before_mb"] > 0
    assert result["platform"]["logical_cpus"] >= 1
    json.dumps(result)  # JSON-ready


def test_nic_gain_model_accounting():
    codec = NicCodec("nic-mshp-n128-v2")
    result = complexity.measure(codec, complexity.test_picture(128, 64), repeat=1)
    net = find_net(codec)
    rate_points = len(result["rate_points"])
    assert rate_points == codec.knob.high - codec.knob.low + 1
    per_point = {n: p for n, p in net.named_parameters() if p.shape[:1] == (rate_points,)}
    assert per_point, "the nic model has gain vectors per rate point"
    enc = result["encoder"]["parameters"]
    # The gains are independent; everything else the coder touches is shared.
    assert sorted(result["independent_parameter_names"]) == sorted(
        f"model.net.{n}" for n in per_point
    )
    total = sum(p.numel() for p in net.parameters())
    assert result["network_parameters"] == total
    assert enc["shared"] + rate_points * enc["independent_per_rate_point"] == enc["total"]
    assert enc["used_per_rate_point"] == enc["shared"] + enc["independent_per_rate_point"]
    g_s = sum(p.numel() for p in net.g_s.parameters())
    g_a = sum(p.numel() for p in net.g_a.parameters())
    assert result["decoder"]["parameters"]["shared"] >= g_s
    assert enc["shared"] >= g_a
    assert result["encoder"]["kmac_per_pixel"] > 1 and result["decoder"]["conv_layers"] > 0
    assert "steps" in result["training"] or result["training"] == {}


def test_nic_masked_model_accounting():
    codec = NicCodec("nic-masked-n128-v2")
    result = complexity.measure(codec, complexity.test_picture(128, 64), repeat=1)
    net = find_net(codec)
    k = net.num_rate_points
    assert len(result["rate_points"]) == k
    # Each rate point's own layers are independent; the masked convolutions are shared.
    # (the factorized prior's network is not run: coding uses the tables built from it)
    own = {f"model.net.independent.{n}" for n, _ in net.independent.named_parameters()}
    prior = {n for n in own if "hyper_prior" in n}
    assert set(result["independent_parameter_names"]) == own - prior
    assert prior <= set(result["unused_parameter_names"])
    enc, dec = result["encoder"]["parameters"], result["decoder"]["parameters"]
    shared = {layer: net.shared[layer].numel() for layer in net.shared}
    assert enc["shared"] == sum(n for layer, n in shared.items() if not layer.startswith("g_s"))
    assert dec["shared"] == sum(n for layer, n in shared.items() if layer[:3] in ("g_s", "h_s"))
    assert enc["shared"] + k * enc["independent_per_rate_point"] == enc["total"]
    assert (result["encoder"]["conv_layers"], result["decoder"]["conv_layers"]) == (10, 7)
    # The tables of every rate point are among the arrays the codec holds.
    every = [*codec.model.z_tables, codec.model.y_tables]
    tables = sum(a.size for t in every for a in (t.counts, t.lengths, t.offsets))
    assert result["other_arrays"]["values"] >= tables > 0
    # One rate point uses its own tensors whole: the per-point rows match the overall count.
    assert {p["encoder_independent"] for p in result["rate_points"]} == {
        enc["independent_per_rate_point"]
    }
    # Pruned blocks are zeros in what the layers receive: the nested masks keep more nonzero
    # weights at every higher rate point, all of them at the last (density 1.0).
    for side in ("encoder", "decoder"):
        nonzero = [p[f"{side}_nonzero_weights"] for p in result["rate_points"]]
        assert all(a < b for a, b in zip(nonzero, nonzero[1:], strict=False)), (side, nonzero)
        assert nonzero[-1] <= result["rate_points"][-1][f"{side}_used"]
    # The model file records the separate baselines, and the sheet reports them.
    ws = openpyxl.Workbook().active
    write_complexity(ws, [result])
    cells = [c.value for row in ws.iter_rows() for c in row if isinstance(c.value, str)]
    each = result["training"]["baselines"]["parameters_each"]
    assert any(f"{k} × {each:,} = {k * each:,} parameters" in v for v in cells)


def find_net(codec) -> nn.Module:
    (net,) = complexity.find_networks(codec).values()
    return net


def test_cli_complexity_json(capsys):
    code = main(["complexity", "jpeg", "--size", "64x48", "--repeat", "1", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["codec"] == "jpeg" and result["networks"] == []
    assert result["picture"]["width"] == 64 and result["encoder"]["macs"] == 0
    with pytest.raises(SystemExit) as exit_info:
        main(["complexity", "jpeg", "--size", "64by48"])
    assert exit_info.value.code == 2


def test_cli_complexity_text_lists_nonzero_weights_per_rate_point(capsys):
    code = main(["complexity", "nic:nic-masked-n128-v2", "--size", "64x48", "--repeat", "1"])
    assert code == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith("  at rate point")]
    assert [int(r[3]) for r in rows] == list(range(6))
    encoder = [int(r[4]) for r in rows]
    assert encoder == sorted(encoder) and encoder[0] < encoder[-1]
    assert "nonzero layer weights" in out


def test_cli_complexity_unknown_codec(capsys):
    assert main(["complexity", "no-such-codec", "--size", "64x48"]) == 1
    assert "no-such-codec" in capsys.readouterr().err
