"""CLIC tracks as conditions: parsing, judging a run's rows, `ctc clic allocate`, and the
verdicts in `ctc results` and `ctc report`."""

import csv
import math

import openpyxl
import pytest
from ctc_testing import write_condition

from ctc.cli import main
from ctc.clic.evaluate import judge
from ctc.clic.rules import budget_bytes
from ctc.condition import ConditionError, load_condition
from ctc.store import Store

SWEEP = {"min_percent": -10, "max_percent": 10, "scope": "dataset"}
METRICS = {"psnr_rgb": {}, "msssim_rgb": {}}


def clic_condition(folder, **overrides):
    spec = dict(
        name="tclic", targets_bpp=[0.5, 0.75, 1.0, 1.5, 2.0, 3.0], tolerance=SWEEP,
        metrics=METRICS, clic={"track": "low_rate", "budgets_bpp": [1.0, 1.5]},
    )  # fmt: skip
    spec.update(overrides)
    return write_condition(folder, **spec)


def test_bundled_clic_conditions():
    low = load_condition("clic2019_lowrate")
    assert low.tolerance_scope == "dataset" and low.clic.track == "low_rate"
    assert low.clic.budgets_bpp == (0.15,) and 0.15 in low.targets_bpp
    assert low.clic.max_decoder_bytes is None and set(low.metrics) == {"psnr_rgb", "msssim_rgb"}
    transparent = load_condition("clic2019_transparent")
    assert transparent.clic.track == "transparent" and transparent.clic.budgets_bpp == ()
    assert (transparent.clic.min_psnr, transparent.clic.min_msssim) == (40.0, 0.993)
    image = load_condition("clic2021_image")
    assert image.clic.budgets_bpp == (0.075, 0.15, 0.3)
    assert image.clic.max_decoder_bytes == 250_000_000
    assert set(image.clic.budgets_bpp) <= set(image.targets_bpp)
    assert load_condition("fvc").clic is None
    assert load_condition("clic2019_lowrate").to_dict()["clic"]["budgets_bpp"] == (0.15,)


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"clic": None, "tolerance": SWEEP}, "clic: expected dict, got None"),
        (
            {
                "clic": {"track": "low_rate", "budgets_bpp": [0.15]},
                "tolerance": {**SWEEP, "scope": "per_image"},
            },
            "scope: dataset goes with a clic block, and a clic block with it (scope is "
            "per_image, clic block present)",
        ),
        ({"clic": {"track": "x"}}, "clic.track: expected one of low_rate, transparent"),
        ({"clic": {"track": "low_rate"}}, "clic.budgets_bpp: a low_rate track needs at least"),
        (
            {"clic": {"track": "low_rate", "budgets_bpp": [0.1, 0.1]}},
            "distinct bpp values in (0, 48",
        ),
        ({"clic": {"track": "low_rate", "budgets_bpp": [-1]}}, "distinct bpp values in (0, 48"),
        ({"clic": {"track": "low_rate", "budgets_bpp": [1e308]}}, "distinct bpp values in (0, 4"),
        (
            {"clic": {"track": "low_rate", "budgets_bpp": [0.1], "min_psnr": 40}},
            "a low_rate track has budgets_bpp, not min_psnr",
        ),
        ({"clic": {"track": "transparent"}}, "needs min_psnr, min_msssim or both"),
        (
            {"clic": {"track": "transparent", "min_psnr": 40, "budgets_bpp": [0.1]}},
            "a transparent track has floors",
        ),
        ({"clic": {"track": "transparent", "min_msssim": 1.5}}, "expected an MS-SSIM in (0, 1)"),
        ({"clic": {"track": "transparent", "min_psnr": "40"}}, "clic.min_psnr: expected int"),
        (
            {"clic": {"track": "low_rate", "budgets_bpp": [0.1], "max_decoder_bytes": 0}},
            "clic.max_decoder_bytes: expected a number of bytes in 1..1e+12, got 0",
        ),
        ({"clic": {"track": "low_rate", "budgets_bpp": [0.1], "size": 1}}, "clic.size: unknown"),
        ({"metrics": {"msssim_rgb": {}}}, "metrics: the clic rules need psnr_rgb"),
        (
            {"clic": {"track": "transparent", "min_msssim": 0.99}, "metrics": {"psnr_rgb": {}}},
            "the clic rules need psnr_rgb and msssim_rgb",
        ),
    ],
)
def test_invalid_clic_blocks_name_the_field(tmp_path, overrides, message):
    with pytest.raises(ConditionError) as e:
        load_condition(clic_condition(tmp_path, **overrides))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_sweep_scope_without_a_clic_block_is_refused(tmp_path):
    with pytest.raises(ConditionError, match="scope is dataset, clic block absent"):
        load_condition(write_condition(tmp_path, tolerance=SWEEP))


# --- judging rows -------------------------------------------------------------------------

W, H = 64, 48


def row(image, target, nbytes, mse, msssim, codec="c"):
    """A result row of the fields judge reads: SSE from an MSE over 3 * W * H samples."""
    return dict(
        codec=codec, codec_version="1", image=image, image_sha256=f"sha-{image}",
        target_bpp=target, width=W, height=H, bytes=nbytes, bpp=8 * nbytes / (W * H),
        sse_rgb=round(mse * 3 * W * H), msssim_rgb=msssim, bitstream=f"b/{image}-{target}.x",
    )  # fmt: skip


def rd_rows():
    """Two images; 'flat' gains little from bytes, 'busy' a lot: allocation favours 'busy'."""
    flat = [(0.5, 190, 9.0, 0.990), (1.0, 380, 8.0, 0.992), (1.5, 570, 7.5, 0.993)]
    busy = [(0.5, 190, 90.0, 0.95), (1.0, 380, 30.0, 0.985), (1.5, 570, 12.0, 0.996)]
    return [row("flat", *p) for p in flat] + [row("busy", *p) for p in busy]


def low_rate(budgets=(1.0,)):
    return {"name": "t", "targets_bpp": [0.5, 1.0, 1.5],
            "clic": {"track": "low_rate", "budgets_bpp": list(budgets)}}  # fmt: skip


def test_low_rate_budget_allocation_beats_the_uniform_choice():
    (outcome,) = judge(rd_rows(), low_rate())
    assert outcome.budget.nbytes == budget_bytes(1.0, [W * H, W * H]) == 768
    assert outcome.budget.rule == "floor(1 x 6,144 pixels / 8)"
    assert outcome.verdict == "fits" and outcome.reason is None
    chosen = {r["image"]: r["target_bpp"] for r in outcome.chosen}
    assert chosen == {"flat": 0.5, "busy": 1.5}  # 190 + 570 = 760 <= 768 bytes
    assert outcome.totals.total_bytes == 760
    mse = (9.0 + 12.0) / 2  # the two images' SSE pooled over their samples
    assert outcome.totals.psnr == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-6)
    assert outcome.totals.msssim == pytest.approx((0.990 + 0.996) / 2)
    # uniform: both at 1.0 bpp (760 bytes fits): MSE (8 + 30) / 2
    assert outcome.uniform.target == 1.0 and outcome.uniform.total_bytes == 760
    assert outcome.gain_db == pytest.approx(10 * math.log10(19.0 / 10.5), abs=1e-6)


def test_explicit_budgets_and_the_infeasible_and_incomplete_verdicts():
    (given,) = judge(rd_rows(), low_rate(), budgets=[400])
    assert given.budget.rule == "given" and given.verdict == "fits"
    assert given.totals.total_bytes == 380 and given.uniform.target == 0.5
    (tight,) = judge(rd_rows(), low_rate(), budgets=[379])
    assert tight.verdict == "cannot fit" and "below 380" in tight.reason
    assert tight.chosen == () and tight.totals is None
    rows = rd_rows() + [{**r, "codec": "d"} for r in rd_rows() if r["image"] == "flat"]
    complete, partial = judge(rows, low_rate())
    assert complete.verdict == "fits"
    assert partial.verdict == "incomplete" and partial.codec == "d"
    assert partial.reason == "1 of 2 images have rows; missing: busy"
    no_sse = [{**r, "sse_rgb": None} if r["image"] == "flat" else r for r in rd_rows()]
    (blind,) = judge(no_sse, low_rate())
    assert blind.verdict == "incomplete" and "(psnr_rgb): flat" in blind.reason
    with pytest.raises(ValueError, match="2 budget"):
        judge(rd_rows(), low_rate(), budgets=[1, 2])
    with pytest.raises(ValueError, match="no CLIC rules"):
        judge(rd_rows(), {"name": "fvc"})


def test_one_outcome_per_budget_and_per_codec_and_rows_off_the_sweep_ignored():
    rows = rd_rows() + [{**r, "codec": "d"} for r in rd_rows()]
    rows.append(row("flat", 9.0, 10, 0.001, 0.9999))  # a target of another condition
    outcomes = judge(rows, low_rate((0.5, 1.5)))
    assert [(o.codec, o.budget.bpp) for o in outcomes] == [
        ("c", 0.5), ("c", 1.5), ("d", 0.5), ("d", 1.5)
    ]  # fmt: skip
    assert all(r["target_bpp"] != 9.0 for o in outcomes for r in o.chosen)
    assert outcomes[1].chosen and outcomes[1].totals.total_bytes == 1140


def test_transparent_fewest_bytes_that_meet_both_floors():
    floors = {"track": "transparent", "min_psnr": 38.0, "min_msssim": 0.99}
    condition = {"name": "t", "targets_bpp": [0.5, 1.0, 1.5], "clic": floors}
    (outcome,) = judge(rd_rows(), condition)
    assert outcome.verdict == "meets" and outcome.budget is None
    assert outcome.totals.psnr >= 38.0 and outcome.totals.msssim >= 0.99
    # the cheapest choice meeting both: flat at 1.0, busy at 1.5 (MSE 10: 38.13 dB; MS-SSIM
    # 0.994); flat at 0.5 instead would give MSE 10.5, 37.92 dB
    assert {r["image"]: r["target_bpp"] for r in outcome.chosen} == {"flat": 1.0, "busy": 1.5}
    assert outcome.uniform.target == 1.5 and outcome.uniform.total_bytes == 1140
    assert outcome.saving_percent == pytest.approx(100 * (1 - 950 / 1140))
    condition["clic"]["min_psnr"] = 45.0
    (out_of_reach,) = judge(rd_rows(), condition)
    assert out_of_reach.verdict == "cannot meet" and out_of_reach.uniform is None


# --- the commands on a real run -----------------------------------------------------------


@pytest.fixture()
def clic_run(tmp_path, crop_folder):
    cond = clic_condition(tmp_path)
    out = tmp_path / "out"
    assert main(["run", str(cond), "--dataset", str(crop_folder), "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    return out


def test_results_and_allocate_show_the_verdicts(clic_run, capsys):
    capsys.readouterr()
    assert main(["results", str(clic_run)]) == 0
    table = capsys.readouterr().out
    assert "sweep" in table and "CLIC (one point per image" in table
    assert main(["clic", "allocate", str(clic_run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "budget (bytes)" in lines[0] and len(lines) == 3
    with Store(clic_run) as store:
        rows, runs = store.results(), store.runs()
    outcomes = judge(rows, runs[-1]["record"]["condition"])
    for line, outcome in zip(lines[1:], outcomes, strict=True):
        assert f"{outcome.budget.nbytes:,} at {outcome.budget.bpp:g} bpp" in line
        assert "fits" in line and f"{outcome.totals.total_bytes:,}" in line
        assert outcome.totals.total_bytes <= outcome.budget.nbytes


def test_allocate_writes_a_submission_folder_of_the_chosen_streams(clic_run, tmp_path, capsys):
    dest = tmp_path / "submission"
    listing = tmp_path / "submission.allocation.csv"
    assert main(["clic", "allocate", str(clic_run), "--out", str(dest)]) == 2
    assert "choose one budget with --bpp (1, 1.5)" in capsys.readouterr().err
    assert not dest.exists()
    assert main(["clic", "allocate", str(clic_run), "--out", str(dest), "--bpp", "1"]) == 0
    with Store(clic_run) as store:
        rows, runs = store.results(), store.runs()
    (outcome, _) = judge(rows, runs[-1]["record"]["condition"])
    assert sorted(p.name for p in dest.iterdir()) == ["astro.jpg", "cat.jpg", "coffee.jpg"]
    for r in outcome.chosen:
        assert (dest / f"{r['image']}.jpg").read_bytes() == (clic_run / r["bitstream"]).read_bytes()
    with listing.open() as f:  # beside the folder: the folder holds only what the budget counts
        listed = list(csv.DictReader(f))
    assert [(x["image"], float(x["target_bpp"])) for x in listed] == [
        (r["image"], r["target_bpp"]) for r in outcome.chosen
    ]
    assert sum(p.stat().st_size for p in dest.iterdir()) == outcome.totals.total_bytes
    before = {p.name: p.read_bytes() for p in dest.iterdir()}
    capsys.readouterr()
    assert main(["clic", "allocate", str(clic_run), "--out", str(dest), "--bpp", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exists and is not an empty folder; nothing written" in err[0]
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == before
    other = tmp_path / "other"
    (tmp_path / "other.allocation.csv").write_text("kept")
    assert main(["clic", "allocate", str(clic_run), "--out", str(other), "--bpp", "1"]) == 1
    assert "other.allocation.csv: exists; nothing written" in capsys.readouterr().err
    assert not other.exists() and (tmp_path / "other.allocation.csv").read_text() == "kept"


def test_image_names_with_dots_keep_their_whole_name(tmp_path, crops, capsys):
    from PIL import Image

    folder = tmp_path / "dotted"
    folder.mkdir()
    Image.fromarray(crops["astro"]).save(folder / "b.v1.png")
    Image.fromarray(crops["coffee"]).save(folder / "b.v2.png")
    out = tmp_path / "out"
    cond = clic_condition(tmp_path, clic={"track": "low_rate", "budgets_bpp": [1.0]})
    assert main(["run", str(cond), "--dataset", str(folder), "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    dest = tmp_path / "sub"
    assert main(["clic", "allocate", str(out), "--out", str(dest)]) == 0
    assert sorted(p.name for p in dest.iterdir()) == ["b.v1.jpg", "b.v2.jpg"]


def test_a_partial_run_is_incomplete_and_not_written(clic_run, tmp_path, capsys):
    """Rows of one image deleted (as a run interrupted before it): the run's dataset still
    lists it, so the set is incomplete, with no budget by the rule and no submission."""
    import sqlite3

    with sqlite3.connect(clic_run / "results.sqlite") as db:
        db.execute("DELETE FROM results WHERE image = 'cat'")
    capsys.readouterr()
    assert main(["clic", "allocate", str(clic_run)]) == 0
    out = capsys.readouterr().out
    assert "incomplete" in out and "2 of 3 images have rows; missing: cat" in out
    assert "fits" not in out
    assert main(["clic", "allocate", str(clic_run), "--bpp", "1", "--out",
                 str(tmp_path / "s")]) == 1  # fmt: skip
    assert "no allocation to write (incomplete" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "args,message",
    [
        (["--budget", "0"], "expected a positive number of bytes"),
        (["--budget", "1,0"], "expected a whole number of bytes such as 4722341 or 4,722,341"),
        (["--budget", "1e9"], "expected a whole number of bytes"),
        (["--budget", "\u0661\u0662"], "expected a whole number of bytes"),
        (["--budget", "9" * 5000], "got '99999999999999999999'... (5000 characters)"),
        (["--budget", "5000"], "--budget: 1 budget(s) given for the 2 of tclic"),
        (["--bpp", "1"], "--bpp chooses the budget that --out writes; give --out too"),
        (["--bpp", "0.7", "--out", "x"], "--bpp 0.7: not a budget of the track (1, 1.5 bpp)"),
        (["--codec", "nope"], "no rows of codec 'nope' in the CLIC run"),
        (
            ["--condition", "fvc"],
            "no run of a CLIC condition named 'fvc' (CLIC conditions run there: tclic)",
        ),  # fmt: skip
    ],
)
def test_allocate_usage_errors_are_one_line(clic_run, capsys, args, message):
    try:
        code = main(["clic", "allocate", str(clic_run), *args])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err.strip().splitlines()  # argparse's errors: usage, then one line
    assert code == 2 and message in err[-1] and "Traceback" not in "".join(err)


def test_allocate_refuses_a_folder_without_a_clic_run(tmp_path, crop_folder, capsys):
    out = tmp_path / "out"
    cond = write_condition(tmp_path, targets_bpp=[1.0])
    assert main(["run", str(cond), "--dataset", str(crop_folder), "--out", str(out),
                 "--no-progress"]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["clic", "allocate", str(out)]) == 2
    assert "no run of a CLIC condition there" in capsys.readouterr().err
    assert main(["clic", "allocate", str(tmp_path / "nowhere")]) == 2


def test_report_has_a_clic_sheet_with_the_verdicts(clic_run, tmp_path, capsys):
    xlsx = tmp_path / "r.xlsx"
    assert main(["report", str(clic_run), "--no-complexity", "-o", str(xlsx)]) == 0
    assert "CLIC (the CLIC sheet)" in capsys.readouterr().out
    wb = openpyxl.load_workbook(xlsx)
    assert wb.sheetnames[:2] == ["Summary", "CLIC"]
    ws = wb["CLIC"]
    headers = [c.value for c in ws[3]]
    lines = [dict(zip(headers, (c.value for c in line), strict=True)) for line in ws.iter_rows(
        min_row=4, max_row=5)]  # fmt: skip
    assert [line["Budget (bpp)"] for line in lines] == [1.0, 1.5]
    assert all(line["Verdict"] == "fits" for line in lines)
    assert all(line["Total bytes"] <= line["Budget (bytes)"] for line in lines)
    chosen = [c.value for c in ws["C"] if c.value in ("astro", "cat", "coffee")]
    assert sorted(chosen) == ["astro", "astro", "cat", "cat", "coffee", "coffee"]


def test_conditions_sharing_a_hash_are_reported_by_name(clic_run, tmp_path, crop_folder):
    """A second CLIC condition with other targets shares the first's hash (targets are not
    hashed): each is reported with its own rules and only its own targets' rows."""
    second = tmp_path / "second"
    second.mkdir()
    cond = clic_condition(second, name="tclic2", targets_bpp=[0.75, 1.0, 1.25],
                          clic={"track": "low_rate", "budgets_bpp": [1.0]})  # fmt: skip
    assert main(["run", str(cond), "--dataset", str(crop_folder), "--out", str(clic_run),
                 "--no-progress"]) == 0  # fmt: skip
    for name, targets, budgets in (("tclic", 6, [1.0, 1.5]), ("tclic2", 3, [1.0])):
        xlsx = tmp_path / f"{name}.xlsx"
        assert main(["report", str(clic_run), "--condition", name, "--no-complexity",
                     "-o", str(xlsx)]) == 0  # fmt: skip
        wb = openpyxl.load_workbook(xlsx)
        assert wb["CLIC"]["A1"].value.startswith(f"CLIC ({name})")
        assert [c.value for c in wb["CLIC"]["C"][3 : 3 + len(budgets)]] == budgets
        results = wb["Results jpeg"]
        headers = [c.value for c in results[1]]
        column = next(n for n, h in enumerate(headers, start=1) if h.startswith("Target"))
        seen = {results.cell(row=n, column=column).value for n in range(2, results.max_row + 1)}
        assert len(seen) == targets


def test_a_command_started_with_stdout_closed_says_so(clic_run):
    import subprocess
    import sys

    proc = subprocess.run(
        ["bash", "-c", f'"{sys.executable}" -m ctc.cli clic allocate "{clic_run}" >&-'],
        capture_output=False, stderr=subprocess.PIPE, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1
    assert (
        proc.stderr.strip()
        == "ctc: error: standard output is closed: nothing to write the output to"
    )


def test_package_checks_the_decoder_limit_of_a_condition(tmp_path, crops, capsys):
    from nic import codec, zoo

    streams = tmp_path / "streams"
    streams.mkdir()
    (streams / "astro.nic").write_bytes(codec.encode(crops["astro"], zoo.load(), 2.0))
    small = clic_condition(tmp_path, name="tiny_limit",
                           clic={"track": "low_rate", "budgets_bpp": [1.0],
                                 "max_decoder_bytes": 1000})  # fmt: skip
    out = tmp_path / "decoder.zip"
    assert (
        main(["clic", "package", str(streams), "--out", str(out), "--condition", str(small)]) == 1
    )
    err = capsys.readouterr().err
    assert f"over the 1,000 bytes {small} allows for the decoder with its model" in err
    assert out.is_file()  # kept, and said so
    assert main(["clic", "package", str(streams), "--out", str(out), "--condition",
                 "clic2021_image"]) == 0  # fmt: skip
    assert "within clic2021_image's 250,000,000" in capsys.readouterr().err
    assert main(["clic", "package", str(streams), "--out", str(out), "--condition", "fvc"]) == 2
    assert "--condition fvc: not a CLIC condition" in capsys.readouterr().err
