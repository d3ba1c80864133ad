"""Encoding images to nic bitstreams and decoding them back.

encode: pad to a multiple of 64 (edge replication), analysis transform with the rate point's gain,
hyper-analysis, rounding, hyper-synthesis for the Gaussian parameters, then the hyper-latent z and
the latent residual round(y - mean) are range-coded with integer CDF tables. decode mirrors it and
crops the padding away.

decode trusts nothing in a stream: the header may only name a registered zoo model (a model file
is used only when the caller passes it), the image size must fit a pixel budget before anything
is allocated, the sub-streams must be long enough for their symbols before any is decoded, and
every sub-stream must be exactly what the encoder writes for its symbols. Every refusal is a
BitstreamError.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from nic import zoo
from nic.bitstream import (
    DEFAULT_MAX_PIXELS,
    GAIN_STEPS,
    BitstreamError,
    Header,
    check_dimensions,
    pack,
    unpack,
)
from nic.entropy import (
    EntropyDecodingError,
    check_size,
    decode_symbols,
    encode_symbols,
    gaussian_likelihood,
)
from nic.image_io import check_rgb8
from nic.model_file import CodecModel, ModelHashError, RateNetwork
from nic.models import DOWNSAMPLING, MeanScaleHyperprior
from nic.models.integer_synthesis import IntegerOverflowError


class ModelMismatchError(BitstreamError):
    """The stream names a model that is not registered, or was made with another model than the
    one asked to decode it."""


class PixelBudgetError(ValueError):
    """An image larger than the pixel budget that the caller allowed."""


def coded_pixels(width: int, height: int) -> int:
    """Pixels the transforms work on: the image padded to multiples of 64 on both sides."""
    return -(-width // DOWNSAMPLING) * -(-height // DOWNSAMPLING) * DOWNSAMPLING**2


def check_pixel_budget(width: int, height: int, max_pixels: int | None) -> None:
    """Raise PixelBudgetError when the coded (padded) area of a width x height image exceeds
    max_pixels (None: no budget). Memory follows the padded area: a 1 x 65536 image is coded
    as 64 x 65536."""
    if max_pixels is not None and not isinstance(max_pixels, int):
        raise TypeError(f"max_pixels must be an int or None, not {type(max_pixels).__name__}")
    if max_pixels is not None and coded_pixels(width, height) > max_pixels:
        raise PixelBudgetError(
            f"image of {width}x{height} pixels, coded as {coded_pixels(width, height):,} pixels "
            f"(padded to multiples of {DOWNSAMPLING}), exceeds the budget of {max_pixels:,} "
            "pixels (raise it with --max-pixels)"
        )


@dataclass
class Latents:
    """Everything that crosses the channel, as integers, plus what both sides derive from it."""

    z: np.ndarray  # int64 (1, N, h, w): quantized hyper-latent
    y: np.ndarray  # int64 (1, M, H, W): round(latent - mean), clamped to its table
    mean: torch.Tensor  # float64 (1, M, H, W) on the model's device, from z by the integer path
    y_index: np.ndarray  # int64 (1, M, H, W): CDF table of each latent, derived from z


def _z_indexes(shape: tuple[int, ...]) -> np.ndarray:
    """The hyper-latent's table is its channel."""
    channels = np.arange(shape[1], dtype=np.int64)[None, :, None, None]
    return np.broadcast_to(channels, shape)


def padded_tensor(image: np.ndarray) -> torch.Tensor:
    """(1, 3, H', W') in [0, 1], padded by edge replication to a multiple of 64."""
    h, w = image.shape[:2]
    x = torch.tensor(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 255.0
    ph, pw = -h % DOWNSAMPLING, -w % DOWNSAMPLING
    return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x


def gain_code(model: CodecModel, rate: float) -> int:
    """The bitstream's gain code for a rate position (rate point k is k; model.max_rate_position
    is the highest)."""
    last = model.max_rate_position
    if not 0 <= rate <= last:
        raise ValueError(f"rate {rate} outside 0..{last:g} for {model.name}")
    return round(rate * GAIN_STEPS)


def _entropy_parameters(network: RateNetwork, z: np.ndarray) -> tuple[torch.Tensor, np.ndarray]:
    """Mean and table index of every latent, through the integer path (bit-exact anywhere)."""
    mean, index = network.hyper_synthesis(z, network.net.device)
    return mean, index.cpu().numpy()


@torch.inference_mode()
def analyse(model: CodecModel, image: np.ndarray, rate: float) -> Latents:
    """The encoder's side up to the symbols: quantized latents and their tables."""
    check_rgb8(image)
    code = gain_code(model, rate)
    return quantize(model, analysis(model, image, code), code)


def analysis(model: CodecModel, image: np.ndarray, code: int) -> torch.Tensor:
    """The analysis transform's output for the network that codes `code` (before the gain)."""
    net = model.rate_network(code).net
    return net.g_a(padded_tensor(image).to(model.device)).float()


def quantize(model: CodecModel, g_a_out: torch.Tensor, code: int) -> Latents:
    """Latents at a gain code from its network's analysis output (run it once, try codes)."""
    network = model.rate_network(code)
    gain, _ = network.net.gains(network.position)
    y = g_a_out * gain
    z_float = network.net.h_a(y)
    z_index = _z_indexes(tuple(z_float.shape))
    z = network.z_tables.clamp(torch.round(z_float).cpu().numpy().astype(np.int64), z_index)
    mean, y_index = _entropy_parameters(network, z)
    residual = torch.round(y - mean).cpu().numpy().astype(np.int64)
    return Latents(z, model.y_tables.clamp(residual, y_index), mean, y_index)


@torch.inference_mode()
def reconstruct(model: CodecModel, latents: Latents, rate: float, height: int, width: int):
    """Decoder's synthesis from the latents: uint8 (height, width, 3)."""
    network = model.rate_network(gain_code(model, rate))
    y_hat = (torch.from_numpy(latents.y).to(latents.mean.device) + latents.mean).float()
    x_hat = network.net.synthesize(y_hat, network.position)[0, :, :height, :width]
    pixels = torch.round(x_hat.clamp(0, 1) * 255).to(torch.uint8)
    return pixels.permute(1, 2, 0).contiguous().cpu().numpy()


def pack_stream(model: CodecModel, latents: Latents, code: int, width: int, height: int) -> bytes:
    """Entropy-code the latents and wrap them in the container."""
    z_tables = model.rate_network(code).z_tables
    z_stream = encode_symbols(latents.z, _z_indexes(latents.z.shape), z_tables)
    y_stream = encode_symbols(latents.y, latents.y_index, model.y_tables)
    return pack(Header(model.name, model.weights_hash, code, width, height), [z_stream, y_stream])


def encode(
    image: np.ndarray,
    model: CodecModel | str | None = None,
    rate: float = 3,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> bytes:
    """Code uint8 (H, W, 3) pixels into a complete nic file at a rate position.

    Rate point k is position k; a fractional position interpolates the gains of its two
    neighbours and is quantized to 1/256 of a rate point (the gain code in the header).
    Raises ImageFormatError for other arrays, BitstreamError for a size no stream can describe,
    PixelBudgetError above max_pixels, ValueError for a rate outside the model's range.
    """
    check_rgb8(image)
    height, width = image.shape[:2]
    check_dimensions(width, height)  # before the transforms, which pack() would check after
    check_pixel_budget(width, height, max_pixels)
    model = model if isinstance(model, CodecModel) else zoo.load(model)
    latents = analyse(model, image, rate)
    return pack_stream(model, latents, gain_code(model, rate), image.shape[1], image.shape[0])


def resolve_model(header: Header, model: CodecModel | str | None = None) -> CodecModel:
    """The model a stream needs: the caller's (a CodecModel, zoo name or model file) if it
    matches the header, else the registered zoo model the header names; the header's model id
    is never used as a path. Raises ModelMismatchError (a BitstreamError)."""
    if model is None:
        try:
            model = zoo.load_registered(header.model_id)
        except zoo.UnknownModelError:
            raise ModelMismatchError(
                f"stream names model {header.model_id!r}, which is not in the zoo; "
                "decode it with its model file (--model FILE)"
            ) from None
    elif not isinstance(model, CodecModel):
        try:
            model = zoo.load(model, weights_hash=header.weights_hash)
        except ModelHashError as e:  # refused from its hash, before it was unpickled
            raise ModelMismatchError(f"stream was made with another model: {e}") from None
    if model.name != header.model_id or model.weights_hash != header.weights_hash:
        raise ModelMismatchError(
            f"stream was made with model {header.model_id} (weights {header.weights_hash.hex()}), "
            f"not with {model.name} (weights {model.weights_hash.hex()})"
        )
    if header.rate_position > model.max_rate_position:
        raise BitstreamError(
            f"rate position {header.rate_position:g} beyond {model.name}'s last rate point"
        )
    return model


@torch.inference_mode()
def decode_latents(
    data: bytes,
    model: CodecModel | str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
):
    """Parse a stream and entropy-decode its latents: (header, model, latents).

    Raises BitstreamError for anything but a stream the encoder wrote (PixelBudgetError, a
    ValueError, when the header's size exceeds max_pixels), before allocating for it.
    """
    header, (z_stream, y_stream) = unpack(data)
    try:
        check_pixel_budget(header.width, header.height, max_pixels)
    except PixelBudgetError as e:
        raise BitstreamError(str(e)) from None
    model = resolve_model(header, model)
    h = -(-header.height // DOWNSAMPLING)
    w = -(-header.width // DOWNSAMPLING)
    config = model.net.config
    z_shape = (1, config.N, h, w)
    network = model.rate_network(header.gain_code)
    try:
        # Both sizes first: an impossible stream is refused before any decoding work.
        y_count = config.M * (4 * h) * (4 * w)
        check_size(len(y_stream), y_count * model.y_tables.min_symbol_bits.min(), "latent (y)")
        z = decode_symbols(z_stream, _z_indexes(z_shape), network.z_tables, "hyper-latent (z)")
        mean, y_index = _entropy_parameters(network, z)
        y = decode_symbols(y_stream, y_index, model.y_tables, "latent (y)")
    except (EntropyDecodingError, IntegerOverflowError) as e:
        raise BitstreamError(str(e)) from None
    return header, model, Latents(z, y, mean, y_index)


def decode(
    data: bytes,
    model: CodecModel | str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Decode a complete nic file to uint8 (H, W, 3), (H, W) from its header.

    model: None decodes with the registered zoo model the header names; a CodecModel, zoo name
    or model file path is used instead and must be the one the stream names (name and weights
    hash). max_pixels: the largest width x height decoded (None: no budget). Raises
    BitstreamError (ModelMismatchError for the model) for every stream the encoder did not
    write; ModelFileError when the caller's model file cannot be read.
    """
    header, model, latents = decode_latents(data, model, max_pixels)
    return reconstruct(model, latents, header.rate_position, header.height, header.width)


def likelihood_bits(
    net: MeanScaleHyperprior, residual: torch.Tensor, scale: torch.Tensor, z: torch.Tensor
) -> float:
    """-log2 of the network's float likelihoods of a quantized latent residual (under `scale`)
    and hyper-latent: the rate the model was trained to predict, without entropy coding."""
    y_bits = -torch.log2(gaussian_likelihood(residual, scale)).sum()
    z_bits = -torch.log2(net.hyper_prior.likelihood(z)).sum()
    return float(y_bits + z_bits)


def float_estimate(net: MeanScaleHyperprior, y: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(estimated bits, dequantized latent) of a gain-scaled latent through the float network
    alone: rounding, h_a, h_s and likelihood_bits, no integer path and no entropy coding."""
    z = torch.round(net.h_a(y))
    mean, scale = net.entropy_parameters(z)
    residual = torch.round(y - mean)
    return likelihood_bits(net, residual, scale, z), residual + mean


@torch.inference_mode()
def estimated_bits(model: CodecModel, image: np.ndarray, rate: float) -> float:
    """The model's own rate for the quantized latents: -log2 of its float likelihoods."""
    latents = analyse(model, image, rate)
    net = model.rate_network(gain_code(model, rate)).net
    z = torch.from_numpy(latents.z).to(model.device, torch.float32)
    _, scale = net.entropy_parameters(z)
    return likelihood_bits(net, torch.from_numpy(latents.y).to(z), scale, z)
