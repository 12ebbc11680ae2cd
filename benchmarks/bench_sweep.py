"""Throughput of gdcore.sweep: a 1,000-configuration gdcore-only grid, in one process and on Dask with 1 and 2 workers.

    python benchmarks/bench_sweep.py [--configs N] [--scheduler ADDRESS]
    python benchmarks/bench_sweep.py --reference [--reference-stride K] [--reference-configs PATTERN ...]

``--reference`` times the reference grid instead (``python -m reference
--grid``'s tasks: each configuration trained in gdcore, Keras and
scikit-learn and compared epoch by epoch), every ``K``-th configuration of
it (default 1: all 288) or those matching the patterns; its rows, minus the
timing columns, are checked equal to the in-process run's.

Each configuration trains the default task (gdcore.sweeps.train: the seed
notebook's 100-sample dataset, 25 epochs) with one of 2 optimizers x 2 losses
x 5 architectures x 5 batch sizes x 10 learning rates. The clusters are
started and warmed (every worker has loaded gdcore's compiled kernels) before
the clock starts, so the figures are the sweep's own; cluster start-up is
printed separately. Every run's rows are checked equal to the in-process run.
Prints a Markdown table: wall seconds, fits per second, speed-up over 1 worker.
"""

from __future__ import annotations

import argparse
import itertools
import os
import time

import pandas as pd


def grid(n: int) -> list[dict]:
    configs = [dict(optimizer=optimizer, loss=loss, hidden_layer_sizes=hidden, batch_size=batch_size,
                    learning_rate=learning_rate)
               for optimizer, loss, hidden, batch_size, learning_rate in itertools.product(
                   ("sgd", "adam"), ("mse", "mae"), ((), (2,), (4,), (8,), (16,)), (1, 10, 20, 50, 100),
                   (0.3, 0.1, 0.05, 0.03, 0.01, 0.005, 0.003, 0.001, 0.0005, 0.0001))]
    return configs[:n]


def _warm() -> bool:
    import gdcore

    gdcore.sweeps.train({"hidden_layer_sizes": (2,), "optimizer": "adam", "epochs": 1}, 0)
    gdcore.sweeps.train({"epochs": 1, "loss": "mae"}, 0)
    return True


def _warm_reference() -> bool:
    """Import what a reference task imports (TensorFlow, Keras, scikit-learn) and load its kernels, off the clock."""
    from reference import configs
    from reference.runner import run_task

    run_task(configs.SEED_LINEAR.replace(epochs=1, dtype="float64"))
    return True


def _clusters(scheduler):
    """(label, worker count, address) of each Dask target: local clusters of 1 and 2 workers, then ``scheduler``."""
    targets = [(f"Dask LocalCluster, {n} worker(s)", n, None) for n in (1, 2)]
    if scheduler:
        targets.append((f"Dask cluster at {scheduler}", None, scheduler))
    return targets


def _start(workers, address, warm):
    """A started and warmed cluster (None for an existing one), its address, and the seconds that took."""
    from dask.distributed import Client, LocalCluster

    started = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None) if address is None else None
    address = address or cluster.scheduler_address
    with Client(address) as client:
        client.run(warm)
    return cluster, address, time.perf_counter() - started


def _table(rows, count: int, what: str) -> None:
    one_worker = rows[1][1]
    print("| where | wall s | " + what + "/s | vs 1 worker | cluster start-up s |")
    print("|---|---|---|---|---|")
    for label, seconds, startup in rows:
        print(f"| {label} | {seconds:.2f} | {count / seconds:.3g} | {one_worker / seconds:.2f}x | "
              f"{'-' if startup is None else f'{startup:.1f}'} |")


def reference_benchmark(arguments) -> None:
    """The reference grid's tasks in one process and on Dask (module docstring)."""
    from gdcore.sweeps import run_tasks
    from reference import configs as configs_module
    from reference.runner import ConfigResult, rows_frame, run_task, summary_frame

    selected = configs_module.full_grid()
    if arguments.reference_configs:
        selected = configs_module.select(selected, arguments.reference_configs)
    selected = selected[::arguments.reference_stride]
    tasks = [(config, ("keras", "sklearn"), False) for config in selected]
    timing = ["mine_seconds", "theirs_seconds", "speedup"]

    def frames(results):
        failed = [result for result in results if not isinstance(result, ConfigResult)]
        assert not failed, failed
        return summary_frame(results).drop(columns=timing), rows_frame(results)

    _warm_reference()
    start = time.perf_counter()
    sequential = frames(run_tasks(run_task, tasks))
    rows = [("in-process (sequential)", time.perf_counter() - start, None)]
    for label, workers, address in _clusters(arguments.scheduler):
        cluster, address, startup = _start(workers, address, _warm_reference)
        start = time.perf_counter()
        results = run_tasks(run_task, tasks, scheduler=address, chunk_size=1)
        rows.append((label, time.perf_counter() - start, startup))
        for mine, theirs in zip(frames(results), sequential):
            pd.testing.assert_frame_equal(mine, theirs, check_exact=True)  # the same comparisons, bit for bit
        if cluster is not None:
            cluster.close()
    print(f"reference grid, {len(tasks)} of its {len(configs_module.full_grid())} configurations (every "
          f"{arguments.reference_stride}), gdcore vs Keras and scikit-learn, {os.cpu_count()} logical CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at the end\n")
    _table(rows, len(tasks), "configurations")
    print("\nEvery Dask run's comparison rows (all but the timing columns) equal the in-process run's, bit for bit.")


def main(argv=None) -> None:
    import gdcore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--scheduler", help="also time an existing cluster at this address")
    parser.add_argument("--reference", action="store_true", help="time the reference grid instead")
    parser.add_argument("--reference-stride", type=int, default=1, metavar="K",
                        help="with --reference: every K-th configuration of the grid")
    parser.add_argument("--reference-configs", nargs="+", metavar="PATTERN",
                        help="with --reference: only these configurations (names or globs)")
    arguments = parser.parse_args(argv)
    if arguments.reference_stride < 1:
        parser.error(f"--reference-stride must be a positive integer, got {arguments.reference_stride}")
    if arguments.reference:
        reference_benchmark(arguments)
        return
    configs = grid(arguments.configs)
    _warm()
    start = time.perf_counter()
    reference = gdcore.sweep(configs)
    rows = [("in-process (sequential)", time.perf_counter() - start, None)]
    assert (reference["status"] == "ok").all(), reference[reference["status"] != "ok"]
    for label, workers, address in _clusters(arguments.scheduler):
        cluster, address, startup = _start(workers, address, _warm)
        start = time.perf_counter()
        frame = gdcore.sweep(configs, scheduler=address)
        rows.append((label, time.perf_counter() - start, startup))
        pd.testing.assert_frame_equal(frame, reference, check_exact=True)  # bit for bit, whatever the workers
        if cluster is not None:
            cluster.close()
    print(f"gdcore.sweep, {len(configs)} configurations (25 epochs each), {os.cpu_count()} logical CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at the end\n")
    _table(rows, len(configs), "fits")
    print("\nEvery Dask run's rows equal the in-process run's, bit for bit.")


if __name__ == "__main__":
    main()
