"""Child process for the cold-start rows: import one library, then train the seed model once.

``python benchmarks/cold_start.py {gdcore,gdcore-auto,keras,jax} WORKLOAD.npz``
prints one JSON line: ``import_s`` (the library's import; NumPy is already
loaded), ``first_fit_s`` (building the model, its first complete training run,
compilation or tracing included, then one ``evaluate`` and one ``predict``)
and ``mse`` (training-set error afterwards). ``gdcore`` is
``engine="numba"`` (the fit compiles the loop), ``gdcore-auto`` the default
``engine="auto"`` (the fit runs on the NumPy engine while the loop compiles in
the background; ``ready_s``: seconds from the fit's start until that build
is in the cache, waited for after the timing). For gdcore it adds what Numba
compiled in the process during the first fit, from Numba's event API:
``compiled`` (number of functions), ``compile_s`` (their summed compile time)
and ``slowest`` (the five largest, exclusive of the functions they call).
``bench_training.py`` runs it with a fresh or reused ``NUMBA_CACHE_DIR`` and
measures the process's wall time around it.
"""

import contextlib
import json
import sys
import time

import numpy as np

from peers import Workload, mse


def load_workload(path) -> Workload:
    data = np.load(path)
    weights = [data[f"weight_{index}"] for index in range(int(data["n_weights"]))]
    hidden = int(data["hidden_units"])
    return Workload("cold start", data["x"], data["y"], hidden if hidden > 0 else None, str(data["optimizer"]),
                    float(data["learning_rate"]), int(data["batch_size"]), int(data["epochs"]), weights)


def save_workload(workload: Workload, path) -> None:
    np.savez(path, x=workload.x, y=workload.y, hidden_units=workload.hidden_units or 0, optimizer=workload.optimizer,
             learning_rate=workload.learning_rate, batch_size=workload.batch_size, epochs=workload.epochs,
             n_weights=len(workload.initial_weights),
             **{f"weight_{index}": weight for index, weight in enumerate(workload.initial_weights)})


def main(library: str, path: str) -> None:
    workload = load_workload(path)
    start = time.perf_counter()
    if library in ("gdcore", "gdcore-auto"):
        import functools

        import gdcore  # noqa: F401

        from peers import GdcoreTrainer

        Trainer = functools.partial(GdcoreTrainer, engine="auto" if library == "gdcore-auto" else "numba")
    elif library == "keras":
        import tensorflow  # noqa: F401

        from peers import KerasTrainer as Trainer, import_keras

        import_keras()
    elif library == "jax":
        import jax  # noqa: F401
        import jax.numpy  # noqa: F401

        from peers import JaxTrainer as Trainer
    else:
        raise ValueError(f"library must be gdcore, gdcore-auto, keras or jax, got {library!r}")
    imported = time.perf_counter()
    recorder = _compile_recorder() if library.startswith("gdcore") else None
    with recorder or contextlib.nullcontext() as events:
        trainer = Trainer(workload)
        trainer.reset()
        trainer.train()
        error = mse(trainer, workload)
    trained = time.perf_counter()
    outcome = {"import_s": imported - start, "first_fit_s": trained - imported, "mse": error}
    if events is not None:
        outcome.update(_compile_summary(events))
    if library == "gdcore-auto":
        from gdcore import _auto_engine

        for process in set(_auto_engine._builds.values()):
            process.wait()
        outcome["ready_s"] = time.perf_counter() - imported
    outcome["tail_s"] = time.perf_counter() - trained  # not the user's wait: bench_training takes it off the wall time
    print(json.dumps(outcome))


def _compile_recorder():
    try:
        from numba.core import event
    except ImportError:
        return None
    return event.install_recorder("numba:compile")


def _compile_summary(events) -> dict:
    """Compile time per function, exclusive of the functions compiled while it was (they nest)."""
    stack, exclusive = [], {}
    for timestamp, entry in events.buffer:
        function = entry.data["dispatcher"].py_func
        name = f"{function.__module__}.{function.__qualname__}".removeprefix("gdcore.")
        if entry.is_start:
            stack.append([name, timestamp, 0.0])
            continue
        name, started, nested = stack.pop()
        duration = timestamp - started
        exclusive[name] = exclusive.get(name, 0.0) + duration - nested
        if stack:
            stack[-1][2] += duration
    slowest = sorted(exclusive.items(), key=lambda item: -item[1])[:5]
    return {"compiled": len(exclusive), "compile_s": sum(exclusive.values()), "slowest": slowest}


if __name__ == "__main__":
    main(*sys.argv[1:])
