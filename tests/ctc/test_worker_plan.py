"""`ctc run -j N` planned from memory: fewer workers where N would not fit with the largest
image, one (with a warning) where even one does not, the plan said and recorded."""

from __future__ import annotations

import numpy as np
import pytest
from ctc_testing import QuantZlibCodec, write_condition

from anchors.jpeg import JpegCodec
from ctc.cli import main
from ctc.codec import DEFAULT_PEAK_BASE_BYTES, DEFAULT_PEAK_BYTES_PER_PIXEL, estimated_peak_memory
from ctc.runner import (
    HARNESS_BASE_BYTES,
    HARNESS_BYTES_PER_PIXEL,
    RunError,
    available_memory,
    job_memory,
    plan_workers,
    run,
)
from ctc.store import Store

BIG = (8160, 6120)  # the largest images of real test sets


class NoIdea(QuantZlibCodec):
    """A codec whose peak_memory cannot say (None)."""

    def peak_memory(self, width: int, height: int) -> None:
        return None


class Nonsense(QuantZlibCodec):
    """A codec whose peak_memory answers something that is not bytes."""

    def peak_memory(self, width: int, height: int) -> str:
        return "a lot"


class Numpy(QuantZlibCodec):
    """A codec whose peak_memory is computed with numpy (a numpy integer)."""

    def peak_memory(self, width: int, height: int):
        return np.int64(50) * width * height


class Broken(QuantZlibCodec):
    """A codec whose peak_memory raises."""

    def peak_memory(self, width: int, height: int) -> int:
        return 1 // 0


class Padded(QuantZlibCodec):
    """A codec that pads to 64 x 64 blocks: a thin image needs more than its pixels say."""

    def peak_memory(self, width: int, height: int) -> int:
        return 1000 * (-(-width // 64) * 64) * (-(-height // 64) * 64)


@pytest.fixture()
def condition(tmp_path):
    return write_condition(tmp_path, targets_bpp=[4.0], metrics={"psnr_rgb": {}})


def test_a_codec_without_an_estimate_gets_the_conservative_default():
    default = DEFAULT_PEAK_BASE_BYTES + DEFAULT_PEAK_BYTES_PER_PIXEL * 8160 * 6120
    assert estimated_peak_memory(QuantZlibCodec(), *BIG) == (default, False)
    assert estimated_peak_memory(NoIdea(), *BIG) == (default, False)
    assert estimated_peak_memory(JpegCodec(), *BIG) == (JpegCodec().peak_memory(*BIG), True)
    with pytest.raises(
        ValueError, match=r"'quantzlib': peak_memory\(8160, 6120\) returned 'a lot'"
    ):
        estimated_peak_memory(Nonsense(), *BIG)
    with pytest.raises(RunError, match="returned 'a lot'"):
        plan_workers(2, {"nonsense": Nonsense()}, [BIG], 10**12)


def test_any_number_of_bytes_is_an_estimate_and_a_failing_one_is_one_line():
    assert estimated_peak_memory(Numpy(), *BIG) == (50 * 8160 * 6120, True)
    with pytest.raises(ValueError, match=r"peak_memory\(8160, 6120\) failed: ZeroDivisionError"):
        estimated_peak_memory(Broken(), *BIG)
    with pytest.raises(RunError, match="failed: ZeroDivisionError"):
        plan_workers(2, {"broken": Broken()}, [BIG], 10**12)


def test_the_plan_follows_the_most_demanding_image_not_the_most_pixels():
    plan = plan_workers(4, {"padded": Padded()}, [(1, 65536), (300, 300)], 10**12)
    assert plan.image == (1, 65536)


def test_a_job_needs_the_harness_and_its_hungriest_codec():
    codecs = {"jpeg": JpegCodec(), "quantzlib": QuantZlibCodec()}
    need, guessed = job_memory(codecs, *BIG)
    harness = HARNESS_BASE_BYTES + HARNESS_BYTES_PER_PIXEL * 8160 * 6120
    assert need == harness + estimated_peak_memory(QuantZlibCodec(), *BIG)[0]
    assert guessed == ["quantzlib"]


def test_workers_that_fit_run_as_asked():
    codecs = {"jpeg": JpegCodec()}
    need, _ = job_memory(codecs, *BIG)
    plan = plan_workers(4, codecs, [(768, 512), BIG], 4 * need)
    assert (plan.workers, plan.image, plan.per_worker, plan.note, plan.fits) == (
        4, BIG, need, None, True
    )  # fmt: skip


def test_fewer_workers_run_where_the_asked_ones_do_not_fit():
    codecs = {"jpeg": JpegCodec()}
    need, _ = job_memory(codecs, *BIG)
    plan = plan_workers(4, codecs, [(768, 512), BIG, (6120, 8160)], 2 * need + 1)
    assert (plan.requested, plan.workers, plan.fits) == (4, 2, True)
    assert plan.note == (
        f"4 workers would need ~{4 * need / 1e9:.1f} GB for 8160x6120 images; running 2 "
        f"({(2 * need + 1) / 1e9:.1f} GB available)"
    )


def test_one_worker_runs_with_a_warning_where_none_fits():
    codecs = {"jpeg": JpegCodec(), "quantzlib": QuantZlibCodec()}
    need, _ = job_memory(codecs, *BIG)
    plan = plan_workers(3, codecs, [BIG], 10**9)
    assert (plan.workers, plan.fits) == (1, False)
    assert plan.note == (
        f"one worker would need ~{need / 1e9:.1f} GB for 8160x6120 images (quantzlib: no "
        f"estimate of its own, {DEFAULT_PEAK_BYTES_PER_PIXEL} bytes/pixel assumed), more than "
        "the 1.0 GB available; running 1, which may run out of memory"
    )
    assert plan_workers(1, codecs, [BIG], 10**9).note == plan.note


def test_unknown_memory_or_nothing_to_do_runs_as_asked():
    codecs = {"jpeg": JpegCodec()}
    assert plan_workers(4, codecs, [BIG], None).workers == 4
    assert plan_workers(4, codecs, [], 1).workers == 4


def test_the_machine_says_its_available_memory():
    free = available_memory()
    assert free is None or free > 0


def test_a_run_plans_from_its_largest_image_and_records_the_plan(
    condition, crop_folder, crops, tmp_path
):
    largest = max(((im.shape[1], im.shape[0]) for im in crops.values()), key=lambda s: s[0] * s[1])
    need, _ = job_memory({"jpeg": JpegCodec()}, *largest)
    plans = []
    out = tmp_path / "out"
    summary = run(condition, codecs=["jpeg"], dataset=crop_folder, out=out, jobs=3,
                  memory=need + 1, on_plan=plans.append, progress=False)  # fmt: skip
    assert summary.done == 3 and summary.workers == plans[0]
    assert (plans[0].workers, plans[0].image, plans[0].per_worker) == (1, largest, need)
    with Store(out) as store:
        record = store.runs()[-1]["record"]
    assert record["jobs"] == 1 and record["threads"] == 1
    assert record["worker_plan"] == {
        "requested": 3, "workers": 1, "largest_image": list(largest), "bytes_per_worker": need,
        "bytes_available": need + 1, "note": plans[0].note,
    }  # fmt: skip
    again = run(condition, codecs=["jpeg"], dataset=crop_folder, out=out, jobs=3, memory=1,
                on_plan=plans.append, progress=False)  # fmt: skip
    assert again.skipped == 3 and len(plans) == 1  # nothing left to code: nothing to plan


def test_ctc_run_says_the_plan_in_one_line_and_in_its_summary(
    condition, crop_folder, tmp_path, capsys
):
    args = ["run", str(condition), "--codec", "jpeg", "--dataset", str(crop_folder),
            "--out", str(tmp_path / "out"), "--no-progress", "-j", "3"]  # fmt: skip
    assert main([*args, "--memory", "0.001"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "CPUs" not in line]
    need, _ = job_memory({"jpeg": JpegCodec()}, 67, 51)
    assert lines[0] == (
        f"ctc: warning: one worker would need ~{need / 1e6:.0f} MB for 67x51 images, more than "
        "the 1 MB available; running 1, which may run out of memory"
    )
    assert lines[-1].endswith("; 1 worker (3 asked for; memory), 1 torch thread each")


def test_ctc_run_j2_with_room_gives_the_same_rows_as_one_worker(condition, crop_folder, tmp_path):
    kw = dict(codecs=["jpeg"], dataset=crop_folder, progress=False)
    serial = run(condition, jobs=1, out=tmp_path / "serial", **kw)
    assert main(["run", str(condition), "--codec", "jpeg", "--dataset", str(crop_folder),
                 "--out", str(tmp_path / "parallel"), "--no-progress", "-j", "2",
                 "--memory", "1000"]) == 0  # fmt: skip
    with Store(tmp_path / "parallel") as store:
        rows = store.results()
        record = store.runs()[-1]["record"]
    assert record["jobs"] == 2
    fields = ("codec", "image", "target_bpp", "knob_value", "bytes", "psnr_rgb")
    assert sorted([r[f] for f in fields] for r in rows) == sorted(
        [r[f] for f in fields] for r in serial.rows
    )
