"""fastfc.sklearn against scikit-learn: check_estimator, the same results as scikit-learn's
MLP in float64, sample weights as repeated rows, partial_fit, early stopping, pickling."""
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="fastfc.sklearn needs scikit-learn (the sklearn extra)")
import sklearn.neural_network as skl  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits, make_multilabel_classification, make_regression  # noqa: E402,E501
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from fastfc.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@parametrize_with_checks([MLPClassifier(), MLPRegressor()], expected_failed_checks=lambda e: {})
def test_check_estimator(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16, y[:600]


@pytest.mark.parametrize("params", [
    dict(solver="adam"),
    dict(solver="adam", batch_size=64, alpha=0.01, activation="tanh"),
    dict(solver="sgd", learning_rate="invscaling", momentum=0.5, nesterovs_momentum=False),
    dict(solver="sgd", learning_rate="adaptive", batch_size=100, activation="logistic"),
    dict(solver="adam", early_stopping=True, validation_fraction=0.2, n_iter_no_change=2),
    dict(solver="lbfgs", alpha=1e-3),
])
def test_same_as_sklearn_in_float64(digits, params):
    X, y = digits
    kw = dict(hidden_layer_sizes=(24, 12), max_iter=15, random_state=0, **params)
    ours = MLPClassifier(dtype="float64", **kw).fit(X, y)
    ref = skl.MLPClassifier(**kw).fit(X, y)
    assert ours.n_iter_ == ref.n_iter_ and ours.n_layers_ == ref.n_layers_ == 4
    assert ours.out_activation_ == ref.out_activation_ == "softmax"
    tol = 1e-6 if params["solver"] == "lbfgs" else 1e-9    # L-BFGS amplifies rounding
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=tol)
    if params["solver"] != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-10)
        assert ours.t_ == ref.t_
    if params.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_)
        assert ours.best_validation_score_ == ref.best_validation_score_


@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_same_as_sklearn(loss):
    X, y = make_regression(n_samples=120, n_features=6, n_targets=2, random_state=0)
    y = np.abs(y) / 100 if loss == "poisson" else y / 100
    kw = dict(loss=loss, hidden_layer_sizes=(10,), max_iter=20, random_state=1)
    ours = MLPRegressor(dtype="float64", **kw).fit(X, y)
    ref = skl.MLPRegressor(**kw).fit(X, y)
    assert ours.n_outputs_ == 2 and ours.out_activation_ == ref.out_activation_
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-10)


def test_multilabel_and_float32(digits):
    X, Y = make_multilabel_classification(n_samples=200, n_features=10, random_state=0)
    kw = dict(hidden_layer_sizes=(32,), max_iter=30, random_state=0)
    est = MLPClassifier(**kw).fit(X, Y)
    assert est.out_activation_ == "logistic" and est.coefs_[0].dtype == np.float32
    ref = skl.MLPClassifier(**kw).fit(X, Y)
    np.testing.assert_allclose(MLPClassifier(dtype="float64", **kw).fit(X, Y).predict_proba(X),
                               ref.predict_proba(X), rtol=1e-9)
    np.testing.assert_allclose(est.predict_proba(X), ref.predict_proba(X), atol=1e-3)
    assert est.predict(X).shape == Y.shape
    X, y = digits
    est = MLPClassifier(max_iter=60, random_state=0).fit(X[:500], y[:500])
    assert est.predict_proba(X).dtype == np.float32
    ref = skl.MLPClassifier(max_iter=60, random_state=0).fit(X[:500], y[:500])
    assert abs(est.score(X[500:], y[500:]) - ref.score(X[500:], y[500:])) <= 0.02


def test_predict_rows_do_not_depend_on_the_batch(digits):
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(50, 30), max_iter=5, random_state=0).fit(X, y)
    full = est.predict_proba(X)
    for rows in (slice(0, 1), slice(3, 10), slice(17, 80), slice(1, 600, 7)):
        assert np.array_equal(est.predict_proba(X[rows]), full[rows])


@pytest.mark.parametrize("solver,batch_size", [("adam", 8), ("sgd", "auto"), ("lbfgs", "auto")])
def test_weight_k_is_k_copies(solver, batch_size):
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 5)), rng.integers(0, 3, 40)
    w = rng.integers(0, 4, 40)
    kw = dict(solver=solver, batch_size=batch_size, hidden_layer_sizes=(7,), max_iter=20,
              random_state=0)
    weighted = MLPClassifier(**kw).fit(X, y, sample_weight=w)
    order = rng.permutation(int(w.sum()))
    repeated = MLPClassifier(**kw).fit(X.repeat(w, axis=0)[order], y.repeat(w)[order])
    assert np.array_equal(weighted.predict_proba(X), repeated.predict_proba(X))
    assert weighted.t_ == repeated.t_


def test_sample_weight_changes_the_fit():
    rng = np.random.default_rng(1)
    X, y = rng.random((60, 4)), rng.random(60)
    w = np.where(np.arange(60) < 30, 10.0, 0.1)
    kw = dict(hidden_layer_sizes=(8,), max_iter=40, random_state=0, dtype="float64")
    ours = MLPRegressor(**kw).fit(X, y, sample_weight=w)
    plain = MLPRegressor(**kw).fit(X, y)
    assert not np.allclose(ours.predict(X), plain.predict(X))
    ref = skl.MLPRegressor(hidden_layer_sizes=(8,), max_iter=40, random_state=0)
    # full batch: the same weighted loss as scikit-learn's (merged rows change the order)
    np.testing.assert_allclose(ours.predict(X), ref.fit(X, y, sample_weight=w).predict(X),
                               rtol=1e-8, atol=1e-10)


def test_early_stopping_restores_the_best_weights(digits):
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, n_iter_no_change=3,
                        learning_rate_init=0.05, max_iter=60, random_state=0,
                        dtype="float64").fit(X, y)
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.best_loss_ is None and len(est.validation_scores_) == est.n_iter_


def test_partial_fit_and_warm_start(digits):
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(20,), random_state=0)
    est.partial_fit(X[:100], y[:100], classes=np.arange(10))
    est.partial_fit(X[100:200], y[100:200])
    assert est.n_iter_ == 1 and est.t_ == 200 and list(est.classes_) == list(range(10))
    with pytest.raises(ValueError, match="classes not in"):
        MLPClassifier().partial_fit(X[:10], y[:10], classes=[0, 1]).partial_fit(X, y)
    with pytest.raises(AttributeError, match="partial_fit"):
        MLPClassifier(solver="lbfgs").partial_fit
    with pytest.raises(ValueError, match="layer sizes"):
        est.set_params(warm_start=True, hidden_layer_sizes=(5,)).fit(X, y)


@pytest.mark.parametrize("how", ["warm_start", "partial_fit"])
def test_a_changed_dtype_is_refused_before_anything_changes(digits, how):
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(7,), max_iter=3, random_state=0,
                        warm_start=True).fit(X[:200], y[:200])
    n_iter, t, coefs = est.n_iter_, est.t_, [c.copy() for c in est.coefs_]
    est.set_params(dtype="float64")
    with pytest.raises(ValueError, match="the network is float32, dtype is now float64"):
        est.fit(X[:200], y[:200]) if how == "warm_start" else est.partial_fit(X[:50], y[:50])
    assert (est.n_iter_, est.t_) == (n_iter, t)
    for got, want in zip(est.coefs_, coefs):
        np.testing.assert_array_equal(got, want)
    copy = pickle.loads(pickle.dumps(est))   # keeps the weights' dtype, not the parameter's
    assert copy.coefs_[0].dtype == np.float32
    with pytest.raises(ValueError, match="the network is float32, dtype is now float64"):
        copy.partial_fit(X[:50], y[:50])
    assert (copy.n_iter_, copy.t_) == (n_iter, t)


def test_errors_are_sklearn_s(digits):
    X, y = digits
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        MLPClassifier(hidden_layer_sizes=(3, 0)).fit(X, y)
    with pytest.raises(ValueError, match="'dtype' parameter"):
        MLPClassifier(dtype="float16").fit(X, y)
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(X)
    with pytest.raises(ValueError, match="dropout needs a stochastic solver"):
        MLPClassifier(solver="lbfgs", dropout=0.2).fit(X, y)
    with pytest.raises(ValueError, match="at least one non-zero"):
        MLPClassifier().fit(X, y, sample_weight=np.zeros(len(y)))
    with pytest.raises(ValueError, match="Negative values in data passed to .sample_weight"):
        MLPClassifier().fit(X, y, sample_weight=np.r_[-0.5, np.ones(len(y) - 1)])
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(max_iter=1).fit(X, y)


def test_float64_values_past_float32_are_named_not_predicted_as_nan():
    rng = np.random.default_rng(0)
    X = rng.random((40, 3))
    big = X[:3].copy()
    big[0, 0] = 1e39                       # finite in float64, Inf in float32
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, X[:, 0] > 0.5)
        reg.fit(X, X.sum(1))
        for est in (clf, reg):
            for method in ("predict", "predict_proba"):
                if hasattr(est, method):
                    with pytest.raises(ValueError, match="X holds values beyond the range "
                                                         "of float32"):
                        getattr(est, method)(big)
            with pytest.raises(ValueError, match="X holds values beyond the range of float32"):
                clone(est).fit(np.vstack([X, big]), np.zeros(43))
        with pytest.raises(ValueError, match="y holds values beyond the range of float32"):
            clone(reg).fit(X, np.full(40, 1e39))
        reg64 = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, dtype="float64",
                             random_state=0).fit(X, X.sum(1))
        assert np.isfinite(reg64.predict(big)).all()


def test_pickle_clone_pipeline_search(digits):
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(16,), dropout=0.1, batch_norm=True, max_iter=10,
                        random_state=0, n_threads=1).fit(X, y)
    again = pickle.loads(pickle.dumps(est))
    assert np.array_equal(again.predict_proba(X), est.predict_proba(X))
    again.partial_fit(X, y)       # the optimizer's state came along
    assert clone(est).get_params() == est.get_params()
    scores = [GridSearchCV(make_pipeline(StandardScaler(), cls(max_iter=20, random_state=0)),
                           {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=2).fit(X, y).best_score_
              for cls in (MLPClassifier, skl.MLPClassifier)]
    assert abs(scores[0] - scores[1]) < 0.03


def test_predict_is_thread_safe_and_is_the_model_s_output(digits):
    from concurrent.futures import ThreadPoolExecutor
    X, y = digits
    est = MLPClassifier(hidden_layer_sizes=(40, 20), batch_norm=True, dropout=0.2,
                        activation="tanh", max_iter=5, random_state=0).fit(X, y)
    # the evaluation-mode Sequential, run by its own layers, gives the same probabilities
    logits = est._model.forward(X.astype(np.float32))
    np.testing.assert_allclose(est.predict_proba(X), est._loss_fn.proba(logits), rtol=1e-5,
                               atol=1e-6)
    parts = [X[i::4] for i in range(4)] * 4
    serial = [est.predict_proba(p) for p in parts]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(est.predict_proba, parts))
    assert all(np.array_equal(a, b) for a, b in zip(serial, threaded))


@pytest.mark.parametrize("ours,theirs", [(MLPClassifier, skl.MLPClassifier),
                                         (MLPRegressor, skl.MLPRegressor)])
def test_same_signature_as_sklearn(ours, theirs):
    import inspect
    mine = dict(inspect.signature(ours).parameters)
    extras = {name: mine.pop(name).default for name in ("dropout", "batch_norm", "dtype",
                                                        "n_threads")}
    assert extras == {"dropout": 0.0, "batch_norm": False, "dtype": "float32",
                      "n_threads": None}
    assert [(p.name, p.default, p.kind) for p in mine.values()] == \
        [(p.name, p.default, p.kind) for p in inspect.signature(theirs).parameters.values()]


@pytest.mark.parametrize("solver", ["lbfgs", "sgd", "adam"])
def test_any_memory_order_fits_the_same(digits, solver):
    """Fortran-ordered X (a pandas DataFrame's values are) and strided X fit as C-ordered."""
    X, y = digits
    X, y = X[:200], y[:200]
    params = dict(solver=solver, hidden_layer_sizes=(17,), max_iter=5, shuffle=False,
                  random_state=0)
    want = MLPClassifier(**params).fit(X, y).predict_proba(X)
    wide = np.zeros((X.shape[0], 2 * X.shape[1]))
    wide[:, ::2] = X
    for other in (np.asfortranarray(X), wide[:, ::2]):
        np.testing.assert_array_equal(MLPClassifier(**params).fit(other, y).predict_proba(X),
                                      want)


def test_batch_norm_with_a_last_batch_of_one_row():
    """201 rows in batches of 200 (the default): the last row joins the batch before it
    (as gen_batches' min_batch_size), where BatchNorm would have no variance."""
    rng = np.random.default_rng(0)
    X, y = rng.random((201, 4)), rng.integers(0, 3, 201)
    est = MLPClassifier(batch_norm=True, hidden_layer_sizes=(9,), max_iter=2, random_state=0)
    assert est.fit(X, y).t_ == 2 * 201
    with pytest.raises(ValueError, match="n_samples = 1"):
        MLPRegressor(batch_norm=True).fit(X[:1], y[:1])


def test_estimators_used_from_threads_at_once_leave_the_thread_setting(keep_threads):
    """n_threads sets fastfc's process-wide count for a call: two calls that overlap (one
    ends first) put back what was there before both, not the other's count."""
    import fastfc
    from fastfc.sklearn._base import _Threads
    fastfc.set_num_threads(3)
    first, second = _Threads(1), _Threads(2)
    first.__enter__()
    second.__enter__()
    assert fastfc.get_num_threads() == 2
    first.__exit__(None, None, None)
    second.__exit__(None, None, None)
    assert fastfc.get_num_threads() == 3
    with pytest.raises(ValueError):   # a bad n_threads (set_params skips checks) counts nothing
        _Threads(0).__enter__()
    with _Threads(1):
        pass
    assert fastfc.get_num_threads() == 3
