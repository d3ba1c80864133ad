"""RD plots as PNG files (matplotlib, no display needed): one per metric, the dataset-average
curve of every codec and anchor, the condition's target rates marked. Each codec has the colour
and marker it has in the workbook's charts (style.codec_styles); the legend, below the axes,
says what each codec is (its label, else its version)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ctc.report.data import ReportData
from ctc.report.style import codec_styles, legend_entry
from ctc.report.summary import average_curve


def write_plots(
    data: ReportData, anchors: Sequence[str], folder: str | Path, stem: str, dpi: int = 120
) -> list[Path]:
    """Write `{stem}-rd-{metric}.png` into `folder` for every metric; returns the paths."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FixedLocator, NullLocator

    folder = Path(folder)
    targets = data.targets
    styles = codec_styles(data.codecs)
    labels = {
        codec: data.label(codec) or _short(data.versions.get(codec, "")) for codec in data.codecs
    }
    paths = []
    for metric in data.metrics():
        fig, ax = plt.subplots(figsize=(7.5, 5.4), layout="constrained")
        for target in targets:
            ax.axvline(target, color="0.85", linewidth=0.8, linestyle=":", zorder=0)
        for codec in data.codecs:
            points = average_curve(data.rows[codec], metric)
            if not points:
                continue
            is_anchor = codec in anchors
            ax.plot(
                [p.bpp for p in points],
                [p.quality for p in points],
                color=f"#{styles[codec].colour}",
                marker=styles[codec].plot_marker,
                linestyle="--" if is_anchor else "-",
                label=legend_entry(codec, labels[codec], is_anchor),
            )
        if targets:
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(FixedLocator(targets))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_xticklabels([f"{t:g}" for t in targets])
        ax.set_xlabel("Rate (bpp); dotted lines: target rates")
        ax.set_ylabel(metric.axis)
        ax.set_title(f"{metric.label}, dataset average — {data.condition.get('name', '')}")
        ax.grid(True, which="major", axis="y", color="0.9")
        fig.legend(loc="outside lower center", fontsize="small", frameon=False)
        path = folder / f"{stem}-rd-{metric.column}.png"
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        paths.append(path)
    return paths


def _short(version: str, most: int = 80) -> str:
    """A codec without a label is named by its version, cut to fit a legend line."""
    return version if len(version) <= most else version[: most - 1].rstrip() + "…"
