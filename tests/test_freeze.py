"""Sequential.freeze() and the C inference pass: a frozen model predicts what its model
predicts (bit for bit without BatchNorm, within rounding with BatchNorm folded), bfloat16
freezing equals the model on bf16-rounded weights, rows do not depend on the batch, and a
frozen model pickles, saves and refuses training."""
import pickle

import numpy as np
import pytest

import fastfc
from fastfc.packing import from_bfloat16_bits, to_bfloat16_bits
from conftest import assert_close, assert_identical


def trained(layers, n_in=37, n_out=5, rows=120, seed=0, dtype=np.float32, epochs=2, **kw):
    rng = np.random.default_rng(seed)
    model = fastfc.Sequential(layers, seed=seed, dtype=dtype, **kw)
    shape = model.input_shape
    X = rng.standard_normal((rows,) + shape).astype(dtype)
    y = rng.integers(0, n_out, rows)
    model.fit(X, y, epochs=epochs, batch_size=16, verbose=0)
    return model, X, y


def mlp(n_in=37, hidden=(64, 29), n_out=5, dropout=0.0, act="relu"):
    layers, k = [], n_in
    for h in hidden:
        layers.append(fastfc.Dense(k, h, activation=act))
        if dropout:
            layers.append(fastfc.Dropout(dropout))
        k = h
    layers.append(fastfc.Dense(k, n_out))
    return layers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_frozen_model_predicts_what_the_model_predicts(dtype):
    model, X, y = trained(mlp(dropout=0.3), dtype=dtype)
    frozen = model.freeze()
    assert frozen.storage == np.dtype(dtype).name and frozen.dtype == dtype
    assert_identical(frozen.predict_proba(X), model.predict_proba(X))
    assert_identical(frozen.predict(X), model.predict(X))
    assert frozen.evaluate(X, y) == model.evaluate(X, y)
    # the C pass equals the layer-by-layer forward (Dropout is the identity in evaluation)
    assert_identical(model.predict_proba(X), model.loss.proba(model.forward(X)))
    assert isinstance(model._infer, fastfc.model.plan.InferencePlans)


def test_bfloat16_freeze_equals_the_model_on_rounded_weights():
    model, X, _ = trained(mlp(hidden=(70, 33), act="tanh"))
    frozen = model.freeze("bfloat16")
    assert frozen.storage == "bfloat16" and frozen.dtype == np.float32
    for layer in model.layers:
        if isinstance(layer, fastfc.Dense):
            layer.params["W"][...] = from_bfloat16_bits(to_bfloat16_bits(layer.params["W"]))
    assert_identical(frozen.predict_proba(X), model.predict_proba(X))


def test_batchnorm_is_folded():
    layers = [fastfc.BatchNorm(37), fastfc.Dense(37, 50), fastfc.BatchNorm(50), fastfc.ReLU(),
              fastfc.Dropout(0.2), fastfc.Dense(50, 40, activation="relu"),
              fastfc.BatchNorm(40), fastfc.Dense(40, 5), fastfc.Tanh(), fastfc.BatchNorm(5)]
    model, X, _ = trained(layers, epochs=3, input_shape=(37,))
    frozen = model.freeze()
    # into the Dense after (an input BN, a BN after an activation), into the one before,
    # and one left as a scale and shift (after the last activation)
    assert [op[0] for op in frozen._ops] == ["dense", "dense", "dense", "affine"]
    assert frozen._plans is None
    want = model.forward(X)
    got = frozen.forward(X)
    scale = np.abs(want).max() + 1
    assert_close(got, want, scale, 50, np.float32, factor=16)
    frozen64 = model.freeze("float64")
    assert_close(frozen64.forward(X), want, scale, 50, np.float32, factor=16)


def test_rows_do_not_depend_on_the_batch(keep_threads):
    model, X, _ = trained(mlp(hidden=(300, 40)), rows=70)
    for storage in ("float32", "bfloat16"):
        frozen = model.freeze(storage)
        for threads in (1, 2, 3):
            fastfc.set_num_threads(threads)
            full = frozen.forward(X)
            for i in (0, 1, 16, 17, 69):
                assert_identical(frozen.forward(X[i:i + 1])[0], full[i])
            for rows in (1, 7, 17, 70):
                assert_identical(frozen.forward(X, batch_size=rows), full)
            assert_identical(model.predict_proba(X, batch_size=13), model.predict_proba(X))


@pytest.mark.parametrize("dtype,hidden", [(np.float32, 2048), (np.float64, 1024)])
def test_hidden_rows_kept_apart_give_the_same_bits(dtype, hidden, keep_threads):
    """Hidden rows of 8 KiB (a whole number of L1 ways) crowd L1 sets: the plan keeps them a
    line apart for the next Dense, which reads them in place. The bits are the layer-by-layer
    forward's."""
    model, X, _ = trained(mlp(hidden=(hidden, hidden)), rows=70, dtype=dtype, epochs=1)
    frozen = model.freeze()
    for threads in (1, 2, 3):
        fastfc.set_num_threads(threads)
        want = model.forward(X)
        assert_identical(frozen.forward(X), want)
        assert_identical(frozen.forward(X[:9]), want[:9])
        assert_identical(model.predict_proba(X), model.loss.proba(want))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_layers_compute_as_the_fused_ones(dtype):
    """A Tanh or Sigmoid layer after a Dense gives forward() the bits that predict() and
    the frozen model get from the C plan, where it is fused into the Dense."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 20)).astype(dtype)
    for act in (fastfc.Tanh, fastfc.Sigmoid, fastfc.ReLU, lambda: fastfc.LeakyReLU(0.2)):
        model = fastfc.Sequential([fastfc.Dense(20, 16), act(), fastfc.Dense(16, 4)],
                                  loss="mse", seed=0, dtype=dtype)
        assert_identical(model.forward(X), model.predict(X))
        assert_identical(model.freeze().forward(X), model.forward(X))
        # first, and before a Softmax: no C plan, the frozen model runs op by op
        model = fastfc.Sequential([act(), fastfc.Dense(20, 4), fastfc.Softmax()], loss="mse",
                                  seed=0, dtype=dtype, input_shape=(20,))
        assert model.freeze()._plans is None
        assert_identical(model.freeze().forward(X), model.forward(X))
    # a misaligned input (a view one byte into a buffer) is computed, not refused
    raw = np.zeros(X.nbytes + 1, np.uint8)
    odd = np.ndarray(X.shape, X.dtype, buffer=raw, offset=1)
    odd[...] = X
    assert not odd.flags.aligned
    assert_identical(fastfc.Tanh().forward(odd), fastfc.Tanh().forward(X))


def test_other_layers_run_op_by_op():
    layers = [fastfc.GlobalAvgPool(), fastfc.Dense(3, 8, activation="relu"),
              fastfc.Dense(8, 4)]
    model, X, _ = trained(layers, n_out=4, input_shape=(5, 6, 3))
    frozen = model.freeze()
    assert frozen._plans is None
    assert_close(frozen.forward(X), model.forward(X), 1.0, 8, np.float32)
    layers = [fastfc.Flatten(), fastfc.Dense(12, 6, activation="sigmoid"), fastfc.Dense(6, 3)]
    model, X, _ = trained(layers, n_out=3, input_shape=(3, 4))
    frozen = model.freeze()
    assert frozen._plans is not None
    assert_identical(frozen.forward(X), model.forward(X))
    assert_identical(model.predict_proba(X), frozen.predict_proba(X))


def test_frozen_model_is_independent_pickles_and_saves(tmp_path):
    model, X, y = trained(mlp())
    for storage in ("float32", "bfloat16"):
        frozen = model.freeze(storage)
        before = frozen.predict_proba(X)
        back = pickle.loads(pickle.dumps(frozen))
        assert_identical(back.predict_proba(X), before)
        frozen.save(tmp_path / f"{storage}.npz")
        loaded = fastfc.load(tmp_path / f"{storage}.npz")
        assert isinstance(loaded, fastfc.FrozenModel) and loaded.storage == storage
        assert_identical(loaded.predict_proba(X), before)
    joblib = pytest.importorskip("joblib")
    for storage in ("float32", "bfloat16"):   # memory maps (joblib.Parallel's big arguments)
        frozen = model.freeze(storage)
        joblib.dump(frozen, tmp_path / "frozen.joblib")
        back = joblib.load(tmp_path / "frozen.joblib", mmap_mode="r")
        assert_identical(back.predict_proba(X), frozen.predict_proba(X))
    frozen = model.freeze()
    before = frozen.predict_proba(X)
    model.fit(X, y, epochs=1, verbose=0)   # training the model later changes nothing frozen
    assert_identical(frozen.predict_proba(X), before)
    assert not np.array_equal(model.predict_proba(X), before)


def test_frozen_model_refuses_training_and_bad_input():
    model, X, y = trained(mlp())
    frozen = model.freeze()
    with pytest.raises(TypeError, match="for inference"):
        frozen.fit(X, y)
    with pytest.raises(TypeError, match="must be a fastfc.Sequential"):
        fastfc.FrozenModel(X)
    assert_identical(fastfc.FrozenModel(model, "bfloat16").forward(X),
                     model.freeze("bfloat16").forward(X))
    with pytest.raises(ValueError, match="dtype must be"):
        model.freeze("int8")
    with pytest.raises(ValueError, match=r"per-sample shape \(36,\)"):
        frozen.predict(X[:, :36])
    with pytest.raises(ValueError, match="NaN"):
        frozen.predict(np.full_like(X, np.nan))
    with pytest.raises(ValueError, match="batch_size"):
        frozen.predict(X, batch_size=0)


def test_row_blocks_take_all_rows_while_activations_fit_the_l3():
    from fastfc.model.plan import _caches, row_block
    l3 = _caches()[1]
    fit = l3 // (2 * 784 * 4)
    assert row_block(fit, 784, 4) == fit and row_block(1, 784, 4) == 1
    assert row_block(fit + 1, 784, 4) == max(256, fit)
    assert row_block(10**9, 10**7, 8) == 256   # never a pass of a few rows


def test_each_prediction_is_a_new_array():
    """A batch in one block returns its own copy: the plan's output buffer is reused."""
    model, X, _ = trained(mlp())
    frozen = model.freeze()
    for run in (frozen.forward, model.predict_proba):
        first = run(X[:3])
        kept = first.copy()
        second = run(X[3:6])
        assert not np.shares_memory(first, second)
        assert_identical(first, kept)
        assert_identical(run(X[:3], batch_size=2), kept)   # in blocks: the same rows


@pytest.mark.parametrize("head", [[], [fastfc.Dense(37, 37, activation="relu")]])
def test_batchnorms_in_a_row_fold_in_their_order(head):
    """Two BatchNorms in a row are one scale and shift, applied first to last (their
    shifts do not commute): into the Dense after them."""
    layers = head + [fastfc.BatchNorm(37), fastfc.BatchNorm(37), fastfc.Dense(37, 5)]
    model, X, _ = trained(layers, epochs=2, input_shape=(37,))
    rng = np.random.default_rng(1)
    for bn in model.layers[-3:-1]:   # gamma and beta far from 1 and 0
        bn.params["gamma"][...] = rng.uniform(0.5, 2.0, 37)
        bn.params["beta"][...] = rng.uniform(-1.0, 1.0, 37)
    frozen = model.freeze("float64")
    assert [op[0] for op in frozen._ops] == ["dense"] * len(model.layers[:-3] + [1])
    want = model.forward(X)
    assert_close(frozen.forward(X), want, np.abs(want).max() + 1, 37, np.float32, factor=16)


def test_predict_holds_the_team_while_it_runs_and_lets_go(keep_threads, monkeypatch):
    """Workers spin through a prediction (its regions come tens of us apart); the hold
    ends with the call, also when the pass fails."""
    from fastfc import _core
    from fastfc.model import plan as plan_mod
    model, X, _ = trained(mlp())
    frozen = model.freeze()
    for threads, want in ((2, 1), (1, 0)):
        fastfc.set_num_threads(threads)
        seen = []
        real = plan_mod.InferencePlans.plan

        def spy(self, rows):
            seen.append(_core._hold_team(0))
            return real(self, rows)
        monkeypatch.setattr(plan_mod.InferencePlans, "plan", spy)
        frozen.forward(X)
        assert seen == [want] and _core._hold_team(0) == 0

        def broken(self, rows):
            raise MemoryError("no buffers")
        monkeypatch.setattr(plan_mod.InferencePlans, "plan", broken)
        with pytest.raises(MemoryError):
            frozen.forward(X)
        assert _core._hold_team(0) == 0
        monkeypatch.setattr(plan_mod.InferencePlans, "plan", real)
