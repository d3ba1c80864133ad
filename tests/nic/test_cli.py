import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nic.cli import main

SUBCOMMANDS = ["encode", "decode", "info", "zoo", "demo", "train", "export"]


def nic(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "nic.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


@pytest.fixture(scope="module")
def coded(tmp_path_factory, small_photo):
    d = tmp_path_factory.mktemp("cli")
    Image.fromarray(small_photo).save(d / "in.png")
    r = nic("encode", d / "in.png", d / "in.nic", "--rate-point", 5)
    assert r.returncode == 0, r.stderr
    return d


def test_encode_decode_round_trip_through_the_cli(coded, small_photo):
    r = nic("decode", coded / "in.nic", coded / "out.png")
    assert r.returncode == 0, r.stderr
    out = np.asarray(Image.open(coded / "out.png"))
    assert out.shape == small_photo.shape
    from nic import codec

    expected = codec.decode((coded / "in.nic").read_bytes())
    np.testing.assert_array_equal(out, expected)


def test_info_prints_the_header(coded, small_photo):
    r = nic("info", coded / "in.nic", "--json")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    h, w = small_photo.shape[:2]
    assert (info["width"], info["height"], info["rate_position"]) == (w, h, 5)
    assert info["bytes"] == (coded / "in.nic").stat().st_size
    assert info["bpp"] == pytest.approx(8 * info["bytes"] / (w * h))


def test_truncated_stream_fails_with_one_line_and_no_traceback(coded):
    data = (coded / "in.nic").read_bytes()
    (coded / "cut.nic").write_bytes(data[:-1])
    r = nic("decode", coded / "cut.nic", coded / "cut.png")
    assert r.returncode == 1
    assert r.stderr.startswith("nic: error:") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.stderr
    assert not (coded / "cut.png").exists()


@pytest.mark.parametrize("cut", [0, 10, 40])
def test_every_kind_of_truncation_is_exit_code_1(coded, cut, capsys):
    data = (coded / "in.nic").read_bytes()
    (coded / "cut.nic").write_bytes(data[:cut])
    assert main(["decode", str(coded / "cut.nic"), str(coded / "cut.png")]) == 1
    assert capsys.readouterr().err.startswith("nic: error:")


def test_missing_input_and_bad_usage(coded, capsys):
    assert main(["decode", str(coded / "nope.nic"), str(coded / "x.png")]) == 1
    assert "nope.nic" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", str(coded / "in.png")])
    assert exit_info.value.code == 2
    args = ["encode", str(coded / "in.png"), str(coded / "x.nic"), "--model", "no-such-model"]
    assert main(args) == 1
    assert "unknown model" in capsys.readouterr().err


def test_grayscale_input_warns_and_encodes(coded, small_photo):
    Image.fromarray(small_photo[:, :, 1]).save(coded / "gray.png")
    r = nic("encode", coded / "gray.png", coded / "gray.nic")
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr and "grayscale" in r.stderr


def test_zoo_lists_the_registered_model():
    r = nic("zoo", "--json")
    assert r.returncode == 0, r.stderr
    (entry,) = json.loads(r.stdout)[:1]
    assert entry["sha256"] and len(entry["rate_points"]) >= 2 and entry["training"]["steps"] > 0


@pytest.mark.parametrize("command", [None, *SUBCOMMANDS])
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*([command] if command else []), "--help"])
    assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out


def test_a_reader_that_stops_early_gets_no_traceback():
    proc = subprocess.Popen(
        [sys.executable, "-m", "nic.cli", "zoo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # the reader is gone before nic writes, like `nic zoo | true`
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"BrokenPipe" not in err, err.decode()


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "x"])
def test_a_target_bpp_that_is_not_a_positive_number_is_a_usage_error(coded, value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", str(coded / "in.png"), str(coded / "x.nic"), "--target-bpp", value])
    assert exit_info.value.code == 2 and "--target-bpp" in capsys.readouterr().err


def test_an_unreachable_target_fails_and_says_what_was_achieved(coded):
    out = coded / "far.nic"
    r = nic("encode", coded / "in.png", out, "--target-bpp", 100)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1 and "closest is" in r.stderr and "bpp (-" in r.stderr
    assert not out.exists()
    r = nic("encode", coded / "in.png", out, "--target-bpp", 100, "--best-effort")
    assert r.returncode == 0 and "warning: target 100 bpp missed" in r.stderr
    assert out.stat().st_size > 0


def test_decoding_to_a_lossy_format_is_refused(coded):
    r = nic("decode", coded / "in.nic", coded / "out.jpg")
    assert r.returncode == 1 and "losslessly" in r.stderr and not (coded / "out.jpg").exists()


def test_the_pixel_budget_is_a_command_line_option(coded, small_photo):
    from nic.codec import coded_pixels

    h, w = small_photo.shape[:2]
    h, w = 1, coded_pixels(w, h)  # the budget counts the area padded to multiples of 64
    r = nic("decode", coded / "in.nic", coded / "b.png", "--max-pixels", h * w - 1)
    assert r.returncode == 1 and "--max-pixels" in r.stderr and not (coded / "b.png").exists()
    r = nic("encode", coded / "in.png", coded / "b.nic", "--max-pixels", h * w - 1)
    assert r.returncode == 1 and "--max-pixels" in r.stderr and not (coded / "b.nic").exists()
    assert nic("decode", coded / "in.nic", coded / "b.png", "--max-pixels", h * w).returncode == 0


def test_the_memory_budget_is_a_command_line_option(coded):
    r = nic("decode", coded / "in.nic", coded / "m.png", "--max-memory", "0.0001")
    assert r.returncode == 1 and "--max-memory" in r.stderr and not (coded / "m.png").exists()
    assert len(r.stderr.strip().splitlines()) == 1
    for bad in ("-1", "0", "nan", "1e300"):
        r = nic("decode", coded / "in.nic", coded / "m.png", "--max-memory", bad)
        assert r.returncode == 2 and "2^-30 to 2^40" in r.stderr


def test_a_stream_of_a_model_file_outside_the_zoo_decodes_only_with_that_file(coded):
    """A header names a model by zoo index only; a model file is always the user's --model."""
    import dataclasses

    from nic import zoo
    from nic.bitstream import UNREGISTERED, pack, unpack

    header, subs = unpack((coded / "in.nic").read_bytes())
    model_file = zoo.load().name + ".pt"
    (coded / model_file).write_bytes(zoo.entries()[0].path.read_bytes())
    forged = dataclasses.replace(header, model_index=UNREGISTERED)
    (coded / "mine.nic").write_bytes(pack(forged, subs))
    r = nic("decode", "mine.nic", "mine.png", cwd=coded)
    assert r.returncode == 1 and "not in the zoo" in r.stderr and "--model FILE" in r.stderr
    other = next(e for e in zoo.entries() if e.name != zoo.load().name)
    r = nic("decode", "mine.nic", "mine.png", "--model", other.path, cwd=coded)
    assert r.returncode == 1 and "made with another model" in r.stderr
    r = nic("decode", "mine.nic", "mine.png", "--model", model_file, cwd=coded)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "sparse", "folder", "loop"])
def test_a_stream_that_is_not_a_regular_file_of_sane_size_is_one_line(coded, kind, tmp_path):
    import os

    path = {"fifo": tmp_path / "p.nic", "sparse": tmp_path / "s.nic"}.get(kind, kind)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "sparse":
        with open(path, "wb") as f:
            f.truncate(3 << 30)  # 3 GiB, no blocks
    elif kind == "folder":
        path = tmp_path
    elif kind == "loop":
        path = tmp_path / "l1"
        os.symlink(tmp_path / "l2", path)
        os.symlink(path, tmp_path / "l2")
    for command in ("decode", "info"):
        args = [command, path] + ([tmp_path / "o.png"] if command == "decode" else [])
        r = nic(*args)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith("nic: error:")


def test_a_failed_write_is_one_line_and_leaves_no_file(coded, tmp_path):
    import resource

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    out = tmp_path / "big.png"
    r = subprocess.run(
        [sys.executable, "-m", "nic.cli", "decode", coded / "in.nic", out],
        capture_output=True, text=True, preexec_fn=small_files, timeout=300,
    )  # fmt: skip
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "full.nic").symlink_to("/dev/full")
    r = nic("encode", coded / "in.png", tmp_path / "full.nic")
    assert r.returncode == 1 and "not a regular file" in r.stderr and r.stderr.count("\n") == 1
    r = nic("encode", coded / "in.png", coded / "in.png" / "x.nic")
    assert r.returncode == 1 and r.stderr.count("\n") == 1


def test_file_names_cannot_forge_output_lines(coded, tmp_path):
    evil = tmp_path / "evil\nnic: error: forged\x1b[2J.png"
    evil.write_bytes(b"junk")
    r = nic("encode", evil, tmp_path / "o.nic")
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "\x1b" not in r.stderr


def test_option_slips_are_caught(coded, capsys):
    args = ["encode", str(coded / "in.png")]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, str(coded / "o.nic"), "--best-effort"])
    assert exit_info.value.code == 2 and "--target-bpp" in capsys.readouterr().err
    assert main([*args, str(coded / "in.png")]) == 1
    assert "overwrite the input" in capsys.readouterr().err
    assert main([*args, str(coded / "o.nic"), "--target-bpp", "1e-300"]) == 1
    assert "cannot be met" in capsys.readouterr().err


def test_an_output_in_a_missing_folder_is_one_line(coded):
    r = nic("decode", coded / "in.nic", coded / "no-such-folder" / "out.png")
    assert r.returncode == 1 and "folder" in r.stderr and ".tmp" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_prepare_data_that_packs_nothing_fails(tmp_path, small_photo):
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(small_photo).save(photos / "small.png")  # 96x64: smaller than any crop
    r = nic("prepare-data", photos, "--output", tmp_path / "pack", "--crop", "128")
    assert r.returncode == 1 and "no training crop was packed" in r.stderr
