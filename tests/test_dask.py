"""fastfc.dask on a LocalCluster of two worker processes: lazy inference equal to the
local model, data-parallel fit equal to the local fit on the rows in the order it takes
them, reproducible shuffles, bad input, and a worker killed mid-fit."""
import os
import re
import signal
import threading
import time

import numpy as np
import pytest

pytest.importorskip("distributed", reason="fastfc.dask needs dask.distributed (fastfc[dask])")
da = pytest.importorskip("dask.array", reason="fastfc.dask needs dask.array (fastfc[dask])")

import fastfc  # noqa: E402
import fastfc.dask as fdask  # noqa: E402

N_WORKERS = 2


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=N_WORKERS, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as c:
        yield c


@pytest.fixture
def inproc_client():
    """Two workers in this process (processes=False): they share its modules' state and
    fastfc's process-wide thread setting. Not the default client."""
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, \
            Client(cluster, set_as_default=False) as c:
        yield c


def mlp(dtype=np.float32, p=0.3, n_in=10, seed=0, lr=1e-2):
    layers = [fastfc.Dense(n_in, 16, activation="relu")]
    layers += [fastfc.Dropout(p)] if p else []
    layers += [fastfc.Dense(16, 3)]
    return fastfc.Sequential(layers, optimizer=fastfc.optim.Adam(lr=lr), seed=seed, dtype=dtype)


def data(n=300, n_in=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, n_in)), rng.integers(0, 3, n)


def tolerance(dtype, theta, steps):
    """Rounding of a step (the averaged gradient vs the local one) compounded over the
    steps: a few eps of the weights' scale per step."""
    return 8 * steps * np.finfo(dtype).eps * (1 + np.abs(theta).max())


def global_batches(sizes, share, orders=None):
    """The rows of each step of the documented schedule: rows [s*share, (s+1)*share) of
    every partition (in its epoch order), partition after partition."""
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    orders = orders or [np.arange(n) for n in sizes]
    steps = max(-(-n // share) for n in sizes)
    return [np.concatenate([offsets[w] + orders[w][s * share:(s + 1) * share]
                            for w in range(len(sizes))]) for s in range(steps)]


# ---------------------------------------------------------------------------- inference
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lazy_inference_equals_local(client, dtype):
    X, _ = data(257)
    model = mlp(dtype)
    Xd = da.from_array(X, chunks=(64, 10))
    proba = fdask.predict_proba(model, Xd)
    assert isinstance(proba, da.Array) and proba.chunks[0] == Xd.chunks[0]
    # the model is one scattered key in the graph, not a copy per chunk
    assert len(proba.__dask_graph__()) == 2 * Xd.numblocks[0]
    np.testing.assert_array_equal(proba.compute(), model.predict_proba(X))
    np.testing.assert_array_equal(fdask.predict(model, Xd).compute(), model.predict(X))
    hidden = fdask.transform(model, Xd, layer=0).compute()
    np.testing.assert_array_equal(hidden, fastfc.linear(X.astype(dtype), model.layers[0].params["W"],
                                                        model.layers[0].params["b"],
                                                        activation="relu"))
    # a NumPy X is wrapped; logits are the last layer's output
    np.testing.assert_array_equal(fdask.transform(model, X).compute(), model.forward(X))


def test_each_prediction_has_keys_of_its_own(client):
    """Two models, two inputs, a model trained since: no result shares a key with another
    (a shared key hands one result's numbers to the other)."""
    import dask
    X, y = data(64)
    m1, m2 = mlp(seed=1, p=0), mlp(seed=2, p=0)
    Xd = da.from_array(X, chunks=(32, 10))
    runs = [(m1, Xd, X), (m2, Xd, X), (m1, 2 * Xd, 2 * X)]
    lazy = [fdask.predict_proba(m, xd) for m, xd, _ in runs]
    assert len({a.name for a in lazy}) == 3
    for got, (m, _, x) in zip(dask.compute(*lazy), runs):
        np.testing.assert_array_equal(got, m.predict_proba(x))
    before = fdask.predict_proba(m1, Xd).persist()
    m1.fit(X, y, epochs=2, verbose=0)
    after = fdask.predict_proba(m1, Xd).compute()
    np.testing.assert_array_equal(after, m1.predict_proba(X))
    assert not np.array_equal(after, before.compute())


def test_transform_checks_x_and_leaves_the_model_alone(client):
    """Building a transform graph runs nothing on the caller's model (a backward after it
    gets the forward's gradients), and X is checked as predict checks it."""
    X, _ = data(32)
    g = np.random.default_rng(1).standard_normal((32, 3))
    grads = []
    for build in (False, True):
        model = mlp(p=0)
        model.forward(X, training=True)
        if build:
            fdask.transform(model, da.from_array(np.zeros((4, 10)), chunks=(2, 10)), layer=0)
        model.backward(g)
        grads.append([a.copy() for layer in model.layers for a in layer.grads.values()])
    for a, b in zip(*grads):
        np.testing.assert_array_equal(a, b)
    bad = X.copy()
    bad[3, 4] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or Inf"):
        fdask.transform(model, da.from_array(bad, chunks=(16, 10))).compute()
    with pytest.raises(ValueError, match="X holds values beyond the range of float32"):
        fdask.transform(model, da.from_array(np.full((4, 10), 1e300), chunks=(2, 10)),
                        layer=0).compute()


def test_a_model_whose_optimizer_does_not_save_still_predicts(client):
    X, _ = data(40)
    model = fastfc.Sequential([fastfc.Dense(10, 3)], seed=0,
                              optimizer=fastfc.optim.SGD(lr=0.1, schedule=lambda e: 0.5))
    got = fdask.predict_proba(model, da.from_array(X, chunks=(20, 10))).compute()
    np.testing.assert_array_equal(got, model.predict_proba(X))


def test_inference_from_a_dask_dataframe(client):
    dd = pytest.importorskip("dask.dataframe", reason="needs dask.dataframe")
    pd = pytest.importorskip("pandas", reason="needs pandas")
    X, _ = data(100)
    model = mlp()
    df = dd.from_pandas(pd.DataFrame(X), npartitions=3)
    got = fdask.predict(model, df.to_dask_array(lengths=True)).compute()
    np.testing.assert_array_equal(got, model.predict(X))


# ---------------------------------------------------------------------------- training
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_equals_local_fit(client, dtype):
    """Two equal partitions, a last partial batch and dropout: the local fit on the rows
    in the order the workers take them gives the same weights and history."""
    X, y = data(300)
    model, local = mlp(dtype), mlp(dtype)
    before = model._theta.copy()
    h = fdask.fit(model, da.from_array(X, chunks=(150, 10)), da.from_array(y, chunks=150),
                  epochs=3, batch_size=32, shuffle=False, client=client)
    order = np.concatenate(global_batches([150, 150], 16))
    hl = local.fit(X[order], y[order], epochs=3, batch_size=32, shuffle=False, verbose=0)
    assert not np.array_equal(model._theta, before)
    tol = tolerance(dtype, local._theta, 30)
    np.testing.assert_allclose(model._theta, local._theta, rtol=0, atol=tol)
    assert h.epoch == hl.epoch == [0, 1, 2] and model.epochs_done == 3
    np.testing.assert_allclose(h["loss"], hl["loss"], rtol=1e-5)
    assert h["accuracy"] == hl["accuracy"]
    # the optimizer and the dropout streams go on as the local model's: one more local
    # epoch of each stays equal
    assert model.optimizer.t == local.optimizer.t
    assert model.layers[1].calls == local.layers[1].calls
    model.fit(X, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    local.fit(X, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    np.testing.assert_allclose(model._theta, local._theta, rtol=0,
                               atol=tolerance(dtype, local._theta, 40))


def test_fit_unequal_partitions(client):
    """Chunks of 100, 60 and 140 rows: partitions of 160 and 140 rows, so the last steps
    take fewer rows, the very last only the first partition's. Equal to training the
    local model on those batches."""
    X, y = data(300)
    model, local = mlp(np.float64), mlp(np.float64)
    fdask.fit(model, da.from_array(X, chunks=((100, 60, 140), 10)),
              da.from_array(y, chunks=((100, 60, 140),)), epochs=2, batch_size=32,
              shuffle=False, client=client)
    batches = global_batches([160, 140], 16)
    assert [len(b) for b in batches[-3:]] == [32, 28, 16]
    for _ in range(2):
        for b in batches:
            local.train_on_batch(X[b], y[b])
    np.testing.assert_allclose(model._theta, local._theta, rtol=0,
                               atol=tolerance(np.float64, local._theta, 20))


def test_partition_smaller_than_its_share(client):
    """A 4-row partition against shares of 16 rows: it gives its rows to the first
    step and nothing after."""
    X, y = data(104)
    model, local = mlp(np.float64, p=0.5), mlp(np.float64, p=0.5)
    fdask.fit(model, da.from_array(X, chunks=((100, 4), 10)),
              da.from_array(y, chunks=((100, 4),)), epochs=1, batch_size=32,
              shuffle=False, client=client)
    for b in global_batches([100, 4], 16):
        local.train_on_batch(X[b], y[b])
    np.testing.assert_allclose(model._theta, local._theta, rtol=0,
                               atol=tolerance(np.float64, local._theta, 7))


def test_shuffle_is_reproducible_with_a_seed(client):
    X, y = data(200)
    Xd, yd = da.from_array(X, chunks=(100, 10)), da.from_array(y, chunks=100)
    runs = []
    for seed in (5, 5, 6):
        model = mlp(np.float64)
        fdask.fit(model, Xd, yd, epochs=2, batch_size=20, seed=seed, client=client)
        runs.append(model._theta.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.allclose(runs[0], runs[2])
    # the documented shuffle: each partition permuted by default_rng([seed, epoch, w])
    local = mlp(np.float64)
    for epoch in range(2):
        orders = [np.random.default_rng([5, epoch, w]).permutation(100) for w in range(2)]
        for b in global_batches([100, 100], 10, orders):
            local.train_on_batch(X[b], y[b])
    np.testing.assert_allclose(runs[0], local._theta, rtol=0,
                               atol=tolerance(np.float64, local._theta, 20))


def test_sync_every_averages_parameters(client):
    """Local SGD: with both partitions holding the same rows (no dropout) every replica
    follows the local fit on one partition with its share as the batch, and the average
    of equal parameters changes nothing."""
    X, y = data(90)
    XX, yy = np.concatenate([X, X]), np.concatenate([y, y])
    model, local = mlp(np.float64, p=0), mlp(np.float64, p=0)
    h = fdask.fit(model, da.from_array(XX, chunks=(90, 10)), da.from_array(yy, chunks=90),
                  epochs=2, batch_size=20, sync_every=3, shuffle=False, client=client)
    hl = local.fit(X, y, epochs=2, batch_size=10, shuffle=False, verbose=0)
    np.testing.assert_allclose(model._theta, local._theta, rtol=0,
                               atol=tolerance(np.float64, local._theta, 18))
    np.testing.assert_allclose(h["loss"], hl["loss"], rtol=1e-12)


def test_fit_with_in_process_workers_equals_local_fit(inproc_client):
    """Workers sharing one process keep a replica each (one registry per process)."""
    X, y = data(96)
    model, local = mlp(np.float64), mlp(np.float64)
    fdask.fit(model, da.from_array(X, chunks=(24, 10)), da.from_array(y, chunks=24),
              epochs=2, batch_size=16, shuffle=False, client=inproc_client)
    for _ in range(2):
        for b in global_batches([48, 48], 8):
            local.train_on_batch(X[b], y[b])
    assert model.optimizer.t == local.optimizer.t == 12
    np.testing.assert_allclose(model._theta, local._theta, rtol=0,
                               atol=tolerance(np.float64, local._theta, 12))
    from fastfc.dask import _replica
    assert _replica._REPLICAS == {}   # the fit's end dropped both workers' replicas


def test_a_worker_given_only_empty_chunks_trains_on_nothing(inproc_client):
    """Chunks (0, 48): one worker's partition is the empty chunk (as a filtered DataFrame
    gives): the fit runs, as on the rows alone (the row checks refused 0 rows)."""
    X, y = data(48)
    model, local = mlp(np.float64, p=0), mlp(np.float64, p=0)
    fdask.fit(model, da.from_array(X, chunks=((0, 48), (10,))),
              da.from_array(y, chunks=((0, 48),)), epochs=1, batch_size=8, shuffle=False,
              client=inproc_client)
    for b in global_batches([0, 48], 4):   # a batch of 8: 4 rows from each worker
        local.train_on_batch(X[b], y[b])
    assert model.optimizer.t == local.optimizer.t
    np.testing.assert_allclose(model._theta, local._theta, rtol=0,
                               atol=tolerance(np.float64, local._theta, local.optimizer.t))


def test_a_numpy_x_is_split_among_the_workers(client):
    """A NumPy X (or a dask X of fewer row chunks than workers) is cut into one chunk per
    worker: each step takes batch_size rows, not batch_size / n_workers from one worker."""
    X, y = data(300)
    for wrap in (lambda a: a, lambda a: da.from_array(a, chunks=(300,) + a.shape[1:])):
        model, local = mlp(np.float64, p=0), mlp(np.float64, p=0)
        fdask.fit(model, wrap(X), wrap(y), epochs=1, batch_size=32, shuffle=False)
        for b in global_batches([150, 150], 16):
            local.train_on_batch(X[b], y[b])
        assert model.optimizer.t == local.optimizer.t == 10
        np.testing.assert_allclose(model._theta, local._theta, rtol=0,
                                   atol=tolerance(np.float64, local._theta, 10))


def test_fit_after_an_early_stopped_fit_runs_every_epoch(client):
    """A stop_training left True by an earlier fit does not stop this one."""
    X, y = data(96)
    model = mlp()
    model.fit(X, y, epochs=50, early_stopping=0, verbose=0)
    assert model.stop_training
    done = model.epochs_done
    h = fdask.fit(model, da.from_array(X, chunks=(48, 10)), y, epochs=3, batch_size=16,
                  client=client)
    assert h.epoch == [done, done + 1, done + 2] and model.epochs_done == done + 3
    assert not model.stop_training   # as model.fit leaves it: nothing stopped this fit


def test_fit_validation_and_callbacks(client):
    X, y = data(120)
    seen = []

    class Stop:
        def set_model(self, model):
            self.model = model

        def on_epoch_end(self, epoch, logs):
            seen.append((epoch, sorted(logs), self.model.evaluate(X, y)["loss"]))
            self.model.stop_training = epoch == 1   # stop after the second epoch

    model = mlp()
    h = fdask.fit(model, da.from_array(X, chunks=(60, 10)), y, epochs=5, batch_size=20,
                  validation_data=(X, y), callbacks=[Stop()], client=client)
    assert h.epoch == [0, 1] and model.epochs_done == 2 and model.stop_training
    assert seen[0][1] == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert h["val_loss"] == [s[2] for s in seen]
    assert h["val_loss"][-1] == pytest.approx(model.evaluate(X, y)["loss"], rel=1e-6)


def test_fit_with_early_stopping_keeps_the_best_weights(client):
    """fastfc's EarlyStopping runs on the driver's copy: it stops the fit and the weights
    it restores (the best epoch's) are the caller's model's at the end."""
    from fastfc.callbacks import EarlyStopping
    X, y = data(120)
    model = mlp(p=0, lr=0.3)   # a large step: the validation loss soon goes up
    h = fdask.fit(model, da.from_array(X, chunks=(60, 10)), y, epochs=30, batch_size=20,
                  validation_data=(X[:40], y[:40]), callbacks=[EarlyStopping(patience=1)],
                  client=client)
    assert len(h.epoch) < 30
    assert model.evaluate(X[:40], y[:40])["loss"] == pytest.approx(min(h["val_loss"]),
                                                                   rel=1e-6)


# ---------------------------------------------------------------------------- dask-ml
def classifier():
    """The estimator the dask-ml wrappers train: fastfc's drop-in MLPClassifier."""
    from fastfc.sklearn import MLPClassifier
    return MLPClassifier(hidden_layer_sizes=(16,), learning_rate_init=0.01, batch_size=25,
                         random_state=0)


def blobs(n=400):
    """Three well separated classes (a trained classifier scores well above chance)."""
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, n)
    return rng.standard_normal((n, 10)) * 0.5 + 3.0 * np.eye(3, 10)[y], y


def test_dask_ml_incremental_trains_through_partial_fit(client):
    wrappers = pytest.importorskip("dask_ml.wrappers", reason="needs dask-ml (fastfc[dask])")
    X, y = blobs()
    Xd, yd = da.from_array(X, chunks=(100, 10)), da.from_array(y, chunks=100)
    inc = wrappers.Incremental(classifier(), scoring="accuracy", shuffle_blocks=False)
    inc.fit(Xd, yd, classes=[0, 1, 2])
    local = classifier()
    for i in range(0, 400, 100):   # what Incremental does: partial_fit chunk by chunk
        local.partial_fit(X[i:i + 100], y[i:i + 100], classes=[0, 1, 2])
    np.testing.assert_array_equal(inc.estimator_.predict_proba(X), local.predict_proba(X))
    pred = inc.predict(Xd)
    assert isinstance(pred, da.Array)
    np.testing.assert_array_equal(pred.compute(), local.predict(X))
    assert inc.score(Xd, yd) > 0.9


def test_dask_ml_parallel_post_fit_predicts_in_parallel(client):
    wrappers = pytest.importorskip("dask_ml.wrappers", reason="needs dask-ml (fastfc[dask])")
    X, y = blobs()
    clf = wrappers.ParallelPostFit(classifier()).fit(X, y)
    Xd = da.from_array(X, chunks=(64, 10))
    proba, labels = clf.predict_proba(Xd), clf.predict(Xd)
    assert isinstance(proba, da.Array) and proba.chunks[0] == Xd.chunks[0]
    np.testing.assert_array_equal(proba.compute(), clf.estimator.predict_proba(X))
    np.testing.assert_array_equal(labels.compute(), clf.estimator.predict(X))
    assert clf.score(Xd, da.from_array(y, chunks=64)) > 0.9


# ---------------------------------------------------------------------------- bad input
def test_bad_input(client):
    X, y = data(64)
    model = mlp()
    split = da.from_array(X, chunks=(32, 5))
    with pytest.raises(ValueError, match=r"split axis 1.*rechunk with X.rechunk\(\{1: -1\}\)"):
        fdask.predict(model, split)
    with pytest.raises(ValueError, match=r"split axis 1"):
        fdask.fit(model, split, y, epochs=1, batch_size=8, client=client)
    Xd = da.from_array(X, chunks=(32, 10))
    with pytest.raises(ValueError, match=r"y's row chunks \(16, 16, 16, 16\) differ from "
                                         r"X's \(32, 32\)"):
        fdask.fit(model, Xd, da.from_array(y, chunks=16), epochs=1, batch_size=8, client=client)
    with pytest.raises(ValueError, match=r"batch_size=9 is not divisible by the 2 workers"):
        fdask.fit(model, Xd, y, epochs=1, batch_size=9, client=client)
    wide = da.from_array(np.zeros((64, 12)), chunks=(32, 12))
    for call in (lambda: fdask.predict(model, wide),
                 lambda: fdask.fit(model, wide, y, epochs=1, batch_size=8, client=client)):
        with pytest.raises(ValueError, match=r"X has per-sample shape \(12,\) \(shape \(64, 12\)"
                                             r"\) but the model was built for \(10,\)"):
            call()
    bn = fastfc.Sequential([fastfc.Dense(10, 4), fastfc.BatchNorm(4), fastfc.Dense(4, 3)])
    with pytest.raises(ValueError, match="BatchNorm"):
        fdask.fit(bn, Xd, y, epochs=1, batch_size=8, client=client)
    with pytest.raises(ValueError, match="out of range"):
        fdask.transform(model, Xd, layer=3)
    with pytest.raises(ValueError, match=r"X is empty \(shape \(0, 10\)\)"):
        fdask.fit(model, np.zeros((0, 10)), np.zeros(0, int), epochs=1, batch_size=8,
                  client=client)
    with pytest.raises(TypeError, match="shuffle must be True or False"):
        fdask.fit(model, Xd, y, epochs=1, batch_size=8, shuffle="no", client=client)
    # y of the wrong width: said on the client, with all of y's rows, not a partition's
    with pytest.raises(ValueError, match=re.escape("one-hot (64, 3), got shape (64, 4)")):
        fdask.fit(model, Xd, np.zeros((64, 4)), epochs=1, batch_size=8, client=client)
    with pytest.raises(TypeError, match="expected integer class labels"):
        fdask.fit(model, Xd, np.array(["a"] * 64), epochs=1, batch_size=8, client=client)
    for loss, width in (("mse", 3), ("mse", 1), ("binary_cross_entropy", 1)):
        reg = fastfc.Sequential([fastfc.Dense(10, width)], loss=loss, seed=0)
        shape = (64,) if width == 1 else (64, width)
        fdask.fit(reg, Xd, np.zeros(shape), epochs=1, batch_size=8, client=client)
        with pytest.raises(ValueError, match=f"y has {width + 1} columns, the model outputs "
                                             f"{width}"):
            fdask.fit(reg, Xd, np.zeros((64, width + 1)), epochs=1, batch_size=8,
                      client=client)
    before = model._theta.copy()
    bad = X.copy()
    bad[0, 0] = np.nan
    for val, want in [((X, y[:3]), r"validation_data: y has 3 rows but X has 64"),
                      ((bad, y), r"validation_data: X contains NaN or Inf"),
                      ((X[:, :4], y), r"validation_data: X has per-sample shape \(4,\)")]:
        with pytest.raises(ValueError, match=want):   # before any epoch
            fdask.fit(model, Xd, y, epochs=1, batch_size=8, validation_data=val,
                      client=client)
    np.testing.assert_array_equal(model._theta, before)


def test_what_is_not_a_model_is_named():
    """Checked before anything else (no client needed): None, a FrozenModel where layers
    are needed, an estimator (with the wrapper to use)."""
    X, y = data(16)
    model = mlp()
    for fn, bad, want in [
            (fdask.predict, None, "predict: model must be a fastfc Sequential or FrozenModel, "
                                  "got NoneType"),
            (fdask.predict_proba, "m", "got str"),
            (fdask.transform, model.freeze(), "transform: model must be a fastfc Sequential, "
                                              "got FrozenModel"),
            (lambda m, X: fdask.fit(m, X, y, epochs=1, batch_size=8), FitEstimator(),
             "fit: model must be a fastfc Sequential, got FitEstimator: wrap a scikit-learn "
             "style estimator in dask_ml.wrappers.ParallelPostFit")]:
        with pytest.raises(TypeError, match=re.escape(want)):
            fn(bad, X)
    np.testing.assert_array_equal(fdask.predict(model.freeze(), X).compute(), model.predict(X))


class FitEstimator:
    def get_params(self, deep=True):
        return {}


def test_fit_checks_the_rows_as_model_fit_does(client):
    """NaN in X or labels out of range, found by the workers: the ValueError model.fit
    raises, and the model keeps its weights."""
    X, y = data(64)
    model = mlp()
    before = model._theta.copy()
    X[40, 3] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or Inf"):
        fdask.fit(model, da.from_array(X, chunks=(32, 10)), y, epochs=1, batch_size=8,
                  client=client)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        fdask.fit(model, da.from_array(X[:32], chunks=(16, 10)), y[:32] + 3, epochs=1,
                  batch_size=8, client=client)
    np.testing.assert_array_equal(model._theta, before)
    assert model.epochs_done == 0


# ---------------------------------------------------------------------------- threads
def test_in_process_workers_leave_the_callers_threads(inproc_client):
    """fastfc.set_num_threads is process-wide: in-process workers' tasks must not change
    it (a value no worker would choose: one more than the cores)."""
    mine = len(os.sched_getaffinity(0)) + 1
    old = fastfc.get_num_threads()
    fastfc.set_num_threads(mine)
    try:
        X, y = data(32)
        model = mlp()
        with inproc_client.as_current():
            fdask.predict(model, da.from_array(X, chunks=(16, 10))).compute()
        assert fastfc.get_num_threads() == mine
        fdask.fit(model, da.from_array(X, chunks=(16, 10)), y, epochs=1, batch_size=8,
                  client=inproc_client)
        assert fastfc.get_num_threads() == mine
    finally:
        fastfc.set_num_threads(old)


# ---------------------------------------------------------------------------- failures
def test_killed_worker_gives_a_clear_error(client):
    """SIGKILL one worker process in the middle of an epoch: the fit fails within 60 s
    with an error naming the epoch and step, and the model keeps its weights."""
    X, y = data(400)
    model = mlp()
    before = model._theta.copy()
    victim, pid = sorted(client.run(os.getpid).items())[1]

    class KillDuringSecondEpoch:
        def on_epoch_end(self, epoch, logs):
            if epoch == 0:   # epoch 2 has 100 steps: it is running 0.5 s later
                threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()

    t0 = time.monotonic()
    with pytest.raises(fdask.DistributedFitError,
                       match=r"worker .* left the cluster in epoch 2, step \d+ of 100"):
        fdask.fit(model, da.from_array(X, chunks=(200, 10)), y, epochs=3, batch_size=4,
                  shuffle=False, callbacks=[KillDuringSecondEpoch()], client=client)
    assert time.monotonic() - t0 < 60
    np.testing.assert_array_equal(model._theta, before)
    assert model.epochs_done == 0
    client.wait_for_workers(N_WORKERS, timeout=60)   # the nanny restarts it


def test_a_hung_step_times_out(client):
    """A worker busy elsewhere (a 3 s task on its only thread) holds up the second
    epoch: step_timeout=0.5 turns that into an error instead of a wait."""
    X, y = data(100)
    model = mlp()
    busy = sorted(client.nthreads())[1]
    blockers = []

    class OccupyAWorker:
        def on_epoch_end(self, epoch, logs):
            blockers.append(client.submit(time.sleep, 3, workers=[busy], pure=False))

    with pytest.raises(fdask.DistributedFitError,
                       match=r"no result for 0.5 s in epoch 2, step 1 of 5"):
        fdask.fit(model, da.from_array(X, chunks=(50, 10)), y, epochs=2, batch_size=20,
                  callbacks=[OccupyAWorker()], client=client, step_timeout=0.5)
    blockers[0].result()
