"""gdcore.sklearn.GDRegressor against scikit-learn's own estimator checks and its models."""

import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from gdcore.sklearn import GDClassifier, GDRegressor

pytestmark = pytest.mark.sklearn

#: A fast instance for the checks: few epochs, a learning rate that reaches R^2 > 0.5 on their data in them.
CHECKED = GDRegressor(learning_rate=0.05, max_iter=60, n_iter_no_change=60)
CHECKED_CLASSIFIER = GDClassifier(learning_rate=0.05, max_iter=60, n_iter_no_change=60)


@parametrize_with_checks([CHECKED, CHECKED_CLASSIFIER])
def test_sklearn_estimator_checks(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


def _data(n_samples=60, n_features=3, n_outputs=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n_samples, n_features))
    y = np.sin(X[:, 0]) + 0.5 * X[:, 1] + 0.1 * rng.normal(size=n_samples)
    return X, (y if n_outputs is None else np.column_stack([y * (k + 1) for k in range(n_outputs)]))


def _weights(estimator):
    return [*estimator.coefs_, *estimator.intercepts_]


# One line per case: GDRegressor's settings; MLPRegressor gets the same ones (alpha=0, learning_rate_init).
MLP_CASES = [
    dict(solver="adam", learning_rate=0.01, batch_size=16, shuffle=True),
    dict(solver="sgd", learning_rate=0.1, momentum=0.9, nesterovs_momentum=True, batch_size=16, shuffle=True),
    dict(solver="sgd", learning_rate=0.1, momentum=0.0, batch_size=7, shuffle=False),
    dict(solver="adam", learning_rate=0.01, batch_size=16, early_stopping=True, validation_fraction=0.2),
    dict(solver="adam", learning_rate=0.01, batch_size=16, activation="tanh", hidden_layer_sizes=(5, 3)),
    dict(solver="sgd", learning_rate=0.05, batch_size=50, activation="relu"),
    dict(solver="sgd", learning_rate=0.1, batch_size=16, learning_rate_schedule="invscaling"),
    dict(solver="sgd", learning_rate=0.1, momentum=0.0, batch_size=16, learning_rate_schedule="invscaling", power_t=0.25),
]


def _mlp_settings(settings: dict) -> dict:
    """GDRegressor's/GDClassifier's keyword arguments as MLPRegressor's/MLPClassifier's names."""
    theirs = {**settings, "learning_rate_init": settings["learning_rate"]}
    theirs["learning_rate"] = theirs.pop("learning_rate_schedule", "constant")
    return theirs


@pytest.mark.parametrize("settings", MLP_CASES, ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_reproduces_mlp_regressor_every_epoch(settings):
    """Same seed, same draws, same batches: MLPRegressor's weights and loss curve after every epoch, in float64.

    The update forms differ by rounding only (reference.sklearn_driver, "update-forms"), so agreement is to
    float64 tolerance (measured: worst 3e-15 absolute over these cases), not bit for bit.
    """
    X, y = _data(n_samples=50)
    common = {**dict(hidden_layer_sizes=(8,), activation="logistic", random_state=3, tol=1e-4, n_iter_no_change=4),
              **settings}
    for epochs in (1, 2, 12):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            ours = GDRegressor(max_iter=epochs, **common).fit(X, y)
            theirs = MLPRegressor(max_iter=epochs, alpha=0.0, **_mlp_settings(common)).fit(X, y)
        assert ours.n_iter_ == theirs.n_iter_
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12, atol=1e-14)
        for mine, reference in zip(_weights(ours), _weights(theirs)):
            np.testing.assert_allclose(mine, reference, rtol=1e-11, atol=1e-13, err_msg=f"epoch {epochs}")
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-11, atol=1e-13)
        if settings.get("early_stopping"):
            np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-11)


@pytest.mark.parametrize("settings", [dict(solver="sgd", learning_rate=0.05, batch_size=10),
                                      dict(solver="adam", learning_rate=0.01, batch_size=10),
                                      dict(solver="sgd", learning_rate=0.05, batch_size=10, early_stopping=True,
                                           learning_rate_schedule="invscaling")],
                         ids=lambda s: "-".join(f"{k}={v}" for k, v in s.items()))
def test_multi_output_reproduces_mlp_regressor(settings):
    """Three outputs: MLPRegressor's delta is p - y whatever the outputs, Keras's MSE averages them; the factors
    become 3/2 (SGD's rate) and 2/3 (Adam's epsilon). Measured: worst 5e-15 absolute on the weights; with the
    one-output factors SGD's weights differ by 0.5 after 12 epochs."""
    X, y = _data(n_samples=50, n_outputs=3)
    common = {**dict(hidden_layer_sizes=(8,), activation="logistic", random_state=3, max_iter=12), **settings}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GDRegressor(**common).fit(X, y)
        theirs = MLPRegressor(alpha=0.0, **_mlp_settings(common)).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ and ours.predict(X).shape == (50, 3)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12, atol=1e-14)
    for mine, reference in zip(_weights(ours), _weights(theirs)):
        np.testing.assert_allclose(mine, reference, rtol=1e-11, atol=1e-13)


# One line per case: the estimator pair, the labels ("values" for regression), then the settings both get.
WEIGHTED_CASES = [
    (GDRegressor, MLPRegressor, "values", dict(solver="adam", learning_rate=0.01, batch_size=16)),
    (GDRegressor, MLPRegressor, "values", dict(solver="sgd", learning_rate=0.1, batch_size=16, early_stopping=True,
                                               validation_fraction=0.2)),
    (GDClassifier, MLPClassifier, "strings", dict(solver="adam", learning_rate=0.05, batch_size=16)),
    (GDClassifier, MLPClassifier, "three", dict(solver="sgd", learning_rate=0.1, batch_size=20, early_stopping=True,
                                                learning_rate_schedule="invscaling")),
]


@pytest.mark.parametrize("ours_type, theirs_type, labels, settings", WEIGHTED_CASES,
                         ids=lambda case: getattr(case, "__name__", None) or (case if isinstance(case, str) else
                                                                              "-".join(f"{k}={v}" for k, v in case.items())))
def test_sample_weight_reproduces_mlp_every_epoch(ours_type, theirs_type, labels, settings):
    """fit(sample_weight=w): each batch's weighted mean, as MLPRegressor/MLPClassifier (float64, 1e-11).

    Measured: worst 9e-16 absolute on the weights over these cases (rounding of the update forms)."""
    X, y = _data(n_samples=90)
    if labels != "values":
        y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no") if labels == "strings" else np.digitize(X[:, 0], [-0.5, 0.5])
    weights = np.random.default_rng(7).uniform(0.1, 3.0, size=len(X))
    common = {**dict(hidden_layer_sizes=(6,), activation="logistic", max_iter=15, random_state=1), **settings}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_type(**common).fit(X, y, sample_weight=weights)
        theirs = theirs_type(alpha=0.0, **_mlp_settings(common)).fit(X, y, sample_weight=weights)
        unweighted = ours_type(**common).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12, atol=1e-14)
    for mine, reference in zip(_weights(ours), _weights(theirs)):
        np.testing.assert_allclose(mine, reference, rtol=1e-11, atol=1e-13)
    if settings.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-11)
    assert abs(unweighted.loss_curve_[0] - theirs.loss_curve_[0]) > 1e-6  # the weights do change the training


def test_zero_weight_batch_takes_a_zero_gradient():
    """A batch whose weights sum to 0 (MLPRegressor raises ZeroDivisionError): gdcore's gradient there is zero."""
    X, y = _data(n_samples=20)
    weights = np.r_[np.zeros(10), np.ones(10)]
    common = dict(solver="sgd", learning_rate=0.1, momentum=0.0, batch_size=10, shuffle=False, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GDRegressor(**common).fit(X, y, sample_weight=weights)
        second_half = GDRegressor(**{**common, "batch_size": 10}).fit(X[10:], y[10:])
    for mine, reference in zip(_weights(ours), _weights(second_half)):
        np.testing.assert_array_equal(mine, reference)  # the zero batch left the initial weights unchanged
    with pytest.raises(ValueError, match="Sample weights must contain at least one non-zero number"):
        GDRegressor().fit(X, y, sample_weight=np.zeros(20))
    with pytest.raises(ValueError, match=r"sample_weight.shape == \(19,\), expected \(20,\)"):
        GDClassifier().fit(X, y > 0, sample_weight=np.ones(19))


def test_adaptive_learning_rate_divides_by_five_as_mlp_regressor():
    """learning_rate_schedule="adaptive": where the stopping rule would stop, the rate is divided by 5 instead, until it is
    at most 1e-6; the same epochs, rates and weights as MLPRegressor(learning_rate="adaptive")."""
    X, y = _data(n_samples=50)
    common = dict(hidden_layer_sizes=(8,), activation="logistic", solver="sgd", learning_rate=0.2, batch_size=10,
                  learning_rate_schedule="adaptive", tol=1e-2, n_iter_no_change=2, max_iter=100, random_state=3)
    ours = GDRegressor(**common).fit(X, y)
    theirs = MLPRegressor(alpha=0.0, **_mlp_settings(common)).fit(X, y)
    # 0.2 divided by 5 eight times is 5.12e-7, the first rate <= 1e-6: eight reductions, then the stop.
    assert ours.n_iter_ == theirs.n_iter_ < 100
    assert ours._sgd_learning_rate == theirs._optimizer.learning_rate == 0.2 / 5 / 5 / 5 / 5 / 5 / 5 / 5 / 5
    assert ours.model_.optimizer.learning_rate == ours._sgd_learning_rate / 2  # scikit-learn's half-MSE mapping
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12, atol=1e-14)
    for mine, reference in zip(_weights(ours), _weights(theirs)):
        np.testing.assert_allclose(mine, reference, rtol=1e-11, atol=1e-13)
    constant = GDRegressor(**{**common, "learning_rate_schedule": "constant"}).fit(X, y)
    assert constant.n_iter_ < ours.n_iter_  # the constant rate stops at the first plateau


def test_linear_neuron_reaches_least_squares():
    X, y = _data(n_samples=80, n_outputs=2)
    estimator = GDRegressor(solver="sgd", learning_rate=0.1, momentum=0.0, batch_size=80, shuffle=False,
                            max_iter=2000, tol=0.0, n_iter_no_change=2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    optimum = LinearRegression().fit(X, y)
    np.testing.assert_allclose(estimator.coefs_[0], optimum.coef_.T, atol=1e-10)
    np.testing.assert_allclose(estimator.intercepts_[0], optimum.intercept_, atol=1e-10)
    assert estimator.score(X, y) == pytest.approx(optimum.score(X, y), abs=1e-12)


@pytest.mark.parametrize("classes", [2, 3])
def test_logistic_neuron_reaches_logistic_regression(classes):
    """hidden_layer_sizes=(): full-batch SGD with momentum reaches LogisticRegression(penalty=None)'s optimum.

    Softmax weights are defined up to a constant per feature across the classes: compared centred. Measured
    after 1000 epochs: 5e-11 (binary) and 3e-9 (three classes) on the probabilities, LogisticRegression's own tol."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    noise = rng.normal(size=80)
    y = np.where(X[:, 0] + 0.5 * X[:, 1] + noise > 0, "yes", "no") if classes == 2 else \
        np.digitize(X[:, 0] + 0.7 * noise, [-0.5, 0.5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GDClassifier(solver="sgd", learning_rate=0.5, momentum=0.9, batch_size=80, shuffle=False,
                            max_iter=1000, tol=0.0, n_iter_no_change=1000).fit(X, y)
    optimum = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, y)  # C=inf: penalty=None
    np.testing.assert_allclose(ours.predict_proba(X), optimum.predict_proba(X), atol=1e-8)
    kernel, theirs = ours.coefs_[0], optimum.coef_.T
    if classes > 2:
        kernel, theirs = kernel - kernel.mean(axis=1, keepdims=True), theirs - theirs.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(kernel, theirs, atol=1e-7)
    assert ours.score(X, y) == optimum.score(X, y)


def test_engines_give_the_same_bits():
    X, y = _data()
    fits = [GDRegressor(hidden_layer_sizes=(4,), activation="tanh", learning_rate=0.01, max_iter=5, random_state=0,
                        engine=engine).fit(X, y) for engine in ("numba", "numpy")]
    for a, b in zip(_weights(fits[0]), _weights(fits[1])):
        np.testing.assert_array_equal(a, b)
    assert fits[0].loss_curve_ == fits[1].loss_curve_


def test_fitted_attributes_layout_and_multi_output():
    X, y = _data(n_samples=40, n_features=3, n_outputs=2)
    estimator = GDRegressor(hidden_layer_sizes=(5, 4), max_iter=3, random_state=0).fit(X, y)
    assert [c.shape for c in estimator.coefs_] == [(3, 5), (5, 4), (4, 2)]
    assert [b.shape for b in estimator.intercepts_] == [(5,), (4,), (2,)]
    assert estimator.predict(X).shape == (40, 2) and estimator.n_outputs_ == 2 and estimator.n_iter_ == 3
    assert estimator.predict(X[:3]).dtype == np.float64
    assert GDRegressor(max_iter=2).fit(X.astype(np.float32), y[:, 0]).predict(X[:3]).shape == (3,)
    assert GDRegressor(max_iter=2).fit(X.astype(np.float32), y[:, 0]).model_.dtype == np.float32


def test_convergence_warning_and_tol_stop():
    X, y = _data()
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(2\)"):
        GDRegressor(max_iter=2).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        stopped = GDRegressor(learning_rate=0.1, tol=10.0, n_iter_no_change=2, max_iter=50).fit(X, y)
    # Epoch 1 improves on inf; epochs 2, 3, 4 do not beat the best by tol: the third of them (> n_iter_no_change) stops.
    assert stopped.n_iter_ == 4


def test_partial_fit_continues_and_warm_start():
    X, y = _data()
    one = GDRegressor(learning_rate=0.05, random_state=0, shuffle=False)
    for _ in range(3):
        one.partial_fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        three = GDRegressor(learning_rate=0.05, random_state=0, shuffle=False, max_iter=3).fit(X, y)
    for a, b in zip(_weights(one), _weights(three)):
        np.testing.assert_array_equal(a, b)  # partial_fit keeps Adam's state: the same three epochs
    assert len(one.loss_curve_) == 3
    warm = clone(three).set_params(warm_start=True, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warm.fit(X, y)
        start = [w.copy() for w in _weights(warm)]
        warm.fit(X, y)
    assert len(warm.loss_curve_) == 2 and not np.array_equal(start[0], warm.coefs_[0])
    with pytest.raises(ValueError, match="early_stopping"):
        GDRegressor(early_stopping=True).partial_fit(X, y)


def test_weighted_partial_fit_with_a_schedule_follows_mlp_regressor():
    """partial_fit(sample_weight=...) keeps the optimizer and the invscaling rate across calls, as MLPRegressor's."""
    X, y = _data()
    weights = np.random.default_rng(1).uniform(0.5, 2.0, size=len(X))
    common = dict(hidden_layer_sizes=(4,), activation="tanh", solver="sgd", learning_rate=0.1, batch_size=16,
                  learning_rate_schedule="invscaling", random_state=0)
    ours, theirs = GDRegressor(**common), MLPRegressor(alpha=0.0, **_mlp_settings(common))
    for _ in range(3):
        ours.partial_fit(X, y, sample_weight=weights)
        theirs.partial_fit(X, y, sample_weight=weights)
    assert ours.t_ == theirs.t_ == 3 * len(X) and ours._sgd_learning_rate == theirs._optimizer.learning_rate
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12, atol=1e-14)
    for mine, reference in zip(_weights(ours), _weights(theirs)):
        np.testing.assert_allclose(mine, reference, rtol=1e-11, atol=1e-13)


def test_clone_pickle_and_params_round_trip():
    X, y = _data()
    estimator = GDRegressor(hidden_layer_sizes=(3,), activation="tanh", solver="sgd", max_iter=4, random_state=1)
    assert clone(estimator).get_params() == estimator.get_params()
    assert estimator.set_params(learning_rate=0.02).learning_rate == 0.02
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X, y)
    restored = pickle.loads(pickle.dumps(estimator))
    np.testing.assert_array_equal(restored.predict(X), estimator.predict(X))
    assert not hasattr(clone(estimator), "model_")
    # The optimizer's state travels too: one more partial_fit epoch on each gives the same bits.
    for a, b in zip(_weights(restored.partial_fit(X, y)), _weights(estimator.partial_fit(X, y))):
        np.testing.assert_array_equal(a, b)
    labels = np.where(X[:, 0] > 0, "up", "down")
    classifier = GDClassifier(hidden_layer_sizes=(3,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(X, labels)
    restored = pickle.loads(pickle.dumps(classifier))
    np.testing.assert_array_equal(restored.predict_proba(X), classifier.predict_proba(X))
    assert list(restored.classes_) == ["down", "up"] and set(restored.predict(X)) <= {"down", "up"}


def test_sklearn_error_conventions():
    X, y = _data()
    with pytest.raises(NotFittedError):
        GDRegressor().predict(X)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        GDRegressor(max_iter=1).fit(bad, y)
    for parameter, value, match in [("hidden_layer_sizes", (4, 0), "hidden_layer_sizes must be a tuple of positive"),
                                    ("solver", "lbfgs", "solver must be one of"),
                                    ("activation", "mish", "activation"),
                                    ("loss", "hinge", "loss"),
                                    ("learning_rate", -1.0, r"learning_rate must be in \(0.0, inf\)"),
                                    ("batch_size", 0, "batch_size must be 'auto' or an integer"),
                                    ("max_iter", 0, "max_iter must be an integer >= 1"),
                                    ("validation_fraction", 1.0, r"validation_fraction must be in \(0.0, 1.0\)"),
                                    ("conventions", "torch", "conventions must be one of"),
                                    ("learning_rate_schedule", "cosine", "learning_rate_schedule must be one of"),
                                    ("power_t", -0.5, r"power_t must be in \[0.0, inf\)"),
                                    ("dtype", "float16", "dtype must be None, 'float32' or 'float64'"),
                                    ("numerics", "fast", "numerics"),
                                    ("engine", "cuda", "engine")]:
        with pytest.raises(ValueError, match=match):
            GDRegressor(**{parameter: value}).fit(X, y)


def test_pipeline_grid_search_and_cross_validation():
    X, y = _data(n_samples=60)
    X = X * [1.0, 100.0, 0.01] + 5.0
    pipeline = make_pipeline(StandardScaler(), GDRegressor(learning_rate=0.05, max_iter=40, random_state=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        scores = cross_val_score(pipeline, X, y, cv=3)
        assert scores.shape == (3,) and np.all(scores > 0.5)
        labels = np.where(y > np.median(y), "high", "low")  # stratified folds over string labels
        accuracies = cross_val_score(make_pipeline(StandardScaler(), GDClassifier(learning_rate=0.05, max_iter=40,
                                                                                  random_state=0)), X, labels, cv=3)
        assert accuracies.shape == (3,) and np.all(accuracies > 0.7)
        grid = {"gdregressor__learning_rate": [0.001, 0.05]}
        # n_jobs=2 on joblib's default backend: two worker processes, each unpickling the estimator and loading
        # gdcore's compiled kernels from the cache; the scores are those of the sequential search, bit for bit.
        search = GridSearchCV(pipeline, grid, cv=2, n_jobs=2).fit(X, y)
        sequential = GridSearchCV(pipeline, grid, cv=2, n_jobs=1).fit(X, y)
    assert search.best_params_ == {"gdregressor__learning_rate": 0.05}
    assert search.best_estimator_.score(X, y) > 0.5
    np.testing.assert_array_equal(search.cv_results_["split0_test_score"], sequential.cv_results_["split0_test_score"])
    np.testing.assert_array_equal(search.cv_results_["split1_test_score"], sequential.cv_results_["split1_test_score"])


@pytest.mark.tensorflow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_keras_conventions_reproduce_keras_bit_for_bit(dtype):
    """loss="mse", conventions="keras", numerics="tensorflow": what Keras trains from the same weights on the same
    (shuffled) batches, to the bit: every epoch's loss and the final weights (reference.keras_driver drives Keras)."""
    pytest.importorskip("tensorflow")
    from sklearn.utils import check_random_state, shuffle

    from reference.keras_driver import run_keras

    X, y = _data(n_samples=50)
    X, y = X.astype(dtype), y.astype(dtype)
    settings = dict(hidden_layer_sizes=(8,), activation="logistic", solver="adam", learning_rate=0.05, loss="mse",
                    conventions="keras", numerics="tensorflow", batch_size=16, random_state=5, dtype=dtype)
    epochs = 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GDRegressor(max_iter=epochs, **settings).fit(X, y)
    # The same initial weights and per-epoch orders, drawn as GDRegressor draws them (MLPRegressor's way).
    twin = GDRegressor(**settings)
    twin.n_outputs_ = 1
    random_state = check_random_state(5)
    start = twin._build(X.shape[1], twin._settings(), np.dtype(dtype), random_state)
    start.compile(optimizer=ours.model_.optimizer.__class__(**ours.model_.optimizer.get_config()), loss="mse")
    orders, order = [], np.arange(len(X))
    for _ in range(epochs):
        order = shuffle(order, random_state=random_state)
        orders.append(order)
    keras = run_keras(start, X, y.reshape(-1, 1), np.array(orders), batch_size=16)
    assert ours.loss_curve_ == keras.loss  # every epoch, exactly
    for mine, theirs in zip(_weights(ours), [*keras.weights[-1][0::2], *keras.weights[-1][1::2]]):
        np.testing.assert_array_equal(mine, theirs)


# One line per case: labels, then GDClassifier's settings; MLPClassifier gets the same ones.
CLASSIFIER_CASES = [
    ("strings", dict(solver="adam", learning_rate=0.05, batch_size=16)),
    ("strings", dict(solver="sgd", learning_rate=0.05, batch_size=16, early_stopping=True)),
    ("three", dict(solver="adam", learning_rate=0.05, batch_size=16, activation="tanh")),
    ("three", dict(solver="sgd", learning_rate=0.1, batch_size=20, early_stopping=True, shuffle=False)),
]


@pytest.mark.parametrize("labels, settings", CLASSIFIER_CASES,
                         ids=lambda case: case if isinstance(case, str) else "-".join(f"{k}={v}" for k, v in case.items()))
def test_classifier_reproduces_mlp_classifier(labels, settings):
    """Binary (string labels) and 3-class: MLPClassifier's weights, loss curve, probabilities and labels, float64.

    Measured: worst 2.2e-15 absolute on weights over these cases (rounding of the update forms)."""
    X, _ = _data(n_samples=90)
    y = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no") if labels == "strings" else np.digitize(X[:, 0], [-0.5, 0.5])
    common = {**dict(hidden_layer_sizes=(6,), activation="logistic", max_iter=10, random_state=1), **settings}
    theirs_kw = {**common, "learning_rate_init": common["learning_rate"]}
    del theirs_kw["learning_rate"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = GDClassifier(**common).fit(X, y)
        theirs = MLPClassifier(alpha=0.0, **theirs_kw).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ and list(ours.classes_) == list(theirs.classes_)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    for mine, reference in zip(_weights(ours), _weights(theirs)):
        np.testing.assert_allclose(mine, reference, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-13)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    assert ours.decision_function(X).shape == ((90,) if labels == "strings" else (90, 3))
    if settings.get("early_stopping"):
        assert ours.validation_scores_ == pytest.approx(theirs.validation_scores_, abs=1e-12)


def test_classifier_partial_fit_needs_classes_and_refuses_new_labels():
    X, _ = _data()
    y = np.where(X[:, 0] > 0, "a", "b")
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        GDClassifier().partial_fit(X, y)
    estimator = GDClassifier(random_state=0).partial_fit(X[:10], y[:10], classes=["a", "b", "c"])
    assert list(estimator.classes_) == ["a", "b", "c"] and estimator.predict_proba(X).shape == (60, 3)
    with pytest.raises(ValueError, match=r"labels \['d'\] not in classes_"):
        estimator.partial_fit(X[:2], ["a", "d"])
    with pytest.raises(ValueError, match="loss must be 'log_loss'"):
        GDClassifier(loss="mse").fit(X, y)
