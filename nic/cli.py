"""`nic`: encode, decode and inspect nic bitstreams; list, train and export models.

Exit codes: 0 success, 1 failure (bad input, corrupt stream, unknown model), 2 usage error.
Failures print one line `nic: error: ...` on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
import warnings

import numpy as np

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
MAX_STREAM_BYTES = 1 << 28
"""256 MiB: the largest bitstream read (33.5 megapixels at 64 bpp)."""
TARGET_TOLERANCE = 0.05
"""--target-bpp promises a file within ±5 % of the target (the FVC per-image tolerance)."""


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / mse) if mse else float("inf")


def _finite(kind: str, positive: bool):
    """An argparse type: a finite float (and > 0 when `positive`), else a usage error."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not np.isfinite(value) or (positive and value <= 0):
            raise argparse.ArgumentTypeError(f"{kind} must be a finite positive number, got {text}")
        if value < 0:
            raise argparse.ArgumentTypeError(f"{kind} must be finite and >= 0, got {text}")
        return value

    return parse


def _pixel_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of pixels") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"the pixel budget must be >= 1, got {text}")
    return value


MAX_MEMORY_GIB = 2.0**40
"""The largest --max-memory (a budget beyond any machine: effectively none)."""


def _gibibytes(text: str) -> int:
    """A memory budget given in GiB, as bytes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of GiB") from None
    if not (math.isfinite(value) and 2**-30 <= value <= MAX_MEMORY_GIB):
        raise argparse.ArgumentTypeError(
            f"the memory budget must be a number of GiB from 2^-30 to 2^40, got {text}"
        )
    return int(value * 2**30)


def _refuse_overwriting(source: str, output: str, what: str) -> None:
    """Raise ValueError when `output` is `source` under another name (link, ../ path)."""
    if os.path.exists(output) and os.path.exists(source) and os.path.samefile(source, output):
        raise ValueError(f"{output}: the output would overwrite the {what}")


def _read_stream(path: str) -> bytes:
    from nic.files import read_file

    return read_file(path, MAX_STREAM_BYTES, "bitstream")


def _cmd_encode(args: argparse.Namespace) -> None:
    from nic import codec, zoo
    from nic.files import atomic_output
    from nic.image_io import read_rgb8

    if args.best_effort and args.target_bpp is None:
        raise UsageError("--best-effort goes with --target-bpp")
    _refuse_overwriting(args.input, args.output, "input image")
    image = read_rgb8(args.input, max_pixels=args.max_pixels)
    h, w = image.shape[:2]
    codec.check_pixel_budget(w, h, args.max_pixels)  # the padded area the codec works on
    model = zoo.load(args.model)
    if args.target_bpp is not None:
        from nic.ratecontrol import encode_to_target

        target = args.target_bpp
        low, high = (1 - TARGET_TOLERANCE) * target, (1 + TARGET_TOLERANCE) * target
        match = encode_to_target(image, model, target, low, high)
        data, rate = match.data, match.rate
        if not low <= match.bpp <= high:
            miss = f"{match.bpp:.4f} bpp ({100 * (match.bpp / target - 1):+.4g} %)"
            if not args.best_effort:
                raise ValueError(
                    f"target {target:g} bpp cannot be met within ±5 % on this image: the "
                    f"closest is {miss} at rate position {rate:g}; nothing written "
                    "(--best-effort writes it)"
                )
            warnings.warn(f"target {target:g} bpp missed: best effort {miss}", stacklevel=1)
    else:
        data, rate = codec.encode(image, model, args.rate_point, args.max_pixels), args.rate_point
    with atomic_output(args.output) as tmp:
        tmp.write_bytes(data)
    print(
        f"{args.output}: {len(data)} bytes, {8 * len(data) / (w * h):.4f} bpp "
        f"({model.name}, rate position {rate:g})"
    )


def _cmd_decode(args: argparse.Namespace) -> None:
    from nic import codec
    from nic.files import atomic_output
    from nic.image_io import check_lossless_suffix, write_rgb8

    check_lossless_suffix(args.output)  # before decoding: refuse early
    _refuse_overwriting(args.input, args.output, "input stream")
    image = codec.decode(
        _read_stream(args.input), args.model, args.max_pixels, max_memory=args.max_memory
    )
    with atomic_output(args.output) as tmp:
        write_rgb8(tmp, image)
    print(f"{args.output}: {image.shape[1]}x{image.shape[0]}")


def _cmd_info(args: argparse.Namespace) -> None:
    from nic import zoo
    from nic.bitstream import UNREGISTERED, unpack

    data = _read_stream(args.input)
    header, substreams = unpack(data)
    names = {e.index: e.name for e in zoo.entries()}
    info = {
        **header.describe(),
        "model": names.get(header.model_index)
        or (
            "a model file not in the zoo"
            if header.model_index == UNREGISTERED
            else f"zoo model #{header.model_index}, not in this nic's zoo"
        ),
        "bytes": len(data),
        "bpp": 8 * len(data) / (header.width * header.height),
        "substream_bytes": {
            "z": len(substreams[0]),
            "y": len(substreams[1]),
            **{f"tool {i}": len(s) for i, s in enumerate(substreams[2:])},
        },
    }
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:16s} {value}")


def _cmd_zoo(args: argparse.Namespace) -> None:
    from nic import zoo

    rows = []
    for entry in zoo.entries():
        model = zoo.load(entry.name)
        cfg = model.net.config
        params = sum(p.numel() for p in model.net.parameters())
        rows.append(
            {
                "name": entry.name,
                "index": entry.index,
                "description": entry.description,
                "rate_points": {k: lam for k, lam in enumerate(cfg.lambdas)},
                "architecture": (
                    f"masked multi-rate mean-scale hyperprior N={cfg.N} M={cfg.M}, "
                    f"{cfg.mask_block[0]}x{cfg.mask_block[1]} mask blocks"
                    if cfg.masked
                    else f"mean-scale hyperprior N={cfg.N} M={cfg.M}"
                ),
                "parameters": params,
                "file_bytes": entry.path.stat().st_size,
                "sha256": entry.sha256,
                "training": model.metadata.get("training", {}),
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    for r in rows:
        print(f"{r['name']}  ({r['description']})")
        print(f"  architecture  {r['architecture']}, {r['parameters']:,} parameters")
        print(f"  file          {r['file_bytes']:,} bytes, sha256 {r['sha256']}")
        lams = "  ".join(f"{k}:{lam:g}" for k, lam in r["rate_points"].items())
        print(f"  rate points   {lams}  (rate point: lambda)")
        t = r["training"]
        if t:
            print(
                f"  training      {t['steps']} steps, batch {t['batch']}, patch {t['patch']}, "
                f"{t['wall_time_s'] / 3600:.2f} h on {t['hardware'][-1]['hardware']}"
                + (f", {t['schedule']} schedule from {t['init']}" if t.get("init") else "")
            )


def _cmd_demo(args: argparse.Namespace) -> None:
    from skimage import data as skdata

    from nic import codec, zoo

    image = np.ascontiguousarray(skdata.astronaut())
    model = zoo.load(args.model)
    h, w = image.shape[:2]
    print(f"scikit-image astronaut.png, {w}x{h}, model {model.name}")
    print(
        f"{'rate point':>10} {'bytes':>8} {'bpp':>7} {'RGB PSNR dB':>12} {'enc s':>6} {'dec s':>6}"
    )
    for k in range(model.num_rate_points):
        t0 = time.perf_counter()
        stream = codec.encode(image, model, k)
        t1 = time.perf_counter()
        decoded = codec.decode(stream, model)
        t2 = time.perf_counter()
        print(
            f"{k:>10} {len(stream):>8} {8 * len(stream) / (w * h):>7.4f} "
            f"{_psnr(image, decoded):>12.2f} {t1 - t0:>6.2f} {t2 - t1:>6.2f}"
        )


def _cmd_train(args: argparse.Namespace) -> None:
    from dataclasses import replace

    from nic.train.trainer import TrainConfig, train

    config = TrainConfig.from_yaml(args.config)
    if args.precision:
        config = replace(config, precision=args.precision)
    path = train(
        config,
        max_minutes=args.max_minutes,
        fit_minutes=args.fit_minutes,
    )
    print(f"checkpoint: {path}")


def _cmd_prepare_data(args: argparse.Namespace) -> None:
    from nic.train.prepare import prepare_training_set

    s = prepare_training_set(args.sources, args.output, args.budget, args.crop, args.holdout)
    print(
        f"{args.output}: train/ {s.train_crops} crops of {s.train_photos} photos, holdout/ "
        f"{s.holdout_crops} of {s.held_out}, {s.bytes / 2**20:.1f} MiB, "
        f"{s.pixels / 1e6:.1f} Mpx, {s.seconds:.0f} s ({s.photos} photos found, "
        f"{s.too_small} too small, {s.halved} JPEGs halved)"
    )
    if s.train_crops == 0:
        raise ValueError(
            f"{args.output}: no training crop was packed (photos smaller than --crop "
            f"{args.crop}, or --budget {args.budget:g} MiB too small for one crop)"
        )


def _cmd_export(args: argparse.Namespace) -> None:
    import torch

    from nic.train.export import export_checkpoint

    dtype = {"float32": torch.float32, "float16": torch.float16}[args.dtype]
    digest = export_checkpoint(
        args.checkpoint, args.output, args.name, dtype, data_description=args.data_description
    )
    print(f"{args.output}: sha256 {digest}")


def _add_max_pixels(p: argparse.ArgumentParser) -> None:
    from nic.bitstream import DEFAULT_MAX_PIXELS

    p.add_argument(
        "--max-pixels",
        type=_pixel_count,
        default=DEFAULT_MAX_PIXELS,
        help="largest image to code, in pixels of the image padded to multiples of 64; default "
        f"{DEFAULT_MAX_PIXELS:,}",
    )


def _add_max_memory(p: argparse.ArgumentParser) -> None:
    from nic.bitstream import DEFAULT_MAX_MEMORY

    p.add_argument(
        "--max-memory",
        type=_gibibytes,
        default=DEFAULT_MAX_MEMORY,
        metavar="GIB",
        help="most working memory the decode may need, in GiB, estimated from the stream's "
        f"header before decoding (default {DEFAULT_MAX_MEMORY / 2**30:g})",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nic", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("encode", help="encode an image (PNG, PPM, ...) to a nic bitstream")
    p.add_argument("input", help="image file; non-RGB inputs are converted with a warning")
    p.add_argument("output", help="bitstream file to write")
    p.add_argument("--model", help="zoo model name or model file (default: the zoo default)")
    rate = p.add_mutually_exclusive_group()
    rate.add_argument(
        "--rate-point",
        type=_finite("the rate point", positive=False),
        default=3,
        help="rate point K (0 = fewest bits), fractions interpolate between points (default 3)",
    )
    rate.add_argument(
        "--target-bpp",
        type=_finite("the target bpp", positive=True),
        help="choose the rate to land within 5 %% of this bpp; exit 1 if it cannot",
    )
    p.add_argument(
        "--best-effort",
        action="store_true",
        help="with --target-bpp: write the closest file, with a warning, when 5 %% is out of reach",
    )
    _add_max_pixels(p)
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("decode", help="decode a nic bitstream to an image")
    p.add_argument("input", help="bitstream file")
    p.add_argument("output", help="image to write (.png, .ppm, .bmp or .tif: lossless)")
    p.add_argument(
        "--model",
        help="model file (or zoo name) to decode with; it must be the one the stream names",
    )
    _add_max_pixels(p)
    _add_max_memory(p)
    p.set_defaults(func=_cmd_decode)

    p = sub.add_parser("info", help="print a bitstream's header fields")
    p.add_argument("input", help="bitstream file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("zoo", help="list the trained models, rate points, sizes and hashes")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_zoo)

    p = sub.add_parser("demo", help="code scikit-image's astronaut photo at every rate point")
    p.add_argument("--model", help="zoo model name or model file")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("train", help="train or resume training from a YAML config")
    p.add_argument("config", help="training config (see docs/training.md)")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--max-minutes",
        type=_finite("--max-minutes", positive=True),
        help="stop (with a checkpoint) after this long",
    )
    budget.add_argument(
        "--fit-minutes",
        type=_finite("--fit-minutes", positive=True),
        help="stop after this long, with `steps` fitted so the learning-rate decay ends then",
    )
    p.add_argument(
        "--precision",
        choices=["fp32", "tf32", "bf16"],
        help="override the config's GPU precision (bf16: autocast, rates in float32)",
    )
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "prepare-data",
        help="pack detailed full-resolution crops of training photos (lossless WebP) for a GPU "
        "job: OUTPUT/train/, OUTPUT/holdout/",
    )
    p.add_argument("sources", nargs="+", help="image files or folders")
    p.add_argument("--output", required=True, help="folder to write")
    p.add_argument(
        "--budget", type=_finite("--budget", True), default=38.0, metavar="MIB",
        help="most MiB of crops in all (default 38)",
    )  # fmt: skip
    p.add_argument("--crop", type=int, default=256, help="crop side, multiple of 64 (default 256)")
    p.add_argument(
        "--holdout", type=_finite("--holdout", False), default=5.0, metavar="PERCENT",
        help="share of the photos held out, by a hash of the file name (default 5)",
    )  # fmt: skip
    p.set_defaults(func=_cmd_prepare_data)

    p = sub.add_parser("export", help="turn a training checkpoint into a model file")
    p.add_argument("checkpoint", help="checkpoint.pt from a training run")
    p.add_argument("output", help="model file to write (.pt)")
    p.add_argument("--name", required=True, help="the model's name (letters, digits, ._+-)")
    p.add_argument("--data-description", help="what the training data was, recorded in the file")
    p.add_argument(
        "--dtype",
        choices=["float32", "float16"],
        default="float32",
        help="storage precision of the weights",
    )
    p.set_defaults(func=_cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    from nic.bitstream import BitstreamError
    from nic.codec import ModelMismatchError
    from nic.image_io import ImageConversionWarning, ImageFormatError
    from nic.model_file import ModelFileError

    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.simplefilter("default", ImageConversionWarning)
    warnings.formatwarning = lambda msg, cat, *a, **k: f"nic: warning: {_printable(msg)}\n"
    try:
        args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, where it is handled below
    except UsageError as e:
        parser.error(str(e))  # exits 2
    except BrokenPipeError:  # `nic zoo | head`: the reader left; say nothing more
        _detach_stdout()
        return EXIT_OK
    except (
        BitstreamError,
        ModelMismatchError,
        ImageFormatError,
        ModelFileError,
        ValueError,
        OSError,  # a file that cannot be read or written (not found, full disk, bad name, ...)
    ) as e:
        _detach_stdout()  # output that could not be written is not retried at exit
        _fail(str(e))
        return EXIT_FAILURE
    except (MemoryError, RuntimeError) as e:
        if isinstance(e, RuntimeError) and "can't allocate memory" not in str(e):
            raise  # a RuntimeError other than torch's allocator failing is a bug: show it
        _fail("out of memory; lower --max-pixels or free memory")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        _fail("interrupted", prefix="nic: ")
        return 130
    return EXIT_OK


class UsageError(ValueError):
    """Options that do not go together: exit status 2, like argparse's own errors."""


def _printable(text: object) -> str:
    """`text` with control characters escaped (a file name could hold a newline or a terminal
    escape), so that a message stays one honest line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def _fail(message: str, prefix: str = "nic: error: ") -> None:
    print(prefix + _printable(message), file=sys.stderr)


def _detach_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    sys.exit(main())
