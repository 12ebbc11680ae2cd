"""``Trajectory``: what one engine did during one training run, epoch by epoch."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Trajectory:
    """The record of one training run, in the shape every driver returns.

    Attributes
    ----------
    engine : str
        ``"gdcore"``, ``"keras"``, ``"sklearn.SGDRegressor"``, ...
    dtype : str
        The dtype the engine computed in.
    weight_names : list of str
        One name per weight tensor, Keras's layout (``"dense/kernel"``, ``"dense/bias"``, ...).
    weights : list of list of ndarray
        ``weights[e]`` are the tensors after epoch ``e``; ``weights[0]`` are the initial ones.
    loss : list of float or None
        ``loss[e - 1]`` is epoch ``e``'s training loss as Keras's ``history['loss']``
        defines it; ``None`` when the engine does not report one.
    val_loss : list of float or None
        The validation loss after each epoch, when validation data was given.
    predictions : list of ndarray
        ``predictions[e]``: outputs on the prediction inputs after epoch ``e`` (``[0]``: initial).
    fit_seconds : float
        Wall time spent inside the engine's training calls (not predictions, not setup).
    diverged_at : int or None
        The first epoch (1-based) whose loss or weights were NaN or infinite;
        training stopped there and the lists hold only the epochs before it.
    """

    engine: str
    dtype: str
    weight_names: list[str]
    weights: list[list[np.ndarray]] = field(default_factory=list)
    loss: list[float] | None = None
    val_loss: list[float] | None = None
    predictions: list[np.ndarray] = field(default_factory=list)
    fit_seconds: float = 0.0
    diverged_at: int | None = None

    @property
    def epochs(self) -> int:
        """Number of completed epochs recorded."""
        return len(self.weights) - 1

    def quantities(self, epoch: int) -> dict[str, np.ndarray]:
        """Everything recorded after ``epoch`` (0 = before training), by name, as arrays of the dtype."""
        values = {name: np.asarray(tensor) for name, tensor in zip(self.weight_names, self.weights[epoch])}
        if epoch >= 1 and self.loss is not None:
            values["loss"] = np.asarray([self.loss[epoch - 1]], dtype=self.dtype)
        if epoch >= 1 and self.val_loss is not None:
            values["val_loss"] = np.asarray([self.val_loss[epoch - 1]], dtype=self.dtype)
        if self.predictions:
            values["predictions"] = np.asarray(self.predictions[epoch])
        return values


def finite(arrays) -> bool:
    """Whether every array in ``arrays`` holds only finite numbers."""
    return all(np.isfinite(np.asarray(array)).all() for array in arrays)
