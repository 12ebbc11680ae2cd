r"""Weight initializers with Keras's names and defaults.

Draws are made in float64 by a NumPy ``Generator`` and then rounded to the
model's dtype, so the same seed gives the same bits on every run and every
machine. They do not reproduce Keras's own random streams (TensorFlow's
stateless Philox generator); to train both engines from the same start,
copy gdcore's initial weights into Keras (``reference`` does that).

An unseeded initializer draws from the model's generator
(``Sequential(seed=...)``); a seeded one returns the same values at every call,
as Keras 3's seeded initializers do.

=====================  =====================================================================
name                   distribution
=====================  =====================================================================
zeros / ones           constant 0 / 1
constant               ``Constant(value)``
random_normal          :math:`N(\text{mean}, \text{stddev}^2)`, defaults 0, 0.05
random_uniform         :math:`U(\text{minval}, \text{maxval})`, defaults -0.05, 0.05
glorot_uniform         :math:`U(-l, l)`, :math:`l = \sqrt{6/(\text{fan\_in} + \text{fan\_out})}` (Dense's kernel default)
=====================  =====================================================================
"""

import math

import numpy as np


class Initializer:
    """Base class: ``initializer(shape, dtype, rng) -> array``."""

    def __init__(self, seed: int | None = None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        self.seed = seed

    def _rng(self, rng: np.random.Generator | None) -> np.random.Generator:
        if self.seed is not None:
            return np.random.default_rng(self.seed)
        return rng if rng is not None else np.random.default_rng()

    def __call__(self, shape, dtype="float32", rng: np.random.Generator | None = None) -> np.ndarray:
        return np.asarray(self.sample(tuple(shape), self._rng(rng)), dtype=np.float64).astype(dtype)

    def sample(self, shape, rng):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"seed": self.seed}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


class Zeros(Initializer):
    def __init__(self):
        super().__init__(None)

    def sample(self, shape, rng):
        return np.zeros(shape)

    def get_config(self):
        return {}


class Ones(Zeros):
    def sample(self, shape, rng):
        return np.ones(shape)


class Constant(Initializer):
    def __init__(self, value: float = 0.0):
        super().__init__(None)
        if not np.isfinite(value):
            raise ValueError(f"value must be finite, got {value!r}")
        self.value = float(value)

    def sample(self, shape, rng):
        return np.full(shape, self.value)

    def get_config(self):
        return {"value": self.value}


class RandomNormal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        if not (np.isfinite(stddev) and stddev >= 0):
            raise ValueError(f"stddev must be a finite number >= 0, got {stddev!r}")
        self.mean, self.stddev = float(mean), float(stddev)

    def sample(self, shape, rng):
        return rng.normal(self.mean, self.stddev, shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev, "seed": self.seed}


class RandomUniform(Initializer):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        if not maxval >= minval:
            raise ValueError(f"maxval must be >= minval, got minval={minval!r}, maxval={maxval!r}")
        self.minval, self.maxval = float(minval), float(maxval)

    def sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval, "seed": self.seed}


class GlorotUniform(Initializer):
    def sample(self, shape, rng):
        fan_in, fan_out = (shape[0], shape[1]) if len(shape) == 2 else (shape[0], shape[0])
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)


INITIALIZERS = {
    "zeros": Zeros,
    "ones": Ones,
    "constant": Constant,
    "random_normal": RandomNormal,
    "randomnormal": RandomNormal,
    "random_uniform": RandomUniform,
    "randomuniform": RandomUniform,
    "glorot_uniform": GlorotUniform,
    "glorotuniform": GlorotUniform,
}


def get(identifier) -> Initializer:
    """An initializer from a Keras name (``"glorot_uniform"``, ``"zeros"``, ...) or an object."""
    from gdcore._validation import lookup

    if isinstance(identifier, Initializer):
        return identifier
    return lookup(INITIALIZERS, identifier, "initializer")()
