"""Pickle, joblib and deepcopy: a copied model predicts as the original and, trained on
with the same data, stays bit-identical to it (optimizer state and step counts, the
shuffling generator and the dropout streams travel); the copy trains on its own."""
import copy
import io
import os
import pickle
import tempfile

import numpy as np
import pytest

import fastfc
from fastfc import _state, initializers, optim


def blobs(n=150, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)


def pickle_copy(obj):
    return pickle.loads(pickle.dumps(obj))


def joblib_copy(obj):
    joblib = pytest.importorskip("joblib", reason="joblib round trips need joblib")
    buf = io.BytesIO()
    joblib.dump(obj, buf)
    buf.seek(0)
    return joblib.load(buf)


def pickle5_read_only_copy(obj):
    """Protocol 5 with out-of-band buffers handed back read-only (as Ray or Dask do)."""
    buffers = []
    data = pickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return pickle.loads(data, buffers=[bytes(b.raw()) for b in buffers])


def joblib_mmap_copy(obj):
    """joblib.load(mmap_mode="r"), as joblib.Parallel sends big arrays: read-only maps."""
    joblib = pytest.importorskip("joblib", reason="joblib round trips need joblib")
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model.joblib")
        joblib.dump(obj, path)
        return joblib.load(path, mmap_mode="r")


COPIES = {"pickle": pickle_copy, "joblib": joblib_copy, "deepcopy": copy.deepcopy,
          "pickle5-read-only": pickle5_read_only_copy, "joblib-mmap": joblib_mmap_copy}


def make(kind, optimizer):
    """Models with every kind of state: dropout streams, BatchNorm statistics, a C plan
    or the layer-by-layer path, optimizer moments, a learning-rate schedule."""
    layers = {
        "fused": [fastfc.Dense(6, 16, activation="relu"), fastfc.Dropout(0.3),
                  fastfc.Dense(16, 8), fastfc.LeakyReLU(0.2), fastfc.Dropout(0.1),
                  fastfc.Dense(8, 3)],
        "layers": [fastfc.Dense(6, 16, activation="tanh"), fastfc.BatchNorm(16),
                   fastfc.Dropout(0.25), fastfc.Dense(16, 3)],
    }[kind]
    return fastfc.Sequential(layers, optimizer=optimizer, seed=11)


OPTIMIZERS = {
    "adam-cosine": lambda: optim.Adam(lr=0.01, schedule=optim.cosine_schedule(6, 0.1)),
    "sgd-nesterov-step": lambda: optim.SGD(lr=0.05, momentum=0.9, nesterov=True,
                                           schedule=optim.step_schedule(2, 0.5)),
    "rmsprop": lambda: optim.RMSProp(lr=0.01, weight_decay=1e-3),
}


@pytest.mark.parametrize("how", list(COPIES))
@pytest.mark.parametrize("kind", ["fused", "layers"])
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_a_copy_predicts_and_trains_on_bit_for_bit(how, kind, opt):
    X, y = blobs()
    model = make(kind, OPTIMIZERS[opt]())
    model.fit(X, y, epochs=2, batch_size=32, verbose=0)
    twin = COPIES[how](model)
    np.testing.assert_array_equal(twin.predict_proba(X), model.predict_proba(X))
    assert (twin.optimizer.t, twin.optimizer.lr, twin.epochs_done) == \
        (model.optimizer.t, model.optimizer.lr, model.epochs_done)
    histories = []
    for m in (model, twin):   # the next shuffles, masks, moments and lr of both
        histories.append(m.fit(X, y, epochs=2, batch_size=32, verbose=0).history)
        m.train_on_batch(X[:40], y[:40])
    np.testing.assert_array_equal(twin._theta, model._theta)
    assert histories[0] == histories[1]
    assert type(twin.optimizer.schedule) is type(model.optimizer.schedule)


@pytest.mark.parametrize("how", list(COPIES))
def test_a_copy_trains_independently_of_its_original(how):
    X, y = blobs()
    model = make("fused", optim.Adam(lr=0.01))
    model.fit(X, y, epochs=1, verbose=0)
    twin = COPIES[how](model)
    kept, kept_m = model._theta.copy(), model.optimizer.state[0].copy()
    twin.fit(X, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(model._theta, kept)
    np.testing.assert_array_equal(model.optimizer.state[0], kept_m)
    assert model.epochs_done == 1 and twin.epochs_done == 3
    assert twin.layers[1].calls == 3 * model.layers[1].calls   # its own dropout stream
    # its layers are views into its own buffers, and its plans point there
    assert all(np.shares_memory(v, twin._theta) for v in twin.parameters())
    assert twin._plan(32) is not None and not np.array_equal(twin._theta, model._theta)


def test_a_copy_before_any_step_and_a_fresh_model_train_alike():
    X, y = blobs()
    model = make("layers", optim.Adam(lr=0.01))
    twin = pickle_copy(model)
    assert twin.optimizer.state is None and twin.optimizer.t == 0
    for m in (model, twin):
        m.fit(X, y, epochs=2, verbose=0)
    np.testing.assert_array_equal(twin._theta, model._theta)
    for bn, bn2 in zip(model.layers, twin.layers):
        if isinstance(bn, fastfc.BatchNorm):
            np.testing.assert_array_equal(bn.running_var, bn2.running_var)


def test_the_pickle_holds_no_c_plan_and_no_last_batch():
    X, y = blobs()
    model = make("fused", None)
    model.fit(X, y, epochs=1, verbose=0)
    model.forward(X, training=True)
    assert model._plans and model.layers[0]._x is not None
    state = model.__getstate__()
    assert not {"_plans", "_theta", "_dtheta", "_grad_out"} & set(state)
    layer_state = model.layers[0].__getstate__()
    assert not {"_x", "_y", "_gx", "_owner", "needs_input_grad"} & set(layer_state)
    # about one copy of the weights and their gradients, the Adam moments and the rest small
    size = len(pickle.dumps(model))
    assert size < 4 * model._theta.nbytes + 20_000, size


@pytest.mark.parametrize("obj", [
    initializers.get("he_normal"), initializers.normal(0.5), initializers.Zeros(),
    optim.step_schedule(3, 0.5), optim.cosine_schedule(4), optim.AdamW(lr=0.1),
    optim.SGD(lr=0.1, momentum=0.5, schedule=optim.cosine_schedule(3)),
    fastfc.losses.get("hinge"), fastfc.Dense(3, 2, activation="relu"), fastfc.LeakyReLU(0.3),
    fastfc.BatchNorm(4), fastfc.Dropout(0.2), fastfc.Softmax(), fastfc.Flatten(),
], ids=lambda o: type(o).__name__)
def test_the_parts_are_plain_picklable_objects(obj):
    back = pickle_copy(obj)
    assert type(back) is type(obj) and repr(back) == repr(obj)
    if callable(obj) and isinstance(obj, (optim.Schedule,)):
        assert [back(e) for e in range(5)] == [obj(e) for e in range(5)]
    if isinstance(obj, initializers.Initializer):
        a = obj(np.random.default_rng(0), (3, 4), 3, 4, np.float64)
        b = back(np.random.default_rng(0), (3, 4), 3, 4, np.float64)
        np.testing.assert_array_equal(a, b)


def test_a_users_lambda_initializer_or_schedule_is_named_when_pickled():
    model = fastfc.Sequential([fastfc.Dense(4, 3, init=lambda rng, shape, *_:
                                            rng.standard_normal(shape))])
    with pytest.raises(TypeError, match=r"Dense._init_fn = <function .*<lambda>.*> cannot be "
                                        r"pickled .*module level"):
        pickle.dumps(model)
    with pytest.raises(TypeError, match=r"SGD.schedule = <function .*<lambda>.*> cannot be "
                                        r"pickled"):
        pickle.dumps(optim.SGD(schedule=lambda epoch: 0.5))
    twin = copy.deepcopy(model)     # a deep copy keeps the very function
    assert twin.layers[0]._init_fn is model.layers[0]._init_fn


def test_a_state_from_a_newer_fastfc_is_refused_naming_both_versions(monkeypatch):
    model = fastfc.Sequential([fastfc.Dense(4, 3)])
    for obj in (model, model.layers[0], model.optimizer):
        monkeypatch.setattr(_state, "FORMAT", _state.FORMAT + 1)
        monkeypatch.setattr(fastfc, "__version__", "9.1.0")
        data = pickle.dumps(obj)
        monkeypatch.undo()
        with pytest.raises(ValueError, match=rf"this pickle holds a (Dense|Adam) written by "
                                             rf"fastfc 9.1.0 \(state format "
                                             rf"{_state.FORMAT + 1}\); fastfc "
                                             rf"{fastfc.__version__} reads formats up to "
                                             rf"{_state.FORMAT}: upgrade fastfc to load it"):
            pickle.loads(data)
    pickle.loads(pickle.dumps(model))   # today's format loads


def test_a_shallow_copy_is_refused():
    """It would share the layers, and relinking them would take them from the original."""
    model = fastfc.Sequential([fastfc.Dense(4, 3)])
    with pytest.raises(TypeError, match=r"copy.copy\(model\) would share the layers.*use "
                                        r"copy.deepcopy\(model\)"):
        copy.copy(model)
    assert np.shares_memory(model.layers[0].params["W"], model._theta)


def test_an_unpickled_optimizer_belongs_to_no_model_a_deep_copy_to_its_models():
    model = fastfc.Sequential([fastfc.Dense(4, 3)])
    fastfc.Sequential([fastfc.Dense(4, 3)], optimizer=pickle_copy(model.optimizer))
    with pytest.raises(ValueError, match="already belongs to another Sequential"):
        fastfc.Sequential([fastfc.Dense(4, 3)], optimizer=copy.deepcopy(model.optimizer))
