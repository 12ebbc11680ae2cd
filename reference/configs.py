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

Classification (``output="sigmoid"`` or ``"softmax"``) uses the same seeds:
the seed's curve labelled by the threshold 2.5
(:func:`gdcore.datasets.make_classification_dataset`, the same ``X``) for a
sigmoid output, and the three Gaussian clouds of
:func:`gdcore.datasets.make_three_class_dataset` (two features ``X1, X2``)
for a 3-unit softmax output. The loss says how the labels are given:
``bce`` 0/1, ``scce`` class indices (sparse), ``cce`` one-hot rows.
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
#: The output layer: ``"linear"`` (regression, Dense(1)), ``"sigmoid"`` (two classes, Dense(1, sigmoid)),
#: ``"softmax"`` (three classes, Dense(3, softmax)); each with the loss names it can train and its input widths.
OUTPUTS = {"linear": {"losses": ("mse", "mae"), "n_features": (1, 3)},
           "sigmoid": {"losses": ("bce", "mse"), "n_features": (1, 3)},
           "softmax": {"losses": ("scce", "cce"), "n_features": (2,)}}
N_CLASSES = 3
DTYPES = ("float32", "float64")
NUMERICS = (None, "plain", "tensorflow")
N_TRAIN, N_VALIDATION = 100, 30


@dataclass(frozen=True)
class Config:
    """One training recipe, run identically by gdcore, Keras and scikit-learn.

    Parameters
    ----------
    architecture : str
        ``"linear"`` (no hidden layer: the output layer alone) or
        ``"<activation><units>"`` with activation ``sigmoid``, ``tanh`` or
        ``relu``: one hidden layer of that width before the output layer;
        ``"sigmoid8"`` is the seed's 1-8-1 network.
    optimizer : {"sgd", "adam"}
        Keras defaults for everything but the learning rate.
    loss : {"mse", "mae", "bce", "scce", "cce"}
        What the output allows (:data:`OUTPUTS`): ``mse``/``mae`` for a linear
        output, ``bce`` (or ``mse``) for a sigmoid, ``scce`` (labels as class
        indices) or ``cce`` (one-hot rows) for a softmax.
    batch_size : int
        The last batch of an epoch is partial when it does not divide 100.
    learning_rate : float
    epochs : int
    dtype : {"float32", "float64"}
    n_features : {1, 2, 3}
        ``x`` alone, or the seed's engineered ``(x, sin x, x**2)``; 2 (``X1, X2``,
        and only 2) for the three-class data of a softmax output.
    numerics : {None, "plain", "tensorflow"}
        gdcore's numerics profile; ``None`` means ``gdcore.Sequential``'s default.
    seed : int
        Seeds the per-epoch sample orders and gdcore's unseeded initializers.
    output : {"linear", "sigmoid", "softmax"}
        The output layer: ``Dense(1)`` (regression), ``Dense(1, sigmoid)``
        (two classes) or ``Dense(3, softmax)`` (three classes). A
        classifier is compiled with ``metrics=["accuracy"]`` (Keras's pick:
        binary, sparse categorical or categorical accuracy).

    Names read as the model: ``linear-sgd-mse-b20-lr0.01-float32``;
    ``logistic-sgd-bce-b20-lr0.1-float32`` (no hidden layer, sigmoid output),
    ``tanh4-sigmoid-adam-bce-...``, ``softmax-sgd-scce-...`` (no hidden layer,
    softmax output), ``sigmoid8-softmax-adam-cce-...``.

    The output layer without a hidden layer (the linear or logistic neuron,
    the softmax layer) starts from ``RandomNormal(0, 0.05, seed=123)``
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
    output: str = "linear"

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
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {tuple(OUTPUTS)}, got {self.output!r}")
        allowed = OUTPUTS[self.output]
        if self.loss not in allowed["losses"]:
            raise ValueError(f"loss {self.loss!r} cannot train a {self.output} output; with output={self.output!r} "
                             f"the loss must be one of {allowed['losses']}")
        if self.n_features not in allowed["n_features"]:
            described = "2 (the three-class data's X1, X2)" if self.output == "softmax" else "1 (x) or 3 (x, sin x, x**2)"
            raise ValueError(f"n_features must be {described} for output={self.output!r}, got {self.n_features!r}")

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
    def task(self) -> str:
        """``"regression"``, ``"binary"`` (sigmoid output) or ``"multiclass"`` (softmax output)."""
        return {"linear": "regression", "sigmoid": "binary", "softmax": "multiclass"}[self.output]

    @property
    def output_units(self) -> int:
        return N_CLASSES if self.output == "softmax" else 1

    @property
    def model_name(self) -> str:
        """The name's first part: the architecture, with the output when it is not linear (``logistic``, ``tanh4-sigmoid``)."""
        if self.output == "linear":
            return self.architecture
        if self.hidden_units is None:
            return "logistic" if self.output == "sigmoid" else "softmax"
        return f"{self.architecture}-{self.output}"

    @property
    def name(self) -> str:
        """A unique, readable identifier such as ``linear-sgd-mse-b20-lr0.01-float32``."""
        parts = [self.model_name, self.optimizer, self.loss, f"b{self.batch_size}", f"lr{self.learning_rate:g}"]
        if self.n_features != OUTPUTS[self.output]["n_features"][0]:
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
        """``(x, y, x_val, y_val)`` in the config's dtype; x is (n, n_features), y is (n, 1), or (n, 3) one-hot for ``cce``.

        Class labels are stored in the config's dtype too (0.0/1.0, class
        indices 0.0, 1.0, 2.0), as Keras receives them from a float array.
        """
        if self.output == "softmax":
            make = lambda n, seed: gdcore.datasets.make_three_class_dataset(n_samples=n, random_state=seed)
        else:
            dataset = gdcore.datasets.make_regression_dataset if self.output == "linear" else \
                gdcore.datasets.make_classification_dataset
            make = lambda n, seed: dataset(n_samples=n, noise=1.25, random_state=seed)
        return (*self._arrays(make(N_TRAIN, 42)), *self._arrays(make(N_VALIDATION, 65)))

    def _arrays(self, frame) -> tuple[np.ndarray, np.ndarray]:
        if self.output == "softmax":
            columns = [frame["X1"].to_numpy(), frame["X2"].to_numpy()]
        else:
            x = frame["X"].to_numpy()
            columns = [x] if self.n_features == 1 else [x, np.sin(x), x**2]
        features = np.ascontiguousarray(np.stack(columns, axis=1), dtype=self.dtype)
        labels = frame["y"].to_numpy()
        targets = np.eye(N_CLASSES)[labels] if self.loss == "cce" else labels[:, None]
        return features, np.ascontiguousarray(targets, dtype=self.dtype)

    def build_model(self, engine: str = "numba") -> gdcore.Sequential:
        """The compiled gdcore model with its initial weights (untrained)."""
        activation = None if self.output == "linear" else self.output
        if self.hidden_units is None:
            layers = [gdcore.layers.Dense(self.output_units, activation=activation,
                                          kernel_initializer=gdcore.initializers.RandomNormal(0.0, 0.05, seed=123))]
        else:
            layers = [gdcore.layers.Dense(self.hidden_units, activation=self.hidden_activation),
                      gdcore.layers.Dense(self.output_units, activation=activation)]
        options = {} if self.numerics is None else {"numerics": self.numerics}
        model = gdcore.Sequential([gdcore.Input(shape=(self.n_features,)), *layers], dtype=self.dtype, engine=engine,
                                  seed=self.seed, **options)
        optimizer = gdcore.optimizers.OPTIMIZERS[self.optimizer]
        metrics = {"metrics": ["accuracy"]} if self.task != "regression" else {}
        model.compile(optimizer=optimizer(learning_rate=self.learning_rate), loss=LOSS_NAMES[self.loss], **metrics)
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
SEED_LOGISTIC = Config("linear", "sgd", "bce", batch_size=20, learning_rate=0.1, output="sigmoid")
SEED_SOFTMAX = Config("linear", "sgd", "scce", batch_size=20, learning_rate=0.1, n_features=2, output="softmax")


def default_configs() -> list[Config]:
    """The seed notebook's two models, the variants it suggests trying, and float64 runs; then classification.

    1. The linear neuron: ``Dense(1)``, SGD, learning rate 0.01, MSE, batch 20, 25 epochs.
    2. The 1-8-1 sigmoid network: Adam, learning rate 0.1, MSE, batch 20, 25 epochs.
    3. The notebook's "try" list applied to the linear neuron, one change at a time:
       MAE; batch size 1 and 100; learning rate 0.1 and 0.001.
    4. A partial last batch (batch 30: 30 + 30 + 30 + 10), the engineered
       features (x, sin x, x²), MAE on the hidden network, and the hidden network with SGD.
    5. Both seed models in float64.
    6. :func:`classification_configs`.
    """
    return regression_configs() + classification_configs()


def regression_configs() -> list[Config]:
    """Items 1-5 of :func:`default_configs`: the seed notebook's regression runs."""
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


def classification_configs() -> list[Config]:
    """The classification lesson's runs (notebook 03), learning rate 0.1 unless stated, 25 epochs.

    1. The logistic neuron (``Dense(1, sigmoid)``, binary cross-entropy) on the
       seed's curve thresholded at 2.5: SGD and Adam, batch 20 and 1 (SGD at
       batch 1 is ``SGDClassifier``).
    2. The same neuron trained on MSE (the lesson's "why not MSE"; no
       exponential or logarithm reaches the loss: the control case).
    3. A hidden layer: 1-4-1 tanh -> sigmoid, Adam 0.05.
    4. Three classes, a 2-3 softmax layer with SGD on class indices (``scce``)
       and on one-hot rows (``cce``); a 2-8-3 sigmoid -> softmax network with
       Adam 0.05, at batch 20 on indices and at batch 30 (a partial last
       batch) on one-hot rows.
    5. float64: the logistic neuron at batch 20 and 1, the tanh layer, the
       softmax layer, the 2-8-3 network on one-hot rows.
    """
    hidden_binary = SEED_LOGISTIC.replace(architecture="tanh4", optimizer="adam", learning_rate=0.05)
    hidden_softmax = SEED_SOFTMAX.replace(architecture="sigmoid8", optimizer="adam", learning_rate=0.05)
    partial_one_hot = hidden_softmax.replace(loss="cce", batch_size=30)
    return [
        SEED_LOGISTIC,
        SEED_LOGISTIC.replace(batch_size=1),
        SEED_LOGISTIC.replace(optimizer="adam"),
        SEED_LOGISTIC.replace(optimizer="adam", batch_size=1),
        SEED_LOGISTIC.replace(loss="mse"),
        hidden_binary,
        SEED_SOFTMAX,
        SEED_SOFTMAX.replace(loss="cce"),
        hidden_softmax,
        partial_one_hot,
        SEED_LOGISTIC.replace(dtype="float64"),
        SEED_LOGISTIC.replace(batch_size=1, dtype="float64"),
        hidden_binary.replace(dtype="float64"),
        SEED_SOFTMAX.replace(dtype="float64"),
        partial_one_hot.replace(dtype="float64"),
    ]


def full_grid(dtypes=DTYPES, epochs: int = 25) -> list[Config]:
    """:func:`regression_grid` then :func:`classification_grid`."""
    return regression_grid(dtypes, epochs) + classification_grid(dtypes, epochs)


def classification_grid(dtypes=DTYPES, epochs: int = 25) -> list[Config]:
    """The classification section of the grid: 48 configurations per dtype.

    A sigmoid output on the binary cross-entropy, architectures ``linear``
    (the logistic neuron) and ``tanh4``, SGD and Adam, batch sizes 1, 20
    and 30, learning rates 0.1 and 0.01 (24); a 3-class softmax output,
    architectures ``linear`` and ``sigmoid8``, SGD and Adam, class indices
    (``scce``) and one-hot rows (``cce``), batch sizes 1, 20 and 30,
    learning rate 0.1 (24).
    """
    return [config for dtype in dtypes for config in
            [Config(architecture, optimizer, "bce", batch_size=batch_size, learning_rate=learning_rate, epochs=epochs,
                    dtype=dtype, output="sigmoid")
             for architecture in ("linear", "tanh4") for optimizer in ("sgd", "adam") for batch_size in (1, 20, 30)
             for learning_rate in (0.1, 0.01)] +
            [Config(architecture, optimizer, loss, batch_size=batch_size, learning_rate=0.1, epochs=epochs,
                    dtype=dtype, n_features=2, output="softmax")
             for architecture in ("linear", "sigmoid8") for optimizer in ("sgd", "adam") for loss in ("scce", "cce")
             for batch_size in (1, 20, 30)]]


def regression_grid(dtypes=DTYPES, epochs: int = 25) -> list[Config]:
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
