"""Argument checks shared by the public API: every message names the argument."""

import math
from numbers import Real

import numpy as np


def _to_array(data, name: str, dtype) -> np.ndarray:
    if data is None:
        raise ValueError(f"{name} is required, got None")
    if type(data) is np.ndarray and data.dtype == dtype:  # not subclasses: a masked array hides its NaNs
        return data
    if hasattr(data, "to_numpy"):  # pandas DataFrame / Series
        data = data.to_numpy()
    if isinstance(data, (str, bytes)):
        raise TypeError(f"{name} must be numeric (array, DataFrame, Series or list), got {type(data).__name__}")
    kind = getattr(np.asarray(data) if not hasattr(data, "dtype") else data, "dtype", np.dtype(float)).kind
    if kind == "c":
        raise TypeError(f"{name} is complex ({np.asarray(data).dtype}): gdcore trains on real numbers; pass the real "
                        "part (x.real) or the magnitude explicitly")
    if kind in "mM":
        raise TypeError(f"{name} holds {'durations' if kind == 'm' else 'dates'} ({np.asarray(data).dtype}): convert "
                        "them to numbers in a unit you choose first (e.g. days as float)")
    if kind in "SUV":
        raise TypeError(f"{name} must be numeric, got an array of {np.asarray(data).dtype}")
    try:
        with np.errstate(over="ignore"):  # a value beyond the dtype's range is reported by _check_finite
            array = np.asarray(data, dtype=dtype)  # no copy when data already is such an array
    except (TypeError, ValueError) as error:
        raise TypeError(f"{name} must be numeric (array, DataFrame, Series or list), got {type(data).__name__}: {error}") from None
    return array


def _check_finite(array: np.ndarray, name: str, data) -> None:
    if np.isfinite(array).all():
        return
    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
    if np.isnan(array[bad]):
        kind = "NaN"
    elif np.isfinite(np.asarray(data, dtype=np.float64).reshape(array.shape)[bad]):  # finite before the cast
        raise ValueError(f"{name} has a value too large for {array.dtype} (first at index {bad}); rescale the data")
    else:
        kind = "inf"
    raise ValueError(f"{name} contains {kind} (first at index {bad}); remove or impute non-finite values")


def as_features(data, name: str = "x", n_features: int | None = None, dtype=np.float64) -> np.ndarray:
    """A finite, non-empty array of ``dtype`` and shape (n_samples, n_features)."""
    array = _to_array(data, name, dtype)
    if array.ndim == 1:
        if n_features not in (None, 1):
            raise ValueError(f"{name} has shape {array.shape} but the model expects {n_features} features per sample: pass shape (n_samples, {n_features})")
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if array.shape[1] == 0:
        raise ValueError(f"{name} has 0 features per sample (shape {array.shape})")
    if n_features is not None and array.shape[1] != n_features:
        raise ValueError(f"{name} has {array.shape[1]} features per sample but the model's Input has shape ({n_features},)")
    _check_finite(array, name, data)
    return array


def as_targets(data, name: str = "y", n_rows: int | None = None, n_outputs: int = 1, dtype=np.float64,
               broadcast: bool = False) -> np.ndarray:
    """A finite array of ``dtype`` and shape (n_samples, n_outputs); (n,) is taken as (n, 1) when n_outputs == 1.

    ``broadcast``: one target per sample, (n,) or (n, 1), is repeated over the outputs, as Keras's losses broadcast
    it against (n, n_outputs) predictions (``y_pred - y_true``).
    """
    array = _to_array(data, name, dtype)
    if array.ndim == 1 and (n_outputs == 1 or broadcast):
        array = array[:, None]
    if broadcast and n_outputs > 1 and array.ndim == 2 and array.shape[1] == 1:
        array = np.repeat(array, n_outputs, axis=1)
    if array.ndim != 2 or array.shape[1] != n_outputs:
        expected = f"(n_samples,) or (n_samples, 1)" if n_outputs == 1 else f"(n_samples, {n_outputs})"
        raise ValueError(f"{name} must have shape {expected} to match the model's output, got {array.shape}")
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if n_rows is not None and array.shape[0] != n_rows:
        raise ValueError(f"x and {name} must have the same number of samples, got {n_rows} and {array.shape[0]}")
    _check_finite(array, name, data)
    return array


def positive_int(value, name: str, minimum: int = 1, maximum: int = 2**62) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value > maximum:
        raise ValueError(f"{name} must be at most {maximum:,}, got {value!r}")
    return int(value)


_LARGEST = {np.float32: float(np.finfo(np.float32).max), np.float64: float(np.finfo(np.float64).max),
            np.float16: float(np.finfo(np.float16).max)}


def representable(value: float, dtype, name: str, allow_zero: bool = False) -> None:
    """A hyperparameter that survives rounding to the model's ``dtype``: finite, and not 0 unless allowed."""
    kind = np.dtype(dtype).type
    if abs(value) < _LARGEST.get(kind, 0.0):  # cannot overflow: no warning state to set (a context costs microseconds)
        rounded = kind(value)
    else:
        with np.errstate(over="ignore"):
            rounded = kind(value)
    if not np.isfinite(rounded):
        raise ValueError(f"{name}={value!r} overflows {np.dtype(dtype).name} (the model's dtype)")
    if rounded == 0 and value != 0 and not allow_zero:
        raise ValueError(f"{name}={value!r} rounds to 0 in {np.dtype(dtype).name} (the model's dtype): training "
                         "would not move")


def positive_float(value, name: str, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def unit_interval(value, name: str, closed_right: bool = False) -> float:
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) and (0 <= value <= 1 if closed_right else 0 <= value < 1)
    if not ok:
        raise ValueError(f"{name} must be a number in [0, 1{']' if closed_right else ')'}, got {value!r}")
    return float(value)


def lookup(table: dict, name, kind: str):
    """``table[name]`` with an error listing the known names."""
    if not isinstance(name, str):
        raise TypeError(f"{kind} must be a string or a gdcore {kind} object, got {type(name).__name__}")
    key = name.lower()
    if key not in table:
        raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted(table))}")
    return table[key]
