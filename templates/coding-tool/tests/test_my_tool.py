"""The tool's own checks: switched off it is the anchor bit for bit; on, its streams name it and
decode with it."""

import numpy as np
from my_coding_tool import MyToolCodec
from skimage import data

from nic.bitstream import unpack
from nic.ctc_codec import NicReference

IMAGE = np.ascontiguousarray(data.astronaut()[:96, :128])


def test_switched_off_it_codes_the_anchors_bitstreams():
    assert MyToolCodec("off").encode(IMAGE, 3) == NicReference().encode(IMAGE, 3)


def test_switched_on_its_streams_name_it_and_decode_with_it():
    codec = MyToolCodec()
    stream = codec.encode(IMAGE, 3)
    assert unpack(stream)[0].tool == "my-tool"
    decoded = codec.decode(stream)
    assert decoded.shape == IMAGE.shape and decoded.dtype == np.uint8
    anchor = NicReference()
    assert not np.array_equal(decoded, anchor.decode(anchor.encode(IMAGE, 3)))
