"""The README's commands, run as written, in order, in an empty folder.

Three kinds of command cannot run here as written, and each is replaced by the nearest thing
that can, said below: the installs (this suite runs in the installed project), the test command
itself, and the Kodak download (no network in the tests). Every `ctc run` takes a small folder
of photos (`--dataset`), so that the chain runs in seconds; everything else runs as written.
Benchmarks need data folders and minutes, so only their command lines are checked (`--help`).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
SKIPPED = ("pip install", "python -m ruff check", "python -m pytest")
"""Commands the suite cannot run from inside itself: installing, and the suite itself."""


def readme_commands() -> list[str]:
    """Every command of the README's indented code blocks, in order: comments cut, `&&` and
    `;` chains split."""
    commands = []
    for line in README.read_text().splitlines():
        if not line.startswith("    ") or not line.strip():
            continue
        text = line.split(" #", 1)[0].strip()
        commands += [c.strip() for c in re.split(r"&&|;", text) if c.strip()]
    return commands


def test_the_readme_has_the_commands_this_test_knows_how_to_stand_in_for():
    commands = readme_commands()
    assert "ctc dataset fetch kodak" in commands and "ctc run fvc" in commands
    assert commands.index("ctc dataset fetch kodak") < commands.index("ctc run fvc")
    assert any(c.startswith("ctc report ctc-results/fvc") for c in commands)


def _small_photos(folder: Path) -> Path:
    """Two small crops of scikit-image photos: the stand-in for Kodak and the bundled photos."""
    folder.mkdir()
    Image.fromarray(skdata.astronaut()[100:164, 180:260]).save(folder / "astronaut.png")
    Image.fromarray(skdata.coffee()[100:148, 200:264]).save(folder / "coffee.png")
    return folder


def _benchmark_options_exist(args: list[str], cwd: Path) -> None:
    script = ROOT / args[1]
    proc = subprocess.run(
        [sys.executable, str(script), "--help"], capture_output=True, text=True, cwd=cwd,
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, (args, proc.stderr)
    for option in (a for a in args[2:] if a.startswith("--")):
        assert option in proc.stdout, (args, option)


def test_every_readme_command_runs_in_order(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    small = _small_photos(tmp_path / "small")
    Image.fromarray(np.ascontiguousarray(skdata.chelsea()[60:124, 100:196])).save(work / "in.png")
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),  # fetched data and caches stay in the test
    }
    ran = []
    for command in readme_commands():
        if command.startswith(SKIPPED):
            continue
        args = shlex.split(command)
        if args[:3] == ["ctc", "dataset", "fetch"]:
            continue  # network; the run below takes the small folder instead
        if args[:2] == ["ctc", "run"]:
            args += ["--dataset", str(small)]  # the README's runs, on a small dataset
        if args[:2] == ["ctc", "complexity"]:
            args = [a if a != "768x512" else "96x64" for a in args]  # the same, smaller
        if args[0] == "python" and args[1].startswith("benchmarks/"):
            _benchmark_options_exist(args, work)
            continue
        proc = subprocess.run(args, capture_output=True, text=True, cwd=work, env=env, timeout=600)
        assert proc.returncode == 0, (command, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr, (command, proc.stderr[-2000:])
        ran.append(args[:2])
    assert ["ctc", "report"] in ran and ["nic", "decode"] in ran
    assert (work / "ctc-results" / "fvc" / "report.xlsx").is_file()
    assert (work / "rec.png").is_file()
