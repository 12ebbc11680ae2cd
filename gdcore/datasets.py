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


def make_classification_dataset(n_samples: int = 100, noise: float = 1.25, threshold: float = 2.5,
                                random_state: int | None = 42) -> pd.DataFrame:
    r"""The seed's data as a two-class problem: which side of ``threshold`` each noisy sample falls.

    .. math::

        y = [\,0.95\,x + 2.5 \sin x + 0.5 + 0.25\,x^2 + \varepsilon > \text{threshold}\,]

    The draws are exactly :func:`make_regression_dataset`'s (same seed, same
    ``X``), so the classification lesson starts from the regression lesson's
    points: a sample is class 1 when its regression target exceeds
    ``threshold``. The noise makes the classes overlap near the crossings of
    the curve and the threshold.

    Returns
    -------
    pandas.DataFrame with a float64 column ``X`` and an int64 column ``y`` (0 or 1).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.integer, np.floating)) \
            or not np.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    data = make_regression_dataset(n_samples, noise, random_state)
    return pd.DataFrame({"X": data["X"], "y": (data["y"] > threshold).astype(np.int64)})


def make_three_class_dataset(n_samples: int = 150, spread: float = 0.8, random_state: int | None = 0) -> pd.DataFrame:
    r"""Two features, three classes, for decision boundaries: three Gaussian clouds around a circle.

    Class :math:`k \in \{0, 1, 2\}` has centre :math:`2(\cos\theta_k, \sin\theta_k)`,
    :math:`\theta_k = \pi/2 + 2\pi k/3`, and standard deviation ``spread`` on
    each axis; samples take the classes in turn (``n_samples // 3`` each, the
    first classes one more when it does not divide). Seeded by a private
    ``RandomState``: ``uniform`` is not used, one ``normal`` draw of shape
    (n_samples, 2).

    Returns
    -------
    pandas.DataFrame with float64 columns ``X1``, ``X2`` and an int64 column ``y``.
    """
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 3:
        raise ValueError(f"n_samples must be an integer >= 3 (one sample per class at least), got {n_samples!r}")
    if isinstance(spread, bool) or not isinstance(spread, (int, float, np.integer, np.floating)) \
            or not np.isfinite(spread) or spread < 0:
        raise ValueError(f"spread must be a finite number >= 0, got {spread!r}")
    rng = np.random.RandomState(random_state)
    labels = np.arange(n_samples) % 3
    angles = np.pi / 2 + 2 * np.pi * labels / 3
    points = 2.0 * np.column_stack([np.cos(angles), np.sin(angles)]) + rng.normal(0, spread, (n_samples, 2))
    return pd.DataFrame({"X1": points[:, 0], "X2": points[:, 1], "y": labels.astype(np.int64)})
