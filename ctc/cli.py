"""`ctc`: run common test conditions, read results, fetch datasets.

Exit status: 0 success; 2 usage error (bad arguments, unknown condition/codec/dataset, invalid
condition file, an image that is not 8-bit RGB, no results in a folder); 1 failure while
working (a codec that was asked for by name failed to load, a job failed, a download or
checksum failed, the output folder is in use or not writable); 130 interrupted. Errors are
one line on stderr, without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ctc import condition as conditions
from ctc import fetch, registry, results, runner
from ctc.datasets import DatasetError, data_home
from ctc.images import ImageError
from ctc.store import FILENAME, Store

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """The user asked for something that does not exist or is invalid."""


def _error(message: str) -> None:
    print(f"ctc: error: {message}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"ctc: warning: {message}", file=sys.stderr)


def cmd_run(args: argparse.Namespace) -> int:
    cond = conditions.load_condition(args.condition)
    names = [n for arg in args.codec or [] for n in arg.split(",") if n]
    unknown = sorted(set(names) - set(registry.registered()))
    if unknown:
        known = ", ".join(registry.registered())
        raise UsageError(f"unknown codec {unknown[0]!r} (registered: {known})")
    summary = runner.run(
        cond,
        codecs=names or None,
        dataset=args.dataset,
        jobs=args.jobs,
        out=args.out,
        progress=False if args.no_progress else None,
    )
    for message in summary.codec_errors.values():
        (_error if names else _warn)(f"{message}; skipped")
    for key, message in summary.failures:
        codec, _, image, _, target, _ = key
        _error(f"{codec} {image} {target:g} bpp: {message}")
    print(
        f"ctc: {summary.condition.name}: {summary.total} jobs, {summary.skipped} already done, "
        f"{summary.done} done now, {len(summary.failures)} failed; results in {summary.out}",
        file=sys.stderr,
    )
    explicit_codec_failed = bool(names and summary.codec_errors)
    return EXIT_FAILURE if summary.failures or explicit_codec_failed else EXIT_OK


def cmd_results(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if not (folder / FILENAME).is_file():
        raise UsageError(f"no results in {folder} (no {FILENAME})")
    with Store(folder) as store:
        rows = store.results()
        records = {r["condition_hash"]: r["record"]["condition"] for r in store.runs()}
        failures = store.failures()
    if args.csv:
        results.write_csv(rows, sys.stdout)
        return EXIT_OK
    if not rows:
        print("no finished jobs yet")
    else:
        print(results.format_table(rows, results.ROW_COLUMNS))
        print()
        print(results.format_table(results.summarize(rows, records), results.SUMMARY_COLUMNS))
        print()
        versions = sorted({(r["codec"], r["codec_version"]) for r in rows})
        for codec, ver in versions:
            print(f"{codec}: {ver}")
    for f in failures:
        print(f"failed: {f['codec']} {f['image']} {f['target_bpp']:g} bpp: {f['message']}")
    return EXIT_OK


def cmd_fetch(args: argparse.Namespace) -> int:
    if args.name not in fetch.REMOTES:
        known = ", ".join(fetch.REMOTES)
        raise UsageError(f"unknown dataset {args.name!r} (fetchable: {known})")
    remote = fetch.REMOTES[args.name]
    dest = Path(args.dest) if args.dest else data_home() / remote.name

    def report(file: str, status: str) -> None:
        print(f"{file}: {status}", file=sys.stderr)

    fetch.fetch(remote, dest, base_url=args.base_url, timeout=args.timeout, on_file=report)
    print(f"ctc: {remote.name}: {len(remote.files)} images verified in {dest}", file=sys.stderr)
    return EXIT_OK


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ctc",
        description="Common test conditions for image codecs: rate-matched batches, metrics, "
        "results store.",
        epilog="Exit status: 0 ok, 1 failure while working, 2 usage error, 130 interrupted.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="run a test condition",
        description="Encode every image of the dataset at every target bpp of the condition "
        "with every codec, store bitstreams and results in the output folder; finished jobs "
        "are skipped, so an interrupted run resumes where it stopped.",
    )
    p.add_argument(
        "condition",
        metavar="CONDITION",
        help=f"bundled name ({', '.join(conditions.bundled())}) or a YAML file",
    )
    p.add_argument(
        "--codec",
        action="append",
        metavar="NAME",
        help="codec to run (repeatable or comma-separated; default: the condition's codecs "
        "and anchors; registered: " + ", ".join(registry.registered()) + ")",
    )
    p.add_argument("--dataset", metavar="NAME|DIR", help="skimage, kodak, or a folder of images")
    p.add_argument("-j", "--jobs", type=_positive_int, default=1, metavar="N",
                   help="parallel worker processes (default 1)")  # fmt: skip
    p.add_argument("--out", metavar="DIR", help="output folder (default: the condition's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "results",
        help="print the results of an output folder",
        description="Per-image rows, then one line per codec and target with means and the "
        "CLIC dataset PSNR.",
    )
    p.add_argument("dir", metavar="DIR", help="output folder of `ctc run`")
    p.add_argument("--csv", action="store_true", help="every column of every row, as CSV")
    p.set_defaults(func=cmd_results)

    p = sub.add_parser("dataset", help="dataset commands", description="Dataset commands.")
    dsub = p.add_subparsers(dest="dataset_command", required=True, metavar="COMMAND")
    f = dsub.add_parser(
        "fetch",
        help="download a public dataset and verify its pixel checksums",
        description="Download a public dataset and verify each image's pixels against the "
        "pinned sha256; files already present and verified are kept.",
    )
    f.add_argument("name", metavar="NAME", help=", ".join(fetch.REMOTES))
    f.add_argument("--dest", metavar="DIR",
                   help=f"where to put it (default: {data_home()}/NAME)")  # fmt: skip
    f.add_argument("--base-url", metavar="URL", help="a mirror to download from instead")
    f.add_argument("--timeout", type=float, default=60.0, metavar="S",
                   help="per-request timeout in seconds (default 60)")  # fmt: skip
    f.set_defaults(func=cmd_fetch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UsageError, conditions.ConditionError, DatasetError, ImageError) as e:
        _error(str(e))
        return EXIT_USAGE
    except (runner.RunError, registry.CodecLoadError, fetch.FetchError, OSError) as e:
        _error(str(e))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
