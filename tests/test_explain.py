"""gdcore.explain: one step's numbers, checked against plain formulas and against fit itself."""

import numpy as np
import pytest

import gdcore
from gdcore.explain import explain_step

# A batch small enough for a calculator: x, y from the seed's first four training rows.
X = np.array([[-1.003679], [3.605714], [1.855952], [0.789268]])
Y = np.array([-2.201476, 5.68287, 5.638039, 0.695674])


def linear_neuron(optimizer, loss="mse", dtype="float64", engine="numba", numerics="plain", w=0.25, b=-0.5):
    model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(1)], dtype=dtype, engine=engine, numerics=numerics, seed=0)
    model.set_weights([np.array([[w]]), np.array([b])])
    model.compile(optimizer=optimizer, loss=loss)
    return model


def sigmoid_net(optimizer, hidden=8, loss="mse", dtype="float32", engine="numba", numerics="plain"):
    model = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(hidden, activation="sigmoid",
                                                                             bias_initializer=gdcore.initializers.RandomNormal(0, 0.1, seed=1)),
                               gdcore.layers.Dense(1)], dtype=dtype, engine=engine, numerics=numerics, seed=4)
    model.compile(optimizer=optimizer, loss=loss)
    return model


def test_linear_neuron_sgd_mse_by_hand():
    """Every number of one SGD step on MSE, from the textbook formulas in float64."""
    model = linear_neuron(gdcore.optimizers.SGD(learning_rate=0.01))
    step = explain_step(model, X, Y)
    w, b, B, lr = 0.25, -0.5, 4, 0.01
    x = X[:, 0]
    y_pred = w * x + b                      # forward: y^ = w x + b
    error = Y - y_pred                      # e = y - y^
    loss = np.mean(error**2)                # L = (1/B) sum e^2
    output_grad = -2 / B * error            # dL/dy^ = -(2/B) e
    grad_w = np.sum(output_grad * x)        # dL/dw = sum_b dL/dy^_b x_b
    grad_b = np.sum(output_grad)            # dL/db = sum_b dL/dy^_b
    new_w, new_b = w - lr * grad_w, b - lr * grad_b

    np.testing.assert_allclose(step.samples["y_pred"], y_pred, rtol=1e-14)
    np.testing.assert_allclose(step.samples["error"], error, rtol=1e-14)
    np.testing.assert_allclose(step.samples["sample_loss"], error**2, rtol=1e-14)
    np.testing.assert_allclose(step.samples["output_grad"], output_grad, rtol=1e-14)
    assert step.loss == pytest.approx(loss, rel=1e-14)
    np.testing.assert_allclose(step.parameters["gradient"], [grad_w, grad_b], rtol=1e-13)
    np.testing.assert_allclose(step.parameters["after"], [new_w, new_b], rtol=1e-13)
    np.testing.assert_allclose(step.parameters["update"], [-lr * grad_w, -lr * grad_b], rtol=1e-12)
    # The per-sample terms add up to the gradient (plain profile: front to back, so exactly).
    terms = step.terms
    kernel_terms = terms[terms.parameter == "dense/kernel[0,0]"]
    np.testing.assert_allclose(kernel_terms["product"], output_grad * x, rtol=1e-14)
    assert np.cumsum(kernel_terms["product"].to_numpy())[-1] == step.parameters["gradient"].iloc[0]


def test_linear_neuron_adam_mae_first_step_by_hand():
    """Adam's first step on MAE: m = (1 - b1) g, v = (1 - b2) g^2, alpha_1 = lr sqrt(1 - b2') / (1 - b1')."""
    model = linear_neuron(gdcore.optimizers.Adam(learning_rate=0.1), loss="mae")
    step = explain_step(model, X, Y)
    w, b, B = 0.25, -0.5, 4
    x = X[:, 0]
    error = Y - (w * x + b)
    output_grad = -np.sign(error) / B
    grads = np.array([np.sum(output_grad * x), np.sum(output_grad)])
    beta_1, beta_2 = float(np.float32(0.9)), float(np.float32(0.999))   # Keras rounds the betas to float32
    m, v = (1 - 0.9) * grads, (1 - 0.999) * grads**2
    alpha = 0.1 * np.sqrt(1 - beta_2) / (1 - beta_1)
    after = np.array([w, b]) - m * alpha / (np.sqrt(v) + 1e-7)

    assert step.loss == pytest.approx(np.mean(np.abs(error)), rel=1e-14)
    assert step.hyperparameters["t"] == 1
    assert step.hyperparameters["alpha_t"] == pytest.approx(alpha, rel=1e-14)
    np.testing.assert_allclose(step.parameters["gradient"], grads, rtol=1e-14)
    np.testing.assert_allclose(step.parameters["m"], m, rtol=1e-14)
    np.testing.assert_allclose(step.parameters["v"], v, rtol=1e-14)
    np.testing.assert_allclose(step.parameters["after"], after, rtol=1e-13)
    # The first Adam step moves each weight by about the learning rate, whatever the gradient's size.
    np.testing.assert_allclose(np.abs(step.parameters["update"]), 0.1, rtol=1e-4)


def test_sigmoid_layer_chain_rule_by_hand():
    """A 1-2-1 sigmoid net in float64: deltas and gradients from the chain rule written out."""
    model = sigmoid_net(gdcore.optimizers.SGD(learning_rate=0.1), hidden=2, dtype="float64")
    W1, b1, W2, b2 = model.get_weights()
    step = explain_step(model, X[:3], Y[:3])
    x, y, B = X[:3], Y[:3, None], 3
    z1 = x @ W1 + b1
    a1 = 1 / (1 + np.exp(-z1))
    y_pred = a1 @ W2 + b2
    delta2 = -2 / B * (y - y_pred)               # dL/dz2 (linear output)
    delta1 = (delta2 @ W2.T) * a1 * (1 - a1)     # dL/dz1 = dL/da1 * sigma'(z1)
    hidden = step.activations[step.activations.layer == "dense"]
    np.testing.assert_allclose(hidden["z"], z1.ravel(), rtol=1e-13)
    np.testing.assert_allclose(hidden["a"], a1.ravel(), rtol=1e-13)
    np.testing.assert_allclose(hidden["delta"], delta1.ravel(), rtol=1e-12)
    grads = np.concatenate([(x.T @ delta1).ravel(), delta1.sum(0), (a1.T @ delta2).ravel(), delta2.sum(0)])
    np.testing.assert_allclose(step.parameters["gradient"], grads, rtol=1e-12)


def classifier(optimizer, loss="binary_crossentropy", classes=1, hidden=0, dtype="float64", engine="numpy",
               numerics="plain", n_features=1):
    """A logistic neuron (classes=1, sigmoid) or a softmax layer, optionally after a tanh hidden layer."""
    layers = [gdcore.Input(shape=(n_features,))]
    if hidden:
        layers.append(gdcore.layers.Dense(hidden, activation="tanh", name="hidden"))
    layers.append(gdcore.layers.Dense(classes, activation="sigmoid" if classes == 1 else "softmax", name="output"))
    model = gdcore.Sequential(layers, dtype=dtype, engine=engine, numerics=numerics, seed=3)
    model.compile(optimizer=optimizer, loss=loss)
    return model


# Four samples of the two-class data (the seed's points, y = [target > 2.5]) and five of the three-class data.
TWO_CLASS = gdcore.datasets.make_classification_dataset()
THREE_CLASS = gdcore.datasets.make_three_class_dataset()


def test_logistic_neuron_step_by_hand():
    """Dense(1, sigmoid) + binary cross-entropy: p = sigma(z), the loss on the logits, delta = (p - y) / B."""
    model = classifier(gdcore.optimizers.SGD(learning_rate=0.5))
    model.set_weights([np.array([[0.5]]), np.array([-0.25])])
    x, y = TWO_CLASS[["X"]].to_numpy()[:4], TWO_CLASS["y"].to_numpy()[:4]
    step = explain_step(model, x, y)
    w, b, B, lr = 0.5, -0.25, 4, 0.5
    z = w * x[:, 0] + b                                  # the logits
    p = 1 / (1 + np.exp(-z))                             # the sigmoid's output, what predict returns
    loss = np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))
    delta = (p - y) / B                                  # dL/dz: the cross-entropy meets the sigmoid
    grad_w, grad_b = np.sum(delta * x[:, 0]), np.sum(delta)

    assert step.loss_name == "binary_crossentropy" and step.training_loss_name == "binary_crossentropy_from_logits"
    assert step.logits_recovered
    np.testing.assert_allclose(step.samples["logit"], z, rtol=1e-14)
    np.testing.assert_allclose(step.samples["probability"], p, rtol=1e-14)
    np.testing.assert_allclose(step.samples["error"], y - p, rtol=1e-13)
    np.testing.assert_allclose(step.samples["sample_loss"], -(y * np.log(p) + (1 - y) * np.log(1 - p)), rtol=1e-13)
    assert step.loss == pytest.approx(loss, rel=1e-14)
    np.testing.assert_allclose(step.samples["output_grad"], delta, rtol=1e-13)
    output = step.activations[step.activations.layer == "output"]
    np.testing.assert_allclose(output["a"], p, rtol=1e-14)
    np.testing.assert_allclose(output["delta"], delta, rtol=1e-13)
    assert output["grad_a"].isna().all() and output["activation_grad"].isna().all()  # never formed by the step
    np.testing.assert_allclose(step.parameters["gradient"], [grad_w, grad_b], rtol=1e-13)
    np.testing.assert_allclose(step.parameters["after"], [w - lr * grad_w, b - lr * grad_b], rtol=1e-13)
    # The probabilities shown are predict's, bit for bit.
    assert step.samples["probability"].to_numpy().tobytes() == model.predict(x, verbose=0)[:, 0].tobytes()

    text = step.to_markdown()
    assert "sigmoid" in text and "$p - y$" in text and "meets the sigmoid" in text
    assert r"\max(z_i, 0) - z_i y_i" in text                       # the formula the loss is evaluated with
    for value in p - y:
        assert f"{value:.6g}" in text


def test_softmax_layer_step_by_hand():
    """Dense(3, softmax) + sparse categorical cross-entropy: delta = (softmax(z) - onehot(y)) / B."""
    model = classifier(gdcore.optimizers.SGD(learning_rate=0.1), "sparse_categorical_crossentropy", classes=3,
                       n_features=2)
    x, y = THREE_CLASS[["X1", "X2"]].to_numpy()[:5], THREE_CLASS["y"].to_numpy()[:5]
    kernel, bias = model.get_weights()
    step = explain_step(model, x, y)
    B = 5
    z = x @ kernel + bias
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    one_hot = np.eye(3)[y]
    delta = (p - one_hot) / B
    np.testing.assert_allclose(step.samples["probability"], p.ravel(), rtol=1e-13)
    np.testing.assert_array_equal(step.samples["label"], np.repeat(y, 3))
    np.testing.assert_array_equal(step.samples["y_true"], one_hot.ravel())
    assert step.loss == pytest.approx(np.mean(-np.log(p[np.arange(B), y])), rel=1e-14)
    np.testing.assert_allclose(step.samples["output_grad"], delta.ravel(), rtol=1e-12, atol=1e-16)
    grads = np.concatenate([(x.T @ delta).ravel(), delta.sum(0)])
    np.testing.assert_allclose(step.parameters["gradient"], grads, rtol=1e-12, atol=1e-16)
    assert "meets the softmax" in step.to_markdown()

    # The same step with one-hot targets and categorical cross-entropy: the same logits formula, the same bits.
    one_hot_model = classifier(gdcore.optimizers.SGD(learning_rate=0.1), "categorical_crossentropy", classes=3,
                               n_features=2)
    one_hot_model.set_weights(model.get_weights())
    same = explain_step(one_hot_model, x, one_hot)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(same.weights_after, step.weights_after))


def test_mse_on_a_sigmoid_output_goes_through_the_derivative():
    """No logits recovery for MSE: delta = dL/dp * p(1 - p), which vanishes for a confidently wrong sample."""
    model = classifier(gdcore.optimizers.SGD(learning_rate=0.5), loss="mse")
    model.set_weights([np.array([[4.0]]), np.array([0.0])])
    x, y = np.array([[-3.0], [0.5]]), np.array([1, 1])   # the first is wrong with p = sigma(-12) ~ 6e-6
    step = explain_step(model, x, y)
    assert not step.logits_recovered and "logit" not in step.samples
    p = 1 / (1 + np.exp(-4.0 * x[:, 0]))
    output = step.activations
    np.testing.assert_allclose(output["activation_grad"], p * (1 - p), rtol=1e-12)
    np.testing.assert_allclose(output["delta"], -(y - p) * p * (1 - p), rtol=1e-12)   # -(2/B) e p(1-p), B = 2
    assert abs(output["delta"].iloc[0]) < 1e-5 < abs(output["delta"].iloc[1])
    cross_entropy = classifier(gdcore.optimizers.SGD(learning_rate=0.5))
    cross_entropy.set_weights(model.get_weights())
    np.testing.assert_allclose(explain_step(cross_entropy, x, y).activations["delta"], (p - y) / 2, rtol=1e-12)


CASES = [
    # (architecture, optimizer, loss, dtype, engine, numerics)
    ("linear", lambda: gdcore.optimizers.SGD(0.01), "mse", "float32", "numba", "plain"),
    ("linear", lambda: gdcore.optimizers.SGD(0.01), "mae", "float64", "numpy", "plain"),
    ("linear", lambda: gdcore.optimizers.SGD(0.05, momentum=0.9, nesterov=True), "mse", "float32", "numba", "plain"),
    ("linear", lambda: gdcore.optimizers.Adam(0.1), "mse", "float32", "numba", "tensorflow"),
    ("linear", lambda: gdcore.optimizers.Adam(0.1), "mae", "float64", "numba", "plain"),
    ("sigmoid", lambda: gdcore.optimizers.Adam(0.1), "mse", "float32", "numba", "plain"),
    ("sigmoid", lambda: gdcore.optimizers.Adam(0.1), "mse", "float32", "numba", "tensorflow"),
    ("sigmoid", lambda: gdcore.optimizers.Adam(0.01), "mae", "float64", "numpy", "tensorflow"),
    ("sigmoid", lambda: gdcore.optimizers.SGD(0.1, momentum=0.5), "mse", "float64", "numba", "plain"),
    ("logistic", lambda: gdcore.optimizers.SGD(0.5), "binary_crossentropy", "float32", "numba", "plain"),
    ("logistic", lambda: gdcore.optimizers.Adam(0.1), "binary_crossentropy", "float64", "numpy", "tensorflow"),
    ("logistic", lambda: gdcore.optimizers.SGD(0.5), "mse", "float32", "numpy", "tensorflow"),
    ("softmax", lambda: gdcore.optimizers.Adam(0.05), "sparse_categorical_crossentropy", "float32", "numba", "tensorflow"),
    ("softmax", lambda: gdcore.optimizers.SGD(0.1, momentum=0.9), "categorical_crossentropy", "float64", "numpy", "plain"),
    ("hidden-softmax", lambda: gdcore.optimizers.Adam(0.05), "sparse_categorical_crossentropy", "float32", "numpy", "plain"),
    # Keras's options around the rule: clipping, weight decay, a schedule's rate at the current iteration
    ("sigmoid", lambda: gdcore.optimizers.SGD(0.1, clipnorm=0.05), "mse", "float32", "numba", "tensorflow"),
    ("sigmoid", lambda: gdcore.optimizers.Adam(0.1, global_clipnorm=0.05), "mse", "float64", "numba", "plain"),
    ("linear", lambda: gdcore.optimizers.SGD(0.1, clipvalue=0.01), "mse", "float32", "numpy", "plain"),
    ("sigmoid", lambda: gdcore.optimizers.Adam(0.1, weight_decay=0.3), "mse", "float32", "numba", "tensorflow"),
    ("sigmoid", lambda: gdcore.optimizers.AdamW(0.1), "mae", "float64", "numba", "tensorflow"),
    ("linear", lambda: gdcore.optimizers.SGD(gdcore.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)), "mse",
     "float32", "numba", "plain"),
]


@pytest.mark.parametrize("architecture, optimizer, loss, dtype, engine, numerics", CASES,
                         ids=["-".join([c[0], type(c[1]()).__name__ + ("-momentum" if getattr(c[1](), "momentum", 0) else ""), *c[2:]])
                              for c in CASES])
def test_after_is_the_next_fit_step_bit_for_bit(architecture, optimizer, loss, dtype, engine, numerics):
    train = gdcore.datasets.make_regression_dataset(100, noise=1.25, random_state=42)
    x, y = train[["X"]].to_numpy(), train["y"].to_numpy()
    if architecture == "linear":
        model = linear_neuron(optimizer(), loss=loss, dtype=dtype, engine=engine, numerics=numerics)
    elif architecture == "sigmoid":
        model = sigmoid_net(optimizer(), loss=loss, dtype=dtype, engine=engine, numerics=numerics)
    elif architecture == "logistic":
        x, y = TWO_CLASS[["X"]].to_numpy(), TWO_CLASS["y"].to_numpy()
        model = classifier(optimizer(), loss, dtype=dtype, engine=engine, numerics=numerics)
    else:
        x, y = THREE_CLASS[["X1", "X2"]].to_numpy(), THREE_CLASS["y"].to_numpy()
        if loss == "categorical_crossentropy":
            y = np.eye(3)[y]
        model = classifier(optimizer(), loss, classes=3, hidden=4 if architecture.startswith("hidden") else 0,
                           dtype=dtype, engine=engine, numerics=numerics, n_features=2)
    # Some training first, so the optimizer state (Adam's m, v, t; momentum) is not fresh.
    model.fit(x[:60], y[:60], batch_size=16, epochs=2, shuffle=True, verbose=0)
    params, slots, iterations = model.params.copy(), model.optimizer.slots.copy(), model.optimizer.iterations
    rng_state = model._rng.bit_generator.state
    x_batch, y_batch = x[60:73], y[60:73]

    step = explain_step(model, x_batch, y_batch)

    # explain_step changed nothing ...
    assert model.params.tobytes() == params.tobytes()
    assert model.optimizer.slots.tobytes() == slots.tobytes() and model.optimizer.iterations == iterations
    assert model._rng.bit_generator.state == rng_state
    assert step.iterations == iterations
    np.testing.assert_array_equal(np.concatenate([w.ravel() for w in step.weights_before]), params)
    # ... and predicted the next fit step exactly.
    model.fit(x_batch, y_batch, batch_size=len(x_batch), epochs=1, shuffle=False, verbose=0)
    for explained, trained in zip(step.weights_after, model.get_weights()):
        assert explained.dtype == trained.dtype
        assert explained.tobytes() == trained.tobytes(), f"explain_step {explained} vs fit {trained}"
    assert step.loss == model.history.history["loss"][0]


def test_clipping_shows_the_raw_gradient_and_the_clipped_one():
    x, y = X.astype(np.float64), Y.astype(np.float64)
    clipped = explain_step(sigmoid_net(gdcore.optimizers.SGD(0.1, clipvalue=0.01), dtype="float64"), x, y)
    plain = explain_step(sigmoid_net(gdcore.optimizers.SGD(0.1), dtype="float64"), x, y)
    np.testing.assert_array_equal(clipped.parameters["gradient"], plain.parameters["gradient"])
    np.testing.assert_array_equal(clipped.parameters["clipped_gradient"],
                                  np.clip(plain.parameters["gradient"], -0.01, 0.01))
    assert (clipped.parameters["clipped_gradient"] != clipped.parameters["gradient"]).any()
    assert "clipped_gradient" not in plain.parameters
    assert "clipvalue=0.01" in clipped.to_markdown() and "$g$ clipped" in clipped.to_markdown()


def test_a_frozen_layer_is_not_updated():
    model = sigmoid_net(gdcore.optimizers.Adam(0.1), dtype="float32")
    model.dense_layers[0].trainable = False
    model.compile(optimizer=gdcore.optimizers.Adam(0.1), loss="mse")
    step = explain_step(model, X, Y)
    frozen = step.parameters["layer"] == model.dense_layers[0].name
    assert frozen.any() and (step.parameters.loc[frozen, "update"] == 0).all()
    model.fit(X, Y, batch_size=len(X), epochs=1, shuffle=False, verbose=0)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(step.weights_after, model.get_weights()))


def test_a_fresh_optimizer_starts_from_zero_state():
    model = linear_neuron(gdcore.optimizers.Adam(0.1), dtype="float32")
    assert model.optimizer.slots is None
    step = explain_step(model, X, Y)
    assert model.optimizer.slots is None and step.iterations == 0
    np.testing.assert_array_equal(step.parameters["m_before"], 0)
    model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert all(a.tobytes() == b.tobytes() for a, b in zip(step.weights_after, model.get_weights()))


def test_markdown_rendering_shows_the_numbers():
    model = linear_neuron(gdcore.optimizers.SGD(learning_rate=0.01))
    step = explain_step(model, X, Y)
    text = step.to_markdown()
    assert step._repr_markdown_() == text == str(step)
    for heading in ["#### 1. Forward pass", "#### 2. Loss", "#### 3. Backward pass", "#### 4. Update"]:
        assert heading in text
    assert f"{step.loss:.6g}" in text
    for value in step.parameters["after"]:
        assert f"{value:.6g}" in text
    # Small batches: every gradient is written out as its sum of per-sample terms.
    assert text.count("·") >= 4
    assert "`dense/kernel[0,0]`" in text and r"\partial L" in text


def test_errors_name_the_problem():
    unbuilt = gdcore.Sequential([gdcore.layers.Dense(1)])
    unbuilt.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="not built"):
        explain_step(unbuilt, X, Y)
    uncompiled = gdcore.Sequential([gdcore.Input(shape=(1,)), gdcore.layers.Dense(1)])
    with pytest.raises(ValueError, match="compiled"):
        explain_step(uncompiled, X, Y)
    model = linear_neuron(gdcore.optimizers.SGD(0.01))
    with pytest.raises(ValueError, match="y_batch"):
        explain_step(model, X, Y[:3])
