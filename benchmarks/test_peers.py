"""The benchmark's peers train the same network with the same maths (``pytest benchmarks/``).

No timing here: these tests check that the rows of the benchmark compare like
with like. Tolerances are float32-level, since the peers sum in different
orders and gdcore evaluates the sigmoid as Eigen does.
"""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gdcore  # noqa: E402

import peers  # noqa: E402

SEED_CONFIGS = [(None, "sgd", 0.01), (8, "adam", 0.1)]


def seed_workload(hidden_units, optimizer, learning_rate, epochs=25):
    data = gdcore.datasets.make_regression_dataset(100, noise=1.25, random_state=42)
    return peers.make_workload("seed", data["X"], data["y"], hidden_units, optimizer, learning_rate, 20, epochs)


@pytest.mark.parametrize("hidden_units, optimizer, learning_rate", SEED_CONFIGS)
def test_numpy_loop_matches_gdcore_given_the_same_orders(hidden_units, optimizer, learning_rate):
    # gdcore's fit(x[p], y[p], epochs=1, shuffle=False), once per epoch, visits the orders p the loop drew.
    workload = seed_workload(hidden_units, optimizer, learning_rate, epochs=5)
    loop = peers.NumpyLoopTrainer(workload)
    loop.reset()
    rng = np.random.default_rng(0)
    orders = [rng.permutation(workload.n_samples) for _ in range(workload.epochs)]
    loop.train()
    model = gdcore.Sequential(peers.gdcore_layers(hidden_units), dtype="float32", seed=0)
    model.set_weights(workload.initial_weights)
    model.compile(optimizer=peers.gdcore_optimizer(optimizer, learning_rate), loss="mse")
    losses = []
    for order in orders:
        history = model.fit(workload.x[order], workload.y[order], batch_size=20, epochs=1, shuffle=False, verbose=0)
        losses.append(history.history["loss"][0])
    for mine, theirs in zip(loop.params, model.get_weights()):
        np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-5, err_msg="NumPy loop vs gdcore weights")
    np.testing.assert_allclose(loop.epoch_losses, losses, rtol=1e-4, err_msg="NumPy loop vs gdcore epoch losses")


@pytest.mark.skipif(not peers.jax_available(), reason="JAX is an optional peer")
@pytest.mark.parametrize("hidden_units, optimizer, learning_rate", SEED_CONFIGS)
def test_jax_matches_numpy_loop(hidden_units, optimizer, learning_rate):
    # Both draw rng.permutation per epoch from default_rng(0), so they visit the same batches.
    workload = seed_workload(hidden_units, optimizer, learning_rate)
    loop, jax_trainer = peers.NumpyLoopTrainer(workload), peers.JaxTrainer(workload)
    for trainer in (loop, jax_trainer):
        trainer.reset()
        trainer.train()
    for mine, theirs in zip(jax_trainer.trained, loop.params):
        np.testing.assert_allclose(np.asarray(mine), theirs, rtol=1e-4, atol=1e-5, err_msg="JAX vs NumPy loop weights")
    np.testing.assert_allclose(np.asarray(jax_trainer.epoch_losses), loop.epoch_losses, rtol=1e-4)


def trainers_for(workload):
    built = [peers.GdcoreTrainer(workload), peers.GdcoreTrainer(workload, engine="numpy"),
             peers.NumpyLoopTrainer(workload), peers.MLPRegressorTrainer(workload)]
    if workload.hidden_units is None:
        built.append(peers.SGDRegressorTrainer(workload))
    if peers.jax_available():
        built.append(peers.JaxTrainer(workload))
    return built


@pytest.mark.parametrize("hidden_units, optimizer, learning_rate", SEED_CONFIGS)
def test_every_peer_trains_from_reset(hidden_units, optimizer, learning_rate):
    workload = seed_workload(hidden_units, optimizer, learning_rate)
    initial = float(np.mean((workload.y - workload.y.mean()) ** 2))  # a constant predictor's error
    for trainer in trainers_for(workload):
        trainer.warm_up()
        results = []
        for _ in range(2):
            trainer.reset()
            trainer.train()
            results.append(peers.mse(trainer, workload))
        name = type(trainer).__name__
        assert results[0] < initial, f"{name} did not train: MSE {results[0]} vs {initial} for the mean"
        assert results[0] == pytest.approx(results[1], rel=1e-6), f"{name}: reset() does not restart the run"


@pytest.mark.tensorflow
def test_keras_reset_restores_weights_and_optimizer_state():
    pytest.importorskip("tensorflow")
    workload = seed_workload(8, "adam", 0.1, epochs=2)
    trainer = peers.KerasTrainer(workload)
    trainer.warm_up()
    trainer.reset()
    for mine, start in zip(trainer.model.get_weights(), workload.initial_weights):
        np.testing.assert_array_equal(mine, start)
    optimizer = trainer.model.optimizer
    assert int(optimizer.iterations.numpy()) == 0
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.1)
    for variable in optimizer.variables:
        if not variable.path.endswith(("iteration", "learning_rate")):
            assert not np.any(variable.numpy()), variable.path
    trainer.train()
    assert peers.mse(trainer, workload) < float(np.mean((workload.y - workload.y.mean()) ** 2))
