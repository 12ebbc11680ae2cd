"""The report: a printable table, and a folder with CSV rows, a Markdown summary and PNG plots.

Folder layout (``write_report``)::

    rows.csv            every per-epoch row (reference.compare.ROW_COLUMNS)
    summary.csv         one row per comparison (reference.compare.SUMMARY_COLUMNS + numerics)
    optimum-gaps.csv    linear and logistic neuron runs: distance from the OLS (LogisticRegression) optimum and
                        loss gap (MSE, binary cross-entropy) per epoch
    summary.md          date, versions, command line, the table, known gaps, failures
    plots/<config>.png  loss curves of every engine, and per-epoch max relative difference (log scale)
    plots/overview.png  per-epoch max relative difference gdcore vs Keras, every configuration
"""

from __future__ import annotations

import datetime as _datetime
import importlib
import math
import os
import platform
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from reference.runner import rows_frame, summary_frame
from reference.sklearn_driver import KNOWN_GAPS

# A relative difference of exactly 0 is drawn at this height on the log-scale plots.
ZERO_FLOOR = 1e-18


def versions() -> dict[str, str]:
    """Versions of Python, the libraries compared and the machine, for the report header."""
    from reference.keras_driver import import_keras

    try:
        import_keras()  # with TensorFlow's start-up chatter silenced
    except ImportError:
        pass
    found = {"python": platform.python_version()}
    for name in ("gdcore", "numpy", "numba", "tensorflow", "keras", "sklearn", "pandas", "matplotlib"):
        try:
            module = sys.modules.get(name) or importlib.import_module(name)
        except ImportError:
            module = None
        found["scikit-learn" if name == "sklearn" else name] = getattr(module, "__version__", "?") if module else "not installed"
    found["machine"] = f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs{_cpu_flags()}"
    return found


def _cpu_flags() -> str:
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    except (OSError, StopIteration):
        return ""
    shown = [flag for flag in ("avx", "avx2", "fma", "avx512f") if flag in flags]
    return f" ({', '.join(shown)})" if shown else ""


# --- the printed table ----------------------------------------------------------------


def _short_engines(engines: str) -> str:
    """The table's "compared with" cell: the other engine, gdcore's variant in brackets when it is not plain gdcore."""
    mine, _, theirs = engines.partition(" vs ")
    if mine == "gdcore" or not theirs:
        return theirs or engines
    if not mine.startswith("gdcore["):  # two references compared with each other
        return engines
    variant = mine.removeprefix("gdcore[").removesuffix("]")
    theirs, _, twin = theirs.partition(" (")
    return f"{theirs} [gdcore {variant}{', ' + twin.rstrip(')') if twin else ''}]"


def _number(value, spec: str = ".1e", empty: str = "-") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return empty
    return format(value, spec)


def table_rows(summary: pd.DataFrame) -> list[list[str]]:
    """The summary as strings: one list per comparison, in :data:`TABLE_HEADER` order."""
    rows = []
    for row in summary.itertuples(index=False):
        compared = row.status not in ("skipped",)
        info = row.status == "info"
        bits = f"{row.bit_identical_epochs}/{row.epochs_compared}" if compared and not info else "-"
        first = "-" if row.first_failing_epoch is None or pd.isna(row.first_failing_epoch) or info else str(int(row.first_failing_epoch))
        speedup = _number(row.speedup, ".0f") + "x" if compared and not pd.isna(row.speedup) and not info else "-"
        note = row.reason
        gdcore_seconds = _number(row.mine_seconds, ".3f") if row.engines.startswith("gdcore") else "-"
        other_seconds = _number(row.theirs_seconds, ".2f") if row.engines.startswith("gdcore") else "-"
        rows.append([
            row.config, _short_engines(row.engines), row.status,
            _number(row.worst_rel_diff) if compared and not info else "-",
            bits, first,
            gdcore_seconds, other_seconds, speedup, note,
        ])
    return rows


TABLE_HEADER = ["configuration", "compared with", "status", "worst rel", "bit-identical", "first fail",
                "gdcore s", "other s", "speed-up", "note"]


def format_table(summary: pd.DataFrame, max_note: int = 110) -> str:
    """A fixed-width text table of the summary, for the terminal."""
    rows = [[cell if index < len(TABLE_HEADER) - 1 else _truncate(cell, max_note) for index, cell in enumerate(row)]
            for row in table_rows(summary)]
    widths = [max([len(TABLE_HEADER[i])] + [len(row[i]) for row in rows]) for i in range(len(TABLE_HEADER))]
    right = {3, 4, 5, 6, 7, 8}
    def line(cells):
        return "  ".join(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()
    out = [line(TABLE_HEADER), "  ".join("-" * width for width in widths)]
    previous = None
    for row in rows:
        cells = list(row)
        if cells[0] == previous:
            cells[0] = ""
        else:
            previous = cells[0]
        out.append(line(cells))
    return "\n".join(out)


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def markdown_table(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table."""
    rows = table_rows(summary)
    escape = lambda cell: cell.replace("|", "\\|")
    lines = ["| " + " | ".join(TABLE_HEADER) + " |", "|" + "|".join("---" for _ in TABLE_HEADER) + "|"]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


# --- plots -----------------------------------------------------------------------------


def plot_config(result, path: Path) -> None:
    """Loss curves (every engine) and per-epoch max relative difference (log scale) of one configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (loss_axes, diff_axes) = plt.subplots(1, 2, figsize=(12, 4.5))
    styles = {"gdcore": dict(color="#3d5a80", linewidth=2.5), "keras": dict(color="#ff6700", linestyle="--", linewidth=1.5)}
    for name, trajectory in result.trajectories.items():
        if not trajectory.loss or "float32_betas" in name:
            continue
        epochs = np.arange(1, len(trajectory.loss) + 1)
        style = styles.get(name, dict(linestyle=":", linewidth=1.5))
        loss_axes.plot(epochs, trajectory.loss, label=f"{name} loss", marker="o", markersize=2.5, **style)
        if trajectory.val_loss:
            loss_axes.plot(epochs, trajectory.val_loss, label=f"{name} val_loss", marker="s", markersize=2, alpha=0.55,
                           **style)
    loss_axes.set(title="history['loss'] per epoch", xlabel="epoch", ylabel="loss")
    loss_axes.legend(fontsize=8)
    for comparison in result.comparisons:
        if comparison.rows.empty or not comparison.checked:
            continue
        per_epoch = comparison.rows.groupby("epoch")["max_rel_diff"].max()
        per_epoch = per_epoch[per_epoch.index >= 1]
        diff_axes.semilogy(per_epoch.index, np.maximum(per_epoch.to_numpy(dtype=float), ZERO_FLOOR), marker="o",
                           markersize=3, label=_short_engines(comparison.engines))
    tolerance = result.comparisons[0].tolerance if result.comparisons else None
    if tolerance:
        diff_axes.axhline(tolerance.rtol, color="red", linewidth=1, linestyle="--",
                          label=f"rtol {tolerance.rtol:g} (the test also allows atol {tolerance.atol:g})")
    diff_axes.axhline(ZERO_FLOOR, color="gray", linewidth=0.8, linestyle=":", label="0 (bit-identical) drawn here")
    diff_axes.set(title="max relative difference vs gdcore (all weights, loss, predictions)", xlabel="epoch",
                  ylabel="max |a-b| / max(|a|,|b|)", ylim=(ZERO_FLOOR / 10, 10))
    diff_axes.legend(fontsize=8)
    figure.suptitle(f"{result.config.name}  (gdcore numerics: {result.numerics})")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


def plot_overview(results, path: Path) -> None:
    """Per-epoch max relative difference, gdcore vs Keras, one line per configuration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(11, 6))
    colours = plt.get_cmap("tab20").colors
    line = 0
    for result in results:
        for comparison in result.comparisons:
            if comparison.engines != "gdcore vs keras" or comparison.rows.empty:
                continue
            per_epoch = comparison.rows.groupby("epoch")["max_rel_diff"].max()
            per_epoch = per_epoch[per_epoch.index >= 1]
            axes.semilogy(per_epoch.index, np.maximum(per_epoch.to_numpy(dtype=float), ZERO_FLOOR), marker=".",
                          linewidth=1, color=colours[line % len(colours)],
                          linestyle="--" if result.config.dtype == "float64" else "-", label=result.config.name)
            line += 1
    from reference.compare import CLASSIFICATION_TOLERANCES, DEFAULT_TOLERANCES

    for dtype, tolerance in DEFAULT_TOLERANCES.items():
        axes.axhline(tolerance.rtol, linestyle="--", linewidth=0.8, color="red" if dtype == "float32" else "purple",
                     label=f"default rtol {dtype} ({tolerance.rtol:g})")
    if any(result.config.task != "regression" for result in results):
        for dtype, tolerance in CLASSIFICATION_TOLERANCES.items():
            axes.axhline(tolerance.rtol, linestyle=":", linewidth=0.8, color="red" if dtype == "float32" else "purple",
                         label=f"classification rtol {dtype} ({tolerance.rtol:g})")
    axes.axhline(ZERO_FLOOR, color="gray", linewidth=0.8, linestyle=":", label="0 (bit-identical) drawn here")
    axes.set(title="gdcore vs Keras: max relative difference per epoch", xlabel="epoch",
             ylabel="max |a-b| / max(|a|,|b|)", ylim=(ZERO_FLOOR / 10, 10))
    axes.legend(fontsize=7, ncol=2, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)


# --- the folder ------------------------------------------------------------------------


def write_report(results, output, argv=None, preamble: list[str] | None = None, plots: bool = True) -> Path:
    """Write the report folder (layout in the module docstring) and return its path."""
    output = Path(output)
    (output / "plots").mkdir(parents=True, exist_ok=True)
    summary, rows = summary_frame(results), rows_frame(results)
    rows.to_csv(output / "rows.csv", index=False)
    summary.to_csv(output / "summary.csv", index=False)
    gaps = [result.optimum_gaps.assign(config=result.config.name) for result in results if result.optimum_gaps is not None]
    if gaps:
        pd.concat(gaps, ignore_index=True)[["config", "epoch", "distance", "loss_gap"]].to_csv(output / "optimum-gaps.csv", index=False)
    plot_names = []
    if plots:
        for result in results:
            name = f"{result.config.name}.png"
            plot_config(result, output / "plots" / name)
            plot_names.append(name)
        plot_overview(results, output / "plots" / "overview.png")
    (output / "summary.md").write_text(_markdown(results, summary, argv, preamble or [], plot_names))
    return output


def _markdown(results, summary: pd.DataFrame, argv, preamble: list[str], plot_names: list[str]) -> str:
    command = " ".join(shlex.quote(part) for part in (argv if argv is not None else sys.argv))
    now = _datetime.datetime.now(_datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = ["# gdcore reference report", "", f"- date: {now}", f"- command: `{command}`"]
    lines += [f"- {name}: {version}" for name, version in versions().items()]
    lines += [f"- {line}" for line in preamble]
    failed = summary[summary["status"] == "FAIL"]
    from reference.compare import CLASSIFICATION_TOLERANCES, DEFAULT_TOLERANCES

    defaults = ", ".join(f"{dtype} rtol {tol.rtol:g} atol {tol.atol:g}" for dtype, tol in DEFAULT_TOLERANCES.items())
    defaults += ("; a cross-entropy vs Keras under plain numerics (TensorFlow's Exp/Log/Log1p are Eigen's packet "
                 "polynomials, the plain profile's the C library's): " +
                 ", ".join(f"{dtype} rtol {tol.rtol:g} atol {tol.atol:g}" for dtype, tol in CLASSIFICATION_TOLERANCES.items()))
    lines += ["", f"**{len(failed)} comparison(s) beyond tolerance** out of "
              f"{int((~summary['status'].isin(['skipped', 'info'])).sum())} checked; "
              f"{int((summary['status'] == 'skipped').sum())} skipped.", "",
              f"Tolerance test per element: |a-b| <= atol + rtol max(|a|,|b|); defaults {defaults}. \"worst rel\" is the largest |a-b|/max(|a|,|b|) over every epoch, "
              "weight tensor, loss value and prediction; \"bit-identical\" counts the epochs after which all of them "
              "were equal to the bit. Times are the seconds spent inside the engines' training calls "
              "(gdcore after one warm-up compile; Keras including its first-call tracing).", "",
              "## Results", "", markdown_table(summary), ""]
    gaps = summary[summary["known_gap"] != ""]
    if not gaps.empty:
        lines += ["## Known convention gaps", ""]
        for name in sorted(set(gaps["known_gap"])):
            lines += [f"- **{name}**: {KNOWN_GAPS.get(name, '')}. Seen in: " +
                      ", ".join(f"{row.config} ({_short_engines(row.engines)}, worst rel {row.worst_rel_diff:.2g})"
                                for row in gaps[gaps["known_gap"] == name].itertuples())]
        lines.append("")
    failures = [comparison for result in results for comparison in result.comparisons if comparison.failed]
    if failures:
        lines += ["## Failures", ""]
        for comparison in failures:
            lines += ["```", comparison.failure_message(), "```", ""]
    if plot_names:
        lines += ["## Plots", "", "![overview](plots/overview.png)", ""]
        lines += [f"- [{name[:-4]}](plots/{name})" for name in plot_names]
        lines.append("")
    return "\n".join(lines)
