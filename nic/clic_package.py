"""nic's decoder as the zip a CLIC participant submits (`ctc clic package FOLDER --codec nic`,
through NicCodec.decoder_package).

The Challenge on Learned Image Compression (compression.cc, 2018-2022) runs a submitted decoder,
"an executable" or "a zip archive [that] should contain a file called decode which will be
executed on the server after unzipping", with no arguments and with the uploaded compressed files
in its working directory; it must "reproduce a set of PNGs" of the originals' names and sizes,
"written to the working directory of the decoder or any subfolder". Limits: under 12 GB of
memory, under 10 hours in the validation phase, and a decoder of under 500 MB (CLIC 2019/2020,
challenge.compression.cc/instructions), 250 MB from CLIC 2021 (compression.cc/tasks). The
server provides Python and its packages in a Docker image the participant picks; nic is not
one of them.

The zip holds:

    decode                 the decoder, a Python script (#!/usr/bin/env python3, mode 0755)
    nic/, imagefile/       the modules nic.codec.decode imports, copied from this nic
    nic/zoo/<model>.pt     the model the streams were coded with (nic/zoo/models.json
                           registers it alone, under its zoo index if it is a zoo model)
    requirements.txt       the third-party packages those modules import, at the versions here
    manifest.json          nic version, model, every file's size and sha256, the total, the
                           zip's own size and how it fares against the model-size limits

`./decode` decodes every regular file named `*.nic` in the working folder (not its subfolders)
and writes `<stem>.png` beside it, so a stream must be named after its original image. Files
are chosen by name, not by nic's magic bytes, so that the decoder's own files beside them are
never read as streams and a damaged `.nic` file is reported instead of skipped. Every stream is
decoded with the bundled model; nic.codec.decode refuses, on one line, a stream whose weights
hash is not the model's. A stream that fails is named on one line of stderr and the others are
still decoded (CLIC scores the whole set, so one failure fails the submission, but the log
then names every bad stream at once); the exit status is 1 when any stream failed or none was
found. The zip is reproducible: sorted entries, fixed timestamps and modes, fixed compression,
so the same sources, model and installed package versions give the same bytes.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import sys
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MODEL_SIZE_LIMITS = {"CLIC 2020": 500_000_000, "CLIC 2021": 250_000_000}
"""Bytes a decoder may take (the 2020 rules' 500 MB, 2021's 250 MB, decimal megabytes)."""
STREAM_SUFFIX = ".nic"
DECODER_MODULES = ("nic.codec", "nic.files", "nic.image_io", "nic.model_file")
"""What the decode script imports; their imports within BUNDLED_PACKAGES come along."""
BUNDLED_PACKAGES = ("nic", "imagefile")
MANIFEST = "manifest.json"
SCRIPT = "decode"
ZOO_FOLDER = "nic/zoo"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can record
FILE_MODE, SCRIPT_MODE = 0o100644, 0o100755  # regular files
UNIX = 3  # ZipInfo.create_system: unzip then applies the recorded modes
MAX_STREAM_BYTES = 1 << 28  # nic's own limit on a stream (nic decode)

DECODE_SCRIPT = '''#!/usr/bin/env python3
"""CLIC decoder of nic streams: run with no arguments in the folder holding them.

Decodes every regular file named *.nic in the working folder with the model bundled beside this
script and writes <stem>.png next to it, at the size its header gives. A stream that cannot be
decoded is named on one line of stderr and the others are still decoded; the exit status is 1
when any failed or none was found. Built by `ctc clic package` ({nic_version}).
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the bundled nic, never an installed one
sys.dont_write_bytecode = True  # leave the working folder to the streams and the PNGs

from nic import codec  # noqa: E402
from nic.bitstream import BitstreamError  # noqa: E402
from nic.files import FileError, atomic_output, read_file  # noqa: E402
from nic.image_io import write_rgb8  # noqa: E402
from nic.model_file import ModelFileError, load_model_file  # noqa: E402

MODEL = {model_file}
MODEL_SHA256 = {model_sha256}
MAX_STREAM_BYTES = {max_stream_bytes}


def fail(what: str, error: Exception) -> None:
    print(f"decode: {{what}}: {{' '.join(str(error).split())}}", file=sys.stderr)


def main() -> int:
    try:
        model = load_model_file(HERE / MODEL, expected_sha256=MODEL_SHA256)
    except ModelFileError as e:
        fail("model", e)
        return 1
    streams = sorted(p for p in Path.cwd().glob("*{suffix}") if p.is_file())
    if not streams:
        print(f"decode: no *{suffix} file in {{Path.cwd()}}", file=sys.stderr)
        return 1
    failed = 0
    for stream in streams:
        png = stream.with_suffix(".png")
        try:
            image = codec.decode(read_file(stream, MAX_STREAM_BYTES, "stream"), model)
            with atomic_output(png) as tmp:
                write_rgb8(tmp, image)
        except (BitstreamError, FileError, ValueError, OSError) as e:
            fail(stream.name, e)
            failed += 1
        else:
            print(f"{{png.name}}: {{image.shape[1]}}x{{image.shape[0]}}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
'''


class PackageError(ValueError):
    """The decoder package cannot be built as asked (model, streams, sources)."""


@dataclass(frozen=True)
class BundledModel:
    """The model file a package carries: its nic name, bytes, sha256 and zoo registration."""

    name: str
    data: bytes
    sha256: str
    zoo_entry: dict[str, Any] | None

    @property
    def arcname(self) -> str:
        return f"{ZOO_FOLDER}/{self.name}.pt"


def bundled_model(model: str | None = None) -> BundledModel:
    """The zoo model named (default: the zoo's default) or the model file at a path, read and
    checked by nic's own loader (the same name-or-path rules as `nic decode --model`)."""
    from nic import zoo
    from nic.model_file import ModelFileError

    path = _model_path(model)
    try:
        loaded = zoo.load(model)
    except ModelFileError as e:
        raise PackageError(str(e)) from None
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != loaded.sha256:
        raise PackageError(f"{path}: changed while it was read")
    entry = next((e for e in zoo.entries() if e.sha256 == loaded.sha256), None)
    zoo_entry = None if entry is None else {**asdict(entry), "file": f"{loaded.name}.pt"}
    return BundledModel(loaded.name, data, loaded.sha256, zoo_entry)


def _model_path(model: str | None) -> Path:
    """The file behind a zoo name or path, as nic.zoo.load resolves it."""
    from nic import zoo

    if model is None or zoo.is_registered(model):
        name = model or zoo.default_name()
        return next(e.path for e in zoo.entries() if e.name == name)
    return Path(model)


def package_root(package: str) -> Path:
    """The folder of an importable package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PackageError(f"package {package!r} is not importable here")
    return Path(next(iter(spec.submodule_search_locations)))


def module_file(name: str, roots: dict[str, Path]) -> Path | None:
    """The source of a module of one of the bundled packages, or None if it has none."""
    top, *rest = name.split(".")
    base = roots[top].joinpath(*rest)
    candidates = [base / "__init__.py", *([base.with_suffix(".py")] if rest else [])]
    return next((c for c in candidates if c.is_file()), None)


def imported_names(source: Path, module: str, roots: dict[str, Path]) -> set[str]:
    """Every module a source file imports, anywhere in it (functions included), absolute;
    `from package import name` counts package.name when that is a module."""
    is_package = source.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_bytes(), str(source))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, then up one per extra dot
                base = f"{package.rsplit('.', node.level - 1)[0]}.{base}".rstrip(".")
            names.add(base)
            if base.split(".")[0] in roots:
                names.update(
                    f"{base}.{a.name}"
                    for a in node.names
                    if module_file(f"{base}.{a.name}", roots) is not None
                )
    return names


def decoder_modules(
    entry_modules: tuple[str, ...] = DECODER_MODULES,
) -> tuple[dict[str, Path], set[str]]:
    """The modules of BUNDLED_PACKAGES that entry_modules import, transitively, with their
    parent packages ({name: source}), and the top-level names of the other imports."""
    roots = {p: package_root(p) for p in BUNDLED_PACKAGES}
    found: dict[str, Path] = {}
    others: set[str] = set()
    todo = list(entry_modules)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        source = module_file(name, roots)
        if source is None:
            raise PackageError(f"no source for module {name}")
        found[name] = source
        parents = [name.rsplit(".", i)[0] for i in range(1, name.count(".") + 1)]
        for imported in imported_names(source, name, roots) | set(parents):
            if imported.split(".")[0] in roots:
                todo.append(imported)
            else:
                others.add(imported)
    return found, {n.split(".")[0] for n in others} - {"__future__"}


def requirements(top_level: set[str]) -> list[str]:
    """`distribution==version` for each third-party import (local version labels such as
    +cpu dropped: pip matches them with the plain version)."""
    stdlib = set(sys.stdlib_module_names)
    providers = importlib.metadata.packages_distributions()
    lines = set()
    for name in sorted(top_level - stdlib):
        if name not in providers:
            raise PackageError(f"the decoder imports {name}, which no installed package provides")
        for dist in providers[name]:
            version = importlib.metadata.version(dist).split("+")[0]
            lines.add(f"{dist}=={version}")
    return sorted(lines, key=str.lower)


def registry(model: BundledModel) -> bytes:
    """nic/zoo/models.json of the package: the bundled model alone (none for a model file
    outside the zoo), so that its streams' zoo index is accepted and nothing else loads."""
    models = [model.zoo_entry] if model.zoo_entry else []
    return (json.dumps({"models": models}, indent=2) + "\n").encode()


def nic_version() -> str:
    try:
        return importlib.metadata.version("nic-ctc")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


def package_files(model: BundledModel) -> tuple[dict[str, bytes], list[str]]:
    """Every file of the package but the manifest ({zip path: bytes}), and its requirements."""
    modules, third_party = decoder_modules()
    roots = {p: package_root(p).parent for p in BUNDLED_PACKAGES}
    files = {
        source.relative_to(roots[name.split(".")[0]]).as_posix(): source.read_bytes()
        for name, source in modules.items()
    }
    needs = requirements(third_party)
    script = DECODE_SCRIPT.format(
        nic_version=f"nic {nic_version()}",
        model_file=json.dumps(model.arcname),  # a Python string literal, as ruff formats it
        model_sha256=json.dumps(model.sha256),
        max_stream_bytes=MAX_STREAM_BYTES,
        suffix=STREAM_SUFFIX,
    )
    files.update(
        {
            SCRIPT: script.encode(),
            "requirements.txt": "".join(f"{line}\n" for line in needs).encode(),
            f"{ZOO_FOLDER}/models.json": registry(model),
            model.arcname: model.data,
        }
    )
    return files, needs


def manifest(
    files: dict[str, bytes], model: BundledModel, needs: list[str], zip_bytes: int
) -> dict[str, Any]:
    """What the package holds and how large it is against the CLIC model-size limits."""
    return {
        "format": "nic CLIC decoder package",
        "nic_version": nic_version(),
        "model": {
            "name": model.name,
            "file": model.arcname,
            "sha256": model.sha256,
            "zoo_index": model.zoo_entry["index"] if model.zoo_entry else None,
        },
        "requirements": needs,
        "streams": f"*{STREAM_SUFFIX} in the working folder, each decoded to <stem>.png",
        "files": [
            {"path": path, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
            for path, data in sorted(files.items())
        ],
        "uncompressed_bytes": sum(len(data) for data in files.values()),
        "zip_bytes": zip_bytes,
        "model_size_limits": {
            challenge: {"limit_bytes": limit, "fits": zip_bytes <= limit}
            for challenge, limit in MODEL_SIZE_LIMITS.items()
        },
    }


def zip_archive(files: dict[str, bytes], stored: tuple[str, ...] = ()) -> bytes:
    """A reproducible zip: sorted entries, fixed time and modes, deflate level 9 (the names in
    `stored` uncompressed)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in sorted(files.items()):
            info = zipfile.ZipInfo(path, date_time=ZIP_TIME)
            info.create_system = UNIX
            info.external_attr = (SCRIPT_MODE if path == SCRIPT else FILE_MODE) << 16
            if path in stored:
                archive.writestr(info, data, compress_type=zipfile.ZIP_STORED)
            else:
                archive.writestr(info, data, zipfile.ZIP_DEFLATED, compresslevel=9)
    return buffer.getvalue()


def self_sized_zip(
    files: dict[str, bytes], model: BundledModel, needs: list[str]
) -> tuple[bytes, dict[str, Any]]:
    """The zip and its manifest, which records the zip's own size: the manifest is stored
    uncompressed, so the size moves only with its digits and settles in two or three builds."""
    size = sum(len(data) for data in files.values())  # a guess with the right digits, usually
    for _ in range(5):
        record = manifest(files, model, needs, size)
        text = (json.dumps(record, indent=2) + "\n").encode()
        data = zip_archive({**files, MANIFEST: text}, stored=(MANIFEST,))
        if len(data) == size:
            return data, record
        size = len(data)
    raise PackageError("the zip's size did not settle")  # cannot happen with a stored manifest


def check_streams(folder: str | Path, model: BundledModel) -> list[Path]:
    """The folder's *.nic streams, each checked to be a nic stream coded with the model;
    raises PackageError naming every one that is not."""
    from nic.bitstream import BitstreamError, unpack
    from nic.files import FileError, read_file

    streams = sorted(p for p in Path(folder).glob(f"*{STREAM_SUFFIX}") if p.is_file())
    if not streams:
        raise PackageError(f"no *{STREAM_SUFFIX} stream in {folder}")
    problems = []
    for stream in streams:
        try:
            header, _ = unpack(read_file(stream, MAX_STREAM_BYTES, "stream"))
        except (BitstreamError, FileError) as e:
            problems.append(f"{stream.name}: {e}")
            continue
        if header.weights_hash.hex() != model.sha256[: 2 * len(header.weights_hash)]:
            problems.append(
                f"{stream.name}: coded with weights {header.weights_hash.hex()}, "
                f"not {model.name}'s ({model.sha256[:8]})"
            )
    if problems:
        raise PackageError("streams the package could not decode: " + "; ".join(problems))
    return streams


def build_decoder_package(
    out_zip: str | Path, model: str | None = None, streams: str | Path | None = None
) -> dict[str, Any]:
    """Write the CLIC decoder zip of `model` (a zoo name or model file; default: the zoo's
    default) to out_zip, replacing it whole, and return its manifest. streams: a folder whose
    *.nic files must all be nic streams of that model (checked first; nothing is written if
    one is not)."""
    bundled = bundled_model(model)
    if streams is not None:
        check_streams(streams, bundled)
    files, needs = package_files(bundled)
    data, record = self_sized_zip(files, bundled, needs)
    out = Path(out_zip)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return record


def summary(record: dict[str, Any]) -> str:
    """One line on a package: its size and the CLIC limits it fits."""
    size = record["zip_bytes"]
    limits = ", ".join(
        f"{name} {size / limit['limit_bytes']:.1%} of {limit['limit_bytes'] / 1e6:.0f} MB"
        + ("" if limit["fits"] else " (OVER)")
        for name, limit in record["model_size_limits"].items()
    )
    return (
        f"{size:,} bytes zipped ({record['uncompressed_bytes']:,} unzipped), "
        f"model {record['model']['name']}, {len(record['files'])} files; {limits}"
    )
