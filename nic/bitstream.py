"""Bitstream container, versions 3, 4 and 5 (specified byte by byte in docs/bitstream.md).

Version 3 is the reference codec's stream; version 4 is the same with the name of the coding tool
that made it and the tool's own sub-streams (nic.extensions): a stream coded without a tool is
version 3, byte for byte. Version 5 is a tiled stream (nic.tiling): the tool's name (empty for
none) and its sub-streams, then the tile side and halos the decoder works with. An image that
fits one tile is never tiled, so its stream is version 3 or 4.

All integers are big-endian. A CRC-32 over the whole file (its own four bytes excluded) lets the
decoder refuse a corrupt or truncated stream before any entropy decoding, and every header field
is range-checked before it sizes an allocation.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

from nic.tiling import Tiling, latent_size

MAGIC = b"NICB"
VERSION = 3
"""Version 1 (nic 0.1) carried a whole rate point in one byte; version 2 (nic 0.2) the model's
name and fixed-width sizes; version 3 a zoo index, the coding network and varint sizes."""
TOOL_VERSION = 4
"""A version-3 stream plus the coding tool's name and its sub-streams."""
TILED_VERSION = 5
"""A tiled stream: the tool fields (an empty name for none), then the tiling."""
VERSIONS = (VERSION, TOOL_VERSION, TILED_VERSION)
MAX_TOOL_SUBSTREAMS = 4
MAX_TOOL_NAME = 32
GAIN_STEPS = 256
"""Gain codes per rate point: the rate position is gain_code / GAIN_STEPS."""
MAX_GAIN_CODE = 0xFFFF
MAX_NETWORK = 0xFF
COLOUR_RGB8 = 0
COLOUR_FORMATS = {COLOUR_RGB8: "8-bit RGB"}
HASH_BYTES = 4
"""The first bytes of the model file's sha256: they tell models apart, not attackers."""
UNREGISTERED = 0
"""The model index of a stream made with a model file that the zoo does not register."""
MAX_MODEL_INDEX = 0xFFFF
MAX_MODEL_ID = 64
MODEL_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
"""A model's name: letters, digits and ``._+-``, starting with a letter or digit (so that an
error message quoting it stays one printable line)."""
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 28
"""268 megapixels: the largest image the format can describe."""
DEFAULT_MAX_PIXELS = 1 << 26
"""67 megapixels, counted on the image padded to multiples of 64 (JPEG AI's largest test image,
8160 x 6120, is 50): the largest image coded unless the caller raises the budget (up to
MAX_PIXELS). The memory a stream needs is checked as well (nic.codec.decode_memory)."""
DEFAULT_MAX_MEMORY = 6 << 30
"""Bytes of working memory a decode may need (nic.codec.decode_memory) unless the caller raises
the budget: an untiled 4K UHD stream (written by nic before tiling) needs about 4.7 GB, a tiled
stream of 8160 x 6120 (JPEG AI's largest test image) about 2 GB."""
NUM_SUBSTREAMS = 2  # hyper-latent z, then latent y
MAX_VARINT_BYTES = 5
"""A varint holds at most 35 bits; every varint field is at most 2**32 - 1."""


class BitstreamError(ValueError):
    """The bytes are not a valid stream of this format (truncated, corrupt, or unsupported)."""


@dataclass(frozen=True)
class Header:
    """Everything the container says about a coded image."""

    model_index: int
    """The model's index in the zoo registry; UNREGISTERED (0) for a model file of one's own."""
    weights_hash: bytes
    network: int
    """The network that coded the latents: a masked model's rate point; 0 for a gain model."""
    gain_code: int
    width: int
    height: int
    colour_format: int = COLOUR_RGB8
    tool: str = ""
    """The coding tool that made the stream (nic.extensions.CodingTool.name); "" for none."""
    tool_substreams: int = 0
    """How many sub-streams of the tool's own follow the latents' (0 without a tool)."""
    tiling: Tiling | None = None
    """How the image was cut into tiles (nic.tiling); None: one tile, the whole image."""

    @property
    def version(self) -> int:
        if self.tiling:
            return TILED_VERSION
        return TOOL_VERSION if self.tool else VERSION

    @property
    def rate_position(self) -> float:
        """Position on the model's rate axis: rate point k is k; fractions lie between."""
        return self.gain_code / GAIN_STEPS

    def describe(self) -> dict[str, object]:
        return {
            "version": self.version,
            "model_index": self.model_index,
            "weights_hash": self.weights_hash.hex(),
            "network": self.network,
            "gain_code": self.gain_code,
            "rate_position": self.rate_position,
            "width": self.width,
            "height": self.height,
            "colour_format": COLOUR_FORMATS.get(self.colour_format, str(self.colour_format)),
            **({"tool": self.tool, "tool_substreams": self.tool_substreams} if self.tool else {}),
            **({"tiling": self.tiling.describe()} if self.tiling else {}),
        }


def check_dimensions(width: int, height: int) -> None:
    """Raise BitstreamError unless a stream can describe a width x height image."""
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise BitstreamError(f"image size {width}x{height} outside 1..{MAX_SIDE} per side")
    if width * height > MAX_PIXELS:
        raise BitstreamError(f"image of {width * height} pixels exceeds {MAX_PIXELS}")


def check_tool_name(name: str) -> None:
    """Raise ValueError unless `name` can name a coding tool in a stream: 1..MAX_TOOL_NAME
    characters of MODEL_ID_PATTERN."""
    if not 1 <= len(name) <= MAX_TOOL_NAME or not MODEL_ID_PATTERN.fullmatch(name):
        raise ValueError(
            f"coding tool name {name!r} must be 1..{MAX_TOOL_NAME} characters of letters, digits "
            "and ._+- starting with a letter or digit"
        )


def check_model_id(model_id: str) -> None:
    """Raise ValueError unless `model_id` is a valid model name (MODEL_ID_PATTERN)."""
    if not 1 <= len(model_id) <= MAX_MODEL_ID or not MODEL_ID_PATTERN.fullmatch(model_id):
        raise ValueError(
            f"model id {model_id!r} must be 1..{MAX_MODEL_ID} characters of letters, digits "
            "and ._+- starting with a letter or digit"
        )


def varint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits per byte, least significant group first, high bit = more."""
    if not 0 <= value < 1 << 32:
        raise ValueError(f"varint field {value} outside 0..2**32 - 1")
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def pack(header: Header, substreams: list[bytes]) -> bytes:
    """Serialize a header and its entropy-coded sub-streams into one file."""
    if len(header.weights_hash) != HASH_BYTES:
        raise ValueError(f"weights hash must be {HASH_BYTES} bytes")
    if not 0 <= header.model_index <= MAX_MODEL_INDEX:
        raise ValueError(f"model index must be 0..{MAX_MODEL_INDEX}")
    if not 0 <= header.network <= MAX_NETWORK:
        raise ValueError(f"network must be 0..{MAX_NETWORK}")
    if not 0 <= header.gain_code <= MAX_GAIN_CODE:
        raise ValueError(f"gain code must be 0..{MAX_GAIN_CODE}")
    if header.tool:
        check_tool_name(header.tool)
        if not 0 <= header.tool_substreams <= MAX_TOOL_SUBSTREAMS:
            raise ValueError(f"a coding tool has 0..{MAX_TOOL_SUBSTREAMS} sub-streams")
    elif header.tool_substreams:
        raise ValueError("sub-streams of a coding tool need the tool's name")
    if len(substreams) != NUM_SUBSTREAMS + header.tool_substreams:
        raise ValueError(f"expected {NUM_SUBSTREAMS + header.tool_substreams} sub-streams")
    if any(len(s) % 4 for s in substreams):
        raise ValueError("every sub-stream is a whole number of 32-bit words")
    check_dimensions(header.width, header.height)
    tool = (
        [varint(len(header.tool)), header.tool.encode("ascii"), varint(header.tool_substreams)]
        if header.tool
        else [varint(0)]
        if header.tiling
        else []
    )
    tiling = (
        [varint(v) for v in (t.tile, t.synthesis_halo, t.entropy_halo)]
        if (t := header.tiling)
        else []
    )
    body = b"".join(
        [
            MAGIC,
            struct.pack(">B", header.version),
            varint(header.model_index),
            header.weights_hash,
            struct.pack(">BHB", header.network, header.gain_code, header.colour_format),
            varint(header.width),
            varint(header.height),
            *tool,
            *tiling,
            *(varint(len(s)) for s in substreams),
        ]
    )
    payload = b"".join(substreams)
    crc = zlib.crc32(payload, zlib.crc32(body))
    return body + struct.pack(">I", crc) + payload


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise BitstreamError(f"truncated stream: {what} ends past byte {len(self.data)}")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def varint(self, what: str) -> int:
        """A canonical varint (shortest form) of at most 32 bits."""
        value = 0
        for i in range(MAX_VARINT_BYTES):
            (byte,) = self.take(1, what)
            value |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                if (i and byte == 0) or value >= 1 << 32:
                    raise BitstreamError(f"{what}: not a canonical varint of at most 32 bits")
                return value
        raise BitstreamError(f"{what}: varint longer than {MAX_VARINT_BYTES} bytes")


def unpack(data: bytes) -> tuple[Header, list[bytes]]:
    """Parse and verify a whole file; raises BitstreamError with a one-line reason."""
    r = _Reader(bytes(data))
    if r.take(4, "magic") != MAGIC:
        raise BitstreamError("not a nic bitstream (bad magic bytes)")
    (version,) = r.take(1, "version")
    if version not in VERSIONS:
        raise BitstreamError(
            f"bitstream version {version} is not supported (this nic reads versions "
            f"{', '.join(map(str, VERSIONS))}; version 2 streams came from nic 0.2: encode the "
            "image again)"
        )
    model_index = r.varint("model index")
    if model_index > MAX_MODEL_INDEX:
        raise BitstreamError(f"model index {model_index} outside 0..{MAX_MODEL_INDEX}")
    weights_hash = r.take(HASH_BYTES, "weights hash")
    network, gain_code, colour = struct.unpack(">BHB", r.take(4, "rate fields"))
    if colour not in COLOUR_FORMATS:
        raise BitstreamError(f"unknown colour format {colour}")
    width, height = r.varint("width"), r.varint("height")
    check_dimensions(width, height)
    tool, tool_substreams = _read_tool(r, version) if version != VERSION else ("", 0)
    tiling = _read_tiling(r) if version == TILED_VERSION else None
    if tiling and tiling.fits_one_tile(*latent_size(width, height)):
        raise BitstreamError(
            f"a {width}x{height} image fits one tile of {tiling.tile} latents: its stream is "
            "never tiled"
        )
    lengths = [r.varint("sub-stream length") for _ in range(NUM_SUBSTREAMS + tool_substreams)]
    if any(n % 4 for n in lengths):
        raise BitstreamError(f"sub-stream lengths {lengths} are not multiples of 4 bytes")
    (crc,) = struct.unpack(">I", r.take(4, "CRC-32"))
    body_end = r.pos - 4
    if sum(lengths) != len(r.data) - r.pos:
        raise BitstreamError(
            f"truncated or padded stream: header announces {sum(lengths)} payload bytes, "
            f"file has {len(r.data) - r.pos}"
        )
    payload = r.data[r.pos :]
    if zlib.crc32(payload, zlib.crc32(r.data[:body_end])) != crc:
        raise BitstreamError("corrupt stream: CRC-32 mismatch")
    substreams, start = [], 0
    for n in lengths:
        substreams.append(payload[start : start + n])
        start += n
    header = Header(
        model_index,
        weights_hash,
        network,
        gain_code,
        width,
        height,
        colour,
        tool,
        tool_substreams,
        tiling,
    )
    return header, substreams


def _read_tool(r: _Reader, version: int) -> tuple[str, int]:
    """The coding tool's name and sub-stream count (a tiled stream's name may be empty: none)."""
    size = r.varint("coding tool name length")
    if version == TILED_VERSION and size == 0:
        return "", 0
    if not 1 <= size <= MAX_TOOL_NAME:
        raise BitstreamError(f"coding tool name of {size} bytes outside 1..{MAX_TOOL_NAME}")
    tool = r.take(size, "coding tool name").decode("ascii", errors="replace")
    if not MODEL_ID_PATTERN.fullmatch(tool):
        raise BitstreamError("coding tool name is not letters, digits and ._+-")
    tool_substreams = r.varint("coding tool sub-stream count")
    if tool_substreams > MAX_TOOL_SUBSTREAMS:
        raise BitstreamError(
            f"{tool_substreams} coding tool sub-streams, at most {MAX_TOOL_SUBSTREAMS}"
        )
    return tool, tool_substreams


def _read_tiling(r: _Reader) -> Tiling:
    """A tiled stream's tile side and halos, each in its range (nic.tiling)."""
    tile, synthesis_halo, entropy_halo = (
        r.varint(f"tiling {what}") for what in ("tile", "synthesis halo", "entropy halo")
    )
    try:
        return Tiling(tile, synthesis_halo, entropy_halo)
    except ValueError as e:
        raise BitstreamError(f"tiling: {e}") from None
