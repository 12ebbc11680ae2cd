"""Closed-form least squares against scikit-learn and the seed notebook's printed values."""

import numpy as np
import pytest

from gdcore.datasets import make_regression_dataset
from gdcore.linear import least_squares

sklearn = pytest.importorskip("sklearn.linear_model")


@pytest.fixture(scope="module")
def train():
    return make_regression_dataset(n_samples=100, noise=1.25, random_state=42)


def test_seed_slope_and_intercept(train):
    result = least_squares(train[["X"]], train["y"])
    # The seed notebook prints [1.026409914187006, 1.9426174913286312] from LinearRegression.
    assert result.coef_[0] == pytest.approx(1.026409914187006, rel=1e-13)
    assert result.intercept_ == pytest.approx(1.9426174913286312, rel=1e-13)


@pytest.mark.sklearn
@pytest.mark.parametrize("columns", [["X"], ["X", "sin_X"], ["X", "sin_X", "squared_X"]])
def test_matches_live_linear_regression(train, columns):
    data = train.assign(sin_X=np.sin(train["X"]), squared_X=train["X"] ** 2)
    ours = least_squares(data[columns], data["y"])
    theirs = sklearn.LinearRegression().fit(data[columns], data["y"])
    np.testing.assert_allclose(ours.coef_, theirs.coef_, rtol=1e-12)
    assert ours.intercept_ == pytest.approx(theirs.intercept_, rel=1e-12)
    np.testing.assert_allclose(ours.predict(data[columns])[:, 0], theirs.predict(data[columns]), rtol=1e-12)


def test_optimum_has_zero_gradient(train):
    result = least_squares(train[["X"]], train["y"])
    residual = train["y"].to_numpy() - result.predict(train[["X"]])[:, 0]
    # Normal equations: the residual is orthogonal to the column of ones and to X.
    assert abs(residual.sum()) < 1e-10
    assert abs(residual @ train["X"].to_numpy()) < 1e-10
    assert result.mse == pytest.approx(np.mean(residual**2))


def test_rejects_mismatched_rows():
    with pytest.raises(ValueError, match="same number of samples"):
        least_squares(np.ones((3, 1)), np.ones(4))
