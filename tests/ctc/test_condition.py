import pytest
import yaml
from ctc_testing import write_condition

from ctc.condition import ConditionError, bundled, load_condition

HUGE = 10**400  # a YAML integer of 401 digits: too large for a float


def test_bundled_conditions_load():
    assert {"fvc", "jpeg_ai_cfe", "quick"} <= set(bundled())
    fvc = load_condition("fvc")
    assert fvc.targets_bpp == (0.06, 0.12, 0.25, 0.5, 1.0, 1.5)
    assert (fvc.tolerance.min_percent, fvc.tolerance.max_percent) == (-5, 5)
    assert fvc.tolerance_scope == "per_image" and fvc.metrics["vmaf"] == {"chroma": "420"}
    # IEEE 1857.11's protocol: YUV 4:2:0 PSNR and MS-SSIM, BT.709, BPG and VTM, two BD ranges
    assert fvc.metrics["psnr_yuv"] == {"chroma": "420"} and fvc.matrix == "bt709"
    assert fvc.metrics["msssim_yuv"] == {"chroma": "420", "downsample": "symmetric"}
    assert fvc.anchors == ("bpg", "vtm")
    assert fvc.bd_ranges == {"low": (0.06, 0.5), "high": (0.25, 1.5)}
    cfe = load_condition("jpeg_ai_cfe")
    assert cfe.targets_bpp == (0.06, 0.12, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
    assert cfe.tolerance.max_percent == 15 and cfe.bit_depth == 10
    ctc = load_condition("jpeg_ai_ctc")
    assert ctc.targets_bpp == (0.12, 0.25, 0.5, 0.75, 1.0) and ctc.bit_depth == 10
    jpeg_ai_set = {"msssim_y", "vmaf", "vif_p", "fsim", "psnr_hvs", "iw_ssim", "nlpd"}
    assert jpeg_ai_set <= set(ctc.metrics) and ctc.metrics["nlpd"] == {"variant": "jpeg_ai"}
    assert ctc.anchors == ("vtm", "bpg", "jpeg") and ctc.bd_ranges == {}
    quick = load_condition("quick")
    assert quick.dataset == "skimage" and len(quick.targets_bpp) == 3
    assert "jpeg" in quick.anchors


def test_a_file_loads_and_defaults_are_filled(tmp_path):
    cond = load_condition(write_condition(tmp_path))
    assert cond.max_encodes == 12 and cond.tolerance.never_exceed is False
    assert cond.metrics["msssim_rgb"] == {"downsample": "symmetric"}
    assert cond.metrics["psnr_yuv"] == {"chroma": "420"}


def test_hash_covers_row_values_not_the_selection(tmp_path):
    base = load_condition(write_condition(tmp_path)).hash
    more = load_condition(write_condition(tmp_path, targets_bpp=[0.25, 0.5, 1.0], dataset="x"))
    assert more.hash == base
    tol = {"min_percent": -5, "max_percent": 5, "scope": "per_image"}
    assert load_condition(write_condition(tmp_path, tolerance=tol)).hash != base
    colour = {"matrix": "bt601", "range": "full", "bit_depth": 8}
    assert load_condition(write_condition(tmp_path, colour=colour)).hash != base
    ranges = {"mid": [0.2, 0.8]}  # how reports integrate rows, not what a row holds
    ranged = load_condition(write_condition(tmp_path, bd_ranges=ranges))
    assert ranged.bd_ranges == {"mid": (0.2, 0.8)} and ranged.hash == base


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"speed": 1}, "test.yaml: speed: unknown field"),
        ({"targets_bpp": []}, "targets_bpp: expected a non-empty list"),
        ({"targets_bpp": [0.5, -1]}, "targets_bpp: every target must be a positive"),
        ({"targets_bpp": [0.5, 0.5]}, "targets_bpp: targets must be distinct"),
        (
            {"tolerance": {"min_percent": 5, "max_percent": 5, "scope": "per_image"}},
            "tolerance.min_percent: expected a value in (-100, 0]",
        ),
        (
            {"tolerance": {"min_percent": -5, "max_percent": 5, "scope": "average"}},
            "tolerance.scope: expected one of per_image, dataset_average, dataset, got 'average'",
        ),
        (
            {"tolerance": {"min_percent": -5, "max_percent": 5}},
            "tolerance.scope: required field is missing",
        ),
        (
            {"colour": {"matrix": "bt2020", "range": "full", "bit_depth": 8}},
            "colour.matrix: expected one of bt709, bt601",
        ),
        (
            {"colour": {"matrix": "bt709", "range": "limited", "bit_depth": 8}},
            "colour.range: expected one of full",
        ),
        (
            {"colour": {"matrix": "bt709", "range": "full", "bit_depth": True}},
            "colour.bit_depth: expected int, got True",
        ),
        (
            {
                "colour": {"matrix": "bt709", "range": "full", "bit_depth": 12},
                "metrics": {"vmaf": {}},
            },
            "metrics.vmaf: VMAF takes 8- or 10-bit input",
        ),
        ({"metrics": {"butteraugli": {}}}, "metrics.butteraugli: unknown field"),
        ({"metrics": {"vmaf": {"chroma": "422"}}}, "metrics.vmaf.chroma: expected one of 420"),
        ({"metrics": {"psnr_rgb": {"chroma": "420"}}}, "metrics.psnr_rgb.chroma: unknown field"),
        ({"anchors": []}, "codecs: a condition needs at least one codec"),
        ({"codecs": "jpeg"}, "codecs: expected list"),
        ({"bd_ranges": [0.1, 0.5]}, "bd_ranges: expected dict"),
        ({"bd_ranges": {"all": [0.1, 0.5]}}, "bd_ranges.all: a range name is a word other than"),
        ({"bd_ranges": {"low": [0.5, 0.1]}}, "bd_ranges.low: expected [low, high] with 0 < low"),
        ({"bd_ranges": {"low": [0, 0.5]}}, "bd_ranges.low: expected [low, high] with 0 < low"),
        ({"bd_ranges": {"low": [0.1]}}, "bd_ranges.low: expected [low, high]"),
        ({"bd_ranges": {"low": [0.1, True]}}, "bd_ranges.low: expected [low, high]"),
        ({"bd_ranges": {"All": [0.1, 0.5]}}, "bd_ranges.All: a range name is a word other than"),
        ({"bd_ranges": {"ALL": [0.1, 0.5]}}, "bd_ranges.ALL: a range name is a word other than"),
        # integers too large for a float (YAML reads them as int): refused, not OverflowError
        (
            {"bd_ranges": {"low": [0.5, HUGE]}},
            "bd_ranges.low: expected [low, high] with 0 < low < high, got [0.5, an integer of "
            "401 digits]",
        ),
        ({"bd_ranges": {"low": [-HUGE, 0.5]}}, "bd_ranges.low: expected [low, high]"),
        (
            {"tolerance": {"min_percent": -5, "max_percent": HUGE, "scope": "per_image"}},
            "tolerance.max_percent: expected a finite number, got an integer of 401 digits",
        ),
        (
            {"tolerance": {"min_percent": -HUGE, "max_percent": 5, "scope": "per_image"}},
            "tolerance.min_percent: expected a finite number, got an integer of 401 digits",
        ),
        ({"targets_bpp": [0.5, HUGE]}, "targets_bpp: every target must be a positive finite"),
        ({"targets_bpp": [-HUGE, 0.5]}, "targets_bpp: every target must be a positive finite"),
        (
            {"colour": {"matrix": "bt709", "range": "full", "bit_depth": HUGE}},
            "colour.bit_depth: expected 8..16, got an integer of 401 digits",
        ),
        ({"rate_control": {"max_encodes": HUGE}}, "rate_control.max_encodes: expected 1..100"),
        (
            {"colour": {"matrix": HUGE, "range": "full", "bit_depth": 8}},
            "colour.matrix: expected one of bt709, bt601, got an integer of 401 digits",
        ),
    ],
)
def test_invalid_files_name_file_and_field(tmp_path, overrides, message):
    with pytest.raises(ConditionError) as e:
        load_condition(write_condition(tmp_path, **overrides))
    assert message in str(e.value)
    assert "\n" not in str(e.value) and len(str(e.value)) < 300


def test_unreadable_or_missing_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConditionError, match="bad.yaml: cannot read"):
        load_condition(bad)
    (tmp_path / "list.yaml").write_text(yaml.safe_dump([1, 2]))
    with pytest.raises(ConditionError, match="expected a mapping"):
        load_condition(tmp_path / "list.yaml")
    with pytest.raises(ConditionError, match="no condition 'nope'"):
        load_condition("nope")


def test_a_key_written_twice_is_an_error_not_silently_the_last(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text(write_condition(tmp_path).read_text() + "targets_bpp: [0.5]\n")
    with pytest.raises(ConditionError, match="duplicate key 'targets_bpp'"):
        load_condition(path)


def test_a_condition_file_too_large_is_refused_without_reading_it(tmp_path):
    from ctc.yamlfile import MAX_BYTES

    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as f:
        f.truncate(MAX_BYTES + 1)
    with pytest.raises(ConditionError, match="not a regular file of at most 4 MiB"):
        load_condition(huge)


def test_a_huge_number_is_one_line_and_exit_2_from_the_command_line(tmp_path, capsys):
    from ctc.cli import main

    path = write_condition(tmp_path, bd_ranges={"low": [0.5, HUGE]})
    assert main(["run", str(path), "--no-progress"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"ctc: error: {path}: bd_ranges.low: expected [low, high]")
