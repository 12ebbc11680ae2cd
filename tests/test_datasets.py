"""The seed notebook's dataset, reproduced to the last printed digit."""

import numpy as np
import pandas as pd
import pytest

from gdcore.datasets import make_regression_dataset

# train.head() as printed in the seed notebook (n=100, noise=1.25, random_state=42).
SEED_HEAD = [
    (-1.003679, -2.201476),
    (3.605714, 5.68287),
    (1.855952, 5.638039),
    (0.789268, 0.695674),
    (-2.751851, -1.445551),
]
# train.describe() as printed in the seed notebook: rows count, mean, std, min, 25%, 50%, 75%, max.
SEED_DESCRIBE = {
    "X": [100.0, -0.238554, 2.379915, -3.955823, -2.454394, -0.28686, 1.841625, 3.895095],
    "y": [100.0, 1.697763, 3.485939, -4.706355, -1.157034, 1.241799, 4.993439, 8.287708],
}


def test_head_matches_seed_notebook_to_printed_digits():
    head = make_regression_dataset(n_samples=100, noise=1.25, random_state=42).head()
    assert list(head.columns) == ["X", "y"]
    printed = [tuple(float(f"{value:.6f}") for value in row) for row in head.itertuples(index=False)]
    assert printed == SEED_HEAD


def test_describe_matches_seed_notebook_to_printed_digits():
    described = make_regression_dataset(n_samples=100, noise=1.25, random_state=42).describe()
    for column, expected in SEED_DESCRIBE.items():
        assert [float(f"{value:.6f}") for value in described[column]] == expected


def test_matches_legacy_global_seeding_without_touching_global_state():
    np.random.seed(42)
    x = np.random.uniform(-4, 4, 30)
    y = 0.95 * x + 2.5 * np.sin(x) + 0.5 + 0.25 * x**2 + np.random.normal(0, 1.25, 30)
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    data = make_regression_dataset(30, noise=1.25, random_state=42)
    assert np.array_equal(np.random.get_state()[1], before)
    pd.testing.assert_frame_equal(data, pd.DataFrame({"X": x, "y": y}))


def test_test_split_has_thirty_rows():
    test = make_regression_dataset(n_samples=30, noise=1.25, random_state=65)
    assert test.shape == (30, 2) and test["X"].between(-4, 4).all()


@pytest.mark.parametrize("kwargs, message", [
    ({"n_samples": 0}, "n_samples"),
    ({"n_samples": 2.5}, "n_samples"),
    ({"noise": -1.0}, "noise"),
    ({"noise": float("nan")}, "noise"),
])
def test_bad_arguments_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_regression_dataset(**kwargs)
