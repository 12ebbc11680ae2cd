"""Throughput of gdcore.sweep: a 1,000-configuration gdcore-only grid, in one process and on Dask with 1 and 2 workers.

    python benchmarks/bench_sweep.py [--configs N] [--scheduler ADDRESS]

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


def main(argv=None) -> None:
    from dask.distributed import Client, LocalCluster

    import gdcore

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", type=int, default=1000)
    parser.add_argument("--scheduler", help="also time an existing cluster at this address")
    arguments = parser.parse_args(argv)
    configs = grid(arguments.configs)
    _warm()
    start = time.perf_counter()
    reference = gdcore.sweep(configs)
    rows = [("in-process (sequential)", time.perf_counter() - start, None)]
    assert (reference["status"] == "ok").all(), reference[reference["status"] != "ok"]
    targets = [(f"Dask LocalCluster, {n} worker(s)", n, None) for n in (1, 2)]
    if arguments.scheduler:
        targets.append((f"Dask cluster at {arguments.scheduler}", None, arguments.scheduler))
    for label, workers, address in targets:
        started = time.perf_counter()
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None) if address is None else None
        address = address or cluster.scheduler_address
        with Client(address) as client:
            client.run(_warm)
        startup = time.perf_counter() - started
        start = time.perf_counter()
        frame = gdcore.sweep(configs, scheduler=address)
        rows.append((label, time.perf_counter() - start, startup))
        pd.testing.assert_frame_equal(frame, reference, check_exact=True)  # bit for bit, whatever the workers
        if cluster is not None:
            cluster.close()
    one_worker = rows[1][1]
    print(f"gdcore.sweep, {len(configs)} configurations (25 epochs each), {os.cpu_count()} logical CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at the end\n")
    print("| where | wall s | fits/s | vs 1 worker | cluster start-up s |")
    print("|---|---|---|---|---|")
    for label, seconds, startup in rows:
        print(f"| {label} | {seconds:.2f} | {len(configs) / seconds:.0f} | {one_worker / seconds:.2f}x | "
              f"{'-' if startup is None else f'{startup:.1f}'} |")
    print("\nEvery Dask run's rows equal the in-process run's, bit for bit.")


if __name__ == "__main__":
    main()
