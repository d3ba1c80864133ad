"""Bitstream container, version 2 (specified byte by byte in docs/bitstream.md).

All integers are big-endian. A CRC-32 over the whole file (its own four bytes excluded) lets the
decoder refuse a corrupt or truncated stream before any entropy decoding, and every header field
is range-checked before it sizes an allocation.
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass

MAGIC = b"NICB"
VERSION = 2
"""Version 1 (nic 0.1) carried a whole rate point in one byte; version 2 carries a gain code."""
GAIN_STEPS = 256
"""Gain codes per rate point: the rate position is gain_code / GAIN_STEPS."""
MAX_GAIN_CODE = 0xFFFF
COLOUR_RGB8 = 0
COLOUR_FORMATS = {COLOUR_RGB8: "8-bit RGB"}
HASH_BYTES = 8
MAX_MODEL_ID = 64
MODEL_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
"""A model id is a zoo name: letters, digits and ``._+-``, starting with a letter or digit (so a
header can never name a path, and an error message quoting it stays one printable line)."""
MAX_SIDE = 1 << 16
MAX_PIXELS = 1 << 25
"""33.5 megapixels (8K UHD is 33.2): the largest image the format can describe."""
DEFAULT_MAX_PIXELS = 1 << 23
"""8.4 megapixels, counted on the image padded to multiples of 64 (4K UHD, 3840 x 2160, is
8.36): the largest image coded unless the caller raises the budget (up to MAX_PIXELS). Coding
takes about 560 bytes of memory per pixel (docs/codec.md), about 5 GB at this default."""
NUM_SUBSTREAMS = 2  # hyper-latent z, then latent y


class BitstreamError(ValueError):
    """The bytes are not a valid stream of this format (truncated, corrupt, or unsupported)."""


@dataclass(frozen=True)
class Header:
    """Everything the container says about a coded image."""

    model_id: str
    weights_hash: bytes
    gain_code: int
    width: int
    height: int
    colour_format: int = COLOUR_RGB8
    version: int = VERSION

    @property
    def rate_position(self) -> float:
        """Position on the model's rate axis: rate point k is k; fractions lie between."""
        return self.gain_code / GAIN_STEPS

    def describe(self) -> dict[str, object]:
        return {
            "version": self.version,
            "model": self.model_id,
            "weights_hash": self.weights_hash.hex(),
            "gain_code": self.gain_code,
            "rate_position": self.rate_position,
            "width": self.width,
            "height": self.height,
            "colour_format": COLOUR_FORMATS.get(self.colour_format, str(self.colour_format)),
        }


def check_dimensions(width: int, height: int) -> None:
    """Raise BitstreamError unless a stream can describe a width x height image."""
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        raise BitstreamError(f"image size {width}x{height} outside 1..{MAX_SIDE} per side")
    if width * height > MAX_PIXELS:
        raise BitstreamError(f"image of {width * height} pixels exceeds {MAX_PIXELS}")


def check_model_id(model_id: str) -> None:
    """Raise ValueError unless `model_id` can be carried in a header (MODEL_ID_PATTERN)."""
    if not 1 <= len(model_id) <= MAX_MODEL_ID or not MODEL_ID_PATTERN.fullmatch(model_id):
        raise ValueError(
            f"model id {model_id!r} must be 1..{MAX_MODEL_ID} characters of letters, digits "
            "and ._+- starting with a letter or digit"
        )


def pack(header: Header, substreams: list[bytes]) -> bytes:
    """Serialize a header and its entropy-coded sub-streams into one file."""
    check_model_id(header.model_id)
    model = header.model_id.encode("ascii")
    if len(header.weights_hash) != HASH_BYTES:
        raise ValueError(f"weights hash must be {HASH_BYTES} bytes")
    if not 0 <= header.gain_code <= MAX_GAIN_CODE:
        raise ValueError(f"gain code must be 0..{MAX_GAIN_CODE}")
    if len(substreams) != NUM_SUBSTREAMS:
        raise ValueError(f"expected {NUM_SUBSTREAMS} sub-streams")
    check_dimensions(header.width, header.height)
    body = b"".join(
        [
            MAGIC,
            struct.pack(">BB", VERSION, len(model)),
            model,
            header.weights_hash,
            struct.pack(
                ">HBII", header.gain_code, header.colour_format, header.width, header.height
            ),
            struct.pack(">B", len(substreams)),
            *(struct.pack(">I", len(s)) for s in substreams),
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


def unpack(data: bytes) -> tuple[Header, list[bytes]]:
    """Parse and verify a whole file; raises BitstreamError with a one-line reason."""
    r = _Reader(bytes(data))
    if r.take(4, "magic") != MAGIC:
        raise BitstreamError("not a nic bitstream (bad magic bytes)")
    version, id_len = struct.unpack(">BB", r.take(2, "version"))
    if version != VERSION:
        raise BitstreamError(f"bitstream version {version} is not supported (this is {VERSION})")
    if not 1 <= id_len <= MAX_MODEL_ID:
        raise BitstreamError(f"model id length {id_len} outside 1..{MAX_MODEL_ID}")
    model_id = r.take(id_len, "model id").decode("latin-1")
    if not MODEL_ID_PATTERN.fullmatch(model_id):
        raise BitstreamError("model id holds characters other than letters, digits and ._+-")
    weights_hash = r.take(HASH_BYTES, "weights hash")
    gain_code, colour, width, height = struct.unpack(">HBII", r.take(11, "image fields"))
    if colour not in COLOUR_FORMATS:
        raise BitstreamError(f"unknown colour format {colour}")
    check_dimensions(width, height)
    (count,) = struct.unpack(">B", r.take(1, "sub-stream count"))
    if count != NUM_SUBSTREAMS:
        raise BitstreamError(f"expected {NUM_SUBSTREAMS} sub-streams, header says {count}")
    lengths = [struct.unpack(">I", r.take(4, "sub-stream length"))[0] for _ in range(count)]
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
    header = Header(model_id, weights_hash, gain_code, width, height, colour, version)
    return header, substreams
