"""gdcore.sweeps: the same rows sequentially and on a 2-worker Dask cluster; failures reported; resumable output."""

import sys

import pandas as pd
import pytest

from gdcore.sweeps import sweep, train

CONFIGS = [dict(optimizer=optimizer, learning_rate=learning_rate, batch_size=batch_size, hidden_layer_sizes=hidden,
                epochs=8)
           for optimizer in ("sgd", "adam") for learning_rate in (0.1, 0.01) for batch_size in (1, 30)
           for hidden in ((), (8,))]


def _tensorflow_loaded() -> bool:
    return "tensorflow" in sys.modules


@pytest.fixture(scope="module")
def cluster():
    """One 2-process LocalCluster for this module's Dask tests (starting one costs most of their time).

    Not marked slow: with gdcore's kernels in the Numba cache the module takes about 15 s, cluster included, and
    the Dask run's equality with the sequential one is an acceptance test that belongs in the default run."""
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster


def test_dask_sweep_equals_the_sequential_sweep_bit_for_bit(tmp_path, cluster):
    from dask.distributed import Client

    configs = [*CONFIGS, dict(optimizer="nadam")]  # one failing configuration: a row, not a gap
    sequential = sweep(configs, seeds=(0, 1))
    # chunk_size=1: 34 futures finishing in whatever order the two workers reach them
    on_dask = sweep(configs, seeds=(0, 1), scheduler=cluster.scheduler_address, output=tmp_path / "rows.csv",
                    chunk_size=1)
    with Client(cluster) as client:
        imported = client.run(_tensorflow_loaded)
    assert len(imported) == 2 and not any(imported.values())  # the default task never imports TensorFlow
    pd.testing.assert_frame_equal(on_dask, sequential, check_exact=True)
    assert on_dask["weights_sha256"].nunique() == 32  # every run different, so equality means something
    failed = on_dask[on_dask["status"] == "failed"]
    assert failed["task"].tolist() == [32, 33] and (failed["optimizer"] == "nadam").all()
    assert failed["error"].str.contains("unknown optimizer 'nadam'").all()


def test_rows_follow_configs_times_seeds_and_match_a_direct_training():
    frame = sweep(CONFIGS[:2], seeds=(3, 4))
    assert frame["task"].tolist() == [0, 1, 2, 3] and frame["seed"].tolist() == [3, 4, 3, 4]
    direct = train(CONFIGS[1], 3)
    assert frame.loc[2, "loss"] == direct["loss"] and frame.loc[2, "weights_sha256"] == direct["weights_sha256"]
    assert frame.loc[0, "weights_sha256"] != frame.loc[1, "weights_sha256"]  # the seed changes the run


CALLS = []


def _flaky(config, seed):
    CALLS.append((config["learning_rate"], seed))
    if seed == 1 and not config.get("fixed"):
        raise RuntimeError("worker lost its GPU")
    return train({key: value for key, value in config.items() if key != "fixed"}, seed)


def test_interrupted_or_failed_sweep_resumes_where_it_stopped(tmp_path):
    output = tmp_path / "sweep.csv"
    configs = CONFIGS[:3]
    first = sweep(configs, seeds=(0, 1), task=_flaky, output=output)
    assert first["status"].tolist() == ["ok", "failed"] * 3
    assert first.loc[1, "error"] == "RuntimeError: worker lost its GPU"
    CALLS.clear()

    second = sweep(configs, seeds=(0, 1), task=lambda config, seed: _flaky({**config, "fixed": True}, seed),
                   output=output)
    assert [seed for _, seed in CALLS] == [1, 1, 1]  # only the failed tasks ran again
    assert (second["status"] == "ok").all()
    pd.testing.assert_frame_equal(second, sweep(configs, seeds=(0, 1)), check_exact=True)
    with pytest.raises(ValueError, match="holds rows of a different sweep"):
        sweep(CONFIGS[5:6], output=output)


def _interrupted_at_task_four(config, seed):
    CALLS.append((config["learning_rate"], seed))
    if len(CALLS) == 4:
        raise KeyboardInterrupt  # as Ctrl-C (not an Exception: the sweep itself stops)
    return train(config, seed)


def test_interrupted_sweep_keeps_finished_rows_and_resumes_with_the_rest(tmp_path):
    output = tmp_path / "sweep.csv"
    configs = CONFIGS[:3]
    CALLS.clear()
    with pytest.raises(KeyboardInterrupt):
        sweep(configs, seeds=(0, 1), task=_interrupted_at_task_four, output=output)
    assert pd.read_csv(output)["task"].tolist() == [0, 1, 2]  # on disk as each finished
    CALLS.clear()
    resumed = sweep(configs, seeds=(0, 1), task=_interrupted_at_task_four, output=output)
    assert len(CALLS) == 3  # tasks 3, 4, 5 only
    pd.testing.assert_frame_equal(resumed, sweep(configs, seeds=(0, 1)), check_exact=True)


@pytest.mark.parametrize("arguments, error, match", [
    ({"jobs": 0}, ValueError, "jobs must be a positive integer"),
    ({"scheduler": 8786}, TypeError, "scheduler must be an address string"),
    ({"output": "rows.parquet"}, ValueError, r"output must be a \.csv file"),
    ({"retries": -1}, ValueError, "retries must be an integer >= 0"),
])
def test_bad_arguments_are_named(arguments, error, match):
    with pytest.raises(error, match=match):
        sweep(CONFIGS[:1], **arguments)


def test_unknown_configuration_key_fails_that_row_with_the_known_keys():
    frame = sweep([{"learning_rte": 0.1}])
    assert frame.loc[0, "status"] == "failed" and "unknown configuration key(s) ['learning_rte']" in frame.loc[0, "error"]


@pytest.mark.sklearn
def test_reference_configurations_on_dask_give_the_sequential_comparisons(cluster):
    """``python -m reference --scheduler``'s path: run_task on the workers, every comparison row as in one process."""
    from gdcore.sweeps import run_tasks
    from reference.configs import SEED_LINEAR, SEED_SIGMOID8
    from reference.runner import rows_frame, run_task, summary_frame

    tasks = [(config.replace(epochs=3, dtype="float64"), ("sklearn",), False)
             for config in (SEED_LINEAR.replace(batch_size=1), SEED_SIGMOID8)]
    sequential = [run_task(*task) for task in tasks]
    on_dask = run_tasks(run_task, tasks, scheduler=cluster.scheduler_address, chunk_size=1)
    timing = ["mine_seconds", "theirs_seconds", "speedup"]
    pd.testing.assert_frame_equal(summary_frame(on_dask).drop(columns=timing),
                                  summary_frame(sequential).drop(columns=timing), check_exact=True)
    pd.testing.assert_frame_equal(rows_frame(on_dask), rows_frame(sequential), check_exact=True)
    assert len(rows_frame(sequential)) > 20
    from dask.distributed import Client

    with Client(cluster) as client:
        imported = client.run(_tensorflow_loaded)
    assert not any(imported.values())  # comparisons with scikit-learn only: no worker imported TensorFlow


def test_reference_refuses_zero_jobs(capsys):
    from reference.__main__ import main

    assert main(["--jobs", "0"]) == 2
    assert "--jobs must be a positive number of worker processes, got 0" in capsys.readouterr().err


@pytest.mark.sklearn
def test_reference_stores_each_configuration_and_resumes(tmp_path, capsys, monkeypatch):
    import reference.__main__ as command
    import reference.report
    import reference.runner

    monkeypatch.setattr(command, "_verify_profile", lambda: ("verify_tensorflow_profile: skipped in tests", ""))
    monkeypatch.setattr(reference.report, "versions", lambda: {"gdcore": "test"})  # keeps TensorFlow out
    arguments = ["--grid", "--configs", "linear-sgd-mse-b1-lr0.01-float64", "sigmoid8-sgd-mse-b20-lr0.1-float64", "--epochs",
                 "2", "--engines", "sklearn", "--no-plots", "--output", str(tmp_path)]
    assert command.main(arguments) == 0
    first = pd.read_csv(tmp_path / "rows.csv")
    assert len(list((tmp_path / "results").glob("*.pickle"))) == 2

    def must_not_run(*task):
        raise AssertionError(f"{task[0].name} was finished already")

    monkeypatch.setattr(command, "run_task", must_not_run, raising=False)
    monkeypatch.setattr(reference.runner, "run_task", must_not_run)
    assert command.main([*arguments, "--resume"]) == 0
    assert "resuming: 2 configuration(s) already finished" in capsys.readouterr().out
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "rows.csv"), first, check_exact=True)
    # Nothing stored there: both run, and a configuration that raises is reported with its name, not dropped.
    assert command.main([*arguments[:-2], "--output", str(tmp_path / "other"), "--resume"]) == 1
    printed = capsys.readouterr().out
    assert "[1/2] linear-sgd-mse-b1-lr0.01-e2-float64-tensorflow  FAILED: AssertionError" in printed
    assert "2 configuration(s) raised" in printed
