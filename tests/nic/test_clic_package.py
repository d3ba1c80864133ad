"""The CLIC decoder package: built twice to the same bytes, and its `./decode` run the way CLIC
runs it (no arguments, in the folder of the streams) by a Python that cannot import the nic of
this checkout.

Isolation: `python -m venv --system-site-packages` would process this environment's
site-packages .pth files, among them the editable install's (`__editable__.nic_ctc-*.pth`, which
installs an import hook for nic, ctc and imagefile). So the venv is made without system site
packages, and a .pth of its own lists the folders that hold the decoder's third-party imports as
plain paths: a folder named in a .pth is put on sys.path, but the .pth files inside it are not
processed (only site directories' are), so torch, numpy, constriction, Pillow and scipy import
and nic does not. The environment passed on has no PYTHONPATH, the venv ignores the user's
site-packages, and the test checks that `import nic` fails in it before relying on it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from nic import codec, zoo
from nic.clic_package import (
    MANIFEST,
    MODEL_SIZE_LIMITS,
    SCRIPT,
    PackageError,
    build_decoder_package,
    decoder_modules,
    summary,
)

REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 120  # seconds for one ./decode run (torch import, model load, two small images)


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    """Odd sizes; the wide one is coded in tiles (a version-5 stream)."""
    return {
        "astro": np.ascontiguousarray(skdata.astronaut()[100:165, 200:297]),  # 97 x 65
        "coffee": np.ascontiguousarray(skdata.coffee()[100:170, 100:390]),  # 290 x 70
    }


@pytest.fixture(scope="module")
def streams(tmp_path_factory, images) -> Path:
    """A folder holding nothing but the two images' streams, coded with the zoo default."""
    folder = tmp_path_factory.mktemp("streams")
    model = zoo.load()
    for name, image in images.items():
        (folder / f"{name}.nic").write_bytes(codec.encode(image, model, rate=2.5, tile=16))
    return folder


@pytest.fixture(scope="module")
def package(tmp_path_factory, streams) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("package") / "decoder.zip"
    return out, build_decoder_package(out, streams=streams)


@pytest.fixture(scope="module")
def isolated_python(tmp_path_factory) -> Path:
    """A venv's python that sees the decoder's third-party packages but not this nic."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python3"
    purelib = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout.strip()
    _, third_party = decoder_modules()
    folders = {
        str(Path(next(iter(importlib.util.find_spec(name).submodule_search_locations))).parent)
        for name in sorted(third_party - set(sys.stdlib_module_names))
    }
    Path(purelib, "decoder_dependencies.pth").write_text("".join(f"{f}\n" for f in folders))
    return python


def clean_env(python: Path | None = None) -> dict[str, str]:
    """This environment without PYTHONPATH or the user's site-packages; with `python`, its
    folder first on PATH (so `#!/usr/bin/env python3` finds it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONNOUSERSITE"] = "1"
    if python is not None:
        env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def unzip(archive: Path, folder: Path) -> None:
    """Extract with the recorded modes, as unzip does (zipfile.extractall drops them)."""
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            z.extract(info, folder)
            os.chmod(folder / info.filename, (info.external_attr >> 16) & 0o777)


def run_decode(folder: Path, python: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["./" + SCRIPT],
        cwd=folder,
        env=clean_env(python),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )


def test_the_isolated_python_cannot_import_this_nic(isolated_python, tmp_path):
    probe = (
        "import importlib.util as u, json, sys; "
        "print(json.dumps({'nic': bool(u.find_spec('nic')), 'torch': bool(u.find_spec('torch')),"
        " 'PIL': bool(u.find_spec('PIL')), 'path': sys.path}))"
    )
    result = subprocess.run(
        [isolated_python, "-c", probe],
        cwd=tmp_path,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(result.stdout)
    assert (seen["nic"], seen["torch"], seen["PIL"]) == (False, True, True)
    assert not any(p and Path(p).resolve() == REPO for p in seen["path"])


def test_decode_writes_every_image_as_nic_decodes_it(package, streams, isolated_python, tmp_path):
    archive, _ = package
    folder = tmp_path / "clic"
    shutil.copytree(streams, folder)
    unzip(archive, folder)
    result = run_decode(folder, isolated_python)
    assert result.returncode == 0, result.stderr
    for stream in sorted(streams.glob("*.nic")):
        expected = codec.decode(stream.read_bytes())
        with Image.open(folder / f"{stream.stem}.png") as png:
            assert (png.format, png.mode) == ("PNG", "RGB")
            decoded = np.asarray(png)
        assert decoded.shape == expected.shape
        np.testing.assert_array_equal(decoded, expected)
    assert result.stdout.splitlines() == ["astro.png: 97x65", "coffee.png: 290x70"]
    assert not list(folder.rglob("__pycache__"))


def test_a_bad_stream_is_one_line_and_a_failure(package, streams, isolated_python, tmp_path):
    archive, _ = package
    folder = tmp_path / "clic"
    folder.mkdir()
    shutil.copy(streams / "astro.nic", folder / "good.nic")
    data = bytearray((streams / "coffee.nic").read_bytes())
    data[len(data) // 2] ^= 0x10
    (folder / "corrupt.nic").write_bytes(bytes(data))
    small = np.ascontiguousarray(skdata.astronaut()[:40, :40])
    (folder / "other.nic").write_bytes(codec.encode(small, "nic-mshp-n128-v2", rate=1))
    unzip(archive, folder)
    result = run_decode(folder, isolated_python)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr
    assert lines[0].startswith("decode: corrupt.nic: ")
    assert lines[1].startswith("decode: other.nic: ") and "nic-masked-n128-v2" in lines[1]
    assert (folder / "good.png").is_file()
    assert not (folder / "corrupt.png").exists() and not (folder / "other.png").exists()


def test_manifest_records_the_zip_and_its_files(package):
    archive, record = package
    with zipfile.ZipFile(archive) as z:
        entries = {i.filename: i for i in z.infolist()}
        assert json.loads(z.read(MANIFEST)) == record
        requirements = z.read("requirements.txt").decode().split()
    assert list(entries) == sorted(entries)
    assert entries[SCRIPT].external_attr >> 16 == 0o100755
    listed = {f["path"]: f["bytes"] for f in record["files"]}
    assert listed == {n: i.file_size for n, i in entries.items() if n != MANIFEST}
    assert record["uncompressed_bytes"] == sum(listed.values())
    assert record["zip_bytes"] == archive.stat().st_size
    default = zoo.entries()[0]
    assert record["model"] == {
        "name": default.name,
        "file": f"nic/zoo/{default.file}",
        "sha256": default.sha256,
        "zoo_index": default.index,
    }
    assert listed[record["model"]["file"]] == default.path.stat().st_size
    assert {"nic/codec.py", "nic/bitstream.py", "imagefile/__init__.py"} <= set(listed)
    assert not any(n.startswith(("ctc/", "anchors/", "nic/train/", "nic/cli")) for n in listed)
    assert requirements == record["requirements"]
    assert {r.split("==")[0].lower() for r in requirements} >= {
        "torch",
        "numpy",
        "constriction",
        "pillow",
    }
    assert record["model_size_limits"] == {
        name: {"limit_bytes": limit, "fits": True} for name, limit in MODEL_SIZE_LIMITS.items()
    }
    assert f"{record['zip_bytes']:,} bytes zipped" in summary(record)


def test_building_twice_gives_the_same_bytes(package, tmp_path):
    archive, _ = package
    again = tmp_path / "again.zip"
    build_decoder_package(again)
    assert again.read_bytes() == archive.read_bytes()


def test_streams_of_another_model_are_refused_before_writing(tmp_path):
    small = np.ascontiguousarray(skdata.astronaut()[:40, :40])
    (tmp_path / "x.nic").write_bytes(codec.encode(small, "nic-mshp-n128-v2", rate=1))
    out = tmp_path / "decoder.zip"
    with pytest.raises(PackageError, match="x.nic: coded with weights"):
        build_decoder_package(out, streams=tmp_path)
    assert not out.exists()


def test_ctc_clic_package_builds_it_for_the_codec_named(streams, tmp_path, capsys):
    from ctc.cli import main

    out = tmp_path / "decoder.zip"
    assert main(["clic", "package", str(streams), "--out", str(out)]) == 0
    line = capsys.readouterr().err.strip()
    assert line.startswith(f"{out}: ") and "model nic-masked-n128-v2" in line and out.is_file()
    assert main(["clic", "package", str(streams), "--out", str(out), "--codec", "jpeg"]) == 2
    assert "cannot package its decoder" in capsys.readouterr().err
    other = ["--codec", "nic:nic-mshp-n128-v2"]
    assert main(["clic", "package", str(streams), "--out", str(tmp_path / "b.zip"), *other]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not nic-mshp-n128-v2's" in err
    assert not (tmp_path / "b.zip").exists()
