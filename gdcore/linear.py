"""Ordinary least squares: Gauss's closed-form answer that gradient descent approaches."""

from dataclasses import dataclass

import numpy as np

from gdcore._validation import as_features, as_targets


@dataclass(frozen=True)
class LeastSquaresResult:
    """The OLS optimum in Keras's weight layout.

    Attributes
    ----------
    kernel : (n_features, 1) array, the slopes :math:`w_1 \\dots w_d`.
    bias : (1,) array, the intercept :math:`w_0`.
    mse : mean squared error of the optimum on the data it was fitted to.
    """

    kernel: np.ndarray
    bias: np.ndarray
    mse: float

    @property
    def coef_(self) -> np.ndarray:
        """Slopes as scikit-learn names them, shape (n_features,)."""
        return self.kernel[:, 0]

    @property
    def intercept_(self) -> float:
        """Intercept as scikit-learn names it."""
        return float(self.bias[0])

    def get_weights(self) -> list[np.ndarray]:
        """``[kernel, bias]``, ready for ``Sequential.set_weights`` of a linear neuron."""
        return [self.kernel.copy(), self.bias.copy()]

    def predict(self, x) -> np.ndarray:
        """Predictions :math:`X w + b`, shape (n_samples, 1)."""
        return as_features(x, "x", self.kernel.shape[0]) @ self.kernel + self.bias


def least_squares(x, y) -> LeastSquaresResult:
    r"""Minimise :math:`S(w, b) = \sum_i (y_i - x_i^T w - b)^2` in closed form.

    Solved in float64 on centred data, as scikit-learn's ``LinearRegression``
    does: :math:`w = \operatorname{lstsq}(X - \bar X,\ y - \bar y)`,
    :math:`b = \bar y - \bar X^T w`. On the seed's train split this gives
    slope 1.0264099 and intercept 1.9426175.
    """
    features = as_features(x, "x")
    targets = as_targets(y, "y", n_rows=features.shape[0])[:, 0]
    x_mean = features.mean(axis=0)
    y_mean = targets.mean()
    slopes, *_ = np.linalg.lstsq(features - x_mean, targets - y_mean, rcond=None)
    intercept = y_mean - x_mean @ slopes
    residuals = targets - features @ slopes - intercept
    return LeastSquaresResult(kernel=slopes[:, None], bias=np.array([intercept]), mse=float(np.mean(residuals**2)))
