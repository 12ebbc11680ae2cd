"""The configurations ``reference`` runs: one ``Config`` per training recipe, and the two grids.

A :class:`Config` is a plain frozen dataclass, so a grid is an ordinary list
that can be filtered (``[c for c in full_grid() if c.loss == "mae"]``) or
extended (``dataclasses.replace(config, epochs=5)``). Everything the three
engines need follows from it: the data (:meth:`Config.load_data`), the gdcore
model with its initial weights (:meth:`Config.build_model`) and the order of
the samples in every epoch (:meth:`Config.epoch_orders`).

The data is the seed notebook's ("Modelos Simples como Neuronas"): 100
training samples (``random_state=42``) and 30 validation samples
(``random_state=65``) of :func:`gdcore.datasets.make_regression_dataset`.
With ``n_features=3`` the inputs are the notebook's engineered features
:math:`(x, \\sin x, x^2)`.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

import numpy as np

import gdcore

# Names come from gdcore's tables: a hidden layer may use any nonlinear activation, any optimizer, any loss alias.
_HIDDEN = "|".join(a.name for a in gdcore.activations.ACTIVATIONS if a.name != "linear")
ARCHITECTURE_PATTERN = re.compile(rf"^(linear|({_HIDDEN})(\d+))$")
OPTIMIZERS = tuple(gdcore.optimizers.OPTIMIZERS)
LOSS_NAMES = {alias: loss.name for loss in gdcore.losses.LOSSES for alias in loss.aliases}
LOSSES = tuple(LOSS_NAMES)
DTYPES = ("float32", "float64")
NUMERICS = (None, "plain", "tensorflow")
N_TRAIN, N_VALIDATION = 100, 30


@dataclass(frozen=True)
class Config:
    """One training recipe, run identically by gdcore, Keras and scikit-learn.

    Parameters
    ----------
    architecture : str
        ``"linear"`` (one linear neuron, ``Dense(1)``) or ``"<activation><units>"``
        with activation ``sigmoid``, ``tanh`` or ``relu``: one hidden layer of
        that width followed by a linear ``Dense(1)``; ``"sigmoid8"`` is the
        seed's 1-8-1 network.
    optimizer : {"sgd", "adam"}
        Keras defaults for everything but the learning rate.
    loss : {"mse", "mae"}
    batch_size : int
        The last batch of an epoch is partial when it does not divide 100.
    learning_rate : float
    epochs : int
    dtype : {"float32", "float64"}
    n_features : {1, 3}
        ``x`` alone, or the seed's engineered ``(x, sin x, x**2)``.
    numerics : {None, "plain", "tensorflow"}
        gdcore's numerics profile; ``None`` means ``gdcore.Sequential``'s default.
    seed : int
        Seeds the per-epoch sample orders and gdcore's unseeded initializers.

    The linear neuron's kernel starts from ``RandomNormal(0, 0.05, seed=123)``
    as in the seed notebook; hidden networks use Keras's defaults
    (``glorot_uniform`` kernels, zero biases) drawn from the model's seed.
    gdcore's draws are not Keras's, which does not matter: the drivers copy
    gdcore's initial weights into every other engine.
    """

    architecture: str = "linear"
    optimizer: str = "sgd"
    loss: str = "mse"
    batch_size: int = 20
    learning_rate: float = 0.01
    epochs: int = 25
    dtype: str = "float32"
    n_features: int = 1
    numerics: str | None = None
    seed: int = 0

    def __post_init__(self):
        if not isinstance(self.architecture, str) or not ARCHITECTURE_PATTERN.match(self.architecture):
            raise ValueError(f"architecture must be 'linear' or '<sigmoid|tanh|relu><units>' such as 'sigmoid8', got {self.architecture!r}")
        if self.hidden_units is not None and self.hidden_units < 1:
            raise ValueError(f"architecture {self.architecture!r} has no hidden units; use e.g. 'sigmoid8'")
        for field, value, known in [("optimizer", self.optimizer, OPTIMIZERS), ("loss", self.loss, LOSSES),
                                    ("dtype", self.dtype, DTYPES), ("numerics", self.numerics, NUMERICS)]:
            if value not in known:
                raise ValueError(f"{field} must be one of {known}, got {value!r}")
        for field in ("batch_size", "epochs"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{field} must be an integer >= 1, got {value!r}")
        if not isinstance(self.learning_rate, (int, float)) or not 0 < self.learning_rate < float("inf"):
            raise ValueError(f"learning_rate must be a finite number > 0, got {self.learning_rate!r}")
        if self.n_features not in (1, 3):
            raise ValueError(f"n_features must be 1 (x) or 3 (x, sin x, x**2), got {self.n_features!r}")

    # --- derived names ----------------------------------------------------------------

    @property
    def hidden_activation(self) -> str | None:
        match = ARCHITECTURE_PATTERN.match(self.architecture)
        return match.group(2)

    @property
    def hidden_units(self) -> int | None:
        match = ARCHITECTURE_PATTERN.match(self.architecture)
        return None if match.group(3) is None else int(match.group(3))

    @property
    def name(self) -> str:
        """A unique, readable identifier such as ``linear-sgd-mse-b20-lr0.01-float32``."""
        parts = [self.architecture, self.optimizer, self.loss, f"b{self.batch_size}", f"lr{self.learning_rate:g}"]
        if self.n_features != 1:
            parts.append(f"x{self.n_features}")
        if self.epochs != 25:
            parts.append(f"e{self.epochs}")
        if self.seed != 0:
            parts.append(f"s{self.seed}")
        parts.append(self.dtype)
        if self.numerics is not None:
            parts.append(self.numerics)
        return "-".join(parts)

    def __str__(self) -> str:
        return self.name

    # --- what the engines need -------------------------------------------------------------

    def load_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(x, y, x_val, y_val)`` in the config's dtype; x is (n, n_features), y is (n, 1)."""
        train = gdcore.datasets.make_regression_dataset(n_samples=N_TRAIN, noise=1.25, random_state=42)
        test = gdcore.datasets.make_regression_dataset(n_samples=N_VALIDATION, noise=1.25, random_state=65)
        return (*self._arrays(train), *self._arrays(test))

    def _arrays(self, frame) -> tuple[np.ndarray, np.ndarray]:
        x = frame["X"].to_numpy()
        columns = [x] if self.n_features == 1 else [x, np.sin(x), x**2]
        features = np.ascontiguousarray(np.stack(columns, axis=1), dtype=self.dtype)
        targets = np.ascontiguousarray(frame["y"].to_numpy()[:, None], dtype=self.dtype)
        return features, targets

    def build_model(self, engine: str = "numba") -> gdcore.Sequential:
        """The compiled gdcore model with its initial weights (untrained)."""
        if self.hidden_units is None:
            layers = [gdcore.layers.Dense(1, kernel_initializer=gdcore.initializers.RandomNormal(0.0, 0.05, seed=123))]
        else:
            layers = [gdcore.layers.Dense(self.hidden_units, activation=self.hidden_activation), gdcore.layers.Dense(1)]
        options = {} if self.numerics is None else {"numerics": self.numerics}
        model = gdcore.Sequential([gdcore.Input(shape=(self.n_features,)), *layers], dtype=self.dtype, engine=engine,
                                  seed=self.seed, **options)
        optimizer = gdcore.optimizers.OPTIMIZERS[self.optimizer]
        model.compile(optimizer=optimizer(learning_rate=self.learning_rate), loss=LOSS_NAMES[self.loss])
        return model

    def epoch_orders(self, n_samples: int = N_TRAIN) -> np.ndarray:
        """One permutation of the samples per epoch, shape (epochs, n_samples), from ``seed``.

        Every engine trains epoch ``e`` on ``x[orders[e]]`` without shuffling,
        so all of them see the same batches.
        """
        return epoch_orders(n_samples, self.epochs, self.seed)

    def replace(self, **changes) -> "Config":
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)


def epoch_orders(n_samples: int, epochs: int, seed: int) -> np.ndarray:
    """``epochs`` independent permutations of ``range(n_samples)`` from ``np.random.default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(n_samples) for _ in range(epochs)]) if epochs else np.empty((0, n_samples), int)


SEED_LINEAR = Config("linear", "sgd", "mse", batch_size=20, learning_rate=0.01)
SEED_SIGMOID8 = Config("sigmoid8", "adam", "mse", batch_size=20, learning_rate=0.1)


def default_configs() -> list[Config]:
    """The seed notebook's two models, the variants it suggests trying, and float64 runs.

    1. The linear neuron: ``Dense(1)``, SGD, learning rate 0.01, MSE, batch 20, 25 epochs.
    2. The 1-8-1 sigmoid network: Adam, learning rate 0.1, MSE, batch 20, 25 epochs.
    3. The notebook's "try" list applied to the linear neuron, one change at a time:
       MAE; batch size 1 and 100; learning rate 0.1 and 0.001.
    4. A partial last batch (batch 30: 30 + 30 + 30 + 10), the engineered
       features (x, sin x, x²), MAE on the hidden network, and the hidden network with SGD.
    5. Both seed models in float64.
    """
    return [
        SEED_LINEAR,
        SEED_SIGMOID8,
        SEED_LINEAR.replace(loss="mae"),
        SEED_LINEAR.replace(batch_size=1),
        SEED_LINEAR.replace(batch_size=100),
        SEED_LINEAR.replace(learning_rate=0.1),
        SEED_LINEAR.replace(learning_rate=0.001),
        SEED_LINEAR.replace(batch_size=30),
        SEED_LINEAR.replace(n_features=3, learning_rate=0.001),
        SEED_SIGMOID8.replace(loss="mae"),
        SEED_SIGMOID8.replace(optimizer="sgd"),
        SEED_LINEAR.replace(dtype="float64"),
        SEED_SIGMOID8.replace(dtype="float64"),
    ]


def full_grid(dtypes=DTYPES, epochs: int = 25) -> list[Config]:
    """Architecture x optimizer x loss x batch size x learning rate, for each dtype.

    Architectures ``linear`` and ``sigmoid8``; optimizers SGD and Adam; MSE
    and MAE; batch sizes 1, 20, 30 (a partial last batch of 10) and 100;
    learning rates 0.1, 0.01 and 0.001: 96 configurations per dtype. Some of
    them diverge (SGD at learning rate 0.1 with small batches).
    """
    return [
        Config(architecture, optimizer, loss, batch_size=batch_size, learning_rate=learning_rate, epochs=epochs, dtype=dtype)
        for dtype in dtypes
        for architecture in ("linear", "sigmoid8")
        for optimizer in ("sgd", "adam")
        for loss in ("mse", "mae")
        for batch_size in (1, 20, 30, 100)
        for learning_rate in (0.1, 0.01, 0.001)
    ]


def select(configs: list[Config], patterns) -> list[Config]:
    """The configs whose name matches any of ``patterns`` (exact names or ``fnmatch`` globs such as ``'linear-*'``).

    A pattern that matches nothing is an error listing the known names.
    """
    from fnmatch import fnmatchcase

    chosen, names = [], [config.name for config in configs]
    for pattern in patterns:
        matches = [config for config in configs if fnmatchcase(config.name, pattern)]
        if not matches:
            raise ValueError(f"no configuration matches {pattern!r}; known: {', '.join(names)}")
        chosen += [config for config in matches if config not in chosen]
    return chosen
