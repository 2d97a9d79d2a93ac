import numpy as np
import pytest

import fastfc
from gradcheck import numeric_grad


def mlp(seed=0, dropout=0.0, dtype=np.float32, loss="softmax_cross_entropy", optimizer=None):
    layers = [fastfc.Dense(6, 16, activation="relu")]
    if dropout:
        layers.append(fastfc.Dropout(dropout))
    layers += [fastfc.Dense(16, 8, activation="tanh"), fastfc.Dense(8, 3)]
    return fastfc.Sequential(layers, loss=loss, optimizer=optimizer, seed=seed, dtype=dtype)


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[3, 0, 0, 0, 0, 0], [0, 3, 0, 0, 0, 0], [0, 0, 3, 0, 0, 0]], float)
    y = rng.integers(0, 3, n)
    return (centers[y] + rng.standard_normal((n, 6)) * 0.5).astype(np.float32), y


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "hinge", "mse"])
def test_whole_model_gradient(loss):
    model = fastfc.Sequential(
        [fastfc.Dense(4, 5, activation="sigmoid"), fastfc.BatchNorm(5), fastfc.Dense(5, 3)],
        loss=loss, seed=1, dtype=np.float64)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((7, 4))
    y = rng.integers(0, 3, 7) if loss != "mse" else rng.standard_normal((7, 3))
    y = model.loss.check_targets(y, 3, 7)

    def f():
        z = model.forward(x, training=True)
        return model.loss(z, y, np.empty_like(z))

    z = model.forward(x, training=True)
    g = np.empty_like(z)
    model.loss(z, y, g)
    model.backward(g)
    analytic = model._dtheta.copy()
    np.testing.assert_allclose(analytic, numeric_grad(f, model._theta), rtol=1e-5, atol=1e-7)


def test_fit_reduces_loss_and_learns():
    X, y = blobs()
    model = mlp()
    before = model.evaluate(X, y)["loss"]
    hist = model.fit(X, y, epochs=15, batch_size=32, verbose=0)
    assert hist["loss"][-1] < hist["loss"][0]
    after = model.evaluate(X, y)
    assert after["loss"] < before / 3 and after["accuracy"] > 0.95
    assert model.predict(X).shape == (300,)
    p = model.predict_proba(X)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-5)


def test_validation_and_history_plot(tmp_path):
    X, y = blobs()
    hist = mlp().fit(X, y, epochs=3, validation_split=0.2, verbose=0)
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(hist["val_loss"]) == 3
    path = hist.plot(tmp_path / "curves.png")
    assert path.exists() and path.stat().st_size > 1000


def test_early_stopping_restores_best():
    X, y = blobs(200)
    Xv, yv = blobs(100, seed=1)
    yv = (yv + 1) % 3   # validation labels that training cannot fit: val loss rises
    model = mlp(optimizer=fastfc.optim.SGD(lr=0.05))
    hist = model.fit(X, y, epochs=50, validation_data=(Xv, yv), early_stopping=3, verbose=0)
    assert hist.epochs < 50
    best = int(np.argmin(hist["val_loss"]))
    assert hist.epochs == best + 1 + 3
    assert model.evaluate(Xv, yv)["loss"] == pytest.approx(hist["val_loss"][best], rel=1e-5)


def test_same_seed_same_run():
    X, y = blobs()
    runs = []
    for _ in range(2):
        model = mlp(seed=7, dropout=0.3)
        model.fit(X, y, epochs=3, verbose=0)
        runs.append(model._theta.copy())
    np.testing.assert_array_equal(runs[0], runs[1])
    other = mlp(seed=8, dropout=0.3)
    other.fit(X, y, epochs=3, verbose=0)
    assert not np.array_equal(runs[0], other._theta)


def test_save_load_round_trip(tmp_path):
    X, y = blobs()
    model = fastfc.Sequential([fastfc.Dense(6, 10, activation="relu"), fastfc.BatchNorm(10),
                               fastfc.Dropout(0.1), fastfc.Dense(10, 3)], seed=3)
    model.fit(X, y, epochs=2, verbose=0)
    model.save(tmp_path / "m.npz")
    loaded = fastfc.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.summary() == model.summary()


def test_summary(capsys):
    text = mlp().summary()
    assert "Dense(6 -> 16, relu)" in text and "(None, 16)" in text
    assert f"total parameters: {6 * 16 + 16 + 16 * 8 + 8 + 8 * 3 + 3}" in text
    assert text in capsys.readouterr().out


def test_train_on_batch_float64_and_one_hot():
    X, y = blobs(64)
    model = mlp(dtype=np.float64)
    l1 = model.train_on_batch(X, np.eye(3)[y])
    for _ in range(20):
        l2 = model.train_on_batch(X, y)
    assert l2 < l1


@pytest.mark.parametrize("call,exc,match", [
    (lambda m, X, y: m.fit(X[:, :5], y, verbose=0), ValueError,
     r"X has per-sample shape \(5,\), the model expects \(6,\)"),
    (lambda m, X, y: m.fit(X, y + 5, verbose=0), ValueError, r"labels must be in \[0, 3\)"),
    (lambda m, X, y: m.fit(np.where(X > 2, np.nan, X), y, verbose=0), ValueError, "NaN"),
    (lambda m, X, y: m.fit(X[:0], y[:0], verbose=0), ValueError, "X is empty"),
    (lambda m, X, y: m.fit(X, y[:-1], verbose=0), ValueError, "y has 299 rows but X has 300"),
    (lambda m, X, y: m.train_on_batch(X[:, :4], y), ValueError, "per-sample shape"),
    (lambda m, X, y: m.evaluate(X, -y - 1), ValueError, "labels must be in"),
    (lambda m, X, y: m.predict(X.astype(complex)), TypeError, "complex"),
])
def test_bad_input(call, exc, match):
    X, y = blobs()
    with pytest.raises(exc, match=match):
        call(mlp(), X, y)


def test_bad_names():
    with pytest.raises(ValueError, match="unknown loss 'xent'; valid:"):
        fastfc.Sequential([fastfc.Dense(2, 2)], loss="xent")
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'; valid:"):
        fastfc.Sequential([fastfc.Dense(2, 2)], optimizer="lbfgs")
    with pytest.raises(ValueError, match="unknown initializer"):
        fastfc.Sequential([fastfc.Dense(2, 2, init="ones")])
    with pytest.raises(ValueError, match="input_shape is needed"):
        fastfc.Sequential([fastfc.Flatten(), fastfc.Dense(4, 2)])


def test_conv_head_model():
    rng = np.random.default_rng(0)
    maps = rng.standard_normal((20, 3, 3, 4)).astype(np.float32)
    model = fastfc.Sequential([fastfc.GlobalAvgPool(), fastfc.Dense(4, 2)], input_shape=(3, 3, 4))
    assert model.forward(maps).shape == (20, 2)
    flat = fastfc.Sequential([fastfc.Flatten(), fastfc.Dense(36, 2)], input_shape=(3, 3, 4))
    assert flat.forward(maps).shape == (20, 2)


def test_history_plot_without_matplotlib(monkeypatch, tmp_path):
    import sys
    hist = fastfc.History()
    hist.append(loss=1.0, accuracy=0.5)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match="History.plot needs matplotlib"):
        hist.plot(tmp_path / "x.png")


def _layer_by_layer(model):
    """The same model without its fused C plan (every step runs layer by layer)."""
    model._plan = lambda batch: None
    return model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse", "hinge"])
def test_fused_step_is_the_layer_by_layer_step(dtype, loss):
    """The C plan runs the same kernels on the same masks: bit-identical training, with a
    ReLU folded into the Dense before it and a LeakyReLU that stays a layer of its own."""
    def make():
        return fastfc.Sequential(
            [fastfc.Dropout(0.1), fastfc.Dense(6, 17, activation="relu"), fastfc.Dropout(0.3),
             fastfc.Dense(17, 9), fastfc.ReLU(), fastfc.Dense(9, 7, activation="tanh"),
             fastfc.LeakyReLU(0.2), fastfc.Dense(7, 3)],
            loss=loss, optimizer=fastfc.optim.Adam(lr=0.01), seed=5, dtype=dtype,
            input_shape=(6,))
    X, y = blobs(70)
    if loss == "mse":
        y = np.eye(3)[y]
    fused, plain = make(), _layer_by_layer(make())
    for start in range(0, 70, 32):   # batches of 32, 32 and 6: two plans
        xb, yb = X[start:start + 32], y[start:start + 32]
        assert fused.train_on_batch(xb, yb) == plain.train_on_batch(xb, yb)
    assert fused._plan(32) is not None and fused._plan(6) is not None
    np.testing.assert_array_equal(fused._theta, plain._theta)
    hist_f = fused.fit(X, y, epochs=2, batch_size=16, verbose=0)
    hist_p = plain.fit(X, y, epochs=2, batch_size=16, verbose=0)
    assert hist_f.history == hist_p.history
    np.testing.assert_array_equal(fused._theta, plain._theta)


@pytest.mark.parametrize("act", [fastfc.Sigmoid, fastfc.Tanh])
def test_fused_step_with_smooth_activation_layers(act):
    """Sigmoid/Tanh layers run in C with libm's exp/tanh, not NumPy's: equal to rounding."""
    def make():
        return fastfc.Sequential([fastfc.Dense(6, 8), act(), fastfc.Dropout(0.2),
                                  act(), fastfc.Dense(8, 3)], seed=1, dtype=np.float64)
    X, y = blobs(64)
    fused, plain = make(), _layer_by_layer(make())
    for _ in range(3):
        assert fused.train_on_batch(X, y) == pytest.approx(plain.train_on_batch(X, y), rel=1e-12)
    np.testing.assert_allclose(fused._theta, plain._theta, rtol=1e-12, atol=1e-14)


def test_models_without_a_fused_path_run_layer_by_layer():
    X, y = blobs(40)
    for layers in ([fastfc.Dense(6, 5), fastfc.BatchNorm(5), fastfc.Dense(5, 3)],
                   [fastfc.Dense(6, 3), fastfc.Softmax()]):
        model = fastfc.Sequential(layers, loss="mse" if len(layers) == 2 else
                                  "softmax_cross_entropy", seed=0)
        assert model._plan(40) is None
        target = np.eye(3)[y] if len(layers) == 2 else y
        assert np.isfinite(model.train_on_batch(X, target))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 7, 17, 65, 100_003])
def test_all_finite_finds_every_nan_and_inf(dtype, n):
    """The C check train_on_batch runs on X: each non-finite value, anywhere, is found."""
    from fastfc import _kernels
    x = np.random.default_rng(n).standard_normal(n).astype(dtype)
    x[0] = np.finfo(dtype).max
    assert _kernels._all_finite(x) and _kernels._all_finite(x[:0].copy())
    for bad in (np.nan, np.inf, -np.inf):
        for pos in {0, n // 2, n - 1}:
            y = x.copy()
            y[pos] = bad
            assert not _kernels._all_finite(y), (bad, pos)
