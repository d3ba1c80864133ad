"""Build the pinned VTM (anchors.vtm) from its public source.

    python -m anchors.vtm_build [--source URL_OR_GIT_DIR] [--dest DIR] [--jobs N]

Clones the source (default VTM_SOURCE, JVET's repository; any clone or mirror that holds
VTM_COMMIT will do), checks out VTM_COMMIT, builds EncoderApp and DecoderApp in CMake's Release
configuration and installs EncoderAppStatic, DecoderAppStatic, the commit's
cfg/encoder_intra_vtm.cfg and build.json (release, commit, source, compiler, the one change made)
in DEST (default: anchors.vtm.default_build_dir()). Needs git, CMake >= 3.5, make and a C++
compiler; about 5 minutes on 2 cores.

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

from anchors.vtm import BUILD_RECORD, CONFIG, VTM_COMMIT, VTM_RELEASE, VTM_SOURCE, default_build_dir

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
    if log is not None:
        log.write_text(output)
    if proc.returncode != 0:
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
    }
    (dest / BUILD_RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return dest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m anchors.vtm_build", description=__doc__)
    parser.add_argument("--source", default=VTM_SOURCE, help="git URL or local clone/mirror")
    parser.add_argument("--dest", type=Path, default=None, help="install folder")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    dest = args.dest or default_build_dir()
    work = Path(tempfile.mkdtemp(prefix="vtm-build-"))
    try:
        build(args.source, dest, max(1, args.jobs), work)
    except BuildError as e:
        print(f"vtm_build: {e} (sources and logs kept in {work})", file=sys.stderr)
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print(f"VTM {VTM_RELEASE} ({VTM_COMMIT[:10]}) installed in {dest}; "
          f"set CTC_VTM_DIR={dest} if that is not the default")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
