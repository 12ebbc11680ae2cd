import os

import numpy as np
import pytest

import gdcore


def pytest_configure(config):
    """Before any worker starts: compile and cache the training loop once per dtype and profile, two at a time.

    Each of the test workers would otherwise compile every specialization it
    meets on its own (about a minute each on a fresh clone); with the cache
    warm this costs a few seconds. ``GDCORE_TEST_WARMUP=0`` skips it, and so does a run of chosen files or
    tests (paths or ``-k``), which meets only part of the loop's specialisations.
    """
    if hasattr(config, "workerinput") or os.environ.get("GDCORE_TEST_WARMUP") == "0":
        return
    chosen = [os.path.relpath(os.path.abspath(arg), config.rootpath) for arg in config.args]
    if chosen not in (["tests"], ["."]) or config.getoption("keyword"):
        return  # a selection (files, tests, -k): it compiles only what it meets, in-process
    import warnings

    from gdcore import warmup

    try:
        warmup.warm_up()
    except RuntimeError as error:  # the tests compile what they need themselves; the failure shows in them too
        warnings.warn(f"warming up the Numba cache failed: {error}")


@pytest.fixture(autouse=True)
def fresh_session():
    """Each test starts a fresh session, as a notebook's keras.backend.clear_session() does: names count from 'dense'."""
    gdcore.backend.clear_session()
    yield


@pytest.fixture(scope="session")
def seed_train():
    return gdcore.datasets.make_regression_dataset(n_samples=100, noise=1.25, random_state=42)


def build_model(hidden=None, activation="sigmoid", n_features=1, dtype="float32", engine="numba", numerics="plain", seed=0):
    """A 1-layer (linear neuron) or 2-layer network with seeded, reproducible initial weights."""
    layers = [gdcore.Input(shape=(n_features,))]
    for index, units in enumerate(hidden or []):
        layers.append(gdcore.layers.Dense(units, activation=activation,
                                          kernel_initializer=gdcore.initializers.RandomNormal(0, 0.25, seed=123 + index),
                                          bias_initializer=gdcore.initializers.RandomNormal(0, 0.1, seed=7 + index)))
    layers.append(gdcore.layers.Dense(1, kernel_initializer=gdcore.initializers.RandomNormal(0, 0.25, seed=99)))
    return gdcore.Sequential(layers, dtype=dtype, engine=engine, numerics=numerics, seed=seed)


def flat_weights(model):
    return np.concatenate([w.ravel() for w in model.get_weights()])


def regression_data(n=50, features=2, seed=1):
    """A small smooth regression set (x uniform in [-1.5, 1.5], y = sin of the feature sum plus noise), float64."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.5, 1.5, (n, features))
    return x, np.sin(x.sum(axis=1, keepdims=True)) + rng.normal(0, 0.1, (n, 1))


def assert_same_run(mine, theirs, my_weights, their_weights, my_evaluation, their_evaluation):
    """Two fits' histories (every key, every epoch), final weights (dtype and bits) and evaluations are identical."""
    assert list(mine) == list(theirs)
    for key in theirs:
        for epoch, (a, b) in enumerate(zip(mine[key], theirs[key])):
            assert a == b, f"{key} epoch {epoch + 1}: gdcore {a!r} vs Keras {b!r}"
    for index, (a, b) in enumerate(zip(my_weights, their_weights)):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), f"weight {index}: gdcore {a.ravel()[:3]} vs Keras " \
                                                                  f"{b.ravel()[:3]}"
    assert my_evaluation == their_evaluation
