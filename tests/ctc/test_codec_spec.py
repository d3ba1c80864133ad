"""Codec specs: NAME, NAME:ARGUMENT and MODULE:CLASS, and the worked example of docs/ctc.md."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from ctc.registry import CodecLoadError, load_codec
from ctc.store import Store

DOCS = Path(__file__).parents[2] / "docs" / "ctc.md"


def _worked_example() -> tuple[str, list[str]]:
    """The module text and the commands of docs/ctc.md's "A codec without packaging it"."""
    text = DOCS.read_text()
    section = text[text.index("### A codec without packaging it") :]
    section = section[: section.index("\n**")]
    module = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    commands = re.search(r"```\n(ctc .*?)```", section, re.S).group(1)
    return module, [line for line in commands.splitlines() if line.strip()]


def ctc(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ctc.cli", *args], cwd=cwd, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def test_the_documented_unpackaged_codec_runs_as_written(tmp_path):
    module, commands = _worked_example()
    (tmp_path / "my_codec.py").write_text(module)
    for command in commands:
        args = shlex.split(command)
        assert args[0] == "ctc"
        if args[1] == "run":
            args += ["-j", "2", "--no-progress"]  # workers must find the module too
        proc = ctc(args[1:], tmp_path)
        assert proc.returncode == 0, (command, proc.stderr)
    with Store(tmp_path / "ctc-results" / "jpeg444") as store:
        rows = store.results()
    codecs = {r["codec"] for r in rows}
    assert codecs == {"my_codec:Jpeg444", "jpeg"}
    assert all(r["codec_version"].endswith("JPEG 4:4:4") for r in rows if r["codec"] != "jpeg")
    assert "my_codec:Jpeg444 vs jpeg" in proc.stdout  # the report's BD table
    assert re.search(r"PSNR RGB\s+[+-]\d", proc.stdout), proc.stdout


def test_a_misspelt_class_is_one_line_and_exit_1(tmp_path):
    module, _ = _worked_example()
    (tmp_path / "my_codec.py").write_text(module)
    proc = ctc(["run", "quick", "--codec", "my_codec:Jpeg44", "--out", "o"], tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "'my_codec:Jpeg44': failed to load: AttributeError" in proc.stderr


def test_a_registered_codec_with_an_argument():
    codec = load_codec("nic:nic-mshp-n128-v2")
    assert "model nic-mshp-n128-v2 " in codec.version()
    with pytest.raises(CodecLoadError, match="unknown model 'nope'"):
        load_codec("nic:nope")


@pytest.mark.parametrize(
    "spec,reason",
    [
        ("nic:", "expected NAME, NAME:ARGUMENT or MODULE:CLASS"),
        (":X", "expected NAME, NAME:ARGUMENT or MODULE:CLASS"),
        ("no_such_module_here:X", "ModuleNotFoundError"),
        ("json:JSONDecoder", "does not implement the Codec interface"),
        ("json:nothing", "has no attribute 'nothing'"),
        ("unregistered", "a class that is not registered is named MODULE:CLASS"),
    ],
)
def test_bad_specs_name_the_spec(spec, reason):
    with pytest.raises(CodecLoadError, match=re.escape(reason)) as e:
        load_codec(spec)
    assert str(e.value).startswith(f"codec {spec!r}: ")


def test_a_spec_with_a_path_keeps_bitstreams_inside_the_output_folder(tmp_path, crop_folder):
    from ctc.condition import load_condition
    from ctc.datasets import resolve_dataset
    from ctc.runner import plan

    codec = load_codec("nic:nic-mshp-n128-v2")
    jobs, _ = plan(
        load_condition("quick"), {"nic:../../x": codec}, resolve_dataset(crop_folder), tmp_path
    )
    for job in jobs:
        first = Path(job.bitstream).parts[:2]
        assert first[0] == "bitstreams" and first[1].startswith("nic_.._.._x-"), first


def test_nic_on_another_device_codes_the_same_bytes(crops):
    codec = load_codec("nic")
    moved = codec.on_device("cpu")
    assert moved.model is not codec.model  # its own copy: the zoo's cached model stays put
    assert moved.encode(crops["astro"], 2.5) == codec.encode(crops["astro"], 2.5)


def test_ctc_complexity_takes_a_spec(tmp_path):
    module, _ = _worked_example()
    (tmp_path / "my_codec.py").write_text(module)
    proc = ctc(["complexity", "my_codec:Jpeg444", "--size", "64x48", "--no-cache"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("jpeg444: Pillow ")


EXITING = """
import sys

from my_codec import Jpeg444


class EncodeExits(Jpeg444):
    def encode(self, image, knob_value):
        sys.exit(3)
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_codec_that_calls_sys_exit_fails_alone(tmp_path, jobs):
    module, _ = _worked_example()
    (tmp_path / "my_codec.py").write_text(module)
    (tmp_path / "bad_codec.py").write_text(EXITING)
    args = ["run", "quick", "--codec", "jpeg,bad_codec:EncodeExits", "--out", "o", "-j", jobs]
    proc = ctc([*args, "--no-progress"], tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "'bad_codec:EncodeExits' called sys.exit(3)" in proc.stderr
    with Store(tmp_path / "o") as store:
        assert {r["codec"] for r in store.results()} == {"jpeg"}  # the others ran
    proc = ctc(["run", "quick", "--codec", "sys:exit", "--out", "p"], tmp_path)
    assert proc.returncode == 1 and "'sys:exit': failed to load: SystemExit" in proc.stderr
