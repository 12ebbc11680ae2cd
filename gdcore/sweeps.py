"""Experiment sweeps: many independent trainings, sequentially or on a Dask cluster, with the same rows either way.

:func:`sweep` runs ``task(config, seed)`` for every configuration and seed
and returns one row per pair, in the order ``configs x seeds``:

- ``jobs=None, scheduler=None``: in this process, one after the other;
- ``jobs=N``: on a ``dask.distributed.LocalCluster`` of ``N`` worker processes
  (one thread each) started for the sweep;
- ``scheduler="tcp://host:8786"``: on an existing Dask cluster (``dask
  scheduler`` on one machine, ``dask worker tcp://host:8786`` on others; each
  worker needs gdcore installed).

The rows do not depend on where or in which order the tasks ran: each task
is a pure function of its configuration and seed (gdcore's training is
deterministic: seeded initial weights, seeded shuffles, fixed summation
order), rows are sorted by task number, and floats travel as Python floats
(through CSV as their shortest round-trip repr). A task that raises becomes a
row with ``status="failed"`` and the error, never a missing row; a worker
that dies is retried ``retries`` times, then reported the same way. With
``output=`` (a ``.csv`` file) each row is appended as soon as its task
finishes, and a later call with the same sweep and file runs only the tasks
the file does not hold yet (failed ones again).

Workers import what the task imports: the default task, :func:`train`,
imports gdcore (NumPy, Numba, pandas) and never TensorFlow. Numba kernels
come from gdcore's on-disk cache, compiled once per machine.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
import math
import os
import traceback
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["TRAIN_DEFAULTS", "run_tasks", "sweep", "train"]

#: The default task's configuration keys and their values when a configuration leaves them out
#: (the seed notebook's linear neuron on its 100-sample dataset).
TRAIN_DEFAULTS = {
    "hidden_layer_sizes": (), "activation": "sigmoid", "optimizer": "sgd", "learning_rate": 0.01, "loss": "mse",
    "batch_size": 20, "epochs": 25, "dtype": "float32", "numerics": "plain", "engine": "auto",
    "n_samples": 100, "noise": 1.25, "data_seed": 42,
}
_STATUS_COLUMNS = ("task", "seed", "key", "status", "error")


@functools.lru_cache(maxsize=16)
def _dataset(n_samples: int, noise: float, data_seed: int, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    from gdcore.datasets import make_regression_dataset

    frame = make_regression_dataset(n_samples=n_samples, noise=noise, random_state=data_seed)
    return frame[["X"]].to_numpy(dtype=dtype), frame["y"].to_numpy(dtype=dtype)


def train(config: Mapping, seed: int) -> dict:
    """The default task: train a gdcore network described by ``config`` (keys of :data:`TRAIN_DEFAULTS`) with ``seed``.

    ``seed`` seeds ``Sequential(seed=...)``: the Glorot-uniform initial weights
    and the per-epoch shuffles. Returns the final and smallest training loss,
    the epochs completed, whether training diverged, and a SHA-256 of the
    final weights' bytes (equal digests mean bit-identical weights).
    """
    import warnings

    import gdcore

    unknown = sorted(set(config) - set(TRAIN_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown configuration key(s) {unknown}; known: {sorted(TRAIN_DEFAULTS)}")
    settings = {**TRAIN_DEFAULTS, **config}
    x, y = _dataset(int(settings["n_samples"]), float(settings["noise"]), int(settings["data_seed"]), settings["dtype"])
    layers = [gdcore.layers.Dense(int(units), activation=settings["activation"]) for units in settings["hidden_layer_sizes"]]
    model = gdcore.Sequential([gdcore.Input(shape=(x.shape[1],)), *layers, gdcore.layers.Dense(1)],
                              dtype=settings["dtype"], numerics=settings["numerics"], engine=settings["engine"], seed=seed)
    optimizer = gdcore.optimizers.get(settings["optimizer"])
    model.compile(optimizer=type(optimizer)(learning_rate=settings["learning_rate"]), loss=settings["loss"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gdcore.TrainingDivergedWarning)  # reported as a column instead
        history = model.fit(x, y, batch_size=settings["batch_size"], epochs=settings["epochs"], verbose=0)
    losses = history.history["loss"]
    digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in model.get_weights())).hexdigest()
    return {"loss": float(losses[-1]) if losses else math.nan, "min_loss": float(min(losses)) if losses else math.nan,
            "epochs_run": len(losses), "diverged": len(losses) < settings["epochs"], "weights_sha256": digest}


# --- running tasks -------------------------------------------------------------------------


class _Failure:
    """What a task raised, as text (exceptions do not always pickle)."""

    def __init__(self, error: BaseException):
        self.message = f"{type(error).__name__}: {error}"
        self.traceback = "".join(traceback.format_exception(error))

    def __repr__(self) -> str:
        return f"_Failure({self.message!r})"


def _call_chunk(function: Callable, chunk: list) -> list:
    """Run ``function(*arguments)`` for each item of ``chunk``, catching each failure separately."""
    results = []
    for index, arguments in chunk:
        try:
            results.append((index, function(*arguments)))
        except Exception as error:  # reported as a failed row, with its configuration
            results.append((index, _Failure(error)))
    return results


def _client(jobs: int | None, scheduler: str | None):
    """A ``dask.distributed.Client``: to ``scheduler``, or to a new LocalCluster of ``jobs`` processes."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as error:
        raise ImportError(f"jobs=/scheduler= run on Dask: pip install 'dask[distributed]' ({error})") from error
    if scheduler is not None:
        return Client(scheduler), None
    cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None)
    return Client(cluster), cluster


def run_tasks(function: Callable, arguments: Iterable[tuple], *, jobs: int | None = None, scheduler: str | None = None,
              retries: int = 1, chunk_size: int | None = None, on_result: Callable | None = None) -> list:
    """``[function(*a) for a in arguments]``, sequentially or on Dask (module docstring); order always kept.

    A call that raises gives, in its place, an object with ``message`` and
    ``traceback`` attributes; ``on_result(index, result)`` is called as each
    finishes (in completion order). ``function`` must be importable by the
    workers (a module-level function). ``chunk_size`` tasks travel together
    (default: about four chunks per worker, at most 64 tasks each).
    """
    items = list(enumerate(arguments))
    results: list = [None] * len(items)
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise ValueError(f"jobs must be a positive integer or None, got {jobs!r}")
    if scheduler is not None and not isinstance(scheduler, str):
        raise TypeError(f"scheduler must be an address string such as 'tcp://127.0.0.1:8786', got {scheduler!r}")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an integer >= 0, got {retries!r}")

    def record(index, result):
        results[index] = result
        if on_result is not None:
            on_result(index, result)

    if jobs is None and scheduler is None:
        for index, item in items:
            for _, result in _call_chunk(function, [(index, item)]):
                record(index, result)
        return results
    if not items:
        return results
    from dask.distributed import as_completed

    client, cluster = _client(jobs, scheduler)
    try:
        workers = max(1, len(client.scheduler_info().get("workers", {})) or (jobs or 1))
        size = chunk_size or max(1, min(64, math.ceil(len(items) / (4 * workers))))
        chunks = [items[start : start + size] for start in range(0, len(items), size)]
        futures = {client.submit(_call_chunk, function, chunk, retries=retries, pure=False): chunk for chunk in chunks}
        for future in as_completed(futures):
            try:
                done = future.result()
            except Exception as error:  # the worker died, or the result could not travel: every task of the chunk
                done = [(index, _Failure(error)) for index, _ in futures[future]]
            for index, result in done:
                record(index, result)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results


# --- the sweep -----------------------------------------------------------------------------


def _cell(value):
    """A configuration value as a CSV-stable scalar: sequences and mappings as JSON text."""
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _key(config: Mapping, seed: int) -> str:
    return json.dumps({"config": {name: _cell(value) for name, value in config.items()}, "seed": int(seed)},
                      sort_keys=True)


def sweep(configs: Iterable[Mapping], seeds: Iterable[int] = (0,), task: Callable | None = None, *,
          jobs: int | None = None, scheduler: str | None = None, output: str | os.PathLike | None = None,
          retries: int = 1, chunk_size: int | None = None) -> pd.DataFrame:
    """Run ``task(config, seed)`` for every configuration x seed; one row each, in that order (module docstring).

    Parameters
    ----------
    configs : iterable of mappings
        The configurations (for the default task, keys of :data:`TRAIN_DEFAULTS`).
    seeds : iterable of int
    task : callable, default :func:`train`
        ``task(config: dict, seed: int) -> mapping of scalars``; a module-level function when run on Dask.
    jobs : int, optional
        Worker processes of a LocalCluster started for the sweep.
    scheduler : str, optional
        Address of an existing Dask scheduler (wins over ``jobs``).
    output : path, optional
        A CSV file each row is appended to as its task finishes; an existing
        file of the same sweep is resumed (only missing and failed tasks run).
    retries : int
        Times Dask resubmits a task whose worker died.
    chunk_size : int, optional
        Tasks sent to a worker at once (see :func:`run_tasks`).

    Returns
    -------
    pandas.DataFrame
        Columns ``task`` (position), ``seed``, the configuration's keys,
        ``status`` (``"ok"``/``"failed"``), ``error``, then the task's results.
    """
    task = train if task is None else task
    configs = [dict(config) for config in configs]
    for position, config in enumerate(configs):
        if not all(isinstance(name, str) for name in config):
            raise TypeError(f"configs[{position}] must map names (str) to values, got keys {list(config)}")
    seeds = [int(seed) for seed in seeds]
    pairs = [(config, seed) for config in configs for seed in seeds]
    keys = [_key(config, seed) for config, seed in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("configs contain duplicates: every configuration x seed must be distinct")
    path = None if output is None else os.fspath(output)
    if path is not None and not path.endswith(".csv"):
        raise ValueError(f"output must be a .csv file, got {path!r}")
    done = _resume(path, keys)
    todo = [index for index in range(len(pairs)) if index not in done]

    def row(index, result) -> dict:
        config, seed = pairs[index]
        base = {"task": index, "seed": seed, **{name: _cell(value) for name, value in config.items()},
                "key": keys[index]}
        if isinstance(result, _Failure):
            return {**base, "status": "failed", "error": result.message}
        if not isinstance(result, Mapping):
            return {**base, "status": "failed",
                    "error": f"TypeError: the task must return a mapping of results, got {type(result).__name__}"}
        return {**base, "status": "ok", "error": "", **{name: _cell(value) for name, value in result.items()}}

    rows: dict[int, dict] = {}
    writer = _CsvAppender(path) if path is not None else None

    def on_result(position, result):
        index = todo[position]
        rows[index] = row(index, result)
        if writer is not None:
            writer.append(rows[index])

    run_tasks(task, [pairs[index] for index in todo], jobs=jobs, scheduler=scheduler, retries=retries,
              chunk_size=chunk_size, on_result=on_result)
    if path is not None:
        frame = _read_csv(path)
        frame["task"] = frame["key"].map({key: index for index, key in enumerate(keys)})  # this sweep's numbering
        return _finish(frame)
    return _finish(pd.DataFrame([rows[index] for index in sorted(rows)]))


def _read_csv(path: str) -> pd.DataFrame:
    """The rows as written: floats parsed round-trip (pandas 3's default, an option before), only empty cells NaN."""
    exact = {} if int(pd.__version__.split(".")[0]) >= 3 else {"float_precision": "round_trip"}
    return pd.read_csv(path, keep_default_na=False, na_values=[""], **exact)


def _finish(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows by task number, without the ``key`` column."""
    if frame.empty:
        return frame
    frame = frame.sort_values("task", kind="stable").reset_index(drop=True).drop(columns="key")
    frame["error"] = ["" if isinstance(error, float) else str(error) for error in frame["error"]]
    return frame


def _resume(path: str | None, keys: list[str]) -> set[int]:
    """Task numbers already finished in ``path`` (rewritten without failed or duplicate rows)."""
    if path is None or not os.path.exists(path) or os.path.getsize(path) == 0:
        return set()
    previous = _read_csv(path)
    for column in ("task", "key", "status"):
        if column not in previous:
            raise ValueError(f"{path} is not a sweep's output (no {column!r} column); choose another output file")
    foreign = previous[~previous["key"].isin(keys)]
    if not foreign.empty:
        raise ValueError(f"{path} holds rows of a different sweep (e.g. {foreign['key'].iloc[0]}); resume it with "
                         "the same configs and seeds, or choose another output file")
    index_of = {key: index for index, key in enumerate(keys)}
    with open(path, newline="") as handle:  # rewritten cell by cell, so each keeps the text it was written as
        header, *lines = list(csv.reader(handle))
    key, status = header.index("key"), header.index("status")
    kept = {line[key]: line for line in lines if line[status] == "ok"}  # the last row of a key wins
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows([header, *kept.values()])
    return {index_of[key] for key in kept}


class _CsvAppender:
    """Appends rows to a CSV file, rewriting it when a row brings new columns (a failed row has fewer)."""

    def __init__(self, path: str):
        self.path = path
        self.columns = list(pd.read_csv(path, nrows=0).columns) if os.path.exists(path) and os.path.getsize(path) else []

    def append(self, row: dict) -> None:
        new = [name for name in row if name not in self.columns]
        if new and self.columns:
            frame = _read_csv(self.path)
            self.columns += new
            frame.reindex(columns=self.columns).to_csv(self.path, index=False)
        elif new:
            self.columns = list(row)
            pd.DataFrame(columns=self.columns).to_csv(self.path, index=False)
        with open(self.path, "a", newline="") as handle:  # closed, hence on disk, before the next task's row
            pd.DataFrame([row]).reindex(columns=self.columns).to_csv(handle, header=False, index=False)
