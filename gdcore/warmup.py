"""Compile and cache the training loop before the first fit: ``python -m gdcore.warmup``.

Numba compiles gdcore's fused loop once per dtype and numerics profile (about
two minutes each on two cores; every optimizer shares it,
:class:`gdcore.optimizers.Hyperparameters`) and caches it on disk next to the
sources; later processes load it in about a second. :func:`warm_up` trains a
tiny model through every compiled entry point (``fit`` with validation data
and a metric, ``evaluate``, ``predict``) for each dtype and profile, in
parallel processes, so that no first ``fit`` waits: not even the NumPy-engine
runs of ``engine="auto"`` while the loop builds in the background
(:mod:`gdcore._auto_engine`).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

DTYPES = ("float32", "float64")
PROFILES = ("plain", "tensorflow")
OPTIMIZERS = ("adam",)  # one is enough: all optimizers share the compiled loop


def compile_kernels(dtype: str, numerics: str) -> None:
    """Run every compiled entry point once for ``dtype`` and ``numerics`` (in this process)."""
    import numpy as np

    import gdcore

    x = np.linspace(-1.0, 1.0, 40)[:, None]
    for optimizer in OPTIMIZERS:
        model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(4, activation="sigmoid"),
                                   gdcore.layers.Dense(1)], dtype=dtype, numerics=numerics, engine="numba")
        model.compile(optimizer=optimizer, loss="mse", metrics=["mae"])
        model.fit(x, 2 * x + 1, epochs=2, batch_size=16, verbose=0, validation_data=(x, 2 * x + 1))
        model.evaluate(x, 2 * x + 1, verbose=0)
        model.predict(x, verbose=0)


def warm_up(dtypes=DTYPES, profiles=PROFILES, processes: int = 2) -> None:
    """Compile the loop for every ``dtype`` x ``profile`` in up to ``processes`` fresh processes at once.

    A process that fails raises ``RuntimeError`` with its error output. With a
    warm cache each process only loads (about two seconds).
    """
    for dtype in dtypes:
        if dtype not in DTYPES:
            raise ValueError(f"dtypes: each must be one of {DTYPES}, got {dtype!r}")
    for profile in profiles:
        if profile not in PROFILES:
            raise ValueError(f"profiles: each must be one of {PROFILES}, got {profile!r}")

    def run(task):
        command = [sys.executable, "-m", "gdcore.warmup", "--one", *task]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"compiling gdcore's loop for {task[0]}, numerics={task[1]!r} failed:\n"
                               f"{result.stderr[-3000:]}")

    tasks = [(dtype, profile) for dtype in dtypes for profile in profiles]
    with ThreadPoolExecutor(max_workers=max(1, int(processes))) as pool:
        list(pool.map(run, tasks))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m gdcore.warmup", description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=2, help="processes compiling at once (default 2)")
    parser.add_argument("--one", nargs=2, metavar=("DTYPE", "NUMERICS"), help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    if arguments.one:
        compile_kernels(*arguments.one)
    else:
        warm_up(processes=arguments.processes)


if __name__ == "__main__":
    main()
