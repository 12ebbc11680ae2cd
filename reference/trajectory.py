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
    metrics : dict of str to list of float
        The compiled metrics' history (``accuracy``, ``val_accuracy``, ...), one
        value per epoch under Keras's history keys; empty when none were compiled
        or the engine reports none.
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
    metrics: dict[str, list[float]] = field(default_factory=dict)
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
        for key, history in getattr(self, "metrics", {}).items():  # getattr: pickles written before metrics existed
            if epoch >= 1:
                values[key] = np.asarray([history[epoch - 1]], dtype=self.dtype)
        if self.predictions:
            values["predictions"] = np.asarray(self.predictions[epoch])
        return values


def finite(arrays) -> bool:
    """Whether every array in ``arrays`` holds only finite numbers."""
    return all(np.isfinite(np.asarray(array)).all() for array in arrays)


def record_history(trajectory: Trajectory, history: dict) -> None:
    """Append one epoch's ``history`` (Keras's dict of one-element lists) to ``trajectory``: loss, val_loss, metrics."""
    trajectory.loss.append(history["loss"][0])
    if trajectory.val_loss is not None:
        trajectory.val_loss.append(history["val_loss"][0])
    for key in sorted(history):
        if key not in ("loss", "val_loss"):
            trajectory.metrics.setdefault(key, []).append(history[key][0])
