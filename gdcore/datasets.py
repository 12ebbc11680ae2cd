"""The seed notebook's regression data set, reproduced exactly."""

import numpy as np
import pandas as pd


def make_regression_dataset(n_samples: int = 100, noise: float = 1.25, random_state: int | None = 42) -> pd.DataFrame:
    r"""One noisy, non-linear feature: the data of "Modelos Simples como Neuronas".

    .. math::

        x \sim U(-4, 4), \qquad
        y = 0.95\,x + 2.5 \sin x + 0.5 + 0.25\,x^2 + \varepsilon, \quad
        \varepsilon \sim N(0, \text{noise}^2)

    The draws follow NumPy's legacy stream (``np.random.seed(random_state)``,
    then ``uniform``, then ``normal``), so the seed notebook's tables come out
    to the last printed digit: ``n_samples=100, noise=1.25, random_state=42``
    for train and ``n_samples=30, random_state=65`` for test. A private
    ``RandomState`` gives that stream without touching the caller's global
    NumPy random state.

    Returns
    -------
    pandas.DataFrame with float64 columns ``X`` and ``y``.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    rng = np.random.RandomState(random_state)
    x = rng.uniform(-4, 4, n_samples)
    y = 0.95 * x + 2.5 * np.sin(x) + 0.5 + 0.25 * x**2 + rng.normal(0, noise, n_samples)
    return pd.DataFrame({"X": x, "y": y})
