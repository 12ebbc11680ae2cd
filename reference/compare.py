r"""Comparison maths and the tables built from it.

Three measures of how far apart two arrays ``a`` (mine) and ``b`` (theirs) are,
element by element, each reduced to its maximum:

absolute difference
    :math:`|a - b|`.
relative difference
    :math:`|a - b| / \max(|a|, |b|)`, defined as 0 when :math:`a = b`
    (so :math:`0/0 = 0` and :math:`\infty` equals itself) and NaN when either
    is NaN. It is symmetric and lies in [0, 2]; it is 1 when exactly one of
    them is 0, and 2 when they have opposite signs and equal magnitude.
ULP distance
    The number of representable floats of the common dtype (float32 or
    float64) strictly between ``a`` and ``b``, plus one; 0 when equal.
    Computed from the bits: a float's bit pattern read as a sign and an
    unsigned magnitude orders the non-negative floats like integers, so for
    equal signs the distance is :math:`|m_a - m_b|` and for opposite signs
    :math:`m_a + m_b` (+0 and -0 are 0 apart). Any NaN gives
    :data:`ULP_NAN` (the largest uint64).

An element is **within tolerance** when
:math:`|a - b| \le \text{atol} + \text{rtol}\cdot\max(|a|, |b|)`; equal
values always are, NaN never. Defaults per dtype are in
:data:`DEFAULT_TOLERANCES`.

:func:`compare` compares two :class:`~reference.trajectory.Trajectory`
objects epoch by epoch and returns a :class:`Comparison`: its ``rows`` are a
tidy DataFrame, one row per (epoch, quantity), and :meth:`Comparison.summary`
the one-line verdict the report prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reference.trajectory import Trajectory

from gdcore._dtype import _UINT, ULP_NAN, ulp_distance  # noqa: E402  (one definition, shared with gdcore.numerics.verify)

ROW_COLUMNS = ["config", "engines", "dtype", "epoch", "quantity", "max_abs_diff", "max_rel_diff", "max_ulp",
               "bit_identical", "within_tolerance", "checked", "worst_index", "mine", "theirs"]
SUMMARY_COLUMNS = ["config", "engines", "status", "worst_rel_diff", "worst_abs_diff", "max_ulp", "bit_identical_epochs",
                   "epochs_compared", "first_failing_epoch", "mine_seconds", "theirs_seconds", "speedup", "rtol", "atol",
                   "known_gap", "reason"]


@dataclass(frozen=True)
class Tolerance:
    """``rtol`` and ``atol`` of the test :math:`|a-b| \\le atol + rtol\\max(|a|,|b|)`."""

    rtol: float
    atol: float


#: Plain-numerics parity with Keras is ~1e-6..1e-4 relative in float32 and ~1e-15..1e-12 in float64.
DEFAULT_TOLERANCES = {"float32": Tolerance(rtol=1e-4, atol=1e-6), "float64": Tolerance(rtol=1e-9, atol=1e-12)}


#: gdcore vs Keras on a cross-entropy under ``numerics="plain"``: the plain profile evaluates exp, log and log1p
#: with the C library where TensorFlow runs Eigen's packet polynomials on all but the last n % P elements (an ulp
#: here and there, carried by training), besides its own summation order. A bound measured over the 96
#: configurations of the grid's classification section (25 epochs each), with a margin of about 2: the largest
#: absolute difference of any weight, loss, accuracy or prediction was 4.5e-6 in float32 and 3.5e-14 in float64;
#: the default set's 15 classifiers under plain numerics: 2.0e-6 and 1.6e-15. Under ``numerics="tensorflow"`` the
#: cross-entropies are bit-identical to Keras and take the default tolerance (:func:`classification_tolerance`).
CLASSIFICATION_TOLERANCES = {"float32": Tolerance(rtol=2e-5, atol=1e-5), "float64": Tolerance(rtol=2e-13, atol=1e-13)}


def classification_tolerance(dtype, numerics: str = "plain") -> Tolerance:
    """The :class:`Tolerance` of gdcore vs Keras on a cross-entropy: :data:`CLASSIFICATION_TOLERANCES` under the
    plain profile, the default tolerance under ``"tensorflow"`` (``dtype``: ``"float32"`` or ``"float64"``)."""
    default = default_tolerance(dtype)  # the same check and message for an unknown dtype
    return default if numerics == "tensorflow" else CLASSIFICATION_TOLERANCES[np.dtype(dtype).name]


def default_tolerance(dtype) -> Tolerance:
    """The default :class:`Tolerance` for ``dtype`` (``"float32"`` or ``"float64"``)."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = str(dtype)
    if name not in DEFAULT_TOLERANCES:
        raise ValueError(f"no default tolerance for dtype {name!r}; known: {', '.join(DEFAULT_TOLERANCES)}")
    return DEFAULT_TOLERANCES[name]


# --- elementwise measures -----------------------------------------------------------------


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"cannot compare arrays of shapes {a.shape} and {b.shape}")
    return a, b


def relative_difference(a, b) -> np.ndarray:
    """Elementwise :math:`|a-b| / \\max(|a|,|b|)` in float64, 0 where ``a == b``, NaN where either is NaN."""
    a, b = _pair(a, b)
    a, b = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        relative = np.abs(a - b) / np.maximum(np.abs(a), np.abs(b))
    return np.where(a == b, 0.0, relative)


def absolute_difference(a, b) -> np.ndarray:
    """Elementwise :math:`|a-b|` in float64, 0 where ``a == b`` (also for equal infinities)."""
    a, b = _pair(a, b)
    a, b = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(a == b, 0.0, np.abs(a - b))


def within_tolerance(a, b, rtol: float, atol: float) -> np.ndarray:
    """Elementwise :math:`|a-b| \\le atol + rtol\\max(|a|,|b|)`; equal values pass, NaN fails."""
    a, b = _pair(a, b)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    with np.errstate(invalid="ignore"):
        close = np.abs(a64 - b64) <= atol + rtol * np.maximum(np.abs(a64), np.abs(b64))
    return close | (a64 == b64)


def bit_identical(a, b) -> bool:
    """Same shape, same dtype and the same bytes (so -0.0 differs from 0.0, and a NaN can equal itself)."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and a.dtype == b.dtype and np.ascontiguousarray(a).tobytes() == np.ascontiguousarray(b).tobytes()


def compare_arrays(a, b, tolerance: Tolerance) -> dict:
    """The row fields for one pair of arrays: maxima of the three measures, the verdicts, the worst element."""
    a, b = _pair(a, b)
    if a.size == 0:
        return {"max_abs_diff": 0.0, "max_rel_diff": 0.0, "max_ulp": 0.0, "bit_identical": True,
                "within_tolerance": True, "worst_index": "", "mine": np.nan, "theirs": np.nan}
    relative = relative_difference(a, b)
    absolute = absolute_difference(a, b)
    ulps = ulp_distance(a, b) if a.dtype == b.dtype and a.dtype in _UINT else None
    # The worst element: NaN first, then the largest relative difference.
    order_key = np.where(np.isnan(relative), np.inf, relative)
    worst = np.unravel_index(int(np.argmax(order_key)), a.shape)
    return {
        "max_abs_diff": float(np.max(absolute)),
        "max_rel_diff": float(np.max(relative)),
        "max_ulp": np.nan if ulps is None or (ulps == ULP_NAN).any() else float(np.max(ulps)),
        "bit_identical": bit_identical(a, b),
        "within_tolerance": bool(within_tolerance(a, b, tolerance.rtol, tolerance.atol).all()),
        "worst_index": str(tuple(int(i) for i in worst)),
        "mine": float(a[worst]),
        "theirs": float(b[worst]),
    }


# --- trajectories --------------------------------------------------------------------------


@dataclass
class Comparison:
    """Two engines' trajectories on one configuration, compared epoch by epoch.

    ``status`` is one of ``"ok"``, ``"FAIL"``, ``"skipped"`` (``reason``
    says why), ``"diverged"`` (both diverged: ``reason`` says at which epoch),
    ``"known gap"`` (beyond tolerance, explained by the named convention
    ``known_gap``; never used to loosen a tolerance) and ``"info"``
    (``checked`` is false: the rows describe, they do not test).
    """

    config: str
    engines: str
    tolerance: Tolerance
    mine: Trajectory | None = None
    theirs: Trajectory | None = None
    rows: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=ROW_COLUMNS))
    status: str = "ok"
    reason: str = ""
    known_gap: str | None = None
    checked: bool = True

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    @property
    def epochs_compared(self) -> int:
        return 0 if self.rows.empty else int(self.rows["epoch"].max())

    @property
    def first_failing_epoch(self) -> int | None:
        """The first epoch where some quantity is beyond tolerance (``None`` if none)."""
        if self.rows.empty:
            return None
        failing = self.rows.loc[~self.rows["within_tolerance"].astype(bool), "epoch"]
        return None if failing.empty else int(failing.min())

    @property
    def bit_identical_epochs(self) -> int:
        """Epochs 1..E after which every quantity was bit-identical in both engines."""
        if self.rows.empty:
            return 0
        per_epoch = self.rows[self.rows["epoch"] >= 1].groupby("epoch")["bit_identical"].all()
        return int(per_epoch.sum())

    def summary(self) -> dict:
        """One row of the summary table (:data:`SUMMARY_COLUMNS`)."""
        rows = self.rows
        mine_seconds = self.mine.fit_seconds if self.mine is not None else np.nan
        theirs_seconds = self.theirs.fit_seconds if self.theirs is not None else np.nan
        return {
            "config": self.config,
            "engines": self.engines,
            "status": self.status,
            "worst_rel_diff": np.nan if rows.empty else float(rows["max_rel_diff"].max()),
            "worst_abs_diff": np.nan if rows.empty else float(rows["max_abs_diff"].max()),
            "max_ulp": np.nan if rows.empty else float(rows["max_ulp"].max()),
            "bit_identical_epochs": self.bit_identical_epochs,
            "epochs_compared": self.epochs_compared,
            "first_failing_epoch": self.first_failing_epoch,
            "mine_seconds": mine_seconds,
            "theirs_seconds": theirs_seconds,
            "speedup": theirs_seconds / mine_seconds if mine_seconds and mine_seconds > 0 else np.nan,
            "rtol": self.tolerance.rtol,
            "atol": self.tolerance.atol,
            "known_gap": self.known_gap or "",
            "reason": self.reason,
        }

    def failure_message(self, max_quantities: int = 4) -> str:
        """Mine vs theirs at the first epoch beyond tolerance, with the previous epoch for context."""
        epoch = self.first_failing_epoch
        head = f"{self.engines} on {self.config}: {self.status}"
        if self.reason:
            head += f" ({self.reason})"
        if epoch is None or self.mine is None or self.theirs is None:
            return head
        tol = self.tolerance
        lines = [head, f"first epoch beyond tolerance (rtol={tol.rtol:g}, atol={tol.atol:g}): {epoch}"]
        failing = self.rows[(self.rows["epoch"] == epoch) & ~self.rows["within_tolerance"].astype(bool)]
        names = failing.sort_values("max_rel_diff", ascending=False)["quantity"].tolist()[:max_quantities]
        mine_name, theirs_name = self.mine.engine, self.theirs.engine
        width = max(len(mine_name), len(theirs_name))
        for shown in ([epoch - 1] if epoch >= 1 else []) + [epoch]:
            label = "previous epoch" if shown < epoch else "first failing epoch"
            lines.append(f"  epoch {shown} ({label}):")
            mine_values, theirs_values = self.mine.quantities(shown), self.theirs.quantities(shown)
            for name in names:
                if name not in mine_values or name not in theirs_values:
                    continue
                row = self.rows[(self.rows["epoch"] == shown) & (self.rows["quantity"] == name)].iloc[0]
                lines.append(f"    {name}: max rel diff {row['max_rel_diff']:.3g}, max abs diff {row['max_abs_diff']:.3g}, "
                             f"max ulp {row['max_ulp']:.0f}, worst element {row['worst_index']}")
                lines.append(f"      {mine_name:<{width}} {_format_array(mine_values[name])}")
                lines.append(f"      {theirs_name:<{width}} {_format_array(theirs_values[name])}")
        return "\n".join(lines)


def _format_array(array: np.ndarray) -> str:
    array = np.asarray(array)
    digits = 9 if array.dtype == np.float32 else 17
    return np.array2string(array.ravel(), precision=digits, threshold=12, edgeitems=4, max_line_width=160,
                           floatmode="maxprec")


def compare(mine: Trajectory, theirs: Trajectory, tolerance: Tolerance | None = None, config: str = "",
            engines: str | None = None, checked: bool = True) -> Comparison:
    """Compare two trajectories at every epoch both completed, on every quantity both recorded.

    Quantities: each weight tensor, ``loss`` and ``val_loss`` (when both
    engines report them) and ``predictions``. Arrays are compared in
    ``mine``'s dtype. If both runs diverged the status is ``"diverged"``
    whatever the earlier epochs show (the first epoch beyond tolerance is
    still reported); if only one diverged it is ``"FAIL"``.
    """
    tolerance = tolerance or default_tolerance(mine.dtype)
    engines = engines or f"{mine.engine} vs {theirs.engine}"
    dtype = np.dtype(mine.dtype)
    rows = []
    for epoch in range(min(mine.epochs, theirs.epochs) + 1):
        mine_values, theirs_values = mine.quantities(epoch), theirs.quantities(epoch)
        for name, mine_value in mine_values.items():
            if name not in theirs_values:
                continue
            fields = compare_arrays(np.asarray(mine_value, dtype=dtype), np.asarray(theirs_values[name], dtype=dtype), tolerance)
            rows.append({"config": config, "engines": engines, "dtype": dtype.name, "epoch": epoch, "quantity": name,
                         **fields, "checked": checked})
    frame = pd.DataFrame(rows, columns=ROW_COLUMNS)
    if not checked:
        frame["within_tolerance"] = True
    comparison = Comparison(config, engines, tolerance, mine, theirs, frame, checked=checked)
    comparison.status, comparison.reason = _verdict(comparison)
    return comparison


def _verdict(comparison: Comparison) -> tuple[str, str]:
    mine, theirs = comparison.mine, comparison.theirs
    if not comparison.checked:
        stopped = [f"{one.engine} diverged at epoch {one.diverged_at}" for one in (mine, theirs) if one.diverged_at]
        return "info", "; ".join(stopped)
    if mine.diverged_at is not None and theirs.diverged_at is not None:
        if mine.diverged_at == theirs.diverged_at:
            return "diverged", f"diverged in both at epoch {mine.diverged_at}"
        return "diverged", f"diverged in both ({mine.engine} at epoch {mine.diverged_at}, {theirs.engine} at epoch {theirs.diverged_at})"
    for one, other in ((mine, theirs), (theirs, mine)):
        if one.diverged_at is not None:
            return "FAIL", f"{one.engine} diverged at epoch {one.diverged_at}, {other.engine} did not"
    if comparison.first_failing_epoch is not None:
        return "FAIL", f"beyond tolerance from epoch {comparison.first_failing_epoch}"
    return "ok", ""


def skipped(config: str, engines: str, reason: str, tolerance: Tolerance) -> Comparison:
    """A comparison that could not run, with the reason to show in the table."""
    return Comparison(config, engines, tolerance, status="skipped", reason=reason)


def summary_table(comparisons) -> pd.DataFrame:
    """One row per comparison (:data:`SUMMARY_COLUMNS`)."""
    return pd.DataFrame([comparison.summary() for comparison in comparisons], columns=SUMMARY_COLUMNS)


def rows_table(comparisons) -> pd.DataFrame:
    """All per-epoch rows of all comparisons, one tidy DataFrame (:data:`ROW_COLUMNS`)."""
    frames = [comparison.rows for comparison in comparisons if not comparison.rows.empty]
    if not frames:
        return pd.DataFrame(columns=ROW_COLUMNS)
    return pd.concat(frames, ignore_index=True)
