"""VTM anchor: the VVC reference software (EncoderApp/DecoderApp), all-intra, 4:4:4.

The protocols name it: IEEE 1857.11 (FVC) compares with "VVC (VTM-8.0, Intra coding config)"
(fvc-sg/NIC, NIC-dataset-and-train-test-protocol) and JPEG AI with VTM too. The pinned build is
VTM 8.0 (VTM_COMMIT, the commit that set VTM_VERSION to "8.0"), built by `python -m
anchors.vtm_build`, with the configuration file of the same commit, cfg/encoder_intra_vtm.cfg.

Recipe: RGB to BT.709 full-range Y'CbCr rounded to 10 bits, 4:4:4 (ctc.metrics.colour), sides
padded to a multiple of 8 by repeating the last row and column (VTM 8.0 codes only such sizes);
one picture at QP with the all-intra configuration, InternalBitDepth 10; DecoderApp writes
10-bit 4:4:4 that is cropped to the image and converted back to 8-bit RGB with rounding
(anchors.colour). The file is a 4-byte size record (width, height as big-endian 16-bit:
DecoderApp reports no picture size, and VTM 8.0's streams predate the final VVC syntax that
FFmpeg parses) followed by EncoderApp's bitstream; the record adds 32 bits to every file
(0.00008 bpp on a Kodak image).

Decoding checks the record against the decoded picture's sample count only (all that
DecoderApp tells of its size): a wrong record that pads to the coded size (a side up to 7 short)
or to another size of the same area goes unnoticed, as telling needs VTM 8.0's SPS parsed.

Where the binaries come from: $CTC_VTM_DIR, else the build folder of anchors.vtm_build
($XDG_CACHE_HOME/nic-ctc/vtm/VTM-8.0). A folder reports the pinned version only when its
build.json names VTM_RELEASE and VTM_COMMIT, its EncoderApp, DecoderApp and configuration have
the sha256 that build.json records (anchors.vtm_build writes them), and the configuration's is
CONFIG_SHA256, VTM 8.0's own. Any other folder with executable EncoderApp[Static] and
DecoderApp[Static] and an encoder_intra_vtm.cfg is used too and reports the release its banner
prints and the configuration's sha256. Without those files the codec still answers with the
pinned version, so that the frozen Kodak results (anchors/results) stand in for its jobs; a job
that is not frozen fails with one line saying how to build VTM.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import tempfile
from pathlib import Path

import numpy as np

from anchors import FROZEN_RESULTS
from anchors.colour import yuv_to_rgb
from anchors.ffmpeg import AnchorError, banner_version, read_planes, run_tool, write_planes
from anchors.inputs import check_image, check_qp
from ctc.codec import Knob
from ctc.metrics.colour import rgb_to_yuv

VTM_RELEASE = "8.0"
VTM_COMMIT = "837b7dfef07a711914410b72d7fe4cc8722bcd4c"
VTM_SOURCE = "https://vcgit.hhi.fraunhofer.de/jvet/VVCSoftware_VTM.git"
CONFIG = "encoder_intra_vtm.cfg"
# sha256 of cfg/encoder_intra_vtm.cfg at VTM_COMMIT
CONFIG_SHA256 = "3313d6cb0de65a2df4bec83048d7cebd571eb6723af4327b21d2b1e77542e42b"
BIT_DEPTH = 10
MAX_SIDE = 65535  # the size record's 16-bit fields
TIMEOUT_S = 3600  # a 4K picture at low QP takes VTM tens of minutes
DECODE_TIMEOUT_S = 300  # DecoderApp takes well under a second for a Kodak image
SUFFIX = "444 10 bit, ycbcr709 full range, 4-byte size record"
PINNED_VERSION = f"VTM {VTM_RELEASE} ({VTM_COMMIT[:10]}) EncoderApp/DecoderApp ({CONFIG}, {SUFFIX})"
BUILD_RECORD = "build.json"
HASHES = "sha256"  # build.json's {file name: sha256} of the installed binaries and configuration
ALIGN = 8  # VTM 8.0: "coded frame height must be a multiple of Max(8, the minimum CU size)"


def default_build_dir() -> Path:
    """Where anchors.vtm_build installs the pinned build and this codec looks for it."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "nic-ctc" / "vtm" / f"VTM-{VTM_RELEASE}"


def vtm_dir() -> Path:
    """$CTC_VTM_DIR, else default_build_dir()."""
    configured = os.environ.get("CTC_VTM_DIR")
    return Path(configured).expanduser() if configured else default_build_dir()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _binary(folder: Path, app: str) -> Path | None:
    for name in (f"{app}Static", app):
        if (folder / name).is_file():
            return folder / name
    return None


def _run(args: list[str], what: str, timeout: float) -> str:
    """run_tool, with a binary that cannot be executed as one line too."""
    try:
        return run_tool(args, what, timeout=timeout)
    except OSError as e:  # not executable, not a program for this machine
        raise AnchorError(f"{what}: cannot run {args[0]}: {e.strerror or e}") from None


def _padded(side: int) -> int:
    return -(-side // ALIGN) * ALIGN


def encoder_command(
    encoder: Path, config: Path, yuv: Path, width: int, height: int, qp: int, out: Path
) -> list[str]:
    """EncoderApp for one 4:4:4 10-bit picture with the all-intra configuration."""
    return [
        str(encoder), "-c", str(config), "-i", str(yuv), "-b", str(out), "-o", "",
        f"--SourceWidth={width}", f"--SourceHeight={height}", "--FrameRate=1",
        "--FramesToBeEncoded=1", f"--QP={qp}",
        f"--InputBitDepth={BIT_DEPTH}", f"--InternalBitDepth={BIT_DEPTH}",
        f"--OutputBitDepth={BIT_DEPTH}", "--InputChromaFormat=444", "--ChromaFormatIDC=444",
    ]  # fmt: skip


def decoder_command(decoder: Path, bitstream: Path, out: Path) -> list[str]:
    """DecoderApp writing the picture as 10-bit planar 4:4:4 Y'CbCr."""
    return [str(decoder), "-b", str(bitstream), "-o", str(out), "-d", str(BIT_DEPTH)]


_LABEL = re.compile(r"^VTM (\S+)(?: \((\w+)\))? EncoderApp/DecoderApp \(([^,]+)")


def label_for(version: str) -> str | None:
    """What ran, from a version string of this anchor: "VTM 8.0 (encoder_intra_vtm.cfg), 4:4:4
    10-bit"; None for a version it does not know."""
    match = _LABEL.match(version)
    if not match:
        return None
    release, _, config = match.groups()
    return f"VTM {release} ({config}), 4:4:4 10-bit"


class VtmCodec:
    """VVC intra anchor by the reference software; knob: QP 0..63 (rate falls as QP grows)."""

    name = "vtm"
    frozen_results = FROZEN_RESULTS  # ctc.frozen: rows frozen on Kodak (anchors/results/kodak)
    extension = "266"
    knob = Knob(name="qp", kind="integer", low=0, high=63, rate_increases=False)
    label_for = staticmethod(label_for)

    def __init__(self, folder: str | None = None) -> None:
        self.folder = Path(folder).expanduser() if folder else vtm_dir()
        self.encoder = _binary(self.folder, "EncoderApp")
        self.decoder = _binary(self.folder, "DecoderApp")
        self.config = self.folder / CONFIG
        self.installed = bool(self.encoder and self.decoder and self.config.is_file())
        self._problem = self._check()
        self.available = self._problem is None
        self._version: str | None = None

    def _check(self) -> str | None:
        if not self.installed:
            return (f"vtm: no VTM build in {self.folder} (EncoderApp, DecoderApp, {CONFIG}); "
                    "build it with `python -m anchors.vtm_build` or set CTC_VTM_DIR (or run "
                    "the VVenC stand-in, codec vvc)")  # fmt: skip
        stuck = [str(p) for p in (self.encoder, self.decoder) if p and not os.access(p, os.X_OK)]
        if stuck:
            return f"vtm: {' and '.join(stuck)} {'is' if len(stuck) == 1 else 'are'} not executable"
        return None

    @property
    def unavailable(self) -> str | None:
        """Why this codec cannot encode here (ctc.codec's optional `unavailable`), else None."""
        return self._problem

    @property
    def label(self) -> str:
        return label_for(self.version()) or self.name

    def version(self) -> str:
        """PINNED_VERSION for the pinned build, checked by its recorded hashes (or when no
        build is installed: frozen results only), else the banner's release and the
        configuration's sha256. Computed once per codec object."""
        if self._version is None:
            self._version = self._installed_version() if self.installed else PINNED_VERSION
        return self._version

    def _installed_version(self) -> str:
        config_sha = sha256_file(self.config)
        if config_sha == CONFIG_SHA256 and self._matches_record():
            return PINNED_VERSION
        release = banner_version([str(self.encoder), "--help"], r"VTM Encoder Version\s+(\S+)")
        return f"VTM {release} EncoderApp/DecoderApp ({CONFIG} sha256 {config_sha[:12]}, {SUFFIX})"

    def _matches_record(self) -> bool:
        """Whether build.json names the pinned build and records the sha256 of the binaries
        and configuration that run here."""
        record = self.folder / BUILD_RECORD
        if not record.is_file():
            return False
        try:
            build = json.loads(record.read_text())
        except ValueError as e:
            raise AnchorError(f"vtm: unreadable {record}: {e}") from None
        if not isinstance(build, dict) or not isinstance(build.get(HASHES), dict):
            return False
        if (build.get("release"), build.get("commit")) != (VTM_RELEASE, VTM_COMMIT):
            return False
        files = [p for p in (self.encoder, self.decoder, self.config) if p is not None]
        return all(build[HASHES].get(p.name) == sha256_file(p) for p in files)

    def _require(self) -> tuple[Path, Path]:
        if self.unavailable or self.encoder is None or self.decoder is None:
            raise AnchorError(self.unavailable or "vtm: no EncoderApp or DecoderApp")
        return self.encoder, self.decoder

    def encode(self, image: np.ndarray, knob_value: float) -> bytes:
        height, width = check_image(image, "vtm")
        qp = check_qp(knob_value, 0, 63, "vtm")
        if max(height, width) > MAX_SIDE:
            raise ValueError(f"vtm: {width}x{height} has a side over {MAX_SIDE}")
        encoder, _ = self._require()
        ph, pw = _padded(height), _padded(width)
        padded = np.pad(image, ((0, ph - height), (0, pw - width), (0, 0)), mode="edge")
        with tempfile.TemporaryDirectory(prefix="ctc-vtm-") as tmp:
            yuv, out = Path(tmp, "in.yuv"), Path(tmp, "out.bin")
            write_planes(yuv, rgb_to_yuv(padded, "bt709", BIT_DEPTH, "444"), BIT_DEPTH)
            args = encoder_command(encoder, self.config, yuv, pw, ph, qp, out)
            _run(args, "VTM EncoderApp", TIMEOUT_S)
            if not out.is_file():
                raise AnchorError("vtm: EncoderApp exited 0 without writing a bitstream")
            stream = out.read_bytes()
        if not stream:
            raise AnchorError("vtm: EncoderApp wrote an empty stream")
        return struct.pack(">HH", width, height) + stream

    def decode(self, data: bytes) -> np.ndarray:
        if len(data) <= 4:
            raise AnchorError("vtm: stream shorter than its size record")
        width, height = struct.unpack(">HH", data[:4])
        if width == 0 or height == 0:
            raise AnchorError(f"vtm: size record {width}x{height} is empty")
        _, decoder = self._require()
        with tempfile.TemporaryDirectory(prefix="ctc-vtm-") as tmp:
            bitstream, rec = Path(tmp, "in.bin"), Path(tmp, "rec.yuv")
            bitstream.write_bytes(data[4:])
            _run(decoder_command(decoder, bitstream, rec), "VTM DecoderApp", DECODE_TIMEOUT_S)
            if not rec.is_file():
                raise AnchorError("vtm: DecoderApp wrote no picture")
            raw = rec.read_bytes()
        ph, pw = _padded(height), _padded(width)
        samples = 3 * 2 * ph * pw  # three 16-bit planes of the coded (padded) size
        if len(raw) != samples:  # all DecoderApp tells of the picture's size (module docstring)
            pixels = f"{len(raw) // 6} pixels" if len(raw) % 6 == 0 else f"{len(raw)} bytes"
            raise AnchorError(f"vtm: size record {width}x{height} (coded {pw}x{ph}) does not fit "
                              f"the decoded picture ({pixels})")  # fmt: skip
        y, cb, cr = read_planes(raw, [(ph, pw)] * 3, BIT_DEPTH, "vtm")
        rgb = yuv_to_rgb(y[:height, :width], cb[:height, :width], cr[:height, :width], "bt709",
                         BIT_DEPTH)  # fmt: skip
        return rgb
