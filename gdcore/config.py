"""Session-wide defaults, as ``keras.config``: the float type of new models, and gdcore's numerics profile.

``set_floatx("float64")`` makes new models float64 (Keras's ``keras.config.set_floatx``;
gdcore has no separate dtype policy: a model has one dtype). ``set_numerics("tensorflow")``
makes new models use the ``"tensorflow"`` summation order (:mod:`gdcore.numerics`).
A model's own ``dtype=``/``numerics=`` arguments win over these.
"""

import numpy as np

_state = {"floatx": "float32", "numerics": "plain", "seed": None}
_FLOATX = ("float32", "float64")


def floatx() -> str:
    """The dtype of new models (``"float32"`` unless :func:`set_floatx` changed it)."""
    return _state["floatx"]


def set_floatx(value: str) -> None:
    """Set the dtype of models created from now on: ``"float32"`` or ``"float64"``."""
    if value not in _FLOATX:
        raise ValueError(f"floatx must be one of {_FLOATX} (gdcore trains in these), got {value!r}")
    _state["floatx"] = value


def numerics() -> str:
    """The numerics profile of new models (``"plain"`` unless :func:`set_numerics` changed it)."""
    return _state["numerics"]


def set_numerics(name: str) -> None:
    """Set the numerics profile of models created from now on: ``"plain"`` or ``"tensorflow"``."""
    from gdcore.numerics import NAMES

    if name not in NAMES:
        raise ValueError(f"unknown numerics profile {name!r}; known: {', '.join(NAMES)}")
    _state["numerics"] = name


def epsilon() -> float:
    """Keras's fuzz factor, 1e-7."""
    return 1e-7


def model_seed():
    """The seed a new unseeded model draws from: the next one of the global seed's sequence, or None."""
    sequence = _state["seed"]
    if sequence is None:
        return None
    return int(sequence.spawn(1)[0].generate_state(1, np.uint64)[0])


def _set_seed(seed) -> None:
    _state["seed"] = None if seed is None else np.random.SeedSequence(seed)
