"""Encoding images to nic bitstreams and decoding them back.

encode: pad to a multiple of 64 (edge replication), analysis transform with the rate point's gain,
hyper-analysis, rounding, hyper-synthesis for the Gaussian parameters, then the hyper-latent z and
the latent residual round(y - mean) are range-coded with integer CDF tables, step by step in the
order of the network's coding plan (one step for a hyperprior). decode mirrors it and
crops the padding away.

decode trusts nothing in a stream: the header may only name a registered zoo model by its index
(a model file is used only when the caller passes it), the image size must fit a pixel budget
before anything is allocated, the sub-streams must be long enough for their symbols before any
is decoded, and every sub-stream must be exactly what the encoder writes for the symbols it
decodes to (an altered sub-stream that happens to be that for other symbols decodes like any
valid one; docs/codec.md, "Exact payload"). Every refusal is a BitstreamError.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from nic import zoo
from nic.bitstream import (
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_PIXELS,
    GAIN_STEPS,
    UNREGISTERED,
    BitstreamError,
    Header,
    check_dimensions,
    pack,
    unpack,
)
from nic.entropy import (
    EntropyDecodingError,
    SymbolDecoder,
    SymbolEncoder,
    check_size,
    decode_symbols,
    encode_symbols,
    gaussian_likelihood,
)
from nic.extensions import REFERENCE, CodingTool, check_tool
from nic.image_io import check_rgb8
from nic.model_file import CodecModel, ModelHashError
from nic.models import DOWNSAMPLING, MeanScaleHyperprior
from nic.models.integer_synthesis import CodingPlan, IntegerOverflowError
from nic.tiling import (
    ANALYSIS_HALO,
    ENTROPY_HALO,
    HYPER_ANALYSIS_HALO,
    LATENT_STRIDE,
    TILE,
    Z_CELL,
    Region,
    Tiling,
    latent_size,
    pixel_window,
    tiling_for,
)

SYNTHESIS_THREADS: int | None = 1
"""Threads the synthesis transform runs on when the model is on a CPU, whatever torch's own
setting (restored after). Its float result depends on the thread count: PyTorch computes GDN's
1x1 convolution with another kernel on one thread than on several, and oneDNN splits a
transposed convolution's work by the thread count, which can change its rounding. With a fixed
count, one build on one kind of processor decodes a stream to the same pixels under any
torch.set_num_threads, OMP_NUM_THREADS or `ctc run -j` (docs/codec.md, "Determinism").
None runs it on torch's setting (the pixels then depend on the thread count)."""


class ModelMismatchError(BitstreamError):
    """The stream names a model that is not registered, or was made with another model than the
    one asked to decode it."""


class ToolMismatchError(BitstreamError):
    """The stream was coded with another coding tool (or none) than the one asked to decode it."""


class PixelBudgetError(ValueError):
    """An image larger than the pixel budget that the caller allowed."""


UNTILED_BYTES_PER_PIXEL = 560
"""Decoding an untiled stream, per pixel of the padded image (measured: 1024 x 1024)."""
TILED_BYTES_PER_PIXEL = 20
"""Coding tiled: the whole latent's arrays and the image, per padded pixel (measured: 13 to
decode 8160 x 6120)."""
WINDOW_BYTES_PER_PIXEL = 500
"""Coding tiled: the transforms of one tile, per pixel of the tile and its halo (measured:
about 490 for tiles of 1088 x 1088 pixels)."""


def working_memory(width: int, height: int, tiling: Tiling | None) -> int:
    """Bytes of working memory (beyond torch, the model and the stream) that coding a width x
    height image with a tiling takes, from the figures measured in docs/codec.md ("Tiles and
    memory"): whole, about UNTILED_BYTES_PER_PIXEL per padded pixel; tiled, the whole latent's
    arrays and one tile's transforms."""
    pixels = coded_pixels(width, height)
    if tiling is None:
        return UNTILED_BYTES_PER_PIXEL * pixels
    side = LATENT_STRIDE * (tiling.tile + 2 * tiling.synthesis_halo)
    return TILED_BYTES_PER_PIXEL * pixels + WINDOW_BYTES_PER_PIXEL * min(side * side, pixels)


def decode_memory(header: Header) -> int:
    """Bytes of working memory that decoding a stream needs, estimated from its header."""
    return working_memory(header.width, header.height, header.tiling)


def coding_memory(width: int, height: int, tile: int = TILE) -> int:
    """Bytes of working memory that encoding or decoding a width x height image takes with
    tiles of `tile` latents."""
    return working_memory(width, height, tiling_for(*latent_size(width, height), tile))


def check_memory_budget(header: Header, max_memory: int | None) -> None:
    """Raise BitstreamError when decoding the stream would need more than max_memory bytes
    (None: no budget)."""
    need = decode_memory(header)
    if max_memory is not None and need > max_memory:
        how = "tiled" if header.tiling else "untiled"
        raise BitstreamError(
            f"decoding this {how} {header.width}x{header.height} stream needs about "
            f"{need / 2**30:.3g} GiB of memory, over the budget of {max_memory / 2**30:.3g} GiB "
            "(raise it with --max-memory)"
        )


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
    """Everything that crosses the channel, as integers, plus what both sides derive from it.

    Shapes for an image whose padded size over 16 is H x W latents (h, w: over 64)."""

    network: int  # the network that coded them (RateNetwork.index)
    z: np.ndarray  # int64 (1, N, h, w): quantized hyper-latent
    y: np.ndarray  # int32 (1, M, H, W): round(latent - mean), every value (nothing clamped)
    y_hat: torch.Tensor  # float32 (1, M, H, W) on the model's device: y + mean, the decoded latent
    y_index: np.ndarray  # int16 (1, M, H, W): CDF table of each latent, from z (and context)
    steps: list[list[np.ndarray | None]]
    """Per tile (one for an untiled stream), per coding step: bool (1, M, tile rows, tile
    columns), the tile's latents that step codes (None: all)."""
    tool_substreams: list[bytes] = field(default_factory=list)  # a coding tool's own sub-streams
    tiling: Tiling | None = None  # how the latent was cut into tiles (None: one tile)

    @classmethod
    def empty(
        cls,
        network: int,
        z: np.ndarray,
        shape: tuple[int, ...],
        device,
        tool_substreams: list[bytes],
        tiling: Tiling | None,
    ) -> Latents:
        """Latents of `shape` (1, M, H, W), all zero, that the tiles are then coded into."""
        return cls(
            network,
            z,
            np.zeros(shape, dtype=np.int32),
            torch.zeros(shape, dtype=torch.float32, device=device),
            np.zeros(shape, dtype=np.int16),
            [],
            list(tool_substreams),
            tiling,
        )

    def regions(self) -> list[Region]:
        """The tiles, in coding order (the whole latent when untiled)."""
        _, _, height, width = self.y.shape
        if self.tiling is None:
            return [Region(0, 0, height, width)]
        return self.tiling.regions(height, width)


def _z_indexes(shape: tuple[int, ...]) -> np.ndarray:
    """The hyper-latent's table is its channel."""
    channels = np.arange(shape[1], dtype=np.int64)[None, :, None, None]
    return np.broadcast_to(channels, shape)


def padded_tensor(image: np.ndarray) -> torch.Tensor:
    """(1, 3, H', W') in [0, 1], padded by edge replication to a multiple of 64."""
    height, width = latent_size(image.shape[1], image.shape[0])
    return pixel_window(image, Region(0, 0, height, width))


def gain_code(model: CodecModel, rate: float) -> int:
    """The bitstream's gain code for a rate position (rate point k is k; model.max_rate_position
    is the highest)."""
    last = model.max_rate_position
    if not 0 <= rate <= last:
        raise ValueError(f"rate {rate} outside 0..{last:g} for {model.name}")
    return round(rate * GAIN_STEPS)


def _selected(array: np.ndarray, where: np.ndarray | None) -> np.ndarray:
    return array if where is None else array[where]


@torch.inference_mode()
def analyse(
    model: CodecModel,
    image: np.ndarray,
    rate: float,
    network: int | None = None,
    tool: CodingTool | None = None,
    tile: int = TILE,
):
    """The encoder's side up to the symbols: quantized latents and their tables (Latents)."""
    check_rgb8(image)
    code = gain_code(model, rate)
    network = model.rate_network(code, network).index
    g_a_out = analysis(model, image, code, network, tool, tile)
    return quantize(model, g_a_out, code, network, tool, tile)


@torch.inference_mode()
def analysis(
    model: CodecModel,
    image: np.ndarray,
    code: int,
    network: int | None = None,
    tool: CodingTool | None = None,
    tile: int = TILE,
) -> torch.Tensor:
    """The analysis transform's output for the network that codes `code` (before the gain):
    float32 (1, M, H, W), tile by tile with a halo (nic.tiling) when the latent does not fit one
    tile of `tile` latents."""
    net = model.rate_network(code, network).net
    hooks = tool or REFERENCE
    size = latent_size(image.shape[1], image.shape[0])
    tiling = tiling_for(*size, tile)
    if tiling is None:
        return hooks.analysis(net, padded_tensor(image).to(model.device)).float()
    out = torch.empty((1, model.net.config.M, *size), device=model.device)
    for region in tiling.regions(*size):
        window = region.grown(ANALYSIS_HALO, *size)
        y = hooks.analysis(net, pixel_window(image, window).to(model.device)).float()
        region.of(out).copy_(region.within(window).of(y))
    return out


def _coded(where: torch.Tensor | None, mask: torch.Tensor | None) -> torch.Tensor | None:
    """Latents in both selections (None selects all): e.g. a step's own within a tool's map."""
    if mask is None:
        return where
    return mask if where is None else where & mask


def _overrides(hooks: CodingTool, name: str) -> bool:
    """Whether a tool replaces the reference's hook `name`."""
    return getattr(type(hooks), name) is not getattr(CodingTool, name)


def _entropy_window(
    path, z: np.ndarray, region: Region, tiling: Tiling | None, device
) -> tuple[Region, CodingPlan]:
    """The latent window whose entropy parameters a tile is coded with (the tile and
    tiling.entropy_halo hyper-latent cells around it), and its coding plan."""
    if tiling is None:
        return region, path.start(z, device)
    window = _z_window(region, tiling.entropy_halo, z)
    return window.scaled(Z_CELL), path.start(window.of(z), device)


def _z_window(region: Region, halo: int, z: np.ndarray | torch.Tensor) -> Region:
    """The hyper-latent cells of a tile of latents and `halo` cells around it, inside z."""
    _, _, h, w = z.shape
    return region.divided(Z_CELL).grown(halo, h, w)


def hyper_analysis(net, gained, height: int, width: int, tiling: Tiling | None) -> np.ndarray:
    """z = round(h_a(y)), int64 (1, N, height / 4, width / 4), tile by tile with a halo of
    HYPER_ANALYSIS_HALO latents when tiled. gained(region) gives the gained latents of a region
    (float64); z is the encoder's choice (the decoder reads it), so the float h_a may run in
    any pieces."""
    if tiling is None:
        whole = Region(0, 0, height, width)
        return torch.round(net.h_a(gained(whole).float())).cpu().numpy().astype(np.int64)
    z = np.empty((1, net.config.N, height // Z_CELL, width // Z_CELL), dtype=np.int64)
    for region in tiling.regions(height, width):
        window = region.grown(HYPER_ANALYSIS_HALO, height, width)
        z_window = torch.round(net.h_a(gained(window).float())).cpu().numpy()
        region.divided(Z_CELL).of(z)[...] = region.within(window).divided(Z_CELL).of(z_window)
    return z


def _check_residual(residual: torch.Tensor) -> None:
    if residual.numel() and float(residual.abs().max()) >= 2**31:
        raise ValueError("a latent residual of 2**31 or more: the image cannot be coded")


@torch.inference_mode()
def quantize(
    model: CodecModel,
    g_a_out: torch.Tensor,
    code: int,
    network: int | None = None,
    tool: CodingTool | None = None,
    tile: int = TILE,
) -> Latents:
    """Latents at a gain code from its network's analysis output (run it once, try codes).

    The latents are quantized tile by tile (one tile when the latent fits one of `tile`
    latents), and in each tile step by step in the order the decoder decodes them: each step's
    mean (and table) may depend on the latents the earlier steps quantized (a context model).
    A latent outside a tool's bit-allocation map is not coded: its residual is 0, its value the
    predicted mean. Raises ValueError for a residual of 2**31 or more.
    """
    hooks = tool or REFERENCE
    rate_network = model.rate_network(code, network)
    net = rate_network.net
    gain, _ = net.gains(rate_network.position)
    shape = tuple(g_a_out.shape)
    _, channels, height, width = shape
    tiling = tiling_for(height, width, tile)
    # The reference's refine and coded_latents need no full-size float64 copy of the latent.
    refined = None
    if _overrides(hooks, "refine") or _overrides(hooks, "coded_latents"):
        refined = hooks.refine(net, (g_a_out * gain).double())
    mask, tool_substreams = (None, [])
    if refined is not None:
        mask, tool_substreams = hooks.coded_latents(net, refined)
    if mask is not None and (tuple(mask.shape) != shape or mask.dtype != torch.bool):
        raise ValueError(
            f"{hooks.name}: coded_latents gave a {mask.dtype} {tuple(mask.shape)} map, not bool "
            f"{shape}"
        )

    def gained(region: Region) -> torch.Tensor:
        return region.of(refined) if refined is not None else (region.of(g_a_out) * gain).double()

    z = hyper_analysis(net, gained, height, width, tiling)
    latents = Latents.empty(rate_network.index, z, shape, g_a_out.device, tool_substreams, tiling)
    path = hooks.entropy_path(rate_network)
    for region in latents.regions():
        window, plan = _entropy_window(path, z, region, tiling, model.device)
        inner = region.within(window)
        coded = None if mask is None else region.of(mask)
        y = gained(region)
        context = window.of(latents.y_hat).double()  # what the steps read: earlier tiles too
        y_hat = inner.of(context)  # the tile's own, written step by step
        residual = torch.zeros_like(y)
        index = torch.zeros(y.shape, dtype=torch.int64, device=y.device)
        steps = []
        for step in range(plan.steps):
            mean, step_index, own = _tile_parameters(plan, step, context, inner)
            where = _coded(own, coded)
            step_residual = torch.round(y - mean)
            if where is None:
                residual, index = step_residual, step_index
            else:
                residual = torch.where(where, step_residual, residual)
                index = torch.where(where, step_index, index)
            decoded = residual + mean
            y_hat.copy_(decoded if own is None else torch.where(own, decoded, y_hat))
            steps.append(None if where is None else where.cpu().numpy())
        _check_residual(residual)
        region.of(latents.y)[...] = residual.cpu().numpy()
        region.of(latents.y_index)[...] = index.cpu().numpy()
        region.of(latents.y_hat).copy_(y_hat)
        latents.steps.append(steps)
    return latents


def _tile_parameters(
    plan: CodingPlan, step: int, context: torch.Tensor, inner: Region
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A step's (mean, index, own selection) on a tile, from its plan over the tile's window."""
    mean, index, own = plan.parameters(step, context)
    return inner.of(mean), inner.of(index), None if own is None else inner.of(own)


@contextmanager
def synthesis_threads(device: torch.device) -> Iterator[None]:
    """torch on SYNTHESIS_THREADS threads inside (on a CPU), its own setting restored after.

    torch.set_num_threads acts on the calling thread's OpenMP setting (and on the default of
    threads that start later), so concurrent decodes in several Python threads each keep their
    own count."""
    if SYNTHESIS_THREADS is None or torch.device(device).type != "cpu":
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(SYNTHESIS_THREADS)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _pixels(x_hat: torch.Tensor) -> np.ndarray:
    """uint8 (h, w, 3) from a synthesis output (3, h, w): clamped to [0, 1], rounded."""
    pixels = torch.round(x_hat.clamp(0, 1) * 255).to(torch.uint8)
    return pixels.permute(1, 2, 0).contiguous().cpu().numpy()


@torch.inference_mode()
def reconstruct(
    model: CodecModel,
    latents: Latents,
    rate: float,
    height: int,
    width: int,
    tool: CodingTool | None = None,
):
    """Decoder's synthesis from the latents: uint8 (height, width, 3), tile by tile with the
    stream's synthesis halo when tiled, on SYNTHESIS_THREADS threads on a CPU (the same pixels
    whatever torch's thread count)."""
    hooks = tool or REFERENCE
    network = model.rate_network(gain_code(model, rate), latents.network)
    y_hat = latents.y_hat
    _, _, rows, columns = y_hat.shape
    halo = latents.tiling.synthesis_halo if latents.tiling else 0
    out = np.empty((height, width, 3), dtype=np.uint8)
    for region in latents.regions():
        window = region.grown(halo, rows, columns)
        with synthesis_threads(y_hat.device):
            x_hat = hooks.synthesis(network.net, window.of(y_hat), network.position)
            x_hat = hooks.post_filter(x_hat)
        pixels = region.scaled(LATENT_STRIDE)
        kept = Region(pixels.top, pixels.left, min(pixels.bottom, height), min(pixels.right, width))
        if kept.height > 0 and kept.width > 0:  # not a tile of padding alone
            crop = kept.within(window.scaled(LATENT_STRIDE))
            out[kept.top : kept.bottom, kept.left : kept.right] = _pixels(crop.of(x_hat[0]))
    return out


def pack_stream(
    model: CodecModel,
    latents: Latents,
    code: int,
    width: int,
    height: int,
    tool: CodingTool | None = None,
) -> bytes:
    """Entropy-code the latents, tile by tile and in each tile step by step, and wrap them in
    the container (version 3; 4 with the tool's name and sub-streams; 5 when tiled)."""
    z_tables = model.rate_network(code, latents.network).z_tables
    z_stream = encode_symbols(latents.z, _z_indexes(latents.z.shape), z_tables)
    encoder = SymbolEncoder()
    for region, steps in zip(latents.regions(), latents.steps, strict=True):
        y, y_index = region.of(latents.y), region.of(latents.y_index)
        for where in steps:
            encoder.encode(_selected(y, where), _selected(y_index, where), model.y_tables)
    name = check_tool(tool).name if tool else ""
    side = latents.tool_substreams
    header = Header(
        zoo.index_of(model), model.weights_hash, latents.network, code, width, height,
        tool=name, tool_substreams=len(side), tiling=latents.tiling,
    )  # fmt: skip
    return pack(header, [z_stream, encoder.to_bytes(), *side])


def encode(
    image: np.ndarray,
    model: CodecModel | str | None = None,
    rate: float = 3,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    network: int | None = None,
    tool: CodingTool | None = None,
    tile: int = TILE,
) -> bytes:
    """Code uint8 (H, W, 3) pixels into a complete nic file at a rate position.

    Rate point k is position k; a fractional position interpolates the gains of its two
    neighbours and is quantized to 1/256 of a rate point (the gain code in the header). A masked
    model codes it with `network` (default: CodecModel.default_network). tool: a coding tool
    (nic.extensions) on top of the reference codec; None codes with the reference alone.
    tile: the tile side in latents (nic.tiling; 16 pixels each); an image whose latent fits one
    tile is coded whole. Raises ImageFormatError for other arrays, BitstreamError for a size no
    stream can describe, PixelBudgetError above max_pixels, ValueError for a rate outside the
    model's range, a network that cannot code it or a tile size outside nic.tiling's range.
    """
    check_rgb8(image)
    height, width = image.shape[:2]
    check_dimensions(width, height)  # before the transforms, which pack() would check after
    check_pixel_budget(width, height, max_pixels)
    Tiling(tile)  # a tile size a stream can name, before any work
    model = model if isinstance(model, CodecModel) else zoo.load(model)
    if tool:
        check_tool(tool)
    latents = analyse(model, image, rate, network, tool, tile)
    code = gain_code(model, rate)
    return pack_stream(model, latents, code, image.shape[1], image.shape[0], tool)


def resolve_model(header: Header, model: CodecModel | str | None = None) -> CodecModel:
    """The model a stream needs: the caller's (a CodecModel, zoo name or model file) if it
    matches the header, else the registered zoo model of the header's index; nothing in a
    header is ever used as a path. Raises ModelMismatchError (a BitstreamError)."""
    if model is None:
        if header.model_index == UNREGISTERED:
            raise ModelMismatchError(
                f"stream was made with a model file that is not in the zoo (weights "
                f"{header.weights_hash.hex()}); decode it with that file (--model FILE)"
            )
        try:
            model = zoo.load_index(header.model_index)
        except zoo.UnknownModelError as e:
            raise ModelMismatchError(f"stream names a model this nic does not have: {e}") from None
    elif not isinstance(model, CodecModel):
        try:
            model = zoo.load(model, weights_hash=header.weights_hash)
        except ModelHashError as e:  # refused from its hash, before it was unpickled
            raise ModelMismatchError(f"stream was made with another model: {e}") from None
    if model.weights_hash != header.weights_hash or header.model_index not in (
        UNREGISTERED,
        zoo.index_of(model),
    ):
        raise ModelMismatchError(
            f"stream was made with {_stream_model(header)}, not with {model.name} "
            f"(weights {model.weights_hash.hex()})"
        )
    if header.rate_position > model.max_rate_position:
        raise BitstreamError(
            f"rate position {header.rate_position:g} beyond {model.name}'s last rate point"
        )
    if header.network not in model.networks_for(header.gain_code):
        raise BitstreamError(
            f"network {header.network} cannot code rate position {header.rate_position:g} "
            f"of {model.name}"
        )
    return model


def _stream_model(header: Header) -> str:
    """The model a header names, in words."""
    where = (
        "a model file" if header.model_index == UNREGISTERED else f"zoo model #{header.model_index}"
    )
    return f"{where} (weights {header.weights_hash.hex()})"


@torch.inference_mode()
def decode_latents(
    data: bytes,
    model: CodecModel | str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    tool: CodingTool | None = None,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
):
    """Parse a stream and entropy-decode its latents: (header, model, latents).

    tool: the coding tool the stream names (none for a version-3 stream). Raises BitstreamError
    for anything but a stream the encoder wrote (PixelBudgetError, a ValueError, when the
    header's size exceeds max_pixels, or the decode would need more than max_memory bytes,
    decode_memory; ToolMismatchError for another tool), before allocating for it.
    """
    header, (z_stream, y_stream, *tool_substreams) = unpack(data)
    try:
        check_pixel_budget(header.width, header.height, max_pixels)
    except PixelBudgetError as e:
        raise BitstreamError(str(e)) from None
    check_memory_budget(header, max_memory)
    expected = tool.name if tool else ""
    if header.tool != expected:
        made = f"with coding tool {header.tool!r}" if header.tool else "by the reference codec"
        asked = f"with {expected!r}" if expected else "by the reference codec alone"
        how = (
            " (decode it with that tool: its ctc codec's decode, or nic.codec.decode(..., "
            "tool=...))"
            if header.tool
            else ""
        )
        raise ToolMismatchError(f"stream was coded {made}; it cannot be decoded {asked}{how}")
    hooks = tool or REFERENCE
    model = resolve_model(header, model)
    height, width = latent_size(header.width, header.height)
    config = model.net.config
    z_shape = (1, config.N, height // Z_CELL, width // Z_CELL)
    network = model.rate_network(header.gain_code, header.network)
    y_shape = (1, config.M, height, width)
    device = model.device
    try:
        mask = hooks.decode_coded_latents(tool_substreams, y_shape)
        if mask is not None:
            mask = mask.to(device)
            if mask.shape != y_shape or mask.dtype != torch.bool:
                raise BitstreamError(f"{header.tool}: its map is not bool {y_shape}")
        # Both sizes first: an impossible stream is refused before any decoding work.
        y_count = int(mask.sum()) if mask is not None else config.M * height * width
        y_least = y_count * model.y_tables.min_symbol_bits.min()
        check_size(len(y_stream), y_least, "latent (y)")
        z = decode_symbols(z_stream, _z_indexes(z_shape), network.z_tables, "hyper-latent (z)")
        latents = Latents.empty(network.index, z, y_shape, device, tool_substreams, header.tiling)
        decoder = SymbolDecoder(y_stream, y_least, "latent (y)")
        path = hooks.entropy_path(network)
        for region in latents.regions():
            _decode_tile(decoder, model, path, latents, region, mask)
        decoder.finish()
    except (EntropyDecodingError, IntegerOverflowError) as e:
        raise BitstreamError(str(e)) from None
    return header, model, latents


def _decode_tile(
    decoder: SymbolDecoder,
    model: CodecModel,
    path,
    latents: Latents,
    region: Region,
    mask: torch.Tensor | None,
) -> None:
    """Entropy-decode one tile's latents, step by step, into `latents` (the decoder's side of
    quantize's loop)."""
    device = latents.y_hat.device
    window, plan = _entropy_window(path, latents.z, region, latents.tiling, device)
    inner = region.within(window)
    shape = (1, latents.y.shape[1], region.height, region.width)
    coded = None if mask is None else region.of(mask)
    y = np.zeros(shape, dtype=np.int64)
    y_index = np.zeros(shape, dtype=np.int64)
    context = window.of(latents.y_hat).double()
    y_hat = inner.of(context)
    steps = []
    for step in range(plan.steps):
        mean, step_index, own = _tile_parameters(plan, step, context, inner)
        where = _coded(own, coded)
        index = step_index.cpu().numpy()
        where_np = None if where is None else where.cpu().numpy()
        values = decoder.decode(_selected(index, where_np), model.y_tables)
        if where_np is None:
            y, y_index = values.reshape(shape), index
        else:
            y[where_np], y_index[where_np] = values, index[where_np]
        decoded = torch.from_numpy(y).to(device, torch.float64) + mean  # mean where not coded
        y_hat.copy_(decoded if own is None else torch.where(own, decoded, y_hat))
        steps.append(where_np)
    region.of(latents.y)[...] = y
    region.of(latents.y_index)[...] = y_index
    region.of(latents.y_hat).copy_(y_hat)
    latents.steps.append(steps)


def decode(
    data: bytes,
    model: CodecModel | str | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    tool: CodingTool | None = None,
    max_memory: int | None = DEFAULT_MAX_MEMORY,
) -> np.ndarray:
    """Decode a complete nic file to uint8 (H, W, 3), (H, W) from its header.

    model: None decodes with the registered zoo model the header's index names; a CodecModel,
    zoo name or model file path is used instead and must be the one the stream names (weights
    hash, and zoo index when the stream has one). max_pixels: the largest width x height
    decoded (None: no budget). Raises BitstreamError (ModelMismatchError for the model) for
    every stream the encoder did not write; ModelFileError when the caller's model file cannot
    be read. tool: the coding tool (nic.extensions) the stream names; None for a stream of the
    reference codec alone. max_memory: the most working memory, in bytes, the decode may need
    (decode_memory; None: no budget).
    """
    header, model, latents = decode_latents(data, model, max_pixels, tool, max_memory)
    return reconstruct(model, latents, header.rate_position, header.height, header.width, tool)


@torch.inference_mode()
def latent_bits(net, g_a_out: torch.Tensor, gain: torch.Tensor, tile: int = TILE) -> float:
    """The model's own rate estimate of an analysis output (1, M, H, W) at a gain: -log2 of the
    float likelihoods of the rounded latents and hyper-latent (net.float_estimate, what rate
    control searches on), tile by tile when the latent does not fit one tile, so that its
    memory follows the tile. A context model (whose estimate reads neighbouring latents) is
    estimated whole."""
    _, _, height, width = g_a_out.shape
    tiling = tiling_for(height, width, tile)
    if tiling is None or type(net).float_estimate is not MeanScaleHyperprior.float_estimate:
        return net.float_estimate(g_a_out * gain)[0]

    def gained(region: Region) -> torch.Tensor:
        return region.of(g_a_out) * gain

    z = torch.from_numpy(hyper_analysis(net, gained, height, width, tiling)).to(g_a_out)
    bits = float(-torch.log2(net.hyper_prior.likelihood(z)).sum())
    for region in tiling.regions(height, width):
        window = _z_window(region, ENTROPY_HALO, z)
        mean, scale = net.entropy_parameters(window.of(z))
        inner = region.within(window.scaled(Z_CELL))
        residual = torch.round(gained(region) - inner.of(mean))
        bits += float(-torch.log2(gaussian_likelihood(residual, inner.of(scale))).sum())
    return bits


@torch.inference_mode()
def estimated_bits(model: CodecModel, image: np.ndarray, rate: float) -> float:
    """The model's own rate estimate at a rate position (latent_bits of the image's analysis)."""
    check_rgb8(image)
    code = gain_code(model, rate)
    network = model.rate_network(code)
    gain, _ = network.net.gains(network.position)
    return latent_bits(network.net, analysis(model, image, code), gain)
