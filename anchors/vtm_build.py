"""Build the pinned VTM (anchors.vtm) from its public source.

    python -m anchors.vtm_build [--source URL_OR_GIT_DIR] [--dest DIR] [--jobs N]
    python -m anchors.vtm_build --record DIR

Clones the source (default VTM_SOURCE, JVET's repository; any clone or mirror that holds
VTM_COMMIT will do), checks out VTM_COMMIT, builds EncoderApp and DecoderApp in CMake's Release
configuration and installs EncoderAppStatic, DecoderAppStatic, the commit's
cfg/encoder_intra_vtm.cfg and build.json (release, commit, source, compiler, the one change made,
the sha256 of the three installed files) in DEST (default: anchors.vtm.default_build_dir()).
Needs git, CMake >= 3.5, make and a C++ compiler; about 5 minutes on 2 cores. On failure the
clone is removed; the log of the step that failed, if any, is kept and named.

--record DIR adds the sha256 of the three files to the build.json of a build made before they
were recorded (anchors.vtm reports the pinned version only with them), after checking that
build.json names the pinned release and commit, that the configuration is VTM 8.0's
(anchors.vtm.CONFIG_SHA256) and that the binaries' banners print release 8.0.

The one change to the source: VTM 8.0's CMakeLists.txt treats GCC warnings as errors, and GCC
12 warns that std::unary_function (used by VTM 8.0) is deprecated, so "warnings-as-errors" is
removed from its GCC warning line. The code compiled is the commit's.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from anchors import vtm
from anchors.ffmpeg import banner_version
from anchors.vtm import (
    BUILD_RECORD,
    CONFIG,
    HASHES,
    VTM_COMMIT,
    VTM_RELEASE,
    VTM_SOURCE,
    default_build_dir,
    sha256_file,
)

INSTALLED = ("EncoderAppStatic", "DecoderAppStatic", CONFIG)

WERROR_LINE = re.compile(r"^bb_enable_warnings\( gcc warnings-as-errors", re.MULTILINE)


class BuildError(RuntimeError):
    """A build step failed; the message is one line."""


def _run(args: Sequence[str], what: str, cwd: Path | None = None, log: Path | None = None) -> str:
    try:
        proc = subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, errors="replace")
    except FileNotFoundError:
        raise BuildError(
            f"{what}: {args[0]} not found (needs git, cmake, make, a C++ compiler)"
        ) from None
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        if log is not None:  # only a failed step's log is kept
            log.write_text(output)
        lines = [s.strip() for s in output.splitlines() if s.strip()]
        where = f" (log: {log})" if log else ""
        raise BuildError(f"{what} failed: {lines[-1] if lines else proc.returncode}{where}")
    return output


def allow_warnings(cmakelists: Path) -> None:
    """Drop warnings-as-errors from the GCC warning line of VTM's top CMakeLists.txt."""
    text, count = WERROR_LINE.subn("bb_enable_warnings( gcc", cmakelists.read_text())
    if count != 1:
        raise BuildError(f"{cmakelists}: not one line matching {WERROR_LINE.pattern!r} "
                         "(another VTM version?)")  # fmt: skip
    cmakelists.write_text(text)


def build(source: str, dest: Path, jobs: int, work: Path) -> Path:
    """Clone, patch, build and install into `dest`; returns dest."""
    src = work / "src"
    print(f"cloning {source} ...", flush=True)
    _run(["git", "clone", "--quiet", "--no-checkout", source, str(src)], "git clone")
    _run(["git", "-C", str(src), "checkout", "--quiet", VTM_COMMIT], f"git checkout {VTM_COMMIT}")
    allow_warnings(src / "CMakeLists.txt")
    build_dir = src / "build"
    build_dir.mkdir()
    print("configuring ...", flush=True)
    _run(["cmake", "..", "-DCMAKE_BUILD_TYPE=Release"], "cmake", build_dir, work / "cmake.log")
    print(f"building EncoderApp and DecoderApp with {jobs} jobs (minutes) ...", flush=True)
    _run(["make", f"-j{jobs}", "EncoderApp", "DecoderApp"], "make", build_dir, work / "make.log")
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("EncoderAppStatic", "DecoderAppStatic"):
        shutil.copy2(src / "bin" / name, dest / name)
    shutil.copy2(src / "cfg" / CONFIG, dest / CONFIG)
    _check_config(dest)
    compiler = _run(["c++", "--version"], "c++ --version").splitlines()[0]
    record = {
        "release": VTM_RELEASE,
        "commit": VTM_COMMIT,
        "source": source,
        "change": "warnings-as-errors removed from CMakeLists.txt's GCC warning line",
        "cmake_build_type": "Release",
        "compiler": compiler,
        "platform": platform.platform(),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        HASHES: {name: sha256_file(dest / name) for name in INSTALLED},
    }
    (dest / BUILD_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return dest


def _check_config(folder: Path) -> None:
    sha = sha256_file(folder / CONFIG)
    if sha != vtm.CONFIG_SHA256:
        raise BuildError(f"{folder / CONFIG} (sha256 {sha[:12]}) is not VTM {VTM_RELEASE}'s "
                         f"(sha256 {vtm.CONFIG_SHA256[:12]})")  # fmt: skip


def record_build(folder: Path) -> Path:
    """Write the sha256 of EncoderAppStatic, DecoderAppStatic and the configuration into the
    build.json of an existing build of the pinned VTM, after checking it is one; returns it."""
    path = folder / BUILD_RECORD
    if not path.is_file():
        raise BuildError(f"no {path}: not a build of anchors.vtm_build (build one instead)")
    try:
        record = json.loads(path.read_text())
    except ValueError as e:
        raise BuildError(f"unreadable {path}: {e}") from None
    pinned = isinstance(record, dict) and record.get("release") == VTM_RELEASE
    if not (pinned and record.get("commit") == VTM_COMMIT):
        raise BuildError(f"{path} is not a build of VTM {VTM_RELEASE} ({VTM_COMMIT[:10]})")
    missing = [name for name in INSTALLED if not (folder / name).is_file()]
    if missing:
        raise BuildError(f"no {', '.join(missing)} in {folder}")
    _check_config(folder)
    for app in ("Encoder", "Decoder"):
        binary = folder / f"{app}AppStatic"
        release = banner_version([str(binary), "--help"], rf"VTM {app} Version\s+(\S+)")
        if release != VTM_RELEASE:
            raise BuildError(f"{binary}: banner release {release}, expected {VTM_RELEASE}")
    record[HASHES] = {name: sha256_file(folder / name) for name in INSTALLED}
    path.write_text(json.dumps(record, indent=1) + "\n")
    return folder


def _clean(work: Path) -> None:
    """Remove the clone, and the work folder too unless it holds a failed step's log."""
    shutil.rmtree(work / "src", ignore_errors=True)
    if not any(work.glob("*.log")):
        shutil.rmtree(work, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anchors.vtm_build", description=__doc__)
    parser.add_argument("--source", default=VTM_SOURCE, help="git URL or local clone/mirror")
    parser.add_argument("--dest", type=Path, default=None, help="install folder")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--record",
        type=Path,
        metavar="DIR",
        help="add the sha256 of a build's files to its build.json",
    )
    args = parser.parse_args(argv)
    if args.record is not None:
        try:
            record_build(args.record)
        except BuildError as e:
            print(f"vtm_build: {e}", file=sys.stderr)
            return 1
        print(f"sha256 of {', '.join(INSTALLED)} recorded in {args.record / BUILD_RECORD}")
        return 0
    dest = args.dest or default_build_dir()
    work = Path(tempfile.mkdtemp(prefix="vtm-build-"))
    try:
        build(args.source, dest, max(1, args.jobs), work)
    except BuildError as e:
        print(f"vtm_build: {e}", file=sys.stderr)  # names the log of the failed step, if any
        return 1
    finally:
        _clean(work)
    print(f"VTM {VTM_RELEASE} ({VTM_COMMIT[:10]}) installed in {dest}; "
          f"set CTC_VTM_DIR={dest} if that is not the default")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
