"""Encode on one device, decode on another: are the decoded symbols the same?

    python benchmarks/cross_device.py encode OUT_DIR [--device cuda] [--images DIR [--limit N]]
                                                     [--model NAME|FILE]
    python benchmarks/cross_device.py decode OUT_DIR [--device cpu] [--model NAME|FILE]

`encode` codes every image at a few rate positions on --device and writes the streams with a
manifest of the hashes of the encoder's latents and of the pixels decoded on that same device.
`decode` decodes the streams on its own device and prints, per stream, whether the latents are
identical (they must be: the entropy path is integer, docs/codec.md) and how far the pixels
differ (the synthesis transform is float, so a few may move by rounding).
On a device lease, tar OUT_DIR into $OUT (one file) to bring it back.
Default images: scikit-image's photos (ctc dataset "skimage").
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ctc.datasets import resolve_dataset
from nic import codec, zoo
from nic.bitstream import BitstreamError
from nic.image_io import read_rgb8

RATES = (0.0, 2.5, 5.0, 9.0)


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def encode_all(
    out: Path, device: str, images: str, limit: int | None, model_name: str | None
) -> None:
    model = zoo.load(model_name)
    model.net.to(device)
    out.mkdir(parents=True, exist_ok=True)
    manifest = {"device": device, "model": model.name, "streams": {}}
    for item in resolve_dataset(images).images[:limit]:
        name, image = item.name, item.load()
        for rate in RATES:
            if rate > model.num_rate_points - 1:
                continue
            stream = codec.encode(image, model, rate)
            file = f"{name}-r{rate:g}.nic"
            (out / file).write_bytes(stream)
            _, _, latents = codec.decode_latents(stream, model)
            manifest["streams"][file] = {
                "z": _sha(latents.z),
                "y": _sha(latents.y),
                "pixels": _sha(codec.decode(stream, model)),
            }
            Image.fromarray(codec.decode(stream, model)).save(out / f"{file}.png")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    print(f"{len(manifest['streams'])} streams encoded on {device} in {out}")


def decode_all(out: Path, device: str, model_name: str | None) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    model = zoo.load(model_name or manifest["model"])  # the model the streams were made with
    model.net.to(device)
    print(f"encoded on {manifest['device']}, decoded on {device}, model {model.name}")
    print(f"{'stream':28s} {'latents':>8s} {'pixels':>8s} {'max |diff|':>10s} {'changed':>8s}")
    exact = 0
    for file, want in manifest["streams"].items():
        stream = (out / file).read_bytes()
        try:
            _, _, latents = codec.decode_latents(stream, model)
        except BitstreamError as e:  # symbols went astray until the range decoder failed
            print(f"{file:28s} {'FAILED':>8s}  {e}")
            continue
        same = _sha(latents.z) == want["z"] and _sha(latents.y) == want["y"]
        exact += same
        pixels = codec.decode(stream, model)
        theirs = read_rgb8(out / f"{file}.png").astype(int)
        diff = np.abs(pixels.astype(int) - theirs)
        print(
            f"{file:28s} {'same' if same else 'DIFFER':>8s} "
            f"{'same' if _sha(pixels) == want['pixels'] else 'differ':>8s} "
            f"{diff.max():>10d} {np.mean(diff > 0):>8.4%}"
        )
    print(f"latents identical for {exact} of {len(manifest['streams'])} streams")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["encode", "decode"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda to encode)")
    parser.add_argument(
        "--images", default="skimage", help="a folder of images or a ctc dataset name to encode"
    )
    parser.add_argument("--limit", type=int, help="encode the first LIMIT images of --images")
    parser.add_argument(
        "--model",
        help="zoo model or model file to encode with (default: the zoo's default) or to decode"
        " with (default: the one named in the manifest)",
    )
    args = parser.parse_args()
    if args.action == "encode":
        encode_all(args.folder, args.device or "cuda", args.images, args.limit, args.model)
    else:
        decode_all(args.folder, args.device or "cpu", args.model)


if __name__ == "__main__":
    main()
