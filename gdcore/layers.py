"""Layers with Keras's names: ``Input`` and ``Dense``."""

import numpy as np

from gdcore import activations, initializers
from gdcore._validation import positive_int


class Input:
    """The shape of one sample, as ``keras.Input(shape=(d,))``."""

    def __init__(self, shape, name: str | None = None):
        if isinstance(shape, (int, np.integer)):
            shape = (shape,)
        shape = tuple(shape)
        if len(shape) != 1:
            raise ValueError(f"shape must be (n_features,) for a Dense network, got {shape!r}")
        self.shape = (positive_int(shape[0], "shape[0]"),)
        self.name = name or "input"

    def __repr__(self) -> str:
        return f"Input(shape={self.shape})"


class Dense:
    r"""A fully connected layer: :math:`y = f(x W + b)`.

    ``kernel`` has shape (n_in, units) and ``bias`` shape (units,), Keras's
    layout; once the layer belongs to a built model both are views into the
    model's flat parameter array, so reading them shows the current weights.
    """

    def __init__(self, units: int, activation=None, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 name: str | None = None, input_shape=None):
        self.units = positive_int(units, "units")
        # Keras 2 style: the first layer may carry the input shape instead of an Input.
        self.input_shape = None if input_shape is None else Input(input_shape).shape
        self.activation = activations.get(activation)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.name = name
        self.input_dim: int | None = None
        self.kernel: np.ndarray | None = None
        self.bias: np.ndarray | None = None

    def get_weights(self) -> list[np.ndarray]:
        """``[kernel, bias]`` as copies."""
        if self.kernel is None:
            raise ValueError(f"layer {self.name!r} is not built yet: its weights do not exist")
        return [self.kernel.copy(), self.bias.copy()]

    def set_weights(self, weights) -> None:
        """Load ``[kernel, bias]`` (shapes as :meth:`get_weights`)."""
        weights = list(weights)
        if self.kernel is None:
            raise ValueError(f"layer {self.name!r} is not built yet: its weights do not exist")
        if len(weights) != 2:
            raise ValueError(f"set_weights expected 2 arrays (kernel, bias), got {len(weights)}")
        for index, (value, target) in enumerate(zip(weights, (self.kernel, self.bias))):
            value = np.asarray(value, dtype=np.float64)
            if value.shape != target.shape:
                raise ValueError(f"weights[{index}] has shape {value.shape}, expected {target.shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"weights[{index}] contains NaN or inf")
        self.kernel[:], self.bias[:] = weights

    def count_params(self) -> int:
        if self.input_dim is None:
            raise ValueError(f"layer {self.name!r} is not built yet: its input size is unknown")
        return self.input_dim * self.units + self.units

    def __repr__(self) -> str:
        return f"Dense({self.units}, activation={self.activation.name!r}, name={self.name!r})"
