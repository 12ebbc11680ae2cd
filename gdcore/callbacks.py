"""Keras-shaped callbacks: the ``keras.callbacks.Callback`` protocol and Keras 3's standard callbacks.

``fit`` calls, in Keras 3's order: ``on_train_begin``; per epoch
``on_epoch_begin``, per batch ``on_train_batch_begin`` / ``on_train_batch_end``
(logs: the running loss of the epoch so far), then, with validation data,
``on_test_begin``, ``on_test_batch_begin``/``end``, ``on_test_end``, and
``on_epoch_end`` (logs: ``loss``, ``val_loss``, and what callbacks add, such as
``learning_rate``); finally ``on_train_end``. ``evaluate`` calls the
``on_test_*`` hooks, ``predict`` the ``on_predict_*`` ones. The callbacks of a
call run in the order given, then the :class:`History`, then the progress bar.

The compiled loop hands control back to Python per batch only when a callback
overrides a batch hook (or a progress bar is shown, which it updates between
slices of steps); otherwise a whole epoch, or many, run in one call.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
import warnings

import numpy as np

BATCH_HOOKS = ("on_train_batch_begin", "on_train_batch_end", "on_batch_begin", "on_batch_end")
TEST_HOOKS = ("on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end")


class Callback:
    """Hooks called by ``fit``/``evaluate``/``predict``; override the ones you need (module docstring).

    ``self.model`` is the model, ``self.params`` ``{"verbose", "epochs", "steps"}``.
    """

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

    def on_batch_begin(self, batch: int, logs=None): ...

    def on_batch_end(self, batch: int, logs=None): ...

    def on_train_batch_begin(self, batch: int, logs=None):
        self.on_batch_begin(batch, logs=logs)  # Keras 2's names, kept by Keras 3

    def on_train_batch_end(self, batch: int, logs=None):
        self.on_batch_end(batch, logs=logs)

    def on_test_begin(self, logs=None): ...

    def on_test_end(self, logs=None): ...

    def on_test_batch_begin(self, batch: int, logs=None): ...

    def on_test_batch_end(self, batch: int, logs=None): ...

    def on_predict_begin(self, logs=None): ...

    def on_predict_end(self, logs=None): ...

    def on_predict_batch_begin(self, batch: int, logs=None): ...

    def on_predict_batch_end(self, batch: int, logs=None): ...


def overrides(callback: Callback, hooks) -> bool:
    """Whether ``callback`` defines any of ``hooks`` itself (or was given them, as a LambdaCallback is)."""
    for hook in hooks:
        if hook in vars(callback) and vars(callback)[hook] is not None:
            return True
        for cls in type(callback).__mro__:
            if cls is Callback:
                break
            if hook in vars(cls):
                return True
    return False


def _call_nobody(*args, logs=None) -> None:
    pass


class CallbackList:
    """Calls every hook on each callback in turn, as ``keras.callbacks.CallbackList``."""

    def __init__(self, callbacks, model, params: dict):
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_model(model)
            callback.set_params(params)

    def __getattr__(self, hook):
        if not hook.startswith("on_"):
            raise AttributeError(hook)
        if not self.callbacks:  # evaluate and predict without callbacks: nothing to call
            return _call_nobody
        takes_index = "epoch" in hook or "batch" in hook

        def call(*args, logs=None):
            # As Keras's CallbackList: logs always a dict, passed positionally after the epoch/batch index.
            logs = {} if logs is None else logs
            if len(args) > (1 if takes_index else 0):
                logs = args[-1] if args[-1] is not None else {}
                args = args[:-1]
            for callback in self.callbacks:
                if "batch" in hook:  # Keras passes batch hooks their logs by keyword, the others positionally
                    getattr(callback, hook)(*args, logs=logs)
                else:
                    getattr(callback, hook)(*args, logs)

        return call

    def listens(self, hooks) -> bool:
        return any(overrides(callback, hooks) for callback in self.callbacks)


def check(callbacks) -> list[Callback]:
    """``callbacks`` as a list of Callback instances, or a TypeError naming what was given."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback):
        raise TypeError("callbacks must be a list of Callback instances, got a single Callback: pass [callback]")
    if isinstance(callbacks, (str, bytes)) or not hasattr(callbacks, "__iter__"):
        raise TypeError(f"callbacks must be a list of Callback instances, got {type(callbacks).__name__}")
    callbacks = list(callbacks)
    for callback in callbacks:
        if not isinstance(callback, Callback):
            raise TypeError(f"callbacks must be gdcore.callbacks.Callback instances, got {type(callback).__name__}")
    return callbacks


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
        self.model.history = self

    def __repr__(self) -> str:
        last = {key: values[-1] for key, values in self.history.items() if values}
        return f"History(epochs={len(self.epoch)}, last={last})"


class LambdaCallback(Callback):
    """A callback from plain functions, as ``keras.callbacks.LambdaCallback``: any hook by keyword.

    ``on_epoch_begin(epoch, logs)``, ``on_epoch_end(epoch, logs)``,
    ``on_train_begin(logs)``, ``on_train_end(logs)``,
    ``on_train_batch_begin(batch, logs)``, ``on_train_batch_end(batch, logs)``
    (also spelled ``on_batch_begin``/``on_batch_end``), and the test and predict hooks.
    """

    _HOOKS = ("on_epoch_begin", "on_epoch_end", "on_train_begin", "on_train_end", "on_train_batch_begin",
              "on_train_batch_end", "on_batch_begin", "on_batch_end", "on_test_begin", "on_test_end",
              "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
              "on_predict_batch_begin", "on_predict_batch_end")

    def __init__(self, **hooks):
        super().__init__()
        unknown = sorted(set(hooks) - set(self._HOOKS))
        if unknown:
            raise TypeError(f"LambdaCallback got unknown hooks {unknown}; known: {', '.join(self._HOOKS)}")
        for name, function in hooks.items():
            if function is not None:
                if not callable(function):
                    raise TypeError(f"LambdaCallback({name}=...) must be callable, got {type(function).__name__}")
                setattr(self, name, function)
        if "on_batch_begin" in hooks and "on_train_batch_begin" not in hooks:
            self.on_train_batch_begin = hooks["on_batch_begin"]
        if "on_batch_end" in hooks and "on_train_batch_end" not in hooks:
            self.on_train_batch_end = hooks["on_batch_end"]


class TerminateOnNaN(Callback):
    """Stop training when a batch's loss is NaN or infinite (``keras.callbacks.TerminateOnNaN``).

    gdcore never applies such a step (the engine stops before it and restores
    the epoch's start, see ``fit``); this callback also stops on a non-finite
    running loss reported at a batch's end.
    """

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class _MonitorCallback(Callback):
    """Keras's ``MonitorCallback``: which direction of ``monitor`` is an improvement."""

    def __init__(self, monitor="val_loss", mode="auto", baseline=None, min_delta=0):
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.", stacklevel=3)
            mode = "auto"
        self.monitor, self.mode, self.best, self.min_delta = monitor, mode, baseline, abs(min_delta)
        self.monitor_op = None

    def _set_monitor_op(self):
        if self.mode == "min":
            self.monitor_op = np.less
        elif self.mode == "max":
            self.monitor_op = np.greater
        else:
            name = self.monitor.removeprefix("val_")
            directions = getattr(self.model, "_metric_directions", {})
            if name == "loss" or directions.get(name) == "down":
                self.monitor_op = np.less
            elif directions.get(name) == "up":
                self.monitor_op = np.greater
            else:
                raise ValueError(f"{type(self).__name__} callback received monitor={self.monitor!r}, but gdcore cannot "
                                 "tell whether it should be minimized or maximized: pass mode='min' or mode='max'")
        if self.monitor_op is np.less:  # Keras's sign convention: an improvement is value + min_delta < best
            self.min_delta *= -1

    def _is_improvement(self, value, reference) -> bool:
        if reference is None:
            return True
        return bool(self.monitor_op(value - self.min_delta, reference))


class EarlyStopping(_MonitorCallback):
    """Stop training when ``monitor`` has stopped improving (``keras.callbacks.EarlyStopping``, Keras 3's rules).

    After each epoch from ``start_from_epoch`` on: an improvement (by more than
    ``min_delta``, and past ``baseline`` if given) resets the wait; otherwise,
    once ``patience`` epochs passed without one (and it is not the first
    epoch), ``model.stop_training`` is set. ``restore_best_weights`` puts back
    the weights of the best epoch at the end of training.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, verbose=0, mode="auto", baseline=None,
                 restore_best_weights=False, start_from_epoch=0):
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience, self.verbose, self.baseline = patience, verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best_weights = None

    def on_train_begin(self, logs=None):
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best = None
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        current = (logs or {}).get(self.monitor)
        if current is None:
            warnings.warn(f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                          f"Available metrics are: {','.join(logs or {})}", stacklevel=2)
            return
        if epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self.model.get_weights(), epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.stopped_epoch > 0 and self.verbose > 0:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")
            self.model.set_weights(self.best_weights)


def _learning_rate(model) -> float:
    """The learning rate as Keras reports it: the value of its variable, in the model's dtype."""
    return float(np.dtype(model.dtype).type(model.optimizer.learning_rate))


class LearningRateScheduler(Callback):
    """Set the learning rate at each epoch's start from ``schedule(epoch, lr)`` (or ``schedule(epoch)``).

    As ``keras.callbacks.LearningRateScheduler``: the new rate takes effect for
    the whole epoch, and each epoch's logs (hence ``History``) get ``learning_rate``.
    """

    def __init__(self, schedule, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError(f"schedule must be callable (epoch, lr) -> lr, got {type(schedule).__name__}")
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch, logs=None):
        current = _learning_rate(self.model)
        try:
            learning_rate = self.schedule(epoch, current)
        except TypeError:  # Keras's old one-argument form
            learning_rate = self.schedule(epoch)
        if not isinstance(learning_rate, (float, np.floating)):
            raise ValueError(f"The output of the `schedule` function should be a float. Got: {learning_rate}")
        self.model.optimizer.learning_rate = float(learning_rate)
        if self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to {learning_rate}.")

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = _learning_rate(self.model)


class ReduceLROnPlateau(_MonitorCallback):
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving (``keras.callbacks.ReduceLROnPlateau``)."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, verbose=0, mode="auto", min_delta=1e-4, cooldown=0,
                 min_lr=0.0, **kwargs):
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}")
        if kwargs:
            raise TypeError(f"ReduceLROnPlateau got unexpected arguments {sorted(kwargs)}")
        self.factor, self.min_lr, self.patience, self.verbose, self.cooldown = factor, min_lr, patience, verbose, cooldown
        self.cooldown_counter = self.wait = 0

    def on_train_begin(self, logs=None):
        self.best, self.cooldown_counter, self.wait = None, 0, 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch, logs=None):
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs if logs is not None else {}
        logs["learning_rate"] = _learning_rate(self.model)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not available. "
                          f"Available metrics are: {','.join(logs)}.", stacklevel=2)
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best, self.wait = current, 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience:
                old = _learning_rate(self.model)
                if old > np.float32(self.min_lr):
                    new = max(old * self.factor, self.min_lr)
                    self.model.optimizer.learning_rate = new
                    if self.verbose > 0:
                        print(f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new}.")
                    self.cooldown_counter, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """Write each epoch's logs to a CSV file (``keras.callbacks.CSVLogger``): a header, then one row per epoch."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.sep, self.append = os.fspath(filename), separator, append
        self.keys = None
        self._file = None

    def on_train_begin(self, logs=None):
        exists = self.append and os.path.exists(self.filename) and os.path.getsize(self.filename) > 0
        self._append_header = not exists
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=["epoch", *self.keys], delimiter=self.sep)
            if self._append_header:
                self._writer.writeheader()
        self._writer.writerow({"epoch": epoch, **{key: logs.get(key, "NA") for key in self.keys}})
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None


class ModelCheckpoint(_MonitorCallback):
    """Save the model (or its weights) after epochs (``keras.callbacks.ModelCheckpoint``).

    ``filepath`` may contain ``{epoch}`` and log names (``"m-{epoch:02d}-{val_loss:.2f}.keras"``);
    it must end in ``.keras`` (whole model) or, with ``save_weights_only``,
    ``.weights.h5``. ``save_best_only`` saves only when ``monitor`` improves.
    """

    def __init__(self, filepath, monitor="val_loss", verbose=0, save_best_only=False, save_weights_only=False,
                 mode="auto", save_freq="epoch", initial_value_threshold=None):
        super().__init__(monitor, mode, baseline=initial_value_threshold)
        self.filepath, self.verbose = os.fspath(filepath), verbose
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only
        if save_freq != "epoch":
            raise ValueError(f"ModelCheckpoint: save_freq={save_freq!r} is not supported; gdcore saves per epoch")
        suffix = ".weights.h5" if save_weights_only else ".keras"
        if not self.filepath.endswith(suffix):
            raise ValueError(f"ModelCheckpoint: with save_weights_only={save_weights_only}, filepath must end in "
                             f"{suffix!r}, got {self.filepath!r}")

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            if self.monitor_op is None:
                self._set_monitor_op()
            current = logs.get(self.monitor)
            if current is None:
                warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=2)
                return
            if not self._is_improvement(current, self.best):
                if self.verbose > 0:
                    print(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {self.best:.5f}")
                return
            if self.verbose > 0:
                previous = "inf" if self.best is None else f"{self.best:.5f}"
                print(f"\nEpoch {epoch + 1}: {self.monitor} improved from {previous} to {current:.5f}, saving model to {path}")
            self.best = current
        elif self.verbose > 0:
            print(f"\nEpoch {epoch + 1}: saving model to {path}")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path)


# --- progress output ------------------------------------------------------------------------


def _dynamic_display() -> bool:
    """Keras's test for a display that can be redrawn in place (a terminal, a Jupyter kernel)."""
    return (hasattr(sys.stdout, "isatty") and sys.stdout.isatty()) or "ipykernel" in sys.modules \
        or "posix" in sys.modules or "PYCHARM_HOSTED" in os.environ


class Progbar:
    """Keras 3's progress bar (``keras.utils.Progbar``): the same line, redrawn in place where possible.

    ``update(current, values, finalize)`` with ``values`` a list of
    ``(name, value)``; every value is shown as given (Keras's logs are running
    means already). ``verbose=1`` draws ``5/5 ━━━━━━━━━━━━━━━━━━━━ 0s 2ms/step -
    loss: 12.6848`` at most every ``interval`` seconds and at the end,
    ``verbose=2`` one line at the end.
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, unit_name="step"):
        self.target, self.width, self.verbose, self.interval, self.unit_name = target, width, verbose, interval, unit_name
        self._dynamic = _dynamic_display()
        self._values: dict = {}
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step = None
        self._prev_total_width = 0

    def update(self, current, values=None, finalize=None):
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        for name, value in values or []:
            self._values[name] = value
        now = time.time()
        per_unit = self._step_duration(current, now)
        if self.verbose == 1:
            if now - self._last_update < self.interval and not finalize:
                return
            message = ("\b" * self._prev_total_width + "\r") if self._dynamic else "\n"
            special = 0
            if self.target is not None and self.target > 0:
                digits = int(math.log10(self.target)) + 1
                bar = f"\x1b[1m{current:{digits}d}/{self.target}\x1b[0m "
                special += 8
                done = int(self.width * float(current) / self.target)
                if done > 0:
                    bar += f"\x1b[32m{'━' * done}\x1b[0m"
                    special += 9
                bar += f"\x1b[37m{'━' * (self.width - done)}\x1b[0m"
                special += 9
            else:
                bar = f"{current:7d}/Unknown"
            if self.target is not None and self.target > 0 and not finalize:
                eta = per_unit * (self.target - current)
                if eta > 3600:
                    eta_text = f"{int(eta // 3600)}:{int((eta % 3600) // 60):02d}:{int(eta % 60):02d}"
                elif eta > 60:
                    eta_text = f"{int(eta // 60)}:{int(eta % 60):02d}"
                else:
                    eta_text = f"{int(eta)}s"
                info = f" \x1b[1m{eta_text}\x1b[0m"
            else:
                info = f" \x1b[1m{now - self._start:.0f}s\x1b[0m"
            special += 8
            info += self._format_time(per_unit)
            info += "".join(f" - {name}: {_format_value(value)}" for name, value in self._values.items())
            total_width = len(bar) + len(info) - special
            message += bar + info
            if self._prev_total_width > total_width:
                message += " " * (self._prev_total_width - total_width)
            if finalize:
                message += "\n"
            sys.stdout.write(message)
            sys.stdout.flush()
            self._prev_total_width = total_width
        elif self.verbose == 2 and finalize and self.target:
            digits = int(math.log10(self.target)) + 1
            info = f"{current:{digits}d}/{self.target} - {now - self._start:.0f}s -{self._format_time(per_unit)}"
            info += "".join(f" - {name}: {_format_value(value, signed=False)}" for name, value in self._values.items())
            sys.stdout.write(info + "\n")
            sys.stdout.flush()
        self._last_update = now

    def _format_time(self, per_unit) -> str:
        if per_unit >= 1 or per_unit == 0:
            return f" {per_unit:.0f}s/{self.unit_name}"
        if per_unit >= 1e-3:
            return f" {per_unit * 1e3:.0f}ms/{self.unit_name}"
        return f" {per_unit * 1e6:.0f}us/{self.unit_name}"

    def _step_duration(self, current, now) -> float:
        if current == 0:
            return 0.0
        if current == 1:
            self._time_after_first_step = now
        if current > 1 and self._time_after_first_step is not None:
            return (now - self._time_after_first_step) / (current - 1)
        return (now - self._start) / current


def _format_value(value, signed: bool = True) -> str:
    if isinstance(value, (float, np.floating)):
        magnitude = abs(value) if signed else value
        return f"{value:.4f}" if magnitude > 1e-3 else f"{value:.4e}"
    return f"{value}"


class ProgbarLogger(Callback):
    """The progress output of ``fit(verbose=1 or 2)``, ``evaluate`` and ``predict``, as Keras 3 prints it."""

    def __init__(self):
        super().__init__()
        self.progbar, self.target, self.verbose, self.epochs, self._in_fit = None, None, 1, 1, False

    def set_params(self, params):
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs, self.target = params.get("epochs", 1), params.get("steps")

    def on_train_begin(self, logs=None):
        self._in_fit = True

    def _new(self):
        self.progbar = Progbar(self.target, verbose=self.verbose)

    def on_epoch_begin(self, epoch, logs=None):
        self._new()
        if self.verbose and self.epochs > 1:
            print(f"Epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch, logs=None):
        if self.verbose == 1:
            self.progbar.update(batch + 1, list((logs or {}).items()), finalize=False)

    def on_epoch_end(self, epoch, logs=None):
        self.progbar.update(self.target, list((logs or {}).items()), finalize=True)

    def on_test_begin(self, logs=None):
        if not self._in_fit:
            self._new()

    def on_test_batch_end(self, batch, logs=None):
        if not self._in_fit and self.verbose == 1:
            self.progbar.update(batch + 1, list((logs or {}).items()), finalize=False)

    def on_test_end(self, logs=None):
        if not self._in_fit:
            self.progbar.update(self.target, list((logs or {}).items()), finalize=True)

    def on_predict_begin(self, logs=None):
        self._new()

    def on_predict_batch_end(self, batch, logs=None):
        if self.verbose == 1:
            self.progbar.update(batch + 1, None, finalize=False)

    def on_predict_end(self, logs=None):
        self.progbar.update(self.target, None, finalize=True)
