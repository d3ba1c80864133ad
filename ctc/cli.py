"""`ctc`: run common test conditions, read results, write reports, measure complexity, fetch
datasets.

Exit status: 0 success; 2 usage error (bad arguments, unknown condition/codec/dataset, invalid
condition file, an image that is not 8-bit RGB, no results in a folder); 1 failure while
working (a codec that was asked for by name failed to load, a job failed, a download or
checksum failed, the output folder is in use or not writable, its results store is not one or
is damaged); 130 interrupted. Errors are one line on stderr, without a traceback. A command
whose output is read by a pipe that closes early (`ctc results --csv | head`) stops quietly
with status 0.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import math
import os
import re
import select
import signal
import sys
import threading
import urllib.parse
import warnings
from collections.abc import Callable
from pathlib import Path

from ctc import condition as conditions
from ctc import fetch, registry, results, runner
from ctc.datasets import DatasetError, DatasetWarning, data_home
from ctc.executors import Scheduler, parse_scheduler
from ctc.files import NotASmallFileError, read_small_file
from ctc.images import MAX_PIXELS, ImageError, load_image
from ctc.store import FILENAME, Store, StoreError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process that SIGTERM ended


class UsageError(Exception):
    """The user asked for something that does not exist or is invalid."""


def _printable(text: str, keep: str = "") -> str:
    """`text` with control characters other than `keep` escaped (a file name may hold a newline
    or a terminal escape), so that a message says only what it means to."""
    return "".join(c if c.isprintable() or c in keep else repr(c)[1:-1] for c in text)


def _error(message: str) -> None:
    # Newlines kept: a dataset error lists one image a line (each escaped in ctc.datasets).
    print(f"ctc: error: {_printable(message, keep=chr(10))}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"ctc: warning: {_printable(message)}", file=sys.stderr)


def _on_threads(command: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """`command` with torch on its --threads in this process: the threads that the codecs it
    measures run on, and that the measurement records (and caches under)."""

    @functools.wraps(command)
    def with_threads(args: argparse.Namespace) -> int:
        with runner.threads_used(args.threads):
            return command(args)

    return with_threads


def cmd_run(args: argparse.Namespace) -> int:
    cond = conditions.load_condition(args.condition)
    names = [n for arg in args.codec or [] for n in arg.split(",") if n]
    if args.codec and not names:
        raise UsageError("--codec names no codec")
    for name in names:
        try:
            _codec_spec(name)
        except argparse.ArgumentTypeError as e:
            raise UsageError(f"--codec: {e}") from None
    unknown = sorted(n for n in set(names) - set(registry.registered()) if ":" not in n)
    if unknown:
        known = ", ".join(registry.registered())
        raise UsageError(
            f"unknown codec {unknown[0]!r} (registered: {known}; a class that is not registered "
            "is named MODULE:CLASS)"
        )
    cluster = args.scheduler
    if cluster and args.jobs:
        raise UsageError("-j does not go with --scheduler: local:N says how many workers start")
    if cluster and cluster.address and args.memory:
        raise UsageError("--memory plans workers here; a cluster's workers have their own")
    if args.worker_out and not cluster:
        raise UsageError("--worker-out goes with --scheduler")
    if args.worker_out and not Path(args.worker_out).is_absolute():
        raise UsageError(f"--worker-out must be an absolute path, got {args.worker_out!r}")
    jobs = (cluster.local_workers if cluster else args.jobs) or 1
    cpus = os.cpu_count() or 1
    if (not cluster or cluster.local_workers) and jobs * args.threads > cpus:
        asked = f"local:{jobs}" if cluster else f"-j {jobs}"
        _warn(
            f"{asked} x --threads {args.threads} asks for more than this machine's {cpus} "
            "CPUs: the jobs will compete for them and their times will suffer"
        )
    try:
        with _sigterm_interrupts():
            summary = _run_condition(cond, names, jobs, cluster, args)
    except _Terminated:
        _error("terminated")
        return EXIT_TERMINATED
    for message in summary.codec_errors.values():
        (_error if names else _warn)(f"{message}; skipped")
    for key, message in summary.failures:
        codec, _, image, _, target, _ = key
        _error(f"{codec} {image} {target:g} bpp: {message}")
    summary_line = (
        f"{summary.condition.name}: {summary.total} jobs, "
        f"{summary.skipped - summary.frozen} already done, "
        f"{summary.frozen} from frozen anchor results, {summary.done} done now, "
        f"{len(summary.failures)} failed; results in {summary.out}"
    )
    if summary.reconstructed:
        summary_line += f"; {summary.reconstructed} reconstructions decoded from kept bitstreams"
    summary_line += f"; {_workers_text(summary.workers, summary.threads)}"
    if summary.scheduler:
        summary_line += f" (Dask, {summary.scheduler})"
    print(f"ctc: {_printable(summary_line)}", file=sys.stderr)
    explicit_codec_failed = bool(names and summary.codec_errors)
    return EXIT_FAILURE if summary.failures or explicit_codec_failed else EXIT_OK


class _Terminated(KeyboardInterrupt):
    """SIGTERM (what Slurm, a job scheduler's time limit or `kill` sends) in `ctc run`: raised
    like Ctrl-C's KeyboardInterrupt, so that the run stops the same way (its workers or cluster
    closed, the run recorded as interrupted), then reported as terminated."""


@contextlib.contextmanager
def _sigterm_interrupts():
    """Within: SIGTERM raises _Terminated in the main thread (once; a second one during the
    clean-up is ignored). Elsewhere than the main thread, no handler can be set: nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_condition(
    cond: conditions.Condition,
    names: list[str],
    jobs: int,
    cluster: Scheduler | None,
    args: argparse.Namespace,
) -> runner.RunSummary:
    """`ctc run`'s call of the runner, with its arguments."""
    return runner.run(
        cond,
        codecs=names or None,
        dataset=args.dataset,
        jobs=jobs,
        out=args.out,
        progress=False if args.no_progress else None,
        frozen=not args.no_frozen,
        max_pixels=args.max_pixels,
        keep_reconstructions=args.keep_reconstructions,
        threads=args.threads,
        memory=None if args.memory is None else round(args.memory * 1e9),
        on_plan=_say_plan,
        scheduler=None if cluster is None else str(cluster),
        worker_out=args.worker_out,
        retries=args.retries,
    )


def _say_plan(plan: runner.WorkerPlan) -> None:
    """A worker plan's note (fewer workers than asked for), a warning where one does not fit."""
    if plan.fits:
        print(f"ctc: {_printable(plan.note or '')}", file=sys.stderr, flush=True)
    else:
        _warn(plan.note or "")


def _workers_text(plan: runner.WorkerPlan | None, threads: int) -> str:
    """'2 workers (4 asked for; memory), 1 torch thread each': what the run's times were
    taken on."""
    workers = plan.workers if plan else 1
    text = f"{workers} worker{'s' * (workers != 1)}"
    if plan and plan.requested != plan.workers:
        text += f" ({plan.requested} asked for; memory)"
    return f"{text}, {threads} torch thread{'s' * (threads != 1)} each"


def cmd_results(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    if not (folder / FILENAME).is_file():
        raise UsageError(f"no results in {folder} (no {FILENAME})")
    classes = ()
    if args.dataset:
        from ctc.datasets import dataset_classes

        classes = dataset_classes(args.dataset)  # a ManifestError is a usage error
    with Store(folder) as store:
        rows = store.results()
        runs = store.runs()
        failures = store.failures()
    records = {r["condition_hash"]: r["record"].get("condition", {}) for r in runs}
    if not classes:  # the classes a run recorded (its dataset's manifest), the latest first
        from ctc.datasets import classes_from_record

        found = (classes_from_record(r["record"].get("dataset")) for r in reversed(runs))
        classes = next((c for c in found if c), ())
    if args.csv:
        results.write_csv(rows, sys.stdout)
        return EXIT_OK
    if not rows:
        print("no finished jobs yet")
    else:
        print(results.format_table(rows, results.ROW_COLUMNS))
        print()
        if classes:
            lines = results.summarize_classes(rows, records, classes)
            print(results.format_table(lines, results.CLASS_SUMMARY_COLUMNS))
            outside = results.unclassified(rows, classes)
            if outside:
                print(f"in no class (only in 'all'): {', '.join(outside)}")
        else:
            print(results.format_table(results.summarize(rows, records), results.SUMMARY_COLUMNS))
        print()
        _print_clic(rows, runs)
        from ctc.report.data import codec_label

        versions = sorted({(r["codec"], r["codec_version"]) for r in rows})
        for codec, ver in versions:
            print(f"{codec}: {ver}")
            label = codec_label(codec, ver)  # what runs, stand-in or not, where the codec says
            if label != codec:
                print(f"{' ' * len(codec)}  what runs: {label}")
    for f in failures:
        print(f"failed: {f['codec']} {f['image']} {f['target_bpp']:g} bpp: {f['message']}")
    return EXIT_OK


def _print_clic(rows: list, runs: list) -> None:
    """The CLIC verdicts of the store's CLIC conditions (ctc.clic.evaluate), if it has any."""
    from ctc.clic import evaluate

    outcomes = evaluate.judge_store(rows, runs)
    if outcomes:
        print("CLIC (one point per image chosen by `ctc clic allocate`):")
        print("\n".join(evaluate.outcome_table(outcomes)))
        print()


URL_SCHEMES = ("http", "https", "ftp", "file")


def cmd_export(args: argparse.Namespace) -> int:
    from ctc import export

    try:
        written = export.export(
            args.dir,
            args.dest,
            layout=args.layout,
            condition=args.condition,
            codecs=[n for arg in args.codec or [] for n in arg.split(",") if n] or None,
            force=args.force,
        )
    except export.ExportError as e:
        raise UsageError(str(e)) from None
    print(f"ctc: {_printable(f'{written} rows exported to {args.dest}')}", file=sys.stderr)
    return EXIT_OK


def cmd_fetch(args: argparse.Namespace) -> int:
    if args.name not in fetch.REMOTES:
        known = ", ".join(fetch.REMOTES)
        raise UsageError(f"unknown dataset {args.name!r} (fetchable: {known})")
    remote = fetch.REMOTES[args.name]
    if args.base_url is not None and not _usable_url(args.base_url):
        raise UsageError(
            f"--base-url: expected an http, https, ftp or file URL, got {args.base_url!r}"
        )
    dest = Path(args.dest) if args.dest else data_home() / remote.name

    def report(file: str, status: str) -> None:
        print(f"{file}: {status}", file=sys.stderr)

    fetch.fetch(remote, dest, base_url=args.base_url, timeout=args.timeout, on_file=report)
    print(f"ctc: {remote.name}: {len(remote.files)} images verified in {dest}", file=sys.stderr)
    return EXIT_OK


def cmd_clic_package(args: argparse.Namespace) -> int:
    codec = registry.load_codec(args.codec)
    build = getattr(codec, "decoder_package", None)
    if not callable(build):
        raise UsageError(f"codec {args.codec!r} cannot package its decoder for CLIC")
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"{args.folder}: not a folder of streams")
    limit = None
    if args.condition is not None:
        track = conditions.load_condition(args.condition).clic
        if track is None:
            raise UsageError(f"--condition {args.condition}: not a CLIC condition")
        limit = track.max_decoder_bytes
        if limit is None:
            _warn(f"{args.condition} states no limit on the decoder's size")
    try:
        line = build(args.out, str(folder))
    except ValueError as e:
        _error(str(e))
        return EXIT_FAILURE
    print(f"{args.out}: {line}", file=sys.stderr)
    size = Path(args.out).stat().st_size
    if limit is not None and size > limit:
        _error(f"{args.out}: {size:,} bytes, over the {limit:,} bytes {args.condition} allows "
               "for the decoder with its model (the zip is kept)")  # fmt: skip
        return EXIT_FAILURE
    if limit is not None:
        print(f"{args.out}: {size:,} bytes, within {args.condition}'s {limit:,}", file=sys.stderr)
    return EXIT_OK


def cmd_clic_allocate(args: argparse.Namespace) -> int:
    from ctc.clic import evaluate

    folder = Path(args.dir)
    if not (folder / FILENAME).is_file():
        raise UsageError(f"no results in {folder} (no {FILENAME})")
    if args.bpp is not None and args.out is None:
        raise UsageError("--bpp chooses the budget that --out writes; give --out too")
    with Store(folder) as store:
        rows, runs = store.results(), store.runs()
    runs = _clic_runs(folder, runs, args.condition)
    try:
        outcomes = evaluate.judge_store(rows, runs, args.budget or ())
    except ValueError as e:
        raise UsageError(f"--budget: {e}") from None
    if args.codec:
        outcomes = [o for o in outcomes if o.codec == args.codec]
        if not outcomes:
            raise UsageError(f"{folder}: no rows of codec {args.codec!r} in the CLIC run")
    if not outcomes:
        raise UsageError(f"{folder}: the CLIC run has no finished rows yet")
    status = EXIT_OK
    if args.out is not None:  # written before anything is printed: a reader that goes away
        status = _write_submission(outcomes, folder, args)  # early cannot stop it
    print("\n".join(evaluate.outcome_table(outcomes)))
    return status


def _write_submission(outcomes: list, folder: Path, args: argparse.Namespace) -> int:
    """Write the submission of the one outcome that --codec and --bpp select
    (ctc.clic.evaluate); the exit status."""
    from ctc.clic.evaluate import submission_csv, write_submission

    codecs = sorted({o.codec for o in outcomes})
    budgets = sorted({o.budget.bpp for o in outcomes if o.budget})
    if args.bpp is not None:
        if not budgets:
            raise UsageError("--bpp: the transparent track has no budgets to choose from")
        outcomes = [o for o in outcomes if o.budget and o.budget.bpp == args.bpp]
        if not outcomes:
            shown = ", ".join(f"{b:g}" for b in budgets)
            raise UsageError(f"--bpp {args.bpp:g}: not a budget of the track ({shown} bpp)")
    if len(codecs) > 1:
        raise UsageError(f"--out writes one submission: choose one codec with --codec "
                         f"({', '.join(codecs)})")  # fmt: skip
    if len(outcomes) > 1:
        shown = ", ".join(f"{b:g}" for b in budgets)
        raise UsageError(f"--out writes one submission: choose one budget with --bpp ({shown})")
    try:
        written = write_submission(outcomes[0], folder, args.out)
    except (ValueError, OSError) as e:
        _error(str(e))
        return EXIT_FAILURE
    said = f"{written} streams written to {args.out}, the choice to {submission_csv(args.out)}"
    print(f"ctc: {_printable(said)}", file=sys.stderr)
    return EXIT_OK


def _clic_runs(folder: Path, runs: list, condition: str | None) -> list:
    """The runs of the one CLIC condition to judge: `condition`, or the only one the folder
    has; a usage error where there is none or a choice to make."""
    from ctc.clic.evaluate import track_of

    def name(run: dict) -> str | None:
        return run["record"].get("condition", {}).get("name")

    names = sorted({name(r) for r in runs if track_of(r["record"].get("condition", {}))})
    if condition is None and len(names) > 1:
        raise UsageError(
            f"{folder}: runs of several CLIC conditions ({', '.join(names)}); choose one with "
            "--condition"
        )
    if condition is not None and condition not in names:
        raise UsageError(
            f"{folder}: no run of a CLIC condition named {condition!r} (CLIC conditions run "
            f"there: {', '.join(names) or 'none'})"
        )
    if not names:
        raise UsageError(
            f"{folder}: no run of a CLIC condition there (clic2019_lowrate, "
            "clic2019_transparent, clic2021_image, or a condition with a clic block)"
        )
    return [r for r in runs if name(r) == (condition or names[0])]


_BYTES = re.compile(r"[0-9]{1,15}|[0-9]{1,3}(?:,[0-9]{3}){1,4}|[0-9]{1,3}(?:_[0-9]{3}){1,4}")
"""A number of bytes as digits, or digits grouped by thousands with commas or underscores
(ASCII digits only, at most 15 of them)."""


def _budget(text: str) -> int:
    """A byte budget: a positive whole number of at most 15 digits."""
    shown = repr(text) if len(text) <= 40 else f"{text[:20]!r}... ({len(text)} characters)"
    if not _BYTES.fullmatch(text):
        raise argparse.ArgumentTypeError(
            f"expected a whole number of bytes such as 4722341 or 4,722,341, got {shown}"
        )
    value = int(text.replace(",", "").replace("_", ""))
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of bytes, got {shown}")
    return value


def _usable_url(url: str) -> bool:
    """Whether `url` parses as a URL of a scheme fetch can download (host and port included)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
    except ValueError:
        return False
    has_host = bool(parts.hostname) and " " not in parts.netloc
    return parts.scheme in URL_SCHEMES and (has_host or parts.scheme == "file")


def _complexity_progress(codec: str, step: str) -> None:
    """One stderr line per step of a complexity measurement (they take minutes at 4K); codec
    '' for a line about every codec."""
    subject = f"complexity of {_printable(codec)}" if codec else "complexity"
    print(f"ctc: {subject}: {_printable(step)}", file=sys.stderr, flush=True)


@_on_threads
def cmd_report(args: argparse.Namespace) -> int:
    from ctc import report
    from ctc.complexity_cache import ComplexityCache

    anchors = [a for arg in args.anchor or [] for a in arg.split(",") if a]
    if args.anchor and not anchors:
        raise UsageError("--anchor names no anchor")
    complexity = _complexity_file(args.complexity) if args.complexity else None
    picture = None
    if args.complexity_size and not args.no_complexity:
        from ctc.complexity import test_picture

        picture = test_picture(*args.complexity_size)
    try:
        result = report.build_report(
            args.dir,
            anchors or None,
            args.output,
            method=args.method,
            aggregation=args.aggregation,
            condition=args.condition,
            complexity=complexity,
            measure=not args.no_complexity,
            complexity_picture=picture,
            complexity_repeat=args.repeat,
            complexity_cache=None if args.no_cache else ComplexityCache(),
            remeasure=args.remeasure,
            progress=_complexity_progress,
            dataset=args.dataset,
            command=" ".join(["ctc", *sys.argv[1:]]),
        )
    except report.ReportError as e:
        raise UsageError(str(e)) from None
    if result.data.unfinished:
        _warn(result.data.unfinished)
    for warning in result.warnings:
        _warn(warning)
    print(_bd_table(result), file=sys.stdout)
    if result.clic:
        from ctc.clic.evaluate import outcome_table

        print("\nCLIC (the CLIC sheet):\n" + "\n".join(outcome_table(result.clic)))
    print(f"ctc: wrote {result.workbook}", file=sys.stderr)
    for path in result.plots:
        print(f"ctc: wrote {path}", file=sys.stderr)
    return EXIT_OK


@_on_threads
def cmd_compare(args: argparse.Namespace) -> int:
    """One tool against its anchor: BD-rates, EncT/DecT ratios, complexity deltas (ctc.compare),
    as Markdown (stdout or --markdown) and a one-sheet workbook (--xlsx)."""
    from ctc import compare
    from ctc.complexity_cache import ComplexityCache
    from ctc.report import ReportError

    for option, path in (("--xlsx", args.xlsx), ("--markdown", args.markdown)):
        problem = compare.output_problem(path) if path else None
        if problem:  # before the work: a directory, or a file where a folder should be
            raise UsageError(f"{option}: {problem}")
    complexity = _complexity_file(args.complexity) if args.complexity else None
    try:
        result = compare.compare(
            args.dir, args.tool, args.anchor, condition=args.condition, complexity=complexity,
            measure=not args.no_complexity, complexity_cache=ComplexityCache(),
            progress=_complexity_progress,
        )  # fmt: skip
    except ReportError as e:
        raise UsageError(str(e)) from None
    if result.data.unfinished:
        _warn(result.data.unfinished)
    workbook = args.xlsx or compare.default_workbook(args.dir, args.tool, args.anchor)
    problem = compare.output_problem(workbook)
    if problem:
        raise UsageError(f"workbook: {problem}; name another with --xlsx")
    compare.write_workbook(result, workbook)
    if args.markdown:
        compare.write_markdown(result, args.markdown)
        print(f"ctc: wrote {_printable(str(args.markdown))}", file=sys.stderr)
    else:
        print(compare.markdown(result), end="")
    print(f"ctc: wrote {_printable(str(workbook))}", file=sys.stderr)
    return EXIT_OK


MAX_COMPLEXITY_FILE_BYTES = 1 << 24
"""16 MiB: far more than `ctc complexity --json` writes for many codecs."""


def _complexity_file(path: str) -> list[dict]:
    """The measurements in a `ctc complexity --json` file (one, or a list of them)."""
    from ctc.complexity_cache import problem

    try:
        loaded = json.loads(read_small_file(path, MAX_COMPLEXITY_FILE_BYTES).decode("utf-8"))
    except NotASmallFileError as e:
        raise UsageError(f"complexity file {e}") from None
    except (OSError, ValueError, RecursionError) as e:
        raise UsageError(f"cannot read complexity file {path}: {e}") from None
    entries = loaded if isinstance(loaded, list) else [loaded]
    for number, entry in enumerate(entries, 1):
        wrong = problem(entry)
        if wrong:
            raise UsageError(
                f"complexity file {path}: entry {number} is not `ctc complexity --json` output "
                f"({wrong})"
            )
    return entries


def _bd_table(result) -> str:
    """The report's BD-rate table as aligned plain text: every range of the reported condition
    (ReportData.bd_ranges) with both aggregations, under a header that names every column."""
    ranges = result.data.bd_ranges

    def number(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.2f}"

    head = ["codec vs anchor", "metric"] + ["per-image", "curve"] * len(ranges)
    body = []
    for row in result.bd:
        cells = [f"{row.codec} vs {row.anchor}", row.metric.label]
        for bpp_range in ranges:
            cell = row.cells[bpp_range.name]
            cells += [number(cell.per_image_mean), number(cell.average_curve)]
        body.append(cells)
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    titles = [bpp_range.label for bpp_range in ranges]  # "low: 0.06–0.5 bpp", "all points"
    for n, text in enumerate(titles):  # a range's title fits over its two columns
        first = 2 + 2 * n
        widths[first + 1] = max(widths[first + 1], len(text) - widths[first] - 2)

    def line(cells: list[str]) -> str:
        left = [f"{c:<{w}}" for c, w in zip(cells[:2], widths, strict=False)]
        right = [f"{c:>{w}}" for c, w in zip(cells[2:], widths[2:], strict=True)]
        return "  ".join(left + right).rstrip()

    groups = [" " * (widths[0] + 2 + widths[1])]
    for n, text in enumerate(titles):
        groups.append(f"{text:>{widths[2 + 2 * n] + 2 + widths[3 + 2 * n]}}")
    table = [
        "BD-rate (%) of each codec against each anchor; negative: fewer bits at equal quality.",
        "per-image: mean of the per-image BD-rates; curve: BD-rate of the dataset-average curves.",
        "  ".join(groups).rstrip(),
        line(head),
        "-" * len(line(head)),
        *(line(cells) for cells in body),
    ]
    return "\n".join(table)


@_on_threads
def cmd_complexity(args: argparse.Namespace) -> int:
    from ctc import complexity
    from ctc.complexity_cache import ComplexityCache, make_key, measure_or_reuse, picture_key

    codec = registry.load_codec(args.codec)
    if args.image:
        picture = load_image(args.image)
        name_text = Path(args.image).name
    else:
        picture = complexity.test_picture(*args.size)
        name_text = f"astronaut mirrored to {args.size[0]}x{args.size[1]}"
    cache = None if args.no_cache else ComplexityCache()
    key = make_key(
        codec.name, codec.version(), picture_key(picture, name_text), args.knob, args.repeat
    )
    try:
        result = measure_or_reuse(
            codec, picture, [key], cache=cache, remeasure=args.remeasure, knob_value=args.knob,
            repeat=args.repeat, picture_name=name_text,
            say=lambda step: _complexity_progress(args.codec, step),
        )  # fmt: skip
    except complexity.ComplexityError as e:
        _error(str(e))
        return EXIT_FAILURE
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print(complexity.summary_text(result))
    return EXIT_OK


MAX_PICTURE_PIXELS = 1 << 26
"""The largest test picture (width x height) made for a complexity measurement: 8160 x 6120 fits."""
MAX_TIMEOUT_SECONDS = 86400.0
"""The longest --timeout, a day (sockets refuse far longer ones)."""


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, got {text!r}") from None
    if width < 1 or height < 1:
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    if width * height > MAX_PICTURE_PIXELS:
        raise argparse.ArgumentTypeError(
            f"expected at most {MAX_PICTURE_PIXELS:,} pixels, got {text} ({width * height:,})"
        )
    return width, height


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _above_zero_up_to(high: float, unit: str) -> Callable[[str], float]:
    """An argparse type: a finite number of `unit` above 0 and at most `high`."""

    def parse(text: str) -> float:
        value = _finite(text)
        if not 0 < value <= high:
            raise argparse.ArgumentTypeError(
                f"expected {unit} above 0 and at most {high:g}, got {text}"
            )
        return value

    return parse


_seconds = _above_zero_up_to(MAX_TIMEOUT_SECONDS, "seconds")


def _whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a whole number from `low` (to `high`, where given)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if high is None and value < low:
            raise argparse.ArgumentTypeError(f"expected at least {low}, got {value}")
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected {low} to {high}, got {value}")
        return value

    return parse


_positive_int = _whole_number(1)
_retries = _whole_number(0, runner.MAX_RETRIES)


def _scheduler(text: str) -> Scheduler:
    """An argparse type: a --scheduler address (tcp://HOST:PORT or local:N)."""
    try:
        return parse_scheduler(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _threads(text: str) -> int:
    """An argparse type: a torch thread count, 1 to runner.MAX_THREADS."""
    value = _positive_int(text)
    if value > runner.MAX_THREADS:
        raise argparse.ArgumentTypeError(f"expected at most {runner.MAX_THREADS}, got {value}")
    return value


MAX_MEMORY_GB = 1e6
"""The largest --memory, a petabyte (a larger figure is a typing error)."""


_gigabytes = _above_zero_up_to(MAX_MEMORY_GB, "GB")  # memory, 10^9 bytes


def _threads_option(p: argparse.ArgumentParser, what: str) -> None:
    """--threads N: torch threads of `what` (default runner.DEFAULT_THREADS)."""
    p.add_argument(
        "--threads",
        type=_threads,
        default=runner.DEFAULT_THREADS,
        metavar="N",
        help=f"torch threads of {what} (default {runner.DEFAULT_THREADS}: CTC times are "
        "single-threaded)",
    )


def _nonempty(text: str) -> str:
    """An argparse type: any text but an empty one (an empty value would mean the default)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def _codec_spec(text: str) -> str:
    """An argparse type: a codec spec of a valid form (NAME, NAME:ARGUMENT or MODULE:CLASS)."""
    if not registry.well_formed(text):
        raise argparse.ArgumentTypeError(
            f"expected NAME, NAME:ARGUMENT or MODULE:CLASS, got {text!r}"
        )
    return text


def _workbook_path(text: str) -> str:
    """An argparse type: a path ending in .xlsx that is not an existing non-regular file."""
    path = Path(_nonempty(text))
    if path.suffix.lower() != ".xlsx":
        raise argparse.ArgumentTypeError(f"expected a FILE.xlsx, got {text!r}")
    if path.exists() and not path.is_file():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a regular file")
    return text


def _complexity_options(p: argparse.ArgumentParser) -> None:
    """--complexity, --no-complexity and --threads, as `ctc report` and `ctc compare` take
    them."""
    p.add_argument(
        "--complexity",
        metavar="FILE.json",
        help="use this `ctc complexity --json` output for the codecs it measured",
    )
    p.add_argument(
        "--no-complexity",
        action="store_true",
        help="do not measure the codecs' complexity (nor read cached measurements)",
    )
    _threads_option(p, "the complexity measurements")


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
        help="codec to run: a registered NAME, NAME:ARGUMENT (nic:MODEL) or MODULE:CLASS of "
        "a class on the Python path or in the current folder (repeatable or comma-separated; "
        "default: the condition's codecs and anchors; registered: "
        + ", ".join(registry.registered())
        + ")",
    )
    p.add_argument(
        "--dataset",
        type=_nonempty,
        metavar="NAME|DIR",
        help="skimage, kodak, a folder of images, or a dataset manifest (.yaml) with classes",
    )
    p.add_argument("-j", "--jobs", type=_positive_int, metavar="N",
                   help="parallel worker processes (default 1); fewer run, with a line that "
                   "says so, where that many would not fit in memory with the largest "
                   "image")  # fmt: skip
    p.add_argument(
        "--scheduler",
        type=_scheduler,
        metavar="ADDRESS",
        help="run the jobs on a Dask cluster instead of local processes: tcp://HOST:PORT of a "
        "running scheduler, or local:N to start N Dask workers here (docs/cluster.md)",
    )
    p.add_argument(
        "--worker-out",
        type=_nonempty,
        metavar="DIR",
        help="with --scheduler: the output folder as the workers see it (an absolute path on a "
        "shared file system); they write bitstreams there instead of returning them",
    )
    p.add_argument(
        "--retries",
        type=_retries,
        default=0,
        metavar="N",
        help="run a job that fails again up to N times before recording it as failed (0 to "
        f"{runner.MAX_RETRIES}, default 0)",
    )
    _threads_option(
        p, "each job, in the run's process (-j 1) or in each worker; -j uses more cores"
    )
    p.add_argument(
        "--memory",
        type=_gigabytes,
        metavar="GB",
        help="plan the workers for this much memory (GB, 10^9 bytes; default: what the "
        "machine has available now)",
    )
    p.add_argument(
        "--out", type=_nonempty, metavar="DIR", help="output folder (default: the condition's)"
    )
    p.add_argument(
        "--max-pixels",
        type=_positive_int,
        default=MAX_PIXELS,
        metavar="N",
        help=f"largest original image (width x height) to read; default {MAX_PIXELS:,}",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-frozen",
        action="store_true",
        help="encode anchors even where matching frozen results exist (docs/anchors.md)",
    )
    p.add_argument(
        "--keep-reconstructions",
        action="store_true",
        help="also keep each decoded image as a PNG under DIR/reconstructions/ (finished jobs "
        "without one get it by decoding their bitstream); needed by `ctc export`",
    )
    p.set_defaults(func=cmd_run, writes_stdout=False)

    p = sub.add_parser(
        "export",
        help="write a run's bitstreams and reconstructions for another scorer",
        description="Copy the bitstreams and kept reconstructions of an output folder into "
        "OUT_DIR/bit/ and OUT_DIR/rec/ under JPEG AI's file names, with OUT_DIR/manifest.csv "
        "mapping each file to its row (docs/ctc.md, Submission layout).",
    )
    p.add_argument("dir", type=_nonempty, metavar="RUN_DIR", help="output folder of `ctc run`")
    p.add_argument("dest", type=_nonempty, metavar="OUT_DIR", help="folder to write (new or empty)")
    p.add_argument(
        "--layout", choices=["jpeg-ai"], required=True, help="file layout and naming: jpeg-ai"
    )
    p.add_argument(
        "--condition", type=_nonempty, metavar="NAME|HASH", help="only this condition's rows"
    )
    p.add_argument(
        "--codec",
        action="append",
        metavar="SPEC",
        help="only this codec's rows, as named in the store (repeatable or comma-separated)",
    )
    p.add_argument(
        "--force", action="store_true", help="write into OUT_DIR even if it is not empty"
    )
    p.set_defaults(func=cmd_export, writes_stdout=False)

    p = sub.add_parser(
        "results",
        help="print the results of an output folder",
        description="Per-image rows, then one line per codec and target with means and the "
        "CLIC dataset PSNR.",
    )
    p.add_argument("dir", type=_nonempty, metavar="DIR", help="output folder of `ctc run`")
    p.add_argument("--csv", action="store_true", help="every column of every row, as CSV")
    p.add_argument(
        "--dataset",
        type=_nonempty,
        metavar="MANIFEST",
        help="dataset manifest (.yaml) whose classes get summary lines of their own, each "
        "codec and target followed by the overall line (default: the classes the run "
        "recorded, if any); the images need not be here",
    )
    p.set_defaults(func=cmd_results, writes_stdout=True)

    p = sub.add_parser(
        "report",
        help="write the xlsx workbook, RD plots and BD-rate table of a run",
        description="Summary (BD-rates over the condition's bpp ranges, bd_ranges, and all "
        "points; tolerance; time ratios), per-codec results, RD charts, complexity and "
        "conditions, as an .xlsx workbook, with RD plots (PNG) next to it. Prints the BD-rate "
        "table.",
    )
    p.add_argument("dir", type=_nonempty, metavar="RUN_DIR", help="output folder of `ctc run`")
    p.add_argument(
        "--anchor",
        action="append",
        metavar="NAME|CSV",
        help="anchor: a codec of the run or a CSV of frozen rows (`ctc results "
        "--csv` format); repeatable or comma-separated (default: the condition's)",
    )
    p.add_argument(
        "-o",
        "--output",
        type=_workbook_path,
        metavar="FILE.xlsx",
        help="workbook path (default RUN_DIR/report.xlsx); plots go next to it",
    )
    p.add_argument(
        "--method",
        choices=("pchip", "cubic", "akima"),
        default="pchip",
        help="BD interpolation (default pchip, as the JVET sheet)",
    )
    p.add_argument(
        "--aggregation",
        choices=("per_image_mean", "average_curve"),
        default="per_image_mean",
        help="headline dataset aggregation (both are reported; default "
        "per_image_mean, as the FVC workbook)",
    )
    p.add_argument(
        "--condition",
        type=_nonempty,
        metavar="NAME|HASH",
        help="which condition of the folder (default: the latest run's)",
    )
    _complexity_options(p)
    p.add_argument(
        "--dataset",
        type=_nonempty,
        metavar="MANIFEST",
        help="a dataset manifest (.yaml) whose classes get BD-rates of their own (default: the "
        "classes the run recorded, if any)",
    )
    p.add_argument(
        "--complexity-size",
        type=_size,
        metavar="WxH",
        help="picture size for the complexity measurement (default: the run's largest image)",
    )
    p.add_argument(
        "--repeat",
        type=_positive_int,
        default=2,
        metavar="N",
        help="timed runs per operation in the complexity measurement (default 2)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="measure complexity without reading or writing the complexity cache",
    )
    p.add_argument(
        "--remeasure",
        action="store_true",
        help="measure complexity again and replace the cached measurements",
    )
    p.set_defaults(func=cmd_report, writes_stdout=True)

    p = sub.add_parser(
        "compare",
        help="compare one coding tool with its anchor: BD-rates, EncT/DecT, complexity",
        description="One table for a contribution: BD-rates of the tool against the anchor "
        "(every metric, the condition's BD ranges and all points, both aggregations, with the "
        "report's flags), EncT and DecT ratios (from the run's rows when both were timed on one "
        "machine, else from the complexity measurement), kMAC/pixel and parameters of encoder "
        "and decoder. Prints Markdown; writes a one-page workbook.",
    )
    p.add_argument("dir", type=_nonempty, metavar="RUN_DIR", help="output folder of `ctc run`")
    p.add_argument(
        "--tool",
        type=_codec_spec,
        required=True,
        metavar="SPEC",
        help="the codec with the tool on, as the run names it (NAME, NAME:ARGUMENT, MODULE:CLASS)",
    )
    p.add_argument(
        "--anchor",
        type=_codec_spec,
        required=True,
        metavar="SPEC",
        help="the codec with the tool off, as the run names it (its rows may be frozen)",
    )
    p.add_argument(
        "--condition",
        type=_nonempty,
        metavar="NAME|HASH",
        help="which condition of the folder (needed when it holds several)",
    )
    p.add_argument(
        "--xlsx",
        type=_workbook_path,
        metavar="OUT.xlsx",
        help="workbook path (default RUN_DIR/compare-TOOL-vs-ANCHOR.xlsx)",
    )
    p.add_argument(
        "--markdown",
        type=_nonempty,
        metavar="OUT.md",
        help="write the Markdown table here instead of printing it",
    )
    _complexity_options(p)
    p.set_defaults(func=cmd_compare, writes_stdout=True)

    p = sub.add_parser(
        "complexity",
        help="measure a codec's encoder and decoder complexity",
        description="Parameters (shared / independent / used per rate point), precision and "
        "memory, kMAC/pixel and GMAC per picture (torch FlopCounterMode), layer counts, peak "
        "memory, CPU (and GPU) times, platform and training information, from real encodes and "
        "decodes. A measurement is cached per codec version, picture, knob, repeat and machine "
        "and reused (docs/reporting.md).",
    )
    p.add_argument(
        "codec",
        type=_codec_spec,
        metavar="SPEC",
        help="a codec spec: a registered NAME, NAME:ARGUMENT (nic:MODEL, a zoo model name or "
        "model file) or MODULE:CLASS of a class on the Python path or in the current folder",
    )
    p.add_argument(
        "--size",
        type=_size,
        default=(3840, 2160),
        metavar="WxH",
        help="size of the test picture (default 3840x2160)",
    )
    p.add_argument("--image", metavar="PATH", help="measure on this image instead")
    p.add_argument(
        "--knob",
        type=_finite,
        metavar="V",
        help="knob value (rate point, quality) to code at (default: mid-range)",
    )
    p.add_argument(
        "--repeat",
        type=_positive_int,
        default=2,
        metavar="N",
        help="timed runs per operation (default 2; the median is reported)",
    )
    _threads_option(p, "the measured encodes and decodes")
    p.add_argument("--json", action="store_true", help="print the measurement as JSON")
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="measure without reading or writing the complexity cache",
    )
    p.add_argument(
        "--remeasure",
        action="store_true",
        help="measure even where a measurement is cached, and replace it",
    )
    p.set_defaults(func=cmd_complexity, writes_stdout=True)

    p = sub.add_parser(
        "clic", help="CLIC challenge commands", description="CLIC challenge commands."
    )
    csub = p.add_subparsers(dest="clic_command", required=True, metavar="COMMAND")
    c = csub.add_parser(
        "package",
        help="build the decoder zip a CLIC participant submits",
        description="Build the CLIC decoder submission: a zip holding `decode` (run with no "
        "arguments in the folder of the compressed files, it writes NAME.png for every "
        "NAME.nic there), the codec's decoder, its model and requirements.txt, working without "
        "the codec installed. Every stream in FOLDER must have been coded with that model.",
    )
    c.add_argument("folder", metavar="FOLDER", help="folder of the streams to submit (NAME.nic)")
    c.add_argument("--out", required=True, metavar="ZIP", help="the zip to write (replaced)")
    c.add_argument(
        "--codec",
        default="nic",
        type=_codec_spec,
        help="codec whose decoder to package, NAME or NAME:MODEL (default nic)",
    )
    c.add_argument(
        "--condition",
        metavar="NAME",
        help="a CLIC condition whose max_decoder_bytes the zip must respect (exit 1 if over)",
    )
    c.set_defaults(func=cmd_clic_package, writes_stdout=False)
    c = csub.add_parser(
        "allocate",
        help="choose one RD point per image for a CLIC track and judge the set",
        description="From a run of a CLIC condition (a sweep of targets per image), choose one "
        "point per image: the most aggregate PSNR within each byte budget (low-rate track), or "
        "the fewest total bytes meeting the PSNR and MS-SSIM floors (transparent track). "
        "Prints the totals, the verdict and the gain over aiming every image at the same "
        "rate; --out writes the chosen streams as a submission folder.",
    )
    c.add_argument("dir", metavar="DIR", help="run folder (with results.sqlite)")
    c.add_argument("--condition", metavar="NAME",
                   help="the CLIC condition, where the folder holds runs of several")  # fmt: skip
    c.add_argument("--codec", metavar="NAME", help="only this codec of the run")
    c.add_argument(
        "--budget",
        type=_budget,
        action="append",
        metavar="BYTES",
        help="an explicit budget in bytes (a published one), once per budget of the track in "
        "the order of its budgets_bpp; default floor(bpp x sum of H x W / 8) over the images",
    )
    c.add_argument("--out", metavar="FOLDER",
                   help="write the chosen streams (NAME.EXT per image) and allocation.csv to "
                   "this new or empty folder")  # fmt: skip
    c.add_argument("--bpp", type=float, metavar="BPP",
                   help="with --out, which budget of a several-budget track to write")  # fmt: skip
    c.set_defaults(func=cmd_clic_allocate, writes_stdout=True)

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
    f.add_argument("--timeout", type=_seconds, default=60.0, metavar="S",
                   help="per-request timeout in seconds (default 60)")  # fmt: skip
    f.set_defaults(func=cmd_fetch, writes_stdout=False)
    return parser


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe whose reader has left (`ctc results --csv | head`)."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)  # errors and hang-ups are reported regardless
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll, or no file behind stdout
        return False


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings meant for the user (a dataset's skipped entries) as one `ctc: warning:` line."""
    if issubclass(category, DatasetWarning):
        _warn(str(message))
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _dispatch(args)


def _dispatch(args: argparse.Namespace) -> int:
    if args.writes_stdout and sys.stdout is None:  # started with stdout closed (>&-)
        _error("standard output is closed: nothing to write the output to")
        return EXIT_FAILURE
    try:
        status = args.func(args)
        if sys.stdout is not None:
            sys.stdout.flush()  # a closed pipe shows here, where it is handled below
        return status
    except BrokenPipeError as e:
        # `ctc results | head`: the reader has what it wanted. run and fetch print on stderr
        # only, so a closed pipe there stopped the work: a failure.
        if args.writes_stdout and _stdout_reader_gone():
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_OK
        with contextlib.suppress(BrokenPipeError):  # stderr may be the closed pipe
            _error(str(e))
        return EXIT_FAILURE
    except (UsageError, conditions.ConditionError, DatasetError, ImageError) as e:
        _error(str(e))
        return EXIT_USAGE
    except (runner.RunError, registry.CodecLoadError, fetch.FetchError, StoreError, OSError) as e:
        _error(str(e))
        return EXIT_FAILURE
    except (MemoryError, RuntimeError) as e:
        if isinstance(e, RuntimeError) and "can't allocate memory" not in str(e):
            raise  # a RuntimeError other than torch's allocator failing is a bug: show it
        _error("out of memory; use a smaller picture or free memory")
        return EXIT_FAILURE
    except KeyboardInterrupt:
        _error("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
