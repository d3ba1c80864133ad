import json
import subprocess

import imageio_ffmpeg
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from ctc.metrics.colour import rgb_to_yuv
from ctc.metrics.vmaf import MIN_SIDE, vmaf


@pytest.fixture(scope="module")
def pair():
    """An original and a real JPEG reconstruction of it, odd width."""
    original = np.ascontiguousarray(skdata.chelsea()[40:136, 100:227])
    from anchors.jpeg import JpegCodec

    codec = JpegCodec()
    return original, codec.decode(codec.encode(original, 20))


def ffmpeg_vmaf(args: list[str], tmp_path) -> float:
    log = tmp_path / "log.json"
    graph_inputs = args[:-1]
    graph = args[-1] + f"libvmaf=log_fmt=json:log_path={log}"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", *graph_inputs, "-lavfi", graph]
    subprocess.run([*cmd, "-f", "null", "-"], check=True, capture_output=True, timeout=120)
    return json.loads(log.read_text())["frames"][0]["metrics"]["vmaf"]


@pytest.mark.parametrize("depth,chroma", [(8, "420"), (10, "444")])
def test_equals_ffmpeg_libvmaf_on_the_same_yuv_pair(pair, tmp_path, depth, chroma):
    original, decoded = pair
    h, w = original.shape[:2]
    dtype = np.uint8 if depth == 8 else np.dtype("<u2")
    for name, image in (("ref", original), ("dis", decoded)):
        planes = rgb_to_yuv(image, "bt709", depth, chroma)
        (tmp_path / f"{name}.yuv").write_bytes(b"".join(p.astype(dtype).tobytes() for p in planes))
    fmt = f"yuv{chroma}p" + ("10le" if depth == 10 else "")
    raw = ["-f", "rawvideo", "-pix_fmt", fmt, "-s", f"{w}x{h}"]
    expected = ffmpeg_vmaf(
        [*raw, "-i", str(tmp_path / "dis.yuv"), *raw, "-i", str(tmp_path / "ref.yuv"), "[0][1]"],
        tmp_path,
    )
    assert vmaf(original, decoded, "bt709", depth, chroma) == expected


def test_close_to_ffmpeg_converting_the_png_pair_itself(pair, tmp_path):
    original, decoded = pair
    Image.fromarray(original).save(tmp_path / "ref.png")
    Image.fromarray(decoded).save(tmp_path / "dis.png")
    conv = "scale=out_color_matrix=bt709:out_range=full:flags=accurate_rnd,format=yuv420p"
    graph = f"[0]{conv}[d];[1]{conv}[r];[d][r]"
    expected = ffmpeg_vmaf(
        ["-i", str(tmp_path / "dis.png"), "-i", str(tmp_path / "ref.png"), graph], tmp_path
    )
    assert vmaf(original, decoded, "bt709", 8, "420") == pytest.approx(expected, abs=0.2)


def test_refuses_images_below_its_minimum():
    small = np.zeros((MIN_SIDE - 1, 64, 3), np.uint8)
    with pytest.raises(ValueError, match="VMAF needs"):
        vmaf(small, small)
