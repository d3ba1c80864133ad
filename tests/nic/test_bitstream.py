import struct
import zlib

import pytest

from nic.bitstream import (
    MAGIC,
    MAX_PIXELS,
    VERSION,
    BitstreamError,
    Header,
    pack,
    unpack,
    varint,
)

HEADER = Header(2, bytes(range(4)), network=5, gain_code=1280, width=17, height=300)
SUBSTREAMS = [b"z" * 12, b"y" * 200]


def test_round_trip_keeps_every_field():
    header, substreams = unpack(pack(HEADER, SUBSTREAMS))
    assert header == HEADER
    assert substreams == SUBSTREAMS


def test_layout_matches_the_documented_offsets():
    data = pack(HEADER, SUBSTREAMS)
    assert data[:4] == MAGIC and data[4] == VERSION == 3
    assert data[5] == 2  # model index, one varint byte
    assert data[6:10] == bytes(range(4))
    assert struct.unpack(">BHB", data[10:14]) == (5, 1280, 0)
    assert data[14] == 17  # width: one varint byte
    assert data[15:17] == bytes([300 & 0x7F | 0x80, 300 >> 7])  # height: two
    assert data[17] == 12 and data[18:20] == bytes([200 & 0x7F | 0x80, 200 >> 7])
    (crc,) = struct.unpack(">I", data[20:24])
    assert crc == zlib.crc32(data[24:], zlib.crc32(data[:20]))
    assert len(data) == 24 + 212


def test_kodak_header_is_at_most_26_bytes():
    kodak = Header(2, bytes(4), network=0, gain_code=0, width=768, height=512)
    assert len(pack(kodak, [b"", b"\0" * 2948])) <= 26 + 2948


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16383, 16384, (1 << 32) - 1])
def test_varint_round_trips(value):
    data = pack(Header(value & 0xFFFF, bytes(4), 0, 0, 1, 1), [b"", b""])
    assert unpack(data)[0].model_index == value & 0xFFFF
    assert len(varint(value)) == max(1, -(-value.bit_length() // 7))


def test_non_canonical_or_oversized_varints_are_refused():
    good = pack(Header(1, bytes(4), 0, 0, 17, 33), [b"", b""])
    body = bytearray(good[:-4])
    # width 17 written with a redundant continuation byte
    redundant = bytes(body[:14]) + bytes([17 | 0x80, 0]) + bytes(body[15:])
    crc = zlib.crc32(redundant)
    with pytest.raises(BitstreamError, match="canonical"):
        unpack(redundant + struct.pack(">I", crc))
    with pytest.raises(ValueError):
        varint(1 << 32)


def test_every_truncation_is_refused():
    data = pack(HEADER, SUBSTREAMS)
    for n in range(len(data)):
        with pytest.raises(BitstreamError):
            unpack(data[:n])


def test_every_single_byte_corruption_is_refused():
    data = pack(HEADER, SUBSTREAMS)
    for i in range(len(data)):
        corrupt = bytearray(data)
        corrupt[i] ^= 0x40
        with pytest.raises(BitstreamError):
            unpack(bytes(corrupt))


def test_trailing_bytes_are_refused():
    with pytest.raises(BitstreamError, match="padded"):
        unpack(pack(HEADER, SUBSTREAMS) + b"\0")


@pytest.mark.parametrize(("width", "height"), [(0, 5), (5, 0), (1 << 17, 1), (1 << 16, 1 << 16)])
def test_oversized_or_empty_image_fields_are_refused_before_anything_is_allocated(width, height):
    data = bytearray(pack(HEADER, SUBSTREAMS))
    data[14:17] = varint(width) + varint(height)  # the CRC is checked after the size
    with pytest.raises(BitstreamError, match="outside|exceeds"):
        unpack(bytes(data))
    assert MAX_PIXELS < (1 << 16) ** 2


def test_unknown_version_and_magic():
    data = bytearray(pack(HEADER, SUBSTREAMS))
    data[4] = 9
    with pytest.raises(BitstreamError, match="version 9"):
        unpack(bytes(data))
    with pytest.raises(BitstreamError, match="magic"):
        unpack(b"\x89PNG" + bytes(data[4:]))
    data[4] = 2  # nic 0.2's format, with the model's name: refused, saying what to do
    with pytest.raises(BitstreamError, match="version 2 is not supported.*encode the image again"):
        unpack(bytes(data))


def test_pack_validates_its_input():
    with pytest.raises(ValueError):
        pack(Header(-1, bytes(4), 0, 0, 1, 1), SUBSTREAMS)
    with pytest.raises(ValueError):
        pack(Header(1, bytes(8), 0, 0, 1, 1), SUBSTREAMS)
    with pytest.raises(ValueError):
        pack(Header(1, bytes(4), 256, 0, 1, 1), SUBSTREAMS)
    with pytest.raises(ValueError):
        pack(HEADER, [b""])
