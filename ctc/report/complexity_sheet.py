"""The Complexity sheet: ctc.complexity's measurements of each codec, encoder and decoder side by
side, in the spirit of JVET-M1006's complexity reporting and the JPEG AI reporting template.

JVET-M1006 asks, per tool, for the encoder and decoder separately: parameters and their
precision, memory, MACs per pixel, run times on CPU and on GPU (with the platform named), the
inference patch size, and the training: its data (name and licence) and total time. Each of
these is a row here, or a note saying why it is not available. Text from model files (training
records) is shown without the training machine's paths (ctc.complexity.without_paths), so
measurements from older `ctc complexity --json` files do not leak one either.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openpyxl.styles import Alignment
from openpyxl.worksheet.worksheet import Worksheet

from ctc.complexity import UHD, without_paths
from ctc.report.style import (
    SECTION_FONT,
    TITLE_FONT,
    flatten,
    write_header,
    write_row,
)

INDENT = Alignment(indent=1)
NO_BASELINE = (
    "not available: the model file records no separately trained single-rate baselines, so "
    "their parameter count is not reported"
)


def _gpu_rows(result: dict[str, Any]) -> list[tuple[str, Any, Any, str | None, str]]:
    """GPU time (and device memory), encoder and decoder, with the device named; one row with
    the reason where nothing was measured (a file from an older ctc has only a note)."""
    gpu = result.get("gpu") or {}
    enc, dec = gpu.get("encode_seconds_median"), gpu.get("decode_seconds_median")
    note = gpu.get("note") or "not measured"
    if enc is None and dec is None:
        return [("GPU time, median (s)", None, None, "sec", note)]
    device = f"{gpu.get('device_name')} ({gpu.get('device')})"
    rows = [(f"GPU time on {device}, median (s)", enc, dec, "sec", note)]
    if gpu.get("encode_peak_memory_mb") is not None:
        rows.append((f"GPU peak memory on {device} (MB)", gpu["encode_peak_memory_mb"],
                     gpu.get("decode_peak_memory_mb"), "mb",
                     "torch.cuda.max_memory_allocated over the timed calls"))  # fmt: skip
    return rows


def _tile_row(result: dict[str, Any]) -> tuple[str, Any, Any, str | None, str]:
    """The inference patch (tile) size the codec declares (its optional `tile_size`)."""
    tiling = result.get("tiling") or {}
    label = "Inference patch / tile size (pixels)"
    if not tiling.get("declared"):
        return (label, "not declared", "not declared", None,
                "the codec has no tile_size attribute")  # fmt: skip
    tile = tiling.get("tile_size")
    if not tile:
        return (label, "whole picture", "whole picture", None,
                "the codec runs its networks on the whole picture in one pass (no tiling), so "
                "its memory grows with the picture")  # fmt: skip
    text = f"{tile[0]}×{tile[1]}"
    return (label, text, text, None, "width × height of the patches inference runs on")


def _quantities(result: dict[str, Any]) -> list[tuple[str, Any, Any, str | None, str]]:
    """(quantity, encoder, decoder, format, note) rows."""
    enc, dec = result["encoder"], result["decoder"]
    pe, pd = enc["parameters"], dec["parameters"]
    picture = result["picture"]
    size = f"{picture['width']}×{picture['height']}"
    uhd = f"{UHD[0]}×{UHD[1]}"
    stored = result.get("model_metadata", {}).get("exported", {}).get("weight_dtype")
    rows: list[tuple[str, Any, Any, str | None, str]] = [
        ("Parameters, total (count)", pe["total"], pd["total"], "int",
         "touched by the encoder / decoder at some rate point"),
        ("Shared parameters (count)", pe["shared"], pd["shared"], "int",
         "the same at every rate point"),
        ("Independent parameters per rate point (count)", pe["independent_per_rate_point"],
         pd["independent_per_rate_point"], "int", "owned by one rate point"),
        ("Parameters used per rate point (count)", pe["used_per_rate_point"],
         pd["used_per_rate_point"], "int", "shared + independent"),
        ("Nonzero layer weights (count)", enc["nonzero_weights"], dec["nonzero_weights"], "int",
         f"elements of the convolution / linear weights, as the layers receive them at "
         f"{result['knob']['name']} = {result['knob']['value']:g}, that are not zero "
         "(a masked model's pruned blocks are zero)"),
        ("Parameter precision (in memory)", ", ".join(pe["precision"]),
         ", ".join(pd["precision"]), None, f"stored in the model file as {stored}"
         if stored else ""),
        ("Parameter memory (MB)", pe["memory_mb"], pd["memory_mb"], "mb",
         "total parameters × bytes per parameter in memory; MB = 10^6 bytes"),
        ("Complexity (kMAC/pixel)", enc["kmac_per_pixel"], dec["kmac_per_pixel"], "k",
         f"torch FlopCounterMode on a real encode / decode of {size}, FLOPs / 2"),
        (f"Complexity (GMAC per {size} picture)", enc["gmac_per_picture"],
         dec["gmac_per_picture"], "k", "including the padding the codec adds"),
    ]  # fmt: skip
    if (picture["width"], picture["height"]) != UHD:
        rows.append((f"Complexity (GMAC per {uhd} picture, derived)",
                     enc["kmac_per_pixel"] * UHD[0] * UHD[1] / 1e6,
                     dec["kmac_per_pixel"] * UHD[0] * UHD[1] / 1e6, "k",
                     f"kMAC/pixel measured on {size} × {UHD[0] * UHD[1]:,} pixels; it includes "
                     f"the padding of {size}, which a real {uhd} encode pads differently (a "
                     "small picture's padding can weigh a lot)"))  # fmt: skip
    rows += [
        ("Convolution layers (count)", enc["conv_layers"], dec["conv_layers"], "int",
         "incl. transposed convolutions"),
        ("Fully-connected layers (count)", enc["fc_layers"], dec["fc_layers"], "int", ""),
        _tile_row(result),
        ("Peak memory, process (MB)", enc["peak_memory_mb"], dec["peak_memory_mb"], "mb",
         f"peak resident set during one call on {size} (Linux VmHWM), whole process"),
        ("Resident before the call (MB)", enc["memory_before_mb"], dec["memory_before_mb"],
         "mb", "so peak minus this is what the call added"),
        ("CPU time, median (s)", enc["cpu_seconds_median"], dec["cpu_seconds_median"], "sec",
         f"{_runs(len(enc['cpu_seconds']))} of {size} on {result['platform']['cpu']}, "
         f"{result['platform']['torch_threads']} torch threads"),
        *_gpu_rows(result),
    ]  # fmt: skip
    return rows


def _lineage(ws: Worksheet, row: int, result: dict[str, Any]) -> int:
    """The training time of the model and of each model it was initialised from."""
    lineage = result.get("training_lineage")
    ws.cell(row=row, column=1, value="Training time, whole lineage").font = SECTION_FONT
    row += 1
    if not lineage or not lineage.get("models"):
        training = result.get("training") or {}
        wall = training.get("wall_time_s")
        write_row(ws, row, ["Total training time (h)", wall / 3600 if wall else None, None,
                            "this model's own record only (no lineage in this measurement)"
                            if wall else "not recorded"], [None, "k"])  # fmt: skip
        return row + 1
    write_header(ws, row, ["Model", "Steps", "Wall time (h)", "Hardware", "Initialised from"])
    row += 1
    for model in lineage["models"]:
        wall = model.get("wall_time_s")
        write_row(ws, row, [model["model"], model.get("steps"),
                            wall / 3600 if wall is not None else None,
                            _clean(model.get("hardware")), model.get("init")],
                  [None, "int", "k"])  # fmt: skip
        row += 1
    total = lineage.get("total_wall_time_s")
    write_row(ws, row, ["Total training time, whole lineage (h)",
                        total / 3600 if total is not None else None, None,
                        _clean(lineage.get("note", ""))], [None, "k"])  # fmt: skip
    return row + 1


def _runs(count: int) -> str:
    return f"{count} timed run{'s' * (count != 1)}"


def _clean(value: Any) -> Any:
    """Text without the training machine's paths."""
    return without_paths(value) if isinstance(value, str) else value


def write_complexity(
    ws: Worksheet, results: Sequence[dict[str, Any]], notes: Sequence[str] = ()
) -> None:
    """One block per measured codec, then its rate points, platform and training information."""
    ws.cell(
        row=1, column=1, value="Complexity (JVET-M1006 / JPEG AI template style)"
    ).font = TITLE_FONT
    write_header(ws, 2, ["Quantity", "Encoder", "Decoder", "Note"])
    ws.freeze_panes = "A3"
    row = 3
    for note in notes:
        ws.cell(row=row, column=1, value=_clean(note))
        row += 1
    for result in results:
        row += 1
        picture = result["picture"]
        knob = result["knob"]
        ws.cell(
            row=row, column=1, value=f"{result['codec']}: {result['version']}"
        ).font = SECTION_FONT
        row += 1
        ws.cell(
            row=row,
            column=1,
            value=_clean(
                f"Measured on {picture['name']} ({picture['width']}×{picture['height']}), "
                f"{knob['name']} = {knob['value']:g}, {result['bytes']} bytes."
            ),
        )
        row += 1
        if not result["networks"]:
            ws.cell(row=row, column=1, value="No torch network found in this codec: parameters "
                    "and MACs do not apply; times and memory are measured.")  # fmt: skip
            row += 1
        quantities = _quantities(result)
        if not result["networks"]:
            kept = ("Peak", "Resident", "CPU", "GPU", "Inference")
            quantities = [q for q in quantities if q[0].split()[0] in kept]
        for quantity, enc, dec, fmt, note in quantities:
            write_row(ws, row, [quantity, enc, dec, note], [None, fmt, fmt, None])
            row += 1
        if result["networks"]:
            unused = _by_module(result["unused_parameter_names"])
            label = "Network parameters used by neither (count)"
            write_row(ws, row, [label, result["unused_parameters"], None, unused], [None, "int"])
            row += 1
            other = result["other_arrays"]
            write_row(ws, row, ["Other arrays held by the codec (values / MB)", other["values"],
                                other["memory_mb"], "e.g. entropy-coding tables"],
                      [None, "int", "mb"])  # fmt: skip
            row += 1
        if result["networks"]:
            row = _rate_points(ws, row + 1, result)
        elif not result.get("training"):
            continue  # a conventional codec: no training to report
        training = without_paths(result.get("training") or {"training": "none recorded"})
        row = _pairs(ws, row + 1, "Training information (from the model file)", training)
        row = _lineage(ws, row + 1, result)
        if result.get("model_metadata"):
            row = _pairs(
                ws, row + 1, "Model file metadata", without_paths(result["model_metadata"])
            )
    if results:
        row = _pairs(ws, row + 1, "Platform (where the measurements ran)", results[0]["platform"])
    for cells in ws.iter_rows(min_col=4, max_col=4):
        for cell in cells:
            if isinstance(cell.value, str) and cell.font is not None and not cell.font.b:
                cell.alignment = INDENT
    for letter, width in zip("ABCDEFGHIJK", (46, 15, 15, 15, *[14] * 7), strict=True):
        ws.column_dimensions[letter].width = width


def _rate_points(ws: Worksheet, row: int, result: dict[str, Any]) -> int:
    points = result["rate_points"]
    ws.cell(row=row, column=1, value="Parameters per rate point").font = SECTION_FONT
    row += 1
    if not points:
        ws.cell(row=row, column=1, value="The codec has no integer rate points.")
        return row + 1
    lambdas = (result.get("training") or {}).get("lambdas") or []
    headers = ["Rate point", "Knob value", "Lambda", "Encoder shared (count)",
               "Encoder independent (count)", "Encoder used (count)", "Decoder shared (count)",
               "Decoder independent (count)", "Decoder used (count)",
               "Encoder nonzero weights (count)", "Decoder nonzero weights (count)"]  # fmt: skip
    write_header(ws, row, headers)
    row += 1
    for p in points:
        lam = lambdas[p["index"]] if len(lambdas) == len(points) else None
        write_row(
            ws, row,
            [p["index"], p["knob_value"], lam, p["encoder_shared"], p["encoder_independent"],
             p["encoder_used"], p["decoder_shared"], p["decoder_independent"], p["decoder_used"],
             p["encoder_nonzero_weights"], p["decoder_nonzero_weights"]],
            ["int", "k", "lin", "int", "int", "int", "int", "int", "int", "int", "int"],
        )  # fmt: skip
        row += 1
    row += 1
    ws.cell(row=row, column=1, value="Baseline vs variable-rate model").font = SECTION_FONT
    row += 1
    write_header(ws, row, ["Model", "Encoder parameters (count)", "Decoder parameters (count)",
                           "Note"])  # fmt: skip
    row += 1
    enc, dec = result["encoder"]["parameters"], result["decoder"]["parameters"]
    count = len(points)
    write_row(ws, row, [f"This variable-rate model ({count} rate points), stored", enc["total"],
                        dec["total"], "shared + all rate points' independent parameters"],
              [None, "int", "int"])  # fmt: skip
    row += 1
    write_row(ws, row, ["This variable-rate model, used at one rate point",
                        enc["used_per_rate_point"], dec["used_per_rate_point"], ""],
              [None, "int", "int"])  # fmt: skip
    row += 1
    write_row(ws, row, [f"Baseline: {count} separately trained single-rate models", None, None,
                        _baseline_note(result)])  # fmt: skip
    return row + 1


def _baseline_note(result: dict[str, Any]) -> str:
    """What the model file says of the single-rate models trained alongside it, if anything."""
    baselines = (result.get("training") or {}).get("baselines")
    if not baselines:
        return NO_BASELINE
    n, each = baselines["models"], baselines["parameters_each"]
    return (
        f"{n} × {each:,} = {n * each:,} parameters in all (encoder and decoder together), trained "
        f"alongside this model; compared by {baselines['comparison']}"
    )


def _pairs(ws: Worksheet, row: int, heading: str, values: dict[str, Any]) -> int:
    ws.cell(row=row, column=1, value=heading).font = SECTION_FONT
    row += 1
    for key, value in flatten(values):
        write_row(ws, row, [key, _clean(value)])
        row += 1
    return row


def _by_module(names: Sequence[str]) -> str:
    """Parameter names grouped by their module: 'model.net.hyper_prior (11 tensors)'."""
    groups: dict[str, int] = {}
    for name in names:
        parts = name.split(".")
        if parts[-1].isdigit():  # a ParameterList entry: group by the list's module
            parts = parts[:-1]
        module = ".".join(parts[:-1]) or name
        groups[module] = groups.get(module, 0) + 1
    return ", ".join(f"{m} ({n} tensor{'s' if n > 1 else ''})" for m, n in groups.items())
