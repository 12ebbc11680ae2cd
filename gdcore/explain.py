r"""One training step, worked out: every number of the forward pass, the loss, the gradients and the update.

``explain_step(model, x_batch, y_batch)`` computes what the next
``model.fit(x_batch, y_batch, batch_size=len(x_batch), epochs=1, shuffle=False)``
would do, on copies, with the NumPy engine's own functions
(:func:`gdcore._numpy_engine.forward`, :func:`~gdcore._numpy_engine.backward`,
:func:`~gdcore._numpy_engine.apply_update`) and the model's optimizer
hyperparameters and state. The model is not changed. The reported weights
after the step are bit for bit those ``fit`` produces.

Notation (layer :math:`l = 1 \dots L`, sample :math:`i` of a batch of :math:`B`; :math:`b` is a bias):

.. math::

    a^{(0)} = x, \qquad z^{(l)} = a^{(l-1)} W^{(l)} + b^{(l)}, \qquad a^{(l)} = f_l(z^{(l)}), \qquad \hat y = a^{(L)}

    \delta^{(l)} = \frac{\partial L}{\partial z^{(l)}} = \frac{\partial L}{\partial a^{(l)}} \odot f_l'(z^{(l)}), \qquad
    \frac{\partial L}{\partial a^{(l-1)}} = \delta^{(l)} W^{(l)T}

    \frac{\partial L}{\partial W^{(l)}_{kj}} = \sum_i a^{(l-1)}_{ik}\,\delta^{(l)}_{ij}, \qquad
    \frac{\partial L}{\partial b^{(l)}_j} = \sum_i \delta^{(l)}_{ij}

A sigmoid (softmax) output trained with binary (categorical or sparse)
cross-entropy is shown as Keras runs it (:func:`gdcore.losses.training_loss`):
the forward pass gives the probabilities :math:`p = \sigma(z)` (what
``predict`` returns), the loss is evaluated on the logits :math:`z`, and the
output layer's :math:`\delta` is the gradient of that logits formula,

.. math::

    \frac{\partial \ell_i}{\partial p_i}\,\frac{\partial p_i}{\partial z_i}
    = \frac{p_i - y_i}{p_i(1 - p_i)}\; p_i(1 - p_i) = p_i - y_i, \qquad
    \delta_{ij} = \frac{\partial L}{\partial z_{ij}} = \frac1B (p_{ij} - y_{ij}),

computed from :math:`z` directly: :math:`\partial L/\partial p` is never
formed, which is why this gradient does not vanish where the sigmoid saturates.

The intermediate :math:`z` and :math:`\delta` shown are recomputed with the
same profile functions the engine calls; the gradients and updated weights
shown are the engine's own outputs. With the ``"tensorflow"`` numerics
profile the sums are added in TensorFlow's order, so adding the listed terms
front to back can differ from the shown value in the last bit.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gdcore import _contract, _numpy_engine, activations, constraints, losses, optimizers, regularizers
from gdcore._dtype import cast
from gdcore.trace import parameter_table

__all__ = ["StepExplanation", "explain_step"]


@dataclass
class StepExplanation:
    """Every number of one training step. Displays as Markdown in Jupyter; ``str()`` gives the same text.

    Attributes
    ----------
    samples : DataFrame
        One row per (sample, output): ``sample, output``, the inputs, ``y_true``
        (the target the engine trains on: one-hot rows for class indices),
        ``label`` (the class index, for the categorical cross-entropies),
        ``logit`` and ``probability`` (:math:`z` and :math:`p`, when the loss
        reads logits), ``y_pred`` (what ``predict`` returns), ``error``
        (:math:`e = y - \\hat y`; :math:`y - p` when the loss reads logits),
        ``sample_loss`` (:math:`\\ell_i`) and ``output_grad``
        (:math:`\\partial L/\\partial \\hat y`, or :math:`\\partial L/\\partial z`
        when the loss reads logits).
    activations : DataFrame
        One row per (layer, sample, unit): ``z``, ``a``, ``grad_a``
        (:math:`\\partial L/\\partial a`), ``activation_grad`` (:math:`f'(z)`)
        and ``delta`` (:math:`\\delta = \\partial L/\\partial z`). For an output
        layer whose logits the loss reads, ``grad_a`` and ``activation_grad``
        are NaN: the step never forms them (``delta`` is :math:`(p - y)/B`).
    parameters : DataFrame
        One row per parameter: ``layer, tensor, index, parameter, before,
        gradient`` (with a kernel or bias regularizer, ``data_gradient`` and
        ``penalty_gradient`` before it, the gradient their sum; with
        clipping, ``clipped_gradient`` after it: what the rule reads), the
        optimizer's slots before and after (``m_before, m,
        v_before, v`` for Adam; ``momentum_before, momentum`` for SGD with
        momentum), ``update`` (after - before; with ``weight_decay`` it
        includes the decay, applied first as in Keras), ``after`` (with a
        weight constraint, ``updated`` holds the weights before its projection).
    terms : DataFrame
        One row per (parameter, sample): the products whose sum over the batch
        is the gradient (``input * delta``; ``input`` is 1 for a bias).
    loss : float
        The batch loss :math:`L` before the update, the regularizers' penalties included.
    data_loss, penalties : float, list of float
        :math:`L` without the penalties, and each weight tensor's penalty
        (Keras's ``model.losses`` order; empty without regularizers).
    hyperparameters : dict
        The optimizer's constants in the model's dtype; for Adam also ``t`` and ``alpha_t``.
    weights_before, gradients, weights_after : list of ndarray
        In ``get_weights()`` layout and the model's dtype.
    loss_name, training_loss_name : str
        The compiled loss and the entry the step evaluates (its logits form
        for a sigmoid/softmax output, :func:`gdcore.losses.training_loss`).
    logits_recovered : bool
        Whether the output layer's activation is folded into the loss, as Keras does.
    """

    model_name: str
    optimizer_name: str
    optimizer_config: dict
    loss_name: str
    dtype: str
    numerics: str
    batch_size: int
    iterations: int
    loss: float
    hyperparameters: dict
    samples: pd.DataFrame
    activations: pd.DataFrame
    parameters: pd.DataFrame
    terms: pd.DataFrame
    weights_before: list
    gradients: list
    weights_after: list
    layers: list = field(default_factory=list)
    activation_parameters: dict = field(default_factory=dict)  # layer name -> its activation's parameters, if any
    slots: list = field(default_factory=list)
    digits: int = 6
    training_loss_name: str = ""
    logits_recovered: bool = False
    data_loss: float | None = None
    penalties: list = field(default_factory=list)

    # --- rendering --------------------------------------------------------------------

    def to_markdown(self, digits: int | None = None, max_terms: int = 8) -> str:
        """The step as Markdown with LaTeX formulas; numbers to ``digits`` significant digits.

        Gradient sums are written out term by term when the batch has at most
        ``max_terms`` samples.
        """
        digits = self.digits if digits is None else digits
        fmt = lambda value: _fmt(value, digits)  # noqa: E731
        config = ", ".join(f"{k}={v!r}" for k, v in self.optimizer_config.items())
        on_logits = "probability" in self.samples.columns
        loss_text = f"loss `{self.loss_name}`" + (f" (evaluated as `{self.training_loss_name}`)"
                                                   if self.training_loss_name not in ("", self.loss_name) else "")
        lines = [
            "### One training step, explained",
            "",
            f"`{self.optimizer_name}({config})`, {loss_text}, batch of $B = {self.batch_size}$ "
            f"sample{'s' if self.batch_size != 1 else ''}, {self.dtype}, optimizer step $t = {self.iterations + 1}$ "
            f"({self.iterations} update{'s' if self.iterations != 1 else ''} so far).",
            "",
            "#### 1. Forward pass",
            "",
        ]
        n_layers = len(self.layers)
        for number, (name, activation, n_in, units) in enumerate(self.layers, start=1):
            source = "x" if number == 1 else f"a^{{({number - 1})}}"
            entry = activations.EVERY_NAME[activation]
            forward = entry.formula
            if entry.parameters:  # the layer's values, as the step used them
                values = self.activation_parameters.get(name, entry.parameter_values())
                forward += "".join(f",\\ {symbol} = {fmt(value)}" for symbol, value in
                                   zip(entry.symbols, values))
            lines += [
                f"Layer {number} `{name}` ({n_in} → {units}, {activation}): "
                f"$z^{{({number})}}_{{ij}} = \\sum_k {source}_{{ik}} W_{{kj}} + b_j$, "
                "$" + forward + (r" = \hat y" if number == n_layers else "") + "$",
                "",
                "with " + _weights_text(self.parameters, name, fmt) + ".",
                "",
            ]
            table = self.activations[self.activations["layer"] == name]
            columns = {"sample": "i", "unit": "j"}
            if number == 1:
                inputs = self.samples.drop_duplicates("sample")
                for column in [c for c in self.samples.columns if c.startswith("x[")]:
                    table = table.merge(inputs[["sample", column]], on="sample")
                    columns[column] = "$x_{i" + column[2:-1] + "}$"
            columns.update({"z": "$z$", "a": "$a = p$" if number == n_layers and self.logits_recovered else "$a$"})
            lines += _markdown_table(table, columns, fmt) + [""]
        training = losses.get(self.training_loss_name or self.loss_name)
        several = self.samples["output"].max() > 0
        lines += ["#### 2. Loss", ""]
        if on_logits:
            link = training.recovers
            output = (f"the {link} output $p = \\hat y$" if self.logits_recovered
                      else f"the probabilities $p = {_LINK_SYMBOLS[link]}(z)$ of the logits $z = \\hat y$")
            lines += [
                f"`{self.loss_name}` on {output}: ${_PROBABILITY_FORMS[training.name]}$"
                + (r" (with $y_{ij} = [j = y_i]$ for the class index $y_i$)" if training.targets == "sparse" else "") + ".",
                "",
                (f"Keras does not evaluate it on $p$: the {link}'s output carries its input, the logits $z$, and the "
                 "loss reads those" if self.logits_recovered else "The loss reads the logits")
                + f" (`{training.name}`): ${training.formula}$. The same number, without rounding $p$ "
                "or clipping it, finite for any $z$; $L = \\frac{1}{B}\\sum_i \\ell_i$ and "
                f"${training.grad_formula}$.",
                "",
            ]
            table = self.samples.assign(p_minus_y=self.samples["probability"] - self.samples["y_true"])
            columns = {"sample": "i", **({"output": "j"} if several else {}), "y_true": "$y$",
                       **({"label": "class"} if "label" in table.columns else {}), "logit": "$z$", "probability": "$p$",
                       "sample_loss": r"$\ell$", "p_minus_y": "$p - y$", "output_grad": r"$\partial L/\partial z$"}
            lines += _markdown_table(table, columns, fmt)
        else:
            lines += [f"$e_i = y_i - \\hat y_i$, ${training.formula}$, $L = \\frac{{1}}{{B}}\\sum_i \\ell_i$, "
                      f"${training.grad_formula}$", ""]
            columns = {"sample": "i", **({"output": "j"} if several else {}), "y_true": "$y$",
                       **({"label": "class"} if "label" in self.samples.columns else {}), "y_pred": r"$\hat y$",
                       "error": "$e$", "sample_loss": r"$\ell$", "output_grad": r"$\partial L/\partial \hat y$"}
            lines += _markdown_table(self.samples, columns, fmt)
        per_sample = self.samples.drop_duplicates("sample")["sample_loss"]
        written = " + ".join(_paren(fmt(v)) for v in per_sample) if len(per_sample) <= max_terms else r"\dots"
        data_loss = self.loss if self.data_loss is None else self.data_loss
        lines += ["", f"$L = ({written}) / {self.batch_size} = {fmt(data_loss)}$"]
        if self.penalties:
            written = " + ".join(_paren(fmt(p)) for p in self.penalties)
            lines += ["", f"plus the regularizers' penalties (Keras's `model.losses`): "
                          f"$L = {fmt(data_loss)} + {written} = {fmt(self.loss)}$"]
        lines += ["", "#### 3. Backward pass (chain rule, last layer first)", ""]
        for number in range(n_layers, 0, -1):
            name, activation, n_in, units = self.layers[number - 1]
            table = self.activations[self.activations["layer"] == name]
            if number == n_layers and self.logits_recovered:
                through_p, through_z = _MEETS[activation]
                lines += [
                    f"Layer {number} `{name}`, where the cross-entropy meets the {activation}: ${through_p}$ and "
                    f"${through_z}$, and their product is $p - y$:",
                    "",
                    f"$$\\delta^{{({number})}}_{{ij}} = \\frac{{\\partial L}}{{\\partial z_{{ij}}}} = "
                    r"\frac{1}{B}(p_{ij} - y_{ij})$$",
                    "",
                    "Keras computes it from $z$ directly (the gradient of the logits formula): "
                    r"$\partial L/\partial p$ is never formed, so the gradient stays $p - y$ even where the "
                    f"{activation} saturates. (With MSE it would be multiplied by the {activation}'s derivative, "
                    "which vanishes there.)",
                    "",
                ]
                outputs = self.samples[["sample", "output", "y_true", "probability"]].rename(columns={"output": "unit"})
                table = table.merge(outputs, on=["sample", "unit"])
                table = table.assign(p_minus_y=table["probability"] - table["y_true"])
                lines += _markdown_table(table, {"sample": "i", "unit": "j", "probability": "$p$", "y_true": "$y$",
                                                 "p_minus_y": "$p - y$", "delta": r"$\delta$"}, fmt) + [""]
            else:
                derivative = activations.EVERY_NAME[activation].grad_formula
                upstream = (r"\partial L/\partial z" if on_logits else r"\partial L/\partial \hat y") if number == n_layers \
                    else f"\\sum_m \\delta^{{({number + 1})}}_{{im}} W^{{({number + 1})}}_{{jm}}"
                lines += [
                    f"Layer {number} `{name}`: $\\partial L/\\partial a_{{ij}} = {upstream}$, ${derivative}$, "
                    f"$\\delta^{{({number})}}_{{ij}} = \\partial L/\\partial a_{{ij}} \\cdot f'(z_{{ij}})$",
                    "",
                ]
                lines += _markdown_table(table, {"sample": "i", "unit": "j", "grad_a": r"$\partial L/\partial a$",
                                                 "activation_grad": "$f'(z)$", "delta": r"$\delta$"}, fmt) + [""]
            source = "x" if number == 1 else f"a^{{({number - 1})}}"
            lines += [f"$\\partial L/\\partial W_{{kj}} = \\sum_i {source}_{{ik}}\\,\\delta_{{ij}}$, "
                      f"$\\partial L/\\partial b_j = \\sum_i \\delta_{{ij}}$", ""]
            rows = []
            for parameter in self.parameters[self.parameters["layer"] == name]["parameter"]:
                terms = self.terms[self.terms["parameter"] == parameter]
                if len(terms) <= max_terms:
                    if (terms["input"] == 1).all():
                        written = " + ".join(_paren(fmt(d)) for d in terms["delta"])
                    else:
                        written = " + ".join(f"{_paren(fmt(i))}·{_paren(fmt(d))}" for i, d in zip(terms["input"], terms["delta"]))
                else:
                    written = "…"
                row = self.parameters.loc[self.parameters["parameter"] == parameter].iloc[0]
                rows.append({"parameter": f"`{parameter}`", "sum": written, "gradient": row["gradient"],
                             **({"penalty": row["penalty_gradient"]} if self.penalties else {})})
            columns = {"parameter": "parameter", "sum": "sum over the batch",
                       **({"penalty": "+ penalty's gradient"} if self.penalties else {}),
                       "gradient": r"$\partial L/\partial w$"}
            lines += _markdown_table(pd.DataFrame(rows), columns, fmt) + [""]
        lines += ["#### 4. Update", "", self._update_formula(fmt), ""]
        columns = {"parameter": "parameter", "before": "$w$", "gradient": "$g$"}
        if "clipped_gradient" in self.parameters:
            columns["clipped_gradient"] = "$g$ clipped"
        for slot in self.slots:
            columns[f"{slot}_before"] = f"${_SLOT_SYMBOLS.get(slot, slot)}$ before"
            columns[slot] = f"${_SLOT_SYMBOLS.get(slot, slot)}$"
        if "updated" in self.parameters:
            columns["updated"] = "$w$ updated (before the constraint)"
        columns.update({"update": r"$\Delta w$", "after": r"$w$ after"})
        table = self.parameters.assign(parameter="`" + self.parameters["parameter"] + "`")
        lines += _markdown_table(table, columns, fmt)
        lines += ["", f"Numbers rounded to {digits} significant digits for display; the DataFrames `.samples`, "
                  "`.activations`, `.parameters` and `.terms` hold the exact values. The weights after are exactly "
                  "those the next `fit` step on this batch produces."]
        return "\n".join(lines)

    def _update_formula(self, fmt) -> str:
        rule = optimizers.OPTIMIZERS[self.optimizer_name.lower()].rule
        values = ", ".join(f"{_HYPER_SYMBOLS.get(name, name.replace('_', ' '))} = {_latex_number(fmt(value))}"
                           for name, value in self.hyperparameters.items() if not isinstance(value, bool))
        text = f"{self.optimizer_name}: ${rule.formula}$, with ${values}$"
        config = self.optimizer_config
        before = [f"$g$ clipped ({name}={config[name]:g}, Keras's rule)"
                  for name in ("clipvalue", "clipnorm", "global_clipnorm") if config.get(name) is not None]
        if config.get("weight_decay"):
            before.append(f"$w \\leftarrow w - \\eta \\lambda w$ (weight_decay $\\lambda$ = {config['weight_decay']:g})")
        return text + ("; before it, in this order: " + ", then ".join(before) if before else "")

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def __str__(self) -> str:
        return self.to_markdown()

    def __repr__(self) -> str:
        return (f"StepExplanation({self.optimizer_name}, loss={self.loss_name!r}, batch_size={self.batch_size}, "
                f"step t={self.iterations + 1}, L={self.loss!r})")


# How the update formula writes each hyperparameter, step constant and slot.
_HYPER_SYMBOLS = {"learning_rate": r"\eta", "momentum": r"\mu", "beta_1": r"\beta_1", "beta_2": r"\beta_2",
                  "one_minus_beta_1": r"1-\beta_1", "one_minus_beta_2": r"1-\beta_2", "epsilon": r"\hat\epsilon",
                  "t": "t", "alpha_t": r"\alpha_t", "rho": r"\rho", "one_minus_rho": r"1-\rho"}
_SLOT_SYMBOLS = {"momentum": "m", "average": r"\bar g", "accumulator": "G"}
# A cross-entropy on the logits, written on the probabilities; and where it meets its activation, the two factors.
_LINK_SYMBOLS = {"sigmoid": r"\sigma", "softmax": r"\mathrm{softmax}"}
_PROBABILITY_FORMS = {
    "binary_crossentropy_from_logits": r"\ell_i = -\big(y_i \log p_i + (1 - y_i)\log(1 - p_i)\big)",
    "categorical_crossentropy_from_logits": r"\ell_i = -\sum_j y_{ij} \log p_{ij}",
    "sparse_categorical_crossentropy_from_logits": r"\ell_i = -\log p_{i y_i} = -\sum_j y_{ij} \log p_{ij}",
}
_MEETS = {
    "sigmoid": (r"\frac{\partial \ell_i}{\partial p_i} = \frac{p_i - y_i}{p_i(1 - p_i)}",
                r"\frac{\partial p_i}{\partial z_i} = \sigma'(z_i) = p_i(1 - p_i)"),
    "softmax": (r"\frac{\partial \ell_i}{\partial p_{ij}} = -\frac{y_{ij}}{p_{ij}}",
                r"\frac{\partial p_{ij}}{\partial z_{im}} = p_{ij}([j = m] - p_{im})"),
}


def _fmt(value, digits: int) -> str:
    value = float(value)
    if value == 0:
        return "0"
    return f"{value:.{digits}g}"


def _latex_number(text: str) -> str:
    """``"1e-07"`` as ``"1 \\times 10^{-7}"``; other numbers unchanged."""
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return (f"{mantissa} \\times " if mantissa != "1" else "") + f"10^{{{int(exponent)}}}"


def _paren(text: str) -> str:
    return f"({text})" if text.startswith("-") else text


def _weights_text(parameters: pd.DataFrame, layer: str, fmt) -> str:
    rows = parameters[parameters["layer"] == layer]
    parts = []
    for tensor, symbol in [("kernel", "W"), ("bias", "b")]:
        values = rows[rows["tensor"] == tensor]
        if values.empty:  # a layer without a bias
            continue
        entries = ", ".join(f"{symbol}_{{{index.replace(',', '')}}} = {fmt(v)}" for index, v in zip(values["index"], values["before"]))
        parts.append(f"${entries}$")
    return " and ".join(parts)


def _markdown_table(frame: pd.DataFrame, columns: dict[str, str], fmt) -> list[str]:
    """A pipe table of ``frame[columns]`` (numbers through ``fmt``); pandas' own needs ``tabulate``."""
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "|".join(["---:"] * len(columns)) + "|"]
    for _, row in frame.iterrows():
        cells = []
        for column in columns:
            value = row[column]
            cells.append(fmt(value) if isinstance(value, (float, np.floating)) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def explain_step(model, x_batch, y_batch) -> StepExplanation:
    """Work out one optimizer step of ``model`` on one batch, without changing the model.

    Parameters
    ----------
    model : Sequential
        A built, compiled model. Its weights, optimizer state and generator are left untouched.
    x_batch, y_batch : array-like
        The batch, taken whole: what ``fit(x_batch, y_batch, batch_size=len(x_batch), epochs=1, shuffle=False)`` would use.

    Returns
    -------
    StepExplanation
        DataFrames of every intermediate value and a Markdown rendering
        (shown automatically in Jupyter). ``weights_after`` equals, bit for bit,
        ``model.get_weights()`` after that ``fit`` call.
    """
    if not getattr(model, "built", False):
        raise ValueError("explain_step: the model is not built yet; give it an Input(shape=...) or fit it first")
    if model.optimizer is None or model.loss is None:
        raise ValueError("explain_step: the model must be compiled first: call compile(optimizer=..., loss=...)")
    activity = [layer.name for layer in model.dense_layers if layer.activity_regularizer is not None]
    if activity:
        raise NotImplementedError(f"explain_step does not show activity penalties yet (layers {activity}); fit the "
                                  "model, or explain it without activity_regularizer")
    x = model._prepare_x(x_batch, "x_batch")
    y = model._prepare_y(y_batch, x.shape[0], "y_batch")
    profile, layout, dtype = model.profile, model.layout, model.dtype
    params = model.params.copy()
    optimizer = copy.copy(model.optimizer)  # its own state arrays below; the model's optimizer is not touched
    optimizer.slots = None if model.optimizer.slots is None else model.optimizer.slots.copy()
    optimizer.build(params.size, dtype)  # as fit does: fresh zero state the first time
    slots_before, iterations = optimizer.slots.copy(), optimizer.iterations
    hyper = optimizer.hyperparameters(dtype)

    # The step itself, by the NumPy engine's own functions (the ones fit's NumPy engine runs).
    network, training_loss = model._training()
    loss, grads, outputs = _numpy_engine.gradients(profile, x, y, network._replace(params=params), training_loss)
    if grads is None:
        raise ValueError(f"explain_step: the batch loss is {loss}; there is no step to explain")
    # The weight penalties (Keras's model.losses): the same step without them gives the data loss and gradient.
    penalized = list(regularizers._tensors(network.layout))
    if penalized:
        bare = network.layout.copy()
        bare["kernel_regularized"], bare["bias_regularized"] = 0, 0
        data_loss, data_grads, _ = _numpy_engine.gradients(profile, x, y, network._replace(params=params, layout=bare),
                                                           training_loss)
        penalty_grads = np.zeros_like(grads)
        penalties = []
        for start, size, l1, l2 in penalized:
            penalties.append(float(regularizers.penalty(profile, params[start : start + size], l1, l2)))
            term = regularizers.penalty_gradient(params[start : start + size], l1, l2)
            if term is not None:
                penalty_grads[start : start + size] = term
    else:
        data_loss, data_grads, penalty_grads, penalties = loss, grads, None, []
    y_pred = outputs[-1]
    sample_loss = losses.per_sample(training_loss, profile, y, y_pred)
    output_grad = losses.output_grad(training_loss, y, y_pred, profile=profile)
    # A loss on logits: the probabilities are the link of the engine's last output, as predict computes them.
    output_activation = model.dense_layers[-1].effective_activation
    on_logits = training_loss.from_logits
    recovered = on_logits and output_activation.name == training_loss.recovers
    probabilities = (profile.activate(activations.get(training_loss.recovers), y_pred,
                                      fused=model.dense_layers[-1].use_bias) if on_logits else None)
    after = params.copy()
    slots = optimizer.slots.copy()
    # fit's own lanes (a frozen layer's none) and options (clipping, weight decay, the schedule's rate) for one update
    state = model._optimizer_state(1)
    raw_grads = grads.copy()  # apply_update clips its gradients in place
    optimizers.apply_update(hyper, after, grads, slots, iterations, state.lanes, state.options)
    updated = after.copy()
    constraints.apply(profile, after, network.layout)  # a weight constraint projects the updated weights, as in fit
    constrained = bool((network.layout["kernel_constraint"] != 0).any() or (network.layout["bias_constraint"] != 0).any())

    # Per-layer intermediates, recomputed with the calls forward() and backward() make.
    # With Keras's logits recovery the output layer is shown as the step runs it: linear, the loss on its logits.
    views = list(_numpy_engine._layers(params, network.layout))
    pre_activations = [profile.dense(outputs[l], kernel, bias) if bias.size else profile.matmul(outputs[l], kernel)
                       for l, (kernel, bias, *_) in enumerate(views)]
    grad_a, activation_grads, deltas = [None] * len(views), [None] * len(views), [None] * len(views)
    upstream = output_grad
    for l in reversed(range(len(views))):
        kernel, _, activation, parameters = views[l]
        grad_a[l] = upstream
        operand = activation.grad_operand(pre_activations[l], outputs[l + 1])
        deltas[l] = profile.activation_grad(activation, operand, upstream, parameters)
        activation_grads[l] = profile.activation_grad(activation, operand, np.ones_like(upstream), parameters)
        if l > 0:
            upstream = profile.matmul_grad_input(deltas[l], kernel)

    info = parameter_table(model)
    batch = x.shape[0]
    samples = pd.DataFrame({"sample": np.repeat(np.arange(batch), y.shape[1]), "output": np.tile(np.arange(y.shape[1]), batch)})
    for k in range(x.shape[1]):
        samples[f"x[{k}]"] = np.repeat(x[:, k], y.shape[1]).astype(np.float64)
    samples["y_true"] = y.reshape(-1).astype(np.float64)
    if training_loss.row is not None:
        samples["label"] = np.repeat(np.argmax(y, axis=1), y.shape[1])
    if on_logits:
        samples["logit"] = y_pred.reshape(-1).astype(np.float64)
        samples["probability"] = probabilities.reshape(-1).astype(np.float64)
    shown = probabilities if recovered else y_pred
    samples["y_pred"] = shown.reshape(-1).astype(np.float64)
    samples["error"] = (y - (probabilities if on_logits else y_pred)).reshape(-1).astype(np.float64)
    samples["sample_loss"] = np.repeat(sample_loss, y.shape[1]).astype(np.float64)
    samples["output_grad"] = output_grad.reshape(-1).astype(np.float64)

    layer_rows, layer_meta, activation_parameters = [], [], {}
    for l, layer in enumerate(model.dense_layers):
        units = layer.units
        folded = recovered and l == len(views) - 1  # its activation is part of the loss: no dL/da, no f'(z)
        layer_meta.append((layer.name, layer.effective_activation.name, int(layout[l].n_in), units))
        if layer.effective_activation.parameters:
            activation_parameters[layer.name] = layer.effective_parameters
        layer_rows.append(pd.DataFrame({
            "layer": layer.name,
            "sample": np.repeat(np.arange(batch), units),
            "unit": np.tile(np.arange(units), batch),
            "z": pre_activations[l].reshape(-1).astype(np.float64),
            "a": (probabilities if folded else outputs[l + 1]).reshape(-1).astype(np.float64),
            "grad_a": np.nan if folded else grad_a[l].reshape(-1).astype(np.float64),
            "activation_grad": np.nan if folded else activation_grads[l].reshape(-1).astype(np.float64),
            "delta": deltas[l].reshape(-1).astype(np.float64),
        }))
    activation_frame = pd.concat(layer_rows, ignore_index=True)

    parameters = info[["layer", "tensor", "index", "parameter"]].copy()
    parameters["before"] = params.astype(np.float64)
    if penalized:
        parameters["data_gradient"] = data_grads.astype(np.float64)
        parameters["penalty_gradient"] = penalty_grads.astype(np.float64)
    parameters["gradient"] = raw_grads.astype(np.float64)
    if state.options.clip != optimizers.CLIP_NONE:  # what the rule's update read
        parameters["clipped_gradient"] = grads.astype(np.float64)
    active = optimizer.active_slots()
    for index, slot in enumerate(optimizer.rule.slots):
        if slot in active:
            parameters[f"{slot}_before"], parameters[slot] = (slots_before[index].astype(np.float64),
                                                              slots[index].astype(np.float64))
    if constrained:
        parameters["updated"] = updated.astype(np.float64)  # before the constraint's projection
    parameters["update"] = after.astype(np.float64) - params.astype(np.float64)
    parameters["after"] = after.astype(np.float64)

    term_rows = []
    for position, layer_name, tensor, index, parameter in info[["position", "layer", "tensor", "index", "parameter"]].itertuples(index=False):
        l = [layer.name for layer in model.dense_layers].index(layer_name)
        k, j = (int(i) for i in index.split(",")) if tensor == "kernel" else (None, int(index))
        inputs = outputs[l][:, k] if tensor == "kernel" else np.ones(batch, dtype=dtype)
        term_rows.append(pd.DataFrame({"parameter": parameter, "sample": np.arange(batch),
                                       "input": inputs.astype(np.float64), "delta": deltas[l][:, j].astype(np.float64),
                                       "product": (inputs * deltas[l][:, j]).astype(np.float64)}))
    terms = pd.concat(term_rows, ignore_index=True)

    t = iterations + 1
    hyperparameters = {name: value if isinstance(value, (bool, np.bool_)) else float(value)
                       for name, value in hyper._asdict().items()}
    constants = optimizer.rule.step(hyper, cast(t, hyper.learning_rate))
    if constants:
        hyperparameters["t"] = t
        hyperparameters.update({name: float(value) for name, value in zip(optimizer.rule.constants, constants)})

    def keras_layout(flat):
        return [flat[offset : offset + size].reshape(shape).copy() for offset, size, shape in _tensor_slices(model)]

    return StepExplanation(
        model_name=model.name, optimizer_name=type(optimizer).__name__, optimizer_config=optimizer.get_config(),
        loss_name=model.loss.name, dtype=dtype.name, numerics=profile.name, batch_size=batch, iterations=iterations,
        loss=float(loss), hyperparameters=hyperparameters, samples=samples, activations=activation_frame,
        parameters=parameters, terms=terms, weights_before=keras_layout(params), gradients=keras_layout(raw_grads),
        weights_after=keras_layout(after), layers=layer_meta, activation_parameters=activation_parameters,
        slots=list(active),
        training_loss_name=training_loss.name, logits_recovered=recovered,
        data_loss=float(data_loss), penalties=penalties,
    )


def _tensor_slices(model):
    """(offset, size, shape) of each kernel and bias in ``model.params``, in ``get_weights()`` order."""
    for _, _, start, shape in _contract.weight_tensors(model.layout):
        yield start, int(np.prod(shape)), shape
