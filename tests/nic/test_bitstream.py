import struct
import zlib

import pytest

from nic.bitstream import MAGIC, MAX_PIXELS, BitstreamError, Header, pack, unpack

HEADER = Header("model-a", bytes(range(8)), gain_code=1280, width=17, height=33)
SUBSTREAMS = [b"z" * 12, b"y" * 40]


def test_round_trip_keeps_every_field():
    header, substreams = unpack(pack(HEADER, SUBSTREAMS))
    assert header == HEADER
    assert substreams == SUBSTREAMS


def test_layout_matches_the_documented_offsets():
    data = pack(HEADER, SUBSTREAMS)
    assert data[:4] == MAGIC and data[4] == 2 and data[5] == len("model-a")
    assert data[6:13] == b"model-a"
    assert data[13:21] == bytes(range(8))
    assert struct.unpack(">HBII", data[21:32]) == (1280, 0, 17, 33)
    assert data[32] == 2
    assert struct.unpack(">II", data[33:41]) == (12, 40)
    (crc,) = struct.unpack(">I", data[41:45])
    assert crc == zlib.crc32(data[45:], zlib.crc32(data[:41]))
    assert len(data) == 45 + 52


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
    data[24:32] = struct.pack(">II", width, height)
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
    data[4] = 1  # nic 0.1's format, with a one-byte rate point: no longer read
    with pytest.raises(BitstreamError, match="version 1 is not supported"):
        unpack(bytes(data))


def test_pack_validates_its_input():
    with pytest.raises(ValueError):
        pack(Header("", bytes(8), 0, 1, 1), SUBSTREAMS)
    with pytest.raises(ValueError):
        pack(Header("m", bytes(7), 0, 1, 1), SUBSTREAMS)
    with pytest.raises(ValueError):
        pack(HEADER, [b""])
