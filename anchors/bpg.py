"""BPG anchor: the real bpgenc/bpgdec when present, else a bpgenc-equivalent HEVC intra encode.

**External** (bpgenc and bpgdec found on PATH, or configured with $CTC_BPGENC / $CTC_BPGDEC):
run exactly as the learned-compression CTCs and CompressAI do,
`bpgenc -f 444 -c ycbcr -b 8 -e x265 -q QP -m LEVEL -o out.bpg in.png` and `bpgdec -o out.png
in.bpg`; the file is bpgenc's .bpg.

**Embedded** (the default when bpgenc is absent): libx265 through the FFmpeg of the
imageio-ffmpeg wheel, with bpgenc 0.9.8's conventions (libbpg x265_glue.c): RGB converted to
BPG's "ycbcr" colour space (BT.601 matrix, full range, 8 bit, 4:4:4; ctc.metrics.colour), x265
preset of the compression level (x265_preset_names[LEVEL], level 8 = veryslow), tune ssim,
one intra picture at constant QP, info SEI and picture hash SEI off, AMP and rectangular
partitions on. The file is a 4-byte magic, the two format bytes of a BPG header and the three
ue7 fields (width, height, picture_data_length) of BPG specification 0.9.5, section 3.1,
followed by the raw HEVC Annex-B stream as x265 wrote it (VPS, SPS, PPS, slice). So bpp counts
BPG's own header bytes exactly, plus the VPS and the full SPS that bpgenc would replace by its
compact hevc_header (docs/anchors.md gives the measured difference).

Choice of implementation: $CTC_BPG = auto (default: bpgenc when both binaries are found),
bpgenc (error when missing) or embedded. Level: $CTC_BPG_LEVEL, 1..9, default 8 (bpgenc's).
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from anchors import FROZEN_RESULTS
from anchors.colour import yuv_to_rgb
from anchors.ffmpeg import (
    AnchorError,
    banner_version,
    encoder_library_version,
    ffmpeg_decode_raw,
    ffmpeg_exe,
    ffmpeg_version,
    find_tool,
    raw_input_args,
    read_planes,
    run_tool,
    write_planes,
)
from anchors.inputs import check_image, check_qp
from ctc.codec import Knob
from ctc.metrics.colour import rgb_to_yuv

# x265's preset names by bpgenc compression level (x265.h x265_preset_names; libbpg uses the
# level as the index, so 8, bpgenc's default, is veryslow).
X265_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
    "veryslow", "placebo",
)  # fmt: skip
DEFAULT_LEVEL = 8
MAGIC = b"BPGe"  # not BPG's 0x425047fb: the payload is a plain HEVC stream, not bpgenc's
PIXEL_FORMAT_444 = 3  # BPG spec 0.9.5, 3.2: pixel_format 3 = 4:4:4
COLOUR_SPACE_YCBCR = 0  # BPG spec 0.9.5, 3.2: color_space 0 = YCbCr, BT.601, full range here


def ue7(value: int) -> bytes:
    """BPG's ue7(32): big-endian 7-bit groups, a set top bit on every byte but the last."""
    if not 0 <= value < 1 << 32:
        raise ValueError(f"ue7(32) holds 0..2^32-1, not {value}")
    groups = [value & 0x7F]
    value >>= 7
    while value:
        groups.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(groups))


def read_ue7(data: bytes, pos: int) -> tuple[int, int]:
    """Value and next position of a ue7(32) field at `pos`."""
    value = 0
    for i in range(5):
        if pos + i >= len(data):
            raise AnchorError("bpg: truncated header")
        byte = data[pos + i]
        if i == 0 and byte == 0x80:
            raise AnchorError("bpg: non-canonical ue7 field in the header")
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, pos + i + 1
    raise AnchorError("bpg: ue7 field longer than 5 bytes in the header")


def bpg_header(width: int, height: int, data_length: int) -> bytes:
    """The header of a BPG file (4:4:4, 8 bit, YCbCr, full range, no alpha, no extension)."""
    fmt = bytes([PIXEL_FORMAT_444 << 5, COLOUR_SPACE_YCBCR << 4])
    return MAGIC + fmt + ue7(width) + ue7(height) + ue7(data_length)


def parse_header(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and HEVC stream of an embedded-BPG file."""
    if data[:4] != MAGIC:
        raise AnchorError("bpg: not a file of the embedded BPG anchor (bad magic)")
    if data[4:6] != bytes([PIXEL_FORMAT_444 << 5, COLOUR_SPACE_YCBCR << 4]):
        raise AnchorError("bpg: unsupported format bytes (expected 4:4:4, 8 bit, YCbCr)")
    width, pos = read_ue7(data, 6)
    height, pos = read_ue7(data, pos)
    length, pos = read_ue7(data, pos)
    if width == 0 or height == 0 or length != len(data) - pos:
        raise AnchorError(f"bpg: header says {width}x{height}, {length} bytes of picture data, "
                          f"file has {len(data) - pos}")  # fmt: skip
    return width, height, data[pos:]


def x265_command(
    ffmpeg: str, yuv: Path, width: int, height: int, qp: int, level: int, out: Path
) -> list[str]:
    """The FFmpeg command of the embedded encode (bpgenc 0.9.8's x265 settings)."""
    params = [
        f"qp={qp}", "keyint=1", "info=0", "hash=0", "amp=1", "rect=1",
        "pools=1", "frame-threads=1", "log-level=error",
    ]  # fmt: skip
    return [
        ffmpeg, "-v", "error", "-nostdin", "-y",
        *raw_input_args("yuv444p", width, height, yuv), "-frames:v", "1",
        "-c:v", "libx265", "-preset", X265_PRESETS[level], "-tune", "ssim",
        "-x265-params", ":".join(params), "-f", "hevc", str(out),
    ]  # fmt: skip


def bpgenc_command(bpgenc: str, png: Path, qp: int, level: int, out: Path) -> list[str]:
    """The CTC's bpgenc command line (4:4:4, YCbCr, 8 bit, x265)."""
    return [bpgenc, "-f", "444", "-c", "ycbcr", "-b", "8", "-e", "x265", "-q", str(qp),
            "-m", str(level), "-o", str(out), str(png)]  # fmt: skip


def bpgdec_command(bpgdec: str, bpg: Path, out: Path) -> list[str]:
    """bpgdec to an 8-bit PNG."""
    return [bpgdec, "-o", str(out), str(bpg)]


_EMBEDDED_VERSION = re.compile(r"^lib(x265 \S+) via FFmpeg .*\(bpgenc-equivalent, .*= x265 (\w+),")
_BPGENC_VERSION = re.compile(r"^bpgenc (\S+) \+ bpgdec \(.*-m (\d)\)")


def label_for(version: str) -> str | None:
    """What ran, from a version string of this anchor (rows of any run, frozen rows too):
    "x265 4.3+49 preset veryslow, 4:4:4 8-bit, via FFmpeg — bpgenc-equivalent stand-in for
    BPG" or "bpgenc 0.9.8 level 8, 4:4:4 8-bit"; None for a version it does not know. The x265
    build's commit hash is left to the version string."""
    match = _EMBEDDED_VERSION.match(version)
    if match:
        encoder = re.sub(r"-[0-9a-f]{7,}$", "", match.group(1))
        return (f"{encoder} preset {match.group(2)}, 4:4:4 8-bit, via FFmpeg — "
                "bpgenc-equivalent stand-in for BPG")  # fmt: skip
    match = _BPGENC_VERSION.match(version)
    if match:
        return f"bpgenc {match.group(1)} level {match.group(2)}, 4:4:4 8-bit"
    return None


def _level_from_env() -> int:
    text = os.environ.get("CTC_BPG_LEVEL", str(DEFAULT_LEVEL))
    if not text.isdigit() or not 1 <= int(text) <= 9:
        raise AnchorError(f"bpg: CTC_BPG_LEVEL must be 1..9, got {text!r}")
    return int(text)


class BpgCodec:
    """BPG 4:4:4 anchor; knob: QP 0..51 (rate falls as QP grows)."""

    name = "bpg"
    frozen_results = FROZEN_RESULTS  # ctc.frozen: rows frozen on Kodak (anchors/results/kodak)
    extension = "bpg"
    knob = Knob(name="qp", kind="integer", low=0, high=51, rate_increases=False)

    def __init__(
        self,
        implementation: str | None = None,
        bpgenc: str | None = None,
        bpgdec: str | None = None,
        level: int | None = None,
    ) -> None:
        choice = implementation or os.environ.get("CTC_BPG", "auto")
        if choice not in ("auto", "bpgenc", "embedded"):
            raise AnchorError(
                f"bpg: implementation must be auto, bpgenc or embedded, not {choice!r}"
            )
        self.level = _level_from_env() if level is None else level
        if not 1 <= self.level <= 9:
            raise AnchorError(f"bpg: level must be 1..9, got {self.level}")
        self.bpgenc = self.bpgdec = None
        if choice != "embedded":
            self.bpgenc = find_tool("bpgenc", bpgenc or os.environ.get("CTC_BPGENC"))
            self.bpgdec = find_tool("bpgdec", bpgdec or os.environ.get("CTC_BPGDEC"))
            if choice == "bpgenc" and not (self.bpgenc and self.bpgdec):
                missing = [
                    n for n, p in (("bpgenc", self.bpgenc), ("bpgdec", self.bpgdec)) if not p
                ]
                raise AnchorError(f"bpg: {' and '.join(missing)} not found (PATH, $CTC_BPGENC, "
                                  "$CTC_BPGDEC)")  # fmt: skip
        self.external = bool(self.bpgenc and self.bpgdec)
        self._version: str | None = None

    def peak_memory(self, width: int, height: int) -> int:
        """The most bytes coding a width x height image takes (ctc.codec), with a margin over the
        225-258 bytes/pixel measured at 2048x1536 and 4096x3072 (this process and FFmpeg's x265 or
        HEVC decoder)."""
        return 100_000_000 + 320 * width * height

    def version(self) -> str:
        if self._version is None:
            self._version = self._external_version() if self.external else self._embedded_version()
        return self._version

    label_for = staticmethod(label_for)

    @property
    def label(self) -> str:
        """What runs, in a few words (label_for of the version)."""
        return label_for(self.version()) or self.name

    def _embedded_version(self) -> str:
        return (
            f"lib{encoder_library_version('libx265')} via {ffmpeg_version()} (bpgenc-equivalent, "
            f"444, ycbcr601 full range, 8 bit, level {self.level} = x265 "
            f"{X265_PRESETS[self.level]}, tune ssim, intra, BPG header + HEVC stream)"
        )

    def _external_version(self) -> str:
        ver = banner_version([self.bpgenc, "-h"], r"version\s+(\S+)")
        return f"bpgenc {ver} + bpgdec (-f 444 -c ycbcr -b 8 -e x265 -m {self.level})"

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        height, width = check_image(image, "bpg")
        qp = check_qp(knob_value, 0, 51, "bpg")
        with tempfile.TemporaryDirectory(prefix="ctc-bpg-") as tmp:
            out = Path(tmp, "out.bpg")
            if self.external:
                png = Path(tmp, "in.png")
                Image.fromarray(image, "RGB").save(png)
                run_tool(bpgenc_command(self.bpgenc, png, qp, self.level, out), "bpgenc")
                return out.read_bytes()
            yuv, hevc = Path(tmp, "in.yuv"), Path(tmp, "out.hevc")
            write_planes(yuv, rgb_to_yuv(image, "bt601", 8, "444"), 8)
            run_tool(x265_command(ffmpeg_exe(), yuv, width, height, qp, self.level, hevc),
                     "ffmpeg libx265")  # fmt: skip
            stream = hevc.read_bytes()
        if not stream:
            raise AnchorError("bpg: libx265 wrote an empty stream")
        return bpg_header(width, height, len(stream)) + stream

    def decode(self, data: bytes) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="ctc-bpg-") as tmp:
            if self.external:
                bpg, png = Path(tmp, "in.bpg"), Path(tmp, "out.png")
                bpg.write_bytes(data)
                run_tool(bpgdec_command(self.bpgdec, bpg, png), "bpgdec")
                with Image.open(png) as im:
                    return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
            width, height, stream = parse_header(data)
            hevc = Path(tmp, "in.hevc")
            hevc.write_bytes(stream)
            coded_w, coded_h, raw = ffmpeg_decode_raw(hevc, "yuv444p", "ffmpeg hevc decoder")
        if (coded_w, coded_h) != (width, height):
            raise AnchorError(f"bpg: header says {width}x{height}, stream is {coded_w}x{coded_h}")
        y, cb, cr = read_planes(raw, [(height, width)] * 3, 8, "bpg")
        return yuv_to_rgb(y, cb, cr, "bt601", 8)
