"""Downloading public datasets and verifying them against pinned pixel checksums.

The pins are sha256 digests of the decoded 8-bit RGB pixels (ctc.images.pixel_sha256), not of
the files, so that a mirror that re-encodes the same pixels (a different PNG compression level)
still verifies. A file is downloaded to a temporary name, verified, and only then renamed into
place; files already present and verified are not downloaded again.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ctc.images import ImageError, load_image, pixel_sha256

MAX_FILE_BYTES = 64 << 20  # a dataset image larger than this is refused, not buffered


class FetchError(RuntimeError):
    """A download failed or did not verify; the message names the file and the URL."""


@dataclass(frozen=True)
class RemoteDataset:
    """A public dataset: where its files are and what their pixels must hash to."""

    name: str
    base_url: str
    files: dict[str, tuple[int, int, str]]  # file name -> (width, height, pixel sha256)

    def check(self, file: str, image: np.ndarray) -> str | None:
        """None when `image` is what `file` must decode to, else what is wrong."""
        width, height, digest = self.files[file]
        if image.shape != (height, width, 3):
            return f"{file}: {image.shape[1]}x{image.shape[0]}, expected {width}x{height}"
        if pixel_sha256(image) != digest:
            return f"{file}: pixel checksum mismatch"
        return None


def parse_pins(text: str) -> dict[str, tuple[int, int, str]]:
    """Pins from lines of "file WIDTHxHEIGHT pixel-sha256"."""
    pins = {}
    for line in text.split("\n"):
        if line.strip():
            file, size, digest = line.split()
            width, height = size.split("x")
            pins[file] = (int(width), int(height), digest)
    return pins


# Kodak Lossless True Color Image Suite, as distributed by Rich Franzen at r0k.us.
KODAK = RemoteDataset(
    name="kodak",
    base_url="http://r0k.us/graphics/kodak/kodak/",
    files=parse_pins(
        """
kodim01.png 768x512 a00210743353594464ac67e680a41710f484444ca5f9dfddeb570de25c428273
kodim02.png 768x512 ae5a495df4ec40e0941265440ccf98973915b4190ab803e37a23ca93dd43a07e
kodim03.png 768x512 234e61f585503f2a44400f5561131e8a512ef2c15328cd83d5cdbf10e2616cf2
kodim04.png 512x768 e88e788fca00e6c723bb66ff45edb8cb56091ee284dcb73e3909834f2c96eeb6
kodim05.png 768x512 ed3d1ee770909d3b27903b52ce19ee59a9bf24621a7bf1fb57b90677da880cb6
kodim06.png 768x512 7f45158999fa297d1cfbd292b3e2f3f5b27770701c3473155c211c3f512cc97f
kodim07.png 768x512 4e3664bf6fe865b49f15f7b554efa7dbecaf73ae0e8699f2e307bf07849f1264
kodim08.png 768x512 889c3740e4ed54ca53d11ae735a44d15fa24fe312b3bd1609a80618a4092c208
kodim09.png 512x768 f8453140e63a42301a6dbebb849a3cc40d34e4e59580eb1f372f7f5460df0dbe
kodim10.png 512x768 fabe11b5c4f028394e093a5b5907e5fabc8072da0d5334fb3a38547a7e1be842
kodim11.png 768x512 ab4dd9bf8431e717d33892b3ba03c63bfea3c7fa72c2610010de7df3c194c075
kodim12.png 768x512 f412db2168e599949aac26bd3264f111b23a684f30a21cfd320e9e95bc69bbae
kodim13.png 768x512 875703d56fb9396f478b5d7d3b18e2b77c17147a685c6dc2567e1c574aaf01e3
kodim14.png 768x512 2bd5029ee75ac1697542e5b05624e8afe186e3250abd7513d6a806b52084c2f0
kodim15.png 768x512 b5353e7511277009922ecbdebfc6418fec53aa1b2a08d44fc957a7540825697b
kodim16.png 768x512 ed21745fd32fce95cc2c6af7fc52b1b15e590c7a14ab18ab34bd65ecaf955ac7
kodim17.png 512x768 566bc866664e9b06dc86e2654051b454844efe17322dbf7e24156d8243f1943e
kodim18.png 512x768 3475af71066f3ca8206eb12cfc989ebe9c6e44820a96604e88ae018606e1f7bd
kodim19.png 512x768 7956408ef24222d37ac53f579bd24d5b2c3557b16c657e8b71c1b6ae9f18de1b
kodim20.png 768x512 666ce8f2db5566a123bb081e70618f6f4c4253df960f3b41bb9dcc3dd134f3cf
kodim21.png 768x512 2d6902daf7c4486b7c8c04d834091841a2b38c8f0c81cd7a963a6510b34a2a6a
kodim22.png 768x512 f430842120c108b67725ada96b8b7b2a914f6a0915eacd5595064c6c1a5d70a0
kodim23.png 768x512 81992a83592267e69125666f3e3e04c1819529b4c4c1e55fde0a6a741bac4219
kodim24.png 768x512 e3e3ccc3e795b82a3da66934409dfe98ce0f5aadc6d7767543c506453599bb98
"""
    ),
)

REMOTES: dict[str, RemoteDataset] = {KODAK.name: KODAK}


def _download(url: str, target: Path, timeout: float) -> None:
    """Stream `url` into `target`, refusing more than MAX_FILE_BYTES."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            total = 0
            while chunk := response.read(1 << 16):
                total += len(chunk)
                if total > MAX_FILE_BYTES:
                    raise FetchError(f"{url}: larger than {MAX_FILE_BYTES >> 20} MiB, refused")
                out.write(chunk)
    except (urllib.error.URLError, OSError, TimeoutError, ValueError) as e:
        reason = getattr(e, "reason", None) or e  # ValueError: e.g. an unknown URL type
        raise FetchError(
            f"{url}: download failed ({reason}); offline, copy the files from a machine that has "
            "them and use --base-url file:///FOLDER"
        ) from None


def _verified(remote: RemoteDataset, file: str, path: Path) -> str | None:
    """None when the file at `path` decodes to the pinned pixels, else the problem."""
    try:
        return remote.check(file, load_image(path))
    except ImageError as e:
        return str(e)


def fetch(
    remote: RemoteDataset,
    dest: Path,
    base_url: str | None = None,
    timeout: float = 60.0,
    on_file: Callable[[str, str], None] | None = None,
) -> list[Path]:
    """Download every file of `remote` into `dest` and verify it; returns the file paths.

    `base_url` replaces the dataset's own (a mirror). `on_file(name, status)` is called per file
    with status "present" or "downloaded". Raises FetchError on the first failure; verified
    files stay, the failing one is removed.
    """
    base = (base_url or remote.base_url).rstrip("/") + "/"
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for file in remote.files:
        path = dest / file
        status = "present"
        if not path.is_file() or _verified(remote, file, path) is not None:
            part = dest / f".{file}.part"
            try:
                _download(base + file, part, timeout)
                problem = _verified(remote, file, part)
                if problem:
                    raise FetchError(f"{base + file}: {problem}")
                os.replace(part, path)
            finally:
                part.unlink(missing_ok=True)
            status = "downloaded"
        if on_file:
            on_file(file, status)
        paths.append(path)
    return paths
