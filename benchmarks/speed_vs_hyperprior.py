"""nic's encode and decode time against a mean-scale hyperprior of the same size, in one run.

    CTC_DATA_DIR=.kodak-data python benchmarks/speed_vs_hyperprior.py [--images kodak]
        [--limit N] [--threads 1 2] [--repeats 5] [--rate 3] [--target-bpp 0.5] [--model NAME]
        [--stages]

The baseline (`Hyperprior` below) is a plain-PyTorch restatement of the mean-scale hyperprior of
Minnen, Ballé and Toderici, "Joint autoregressive and hierarchical priors for learned image
compression" (NeurIPS 2018) without its context model, at the size of CompressAI's
`mbt2018-mean` for qualities 1 to 4 (N = 128, M = 192), with random weights (the time does not
depend on them): the analysis g_a, four 5x5 stride-2 convolutions with GDN between them; the
synthesis g_s, four 5x5 stride-2 transposed convolutions with inverse GDN between them; the
hyper-analysis h_a, a 3x3 convolution and two 5x5 stride-2 convolutions with leaky ReLUs; the
hyper-synthesis h_s, two 5x5 stride-2 transposed convolutions (to M and 3M/2 channels) and a
3x3 convolution to a mean and a scale per latent, leaky ReLUs between. GDN (Ballé, Laparra,
Simoncelli, ICLR 2016) is written as its definition, x / sqrt(beta + gamma x^2) with the
non-negative parametrization of its parameters applied at each call, in float32, like the
reference implementations.

Its encode is: pad to a multiple of 64, g_a, h_a, round z, h_s in float32, the rounded residual
round(y - mean) and each scale's table index (64 log-spaced scales); its decode: h_s, residual
+ mean, g_s, clamp, round to uint8 and crop. It does no range coding, which nic's figures
include (CompressAI's compress and decompress also range-code z and y), so the ratios below are
against a baseline faster than CompressAI's own; nic's hyper-synthesis is its integer path
(float64, nic/models/integer_synthesis.py), the baseline's a float32 one.

nic is timed on its public calls: `codec.encode` at rate position --rate, `ratecontrol.
encode_to_target` at --target-bpp, and `codec.decode`. For every image, each thread count and
each repeat, the five calls (baseline encode, nic encode, nic target encode, baseline decode,
nic decode) run one after another, so that the load of a shared machine falls on all of them
alike; each figure is the median of --repeats. torch runs on --threads threads; nic's synthesis
runs on nic.codec.SYNTHESIS_THREADS (one) whatever that is, the baseline's on all of them.
--stages adds the median time of each stage of nic and of the baseline: nic's quantize is h_a,
the integer h_s and the rounding; its decode latents the range decoding and the integer h_s; its
g_s the synthesis, clamping and rounding (codec.reconstruct). --images is a folder or a ctc
dataset name ("kodak" needs CTC_DATA_DIR or a fetched copy; "skimage" is the photos inside the
scikit-image wheel).
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ctc.datasets import resolve_dataset
from nic import codec, ratecontrol, zoo
from nic.model_file import CodecModel

SCALES = torch.exp(torch.linspace(math.log(0.11), math.log(256.0), 64))
"""The baseline's scale table: 64 scales, log-spaced from 0.11 to 256 (as nic's and
CompressAI's Gaussian tables)."""


class Normalization(nn.Module):
    """GDN, or its inverse: x_i / sqrt(beta_i + sum_j gamma_ij x_j^2) (x_i times it), with
    beta and gamma kept as the squares of bounded parameters (Ballé et al., ICLR 2018)."""

    def __init__(self, channels: int, inverse: bool = False) -> None:
        super().__init__()
        self.inverse = inverse
        self.pedestal = 2.0**-36
        self.beta = nn.Parameter(torch.sqrt(torch.ones(channels) + self.pedestal))
        self.gamma = nn.Parameter(torch.sqrt(0.1 * torch.eye(channels) + self.pedestal))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        channels = x.shape[1]
        beta = self.beta.clamp_min((1e-6 + self.pedestal) ** 0.5) ** 2 - self.pedestal
        gamma = self.gamma.clamp_min(2.0**-18) ** 2 - self.pedestal
        norm = F.conv2d(x**2, gamma.reshape(channels, channels, 1, 1), beta)
        return x * (torch.sqrt(norm) if self.inverse else torch.rsqrt(norm))


def _down(cin: int, cout: int, kernel: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, stride, kernel // 2)


def _up(cin: int, cout: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 5, 2, 2, output_padding=1)


class Hyperprior(nn.Module):
    """The baseline: the mean-scale hyperprior at N, M (module docstring), random weights."""

    def __init__(self, n: int = 128, m: int = 192) -> None:
        super().__init__()
        self.g_a = nn.Sequential(
            _down(3, n), Normalization(n), _down(n, n), Normalization(n),
            _down(n, n), Normalization(n), _down(n, m),
        )  # fmt: skip
        self.g_s = nn.Sequential(
            _up(m, n), Normalization(n, True), _up(n, n), Normalization(n, True),
            _up(n, n), Normalization(n, True), _up(n, 3),
        )  # fmt: skip
        self.h_a = nn.Sequential(
            _down(m, n, 3, 1), nn.LeakyReLU(), _down(n, n), nn.LeakyReLU(), _down(n, n)
        )
        self.h_s = nn.Sequential(
            _up(n, m), nn.LeakyReLU(), _up(m, m * 3 // 2), nn.LeakyReLU(),
            _down(m * 3 // 2, 2 * m, 3, 1),
        )  # fmt: skip

    def parameters_from(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, table index) of every latent from the rounded hyper-latent, in float32."""
        mean, scale = self.h_s(z).chunk(2, dim=1)
        return mean, torch.bucketize(scale.abs().clamp_min(SCALES[0]), SCALES)

    @torch.inference_mode()
    def encode(self, image: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
        """uint8 (H, W, 3) -> (residuals, z, (H, W)): the symbols a range coder would code."""
        height, width = image.shape[:2]
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
        x = F.pad(x, (0, -width % 64, 0, -height % 64), mode="replicate")
        y = self.g_a(x)
        z = torch.round(self.h_a(y))
        mean, _ = self.parameters_from(z)
        return torch.round(y - mean), z, (height, width)

    @torch.inference_mode()
    def decode(self, residual: torch.Tensor, z: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
        """The symbols back to uint8 (H, W, 3)."""
        mean, _ = self.parameters_from(z)
        x = self.g_s(residual + mean)[0, :, : size[0], : size[1]]
        return torch.round(x.clamp(0, 1) * 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _median_times(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each call, the calls taking turns in every repeat."""
    for call in calls.values():  # warm-up
        call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def end_to_end(model: CodecModel, base: Hyperprior, image: np.ndarray, args) -> dict[str, float]:
    """Median seconds of the baseline's and nic's encode and decode of one image."""
    stream = codec.encode(image, model, args.rate)
    symbols = base.encode(image)
    times = _median_times(
        {
            "base enc": lambda: base.encode(image),
            "nic enc": lambda: codec.encode(image, model, args.rate),
            "nic target": lambda: ratecontrol.encode_to_target(image, model, args.target_bpp),
            "base dec": lambda: base.decode(*symbols),
            "nic dec": lambda: codec.decode(stream, model),
        },
        args.repeats,
    )
    return {**times, "bpp": 8 * len(stream) / (image.shape[0] * image.shape[1])}


@torch.inference_mode()
def stages(model: CodecModel, base: Hyperprior, image: np.ndarray, args) -> dict[str, float]:
    """Median seconds of each stage of nic's encode and decode, and of the baseline's."""
    code = codec.gain_code(model, args.rate)
    rate_network = model.rate_network(code)
    net = rate_network.net
    gain, _ = net.gains(rate_network.position)
    g_a_out = codec.analysis(model, image, code)
    latents = codec.quantize(model, g_a_out, code)
    stream = codec.pack_stream(model, latents, code, image.shape[1], image.shape[0])
    x = codec.padded_tensor(image)
    y = base.g_a(x)
    z = torch.round(base.h_a(y))
    residual = torch.round(y - base.parameters_from(z)[0])
    return _median_times(
        {
            "nic g_a": lambda: codec.analysis(model, image, code),
            "nic h_a": lambda: net.h_a(g_a_out * gain),
            "nic integer h_s": lambda: rate_network.entropy_path(latents.z),
            "nic quantize": lambda: codec.quantize(model, g_a_out, code),
            "nic range encode": lambda: codec.pack_stream(
                model, latents, code, image.shape[1], image.shape[0]
            ),
            "nic decode latents": lambda: codec.decode_latents(stream, model),
            "nic g_s": lambda: codec.reconstruct(
                model, latents, args.rate, image.shape[0], image.shape[1]
            ),
            "base g_a": lambda: base.g_a(x),
            "base h_a": lambda: base.h_a(y),
            "base h_s": lambda: base.parameters_from(z),
            "base g_s": lambda: base.g_s(residual),
        },
        args.repeats,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", default="kodak", help="a folder or a ctc dataset name")
    parser.add_argument("--limit", type=int, default=4, help="the first N images (default 4)")
    parser.add_argument("--model", help="zoo model name or model file (default: zoo default)")
    parser.add_argument("--rate", type=float, default=3, help="nic's rate position (default 3)")
    parser.add_argument("--target-bpp", type=float, default=0.5, help="rate control's target")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stages", action="store_true", help="also time each stage")
    args = parser.parse_args()
    model = zoo.load(args.model)
    torch.manual_seed(0)
    base = Hyperprior().eval()
    images = [(item.name, item.load()) for item in resolve_dataset(args.images).images]
    images = images[: args.limit]
    print(
        f"nic {model.name} at rate {args.rate:g} (target {args.target_bpp:g} bpp) against the "
        f"N=128 M=192 mean-scale hyperprior; torch {torch.__version__}; medians of "
        f"{args.repeats}; seconds; ratio = nic / baseline"
    )
    columns = ("bpp", "nic enc", "base enc", "ratio", "nic tgt", "ratio", "nic dec", "base dec",
               "ratio", "enc+dec")  # fmt: skip
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"\n{threads} thread{'s' if threads > 1 else ''}")
        print(f"{'image':14}{'size':>10}" + "".join(f"{c:>9}" for c in columns))
        rows = []
        for name, image in images:
            t = end_to_end(model, base, image, args)
            row = [
                t["bpp"],
                t["nic enc"],
                t["base enc"],
                t["nic enc"] / t["base enc"],
                t["nic target"],
                t["nic target"] / t["base enc"],
                t["nic dec"],
                t["base dec"],
                t["nic dec"] / t["base dec"],
                (t["nic enc"] + t["nic dec"]) / (t["base enc"] + t["base dec"]),
            ]
            rows.append(row)
            size = f"{image.shape[1]}x{image.shape[0]}"
            print(f"{name[:14]:14}{size:>10}" + "".join(f"{v:9.3f}" for v in row), flush=True)
        medians = [statistics.median(column) for column in zip(*rows, strict=True)]
        print(f"{'median':14}{'':>10}" + "".join(f"{v:9.3f}" for v in medians))
        if args.stages:
            per_image = [stages(model, base, image, args) for _, image in images]
            print("stages (median over images of each stage's median):")
            for stage in per_image[0]:
                seconds = statistics.median(s[stage] for s in per_image)
                print(f"  {stage:18}{seconds:9.3f}")


if __name__ == "__main__":
    main()
