"""Keras-shaped callbacks: ``History`` (always attached) and a ``Callback`` base class."""

import numpy as np


class Callback:
    """Hooks called by ``fit``; override the ones you need. ``self.model`` is the model being trained."""

    def __init__(self):
        self.model = None
        self.params: dict = {}

    def set_model(self, model) -> None:
        self.model = model

    def set_params(self, params: dict) -> None:
        self.params = params

    def on_train_begin(self, logs=None): ...

    def on_train_end(self, logs=None): ...

    def on_epoch_begin(self, epoch: int, logs=None): ...

    def on_epoch_end(self, epoch: int, logs=None): ...


class LambdaCallback(Callback):
    """A callback from plain functions, as ``keras.callbacks.LambdaCallback``."""

    def __init__(self, on_epoch_begin=None, on_epoch_end=None, on_train_begin=None, on_train_end=None):
        super().__init__()
        for name, function in [("on_epoch_begin", on_epoch_begin), ("on_epoch_end", on_epoch_end),
                               ("on_train_begin", on_train_begin), ("on_train_end", on_train_end)]:
            if function is not None:
                setattr(self, name, function)


class History(Callback):
    """What ``fit`` returns: ``history`` maps each metric to its per-epoch list; ``epoch`` lists epoch indices.

    ``history["loss"][e]`` is Keras's definition: the running mean, weighted by
    batch size, of the batch losses computed *before* each batch's update,
    accumulated in the model's dtype. It is not the loss of the weights at the
    end of the epoch. ``history["val_loss"][e]`` is the loss on the validation
    data with the weights at the end of epoch ``e``.

    ``stopped`` is ``None``, or a dict ``{"epoch", "batch", "reason"}`` when
    training stopped because a loss became NaN or infinite.
    """

    def __init__(self):
        super().__init__()
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.stopped: dict | None = None

    def on_train_begin(self, logs=None):
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self) -> str:
        last = {key: values[-1] for key, values in self.history.items() if values}
        return f"History(epochs={len(self.epoch)}, last={last})"
