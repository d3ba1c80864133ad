"""docs/contributing-a-tool.md's commands, run as written, in order, in a fresh virtual
environment: from a copy of the template to a compare table.

Stand-ins, as in tests/test_readme.py: the environment is a venv that also sees this
interpreter's packages (so nic-ctc is there; this pip installs into it), `pip install -e .`
runs without network (`--no-deps --no-build-isolation`), `ctc ...` is that venv's
`python -m ctc.cli ...`, and `ctc run` takes a folder of two small photos (`--dataset`)
instead of Kodak.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import site
import subprocess
import sys
from pathlib import Path

from PIL import Image
from skimage import data as skdata

ROOT = Path(__file__).parents[1]
DOC = ROOT / "docs" / "contributing-a-tool.md"


def doc_commands() -> list[str]:
    """The commands of the walk-through's indented block, in order."""
    text = DOC.read_text().split("## From an empty folder to a compare table", 1)[1]
    block = re.search(r"\n\n((?:    .+\n)+)", text)
    assert block, "the walk-through has no indented command block"
    return [line.strip() for line in block.group(1).splitlines()]


def _see_parent_packages(python: str) -> None:
    """Make the venv see this interpreter's packages (nic-ctc, torch, ...) also when this one is
    itself a venv (whose packages --system-site-packages does not reach): a .pth file that adds
    its site folders, running their own .pth files (editable installs)."""
    target = subprocess.run([python, "-c", "import site; print(site.getsitepackages()[0])"],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    folders = [p for p in site.getsitepackages() if Path(p).is_dir()]
    Path(target, "parent-packages.pth").write_text(
        f"import site; [site.addsitedir(p) for p in {folders!r}]\n"
    )


def test_the_walk_through_goes_from_the_template_to_a_compare_table(tmp_path):
    commands = doc_commands()
    assert commands[0] == "cp -r templates/coding-tool my-tool" and commands[-1].startswith(
        "ctc compare"
    )
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(skdata.astronaut()[100:164, 180:260]).save(photos / "astronaut.png")
    Image.fromarray(skdata.coffee()[100:148, 200:264]).save(photos / "coffee.png")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                    str(venv)], check=True)  # fmt: skip
    python = str(venv / "bin" / "python")
    _see_parent_packages(python)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    cwd = tmp_path
    outputs = []
    for command in commands:
        args = shlex.split(command)
        if args[:2] == ["cp", "-r"]:
            shutil.copytree(ROOT / args[2], cwd / args[3])
            continue
        if args[0] == "cd":
            cwd = cwd / args[1]
            continue
        if args[:2] == ["pip", "install"]:
            args = [sys.executable, "-m", "pip", "--python", python, "install", "-q",
                    "--no-deps", "--no-build-isolation", *args[2:]]  # fmt: skip
        elif args[:3] == ["python", "-m", "pytest"]:
            args = [python, "-m", "pytest", "-p", "no:cacheprovider", *args[3:]]
        elif args[0] == "ctc":
            args = [python, "-m", "ctc.cli", *args[1:]]
            if args[3] == "run":
                args += ["--dataset", str(photos), "--no-progress"]
        proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=900)  # fmt: skip
        assert proc.returncode == 0, f"{command}: {proc.stderr[-2000:]}"
        outputs.append(proc.stdout)
    table = outputs[-1]
    assert "| PSNR RGB |" in table and "my-tool" in table and "nic-ref" in table
    assert (cwd / "ctc-results" / "fvc" / "compare-my-tool-vs-nic-ref.xlsx").is_file()
