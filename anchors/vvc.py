"""VVC anchor: VTM's EncoderApp/DecoderApp when given, else VVenC through FFmpeg.

**External, the CTC recipe** (VTM's EncoderApp and DecoderApp on PATH or in $CTC_VTM_ENCODER /
$CTC_VTM_DECODER, and an all-intra configuration file in $CTC_VTM_CONFIG, e.g. VTM's
cfg/encoder_intra_vtm.cfg): RGB to BT.709 full-range Y'CbCr rounded to 10 bits, 4:4:4
(ctc.metrics.colour), one all-intra picture at QP, decoded at 10 bits and converted back to
8-bit RGB with rounding (anchors.colour). The file is EncoderApp's bitstream.

**Embedded** (the default): libvvenc through the FFmpeg of the imageio-ffmpeg wheel. libvvenc
accepts only yuv420p10le (it warns and codes 4:2:0 when asked for 4:4:4), so the input is BT.709
full-range Y'CbCr at 10 bits with 4:2:0 chroma (2x2 mean, centre siting), one intra picture at
constant QP, perceptual QP adaptation off (-qpa 0: it trades PSNR for subjective quality),
one thread; FFmpeg's own VVC decoder decodes it, chroma is upsampled bilinearly and converted
back to 8-bit RGB. libvvenc needs even sides: an odd side is padded by repeating the last
row/column and the file then starts with an 8-byte crop record (b"CROP", width, height as
big-endian 16-bit) before the raw VVC stream; even-sided images (Kodak) are the raw stream alone.

Choice: $CTC_VVC = auto (default: VTM when encoder, decoder and config are all available),
vtm (error when missing) or vvenc. VVenC preset: $CTC_VVENC_PRESET (faster, fast, medium, slow,
slower; default fast, chosen for the cost of the frozen Kodak run: docs/anchors.md).
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
from pathlib import Path

import numpy as np

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
    tool_banner,
    write_planes,
)
from anchors.inputs import check_image, check_qp
from ctc.codec import Knob
from ctc.metrics.colour import rgb_to_yuv

VVENC_PRESETS = ("faster", "fast", "medium", "slow", "slower")
DEFAULT_PRESET = "fast"
BIT_DEPTH = 10
CROP_MAGIC = b"CROP"


def vvenc_command(
    ffmpeg: str, yuv: Path, width: int, height: int, qp: int, preset: str, out: Path
) -> list[str]:
    """The FFmpeg command of the embedded encode (libvvenc, 4:2:0 10 bit, intra, QP)."""
    return [
        ffmpeg, "-v", "error", "-nostdin", "-y",
        *raw_input_args("yuv420p10le", width, height, yuv), "-frames:v", "1",
        "-c:v", "libvvenc", "-preset", preset, "-qp", str(qp), "-qpa", "0", "-threads", "1",
        "-f", "vvc", str(out),
    ]  # fmt: skip


def vtm_encoder_command(
    encoder: str, config: str, yuv: Path, width: int, height: int, qp: int, out: Path
) -> list[str]:
    """EncoderApp for one 4:4:4 10-bit picture with the given all-intra configuration."""
    return [
        encoder, "-c", config, "-i", str(yuv), "-b", str(out), "-o", "",
        f"--SourceWidth={width}", f"--SourceHeight={height}", "--FrameRate=1",
        "--FramesToBeEncoded=1", f"--QP={qp}",
        f"--InputBitDepth={BIT_DEPTH}", f"--InternalBitDepth={BIT_DEPTH}",
        f"--OutputBitDepth={BIT_DEPTH}", "--InputChromaFormat=444", "--ChromaFormatIDC=444",
        "--ConformanceWindowMode=1",
    ]  # fmt: skip


def vtm_decoder_command(decoder: str, bitstream: Path, out: Path) -> list[str]:
    """DecoderApp writing the picture as 10-bit planar Y'CbCr."""
    return [decoder, "-b", str(bitstream), "-o", str(out), "-d", str(BIT_DEPTH)]


_VVENC_VERSION = re.compile(
    r"^(VVenC \S+) via FFmpeg .*\(libvvenc preset (\w+),.*? (\d)(\d)(\d) (\d+) bit"
)
_VTM_VERSION = re.compile(r"^VTM (\S+) EncoderApp/DecoderApp \((.+), (\d)(\d)(\d) (\d+) bit")


def label_for(version: str) -> str | None:
    """What ran, from a version string of this anchor (rows of any run, frozen rows too):
    "VVenC 1.15.0-dev preset fast, 4:2:0 10-bit, via FFmpeg — stand-in for VTM" or
    "VTM 23.0 (encoder_intra_vtm.cfg), 4:4:4 10-bit"; None for a version it does not know."""
    match = _VVENC_VERSION.match(version)
    if match:
        encoder, preset, *chroma, bits = match.groups()
        return (f"{encoder} preset {preset}, {':'.join(chroma)} {bits}-bit, via FFmpeg — "
                "stand-in for VTM")  # fmt: skip
    match = _VTM_VERSION.match(version)
    if match:
        release, config, *chroma, bits = match.groups()
        return f"VTM {release} ({config}), {':'.join(chroma)} {bits}-bit"
    return None


def _pad_even(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    return np.pad(image, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class VvcCodec:
    """VVC intra anchor; knob: QP 0..63 (rate falls as QP grows)."""

    name = "vvc"
    frozen_results = FROZEN_RESULTS  # ctc.frozen: rows frozen on Kodak (anchors/results/kodak)
    extension = "266"
    knob = Knob(name="qp", kind="integer", low=0, high=63, rate_increases=False)

    def __init__(
        self,
        implementation: str | None = None,
        encoder: str | None = None,
        decoder: str | None = None,
        config: str | None = None,
        preset: str | None = None,
    ) -> None:
        choice = implementation or os.environ.get("CTC_VVC", "auto")
        if choice not in ("auto", "vtm", "vvenc"):
            raise AnchorError(f"vvc: implementation must be auto, vtm or vvenc, not {choice!r}")
        self.preset = preset or os.environ.get("CTC_VVENC_PRESET", DEFAULT_PRESET)
        if self.preset not in VVENC_PRESETS:
            raise AnchorError(f"vvc: VVenC preset must be one of {', '.join(VVENC_PRESETS)}, "
                              f"not {self.preset!r}")  # fmt: skip
        self.encoder = self.decoder = self.config = None
        if choice != "vvenc":
            self.encoder = find_tool("EncoderApp", encoder or os.environ.get("CTC_VTM_ENCODER"))
            self.decoder = find_tool("DecoderApp", decoder or os.environ.get("CTC_VTM_DECODER"))
            self.config = config or os.environ.get("CTC_VTM_CONFIG")
            if self.config and not Path(self.config).is_file():
                raise AnchorError(f"vvc: VTM configuration {self.config} does not exist")
            parts = (("EncoderApp", self.encoder), ("DecoderApp", self.decoder),
                     ("a configuration ($CTC_VTM_CONFIG)", self.config))  # fmt: skip
            missing = [n for n, p in parts if not p]
            if choice == "vtm" and missing:
                raise AnchorError(f"vvc: VTM needs {', '.join(missing)}: not found")
        self.external = bool(self.encoder and self.decoder and self.config)
        self._version: str | None = None

    def version(self) -> str:
        if self._version is None:
            self._version = self._vtm_version() if self.external else self._vvenc_version()
        return self._version

    label_for = staticmethod(label_for)

    @property
    def label(self) -> str:
        """What runs, in a few words (label_for of the version)."""
        return label_for(self.version()) or self.name

    def _vvenc_version(self) -> str:
        return (
            f"{encoder_library_version('libvvenc')} via {ffmpeg_version()} (libvvenc preset "
            f"{self.preset}, qpa 0, intra, 420 10 bit, ycbcr709 full range; FFmpeg VVC decoder)"
        )

    def _vtm_version(self) -> str:
        ver = banner_version([self.encoder, "--help"], r"VTM Encoder Version\s+(\S+)")
        return (f"VTM {ver} EncoderApp/DecoderApp ({Path(self.config).name}, 444 10 bit, "
                "ycbcr709 full range)")  # fmt: skip

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        height, width = check_image(image, "vvc")
        qp = check_qp(knob_value, 0, 63, "vvc")
        with tempfile.TemporaryDirectory(prefix="ctc-vvc-") as tmp:
            yuv, out = Path(tmp, "in.yuv"), Path(tmp, "out.bin")
            if self.external:
                write_planes(yuv, rgb_to_yuv(image, "bt709", BIT_DEPTH, "444"), BIT_DEPTH)
                args = vtm_encoder_command(self.encoder, self.config, yuv, width, height, qp, out)
                run_tool(args, "VTM EncoderApp")
                return out.read_bytes()
            padded = _pad_even(image)
            ph, pw = padded.shape[:2]
            write_planes(yuv, rgb_to_yuv(padded, "bt709", BIT_DEPTH, "420"), BIT_DEPTH)
            cmd = vvenc_command(ffmpeg_exe(), yuv, pw, ph, qp, self.preset, out)
            run_tool(cmd, "ffmpeg libvvenc")
            stream = out.read_bytes()
        if not stream:
            raise AnchorError("vvc: libvvenc wrote an empty stream")
        if (ph, pw) != (height, width):
            return CROP_MAGIC + struct.pack(">HH", width, height) + stream
        return stream

    def decode(self, data: bytes) -> np.ndarray:
        with tempfile.TemporaryDirectory(prefix="ctc-vvc-") as tmp:
            bitstream, rec = Path(tmp, "in.bin"), Path(tmp, "rec.yuv")
            if self.external:
                bitstream.write_bytes(data)
                run_tool(vtm_decoder_command(self.decoder, bitstream, rec), "VTM DecoderApp")
                return _vtm_reconstruction(rec.read_bytes(), self._size_of(bitstream))
            crop = None
            if data[:4] == CROP_MAGIC:
                if len(data) < 8:
                    raise AnchorError("vvc: truncated crop record")
                crop = struct.unpack(">HH", data[4:8])
                data = data[8:]
            bitstream.write_bytes(data)
            width, height, raw = ffmpeg_decode_raw(bitstream, "yuv420p10le", "ffmpeg vvc decoder")
        shapes = [(height, width), *[((height + 1) // 2, (width + 1) // 2)] * 2]
        y, cb, cr = read_planes(raw, shapes, BIT_DEPTH, "vvc")
        rgb = yuv_to_rgb(y, cb, cr, "bt709", BIT_DEPTH)
        if crop:
            w, h = crop
            if w > width or h > height:
                raise AnchorError(f"vvc: crop {w}x{h} larger than the coded {width}x{height}")
            rgb = np.ascontiguousarray(rgb[:h, :w])
        return rgb

    def _size_of(self, bitstream: Path) -> tuple[int, int]:
        return _probe_size(bitstream)


def _probe_size(bitstream: Path) -> tuple[int, int]:
    """Width and height of a VVC stream, as FFmpeg's decoder reports them."""
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(bitstream)]
    text = tool_banner(args)
    match = re.search(r"Video: vvc.*?, (\d+)x(\d+)", text)
    if not match:
        lines = [s.strip() for s in text.splitlines() if s.strip()]
        raise AnchorError(f"vvc: not a decodable VVC stream ({lines[-1] if lines else '?'})")
    return int(match.group(1)), int(match.group(2))


def _vtm_reconstruction(raw: bytes, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    y, cb, cr = read_planes(raw, [(height, width)] * 3, BIT_DEPTH, "vvc (VTM)")
    return yuv_to_rgb(y, cb, cr, "bt709", BIT_DEPTH)
