"""The fit loop: nothing silent (non-finite losses and gradients), and whatever stops it
(an error in a callback, Ctrl-C) leaves the model at its last finished step."""
import signal
import warnings

import numpy as np
import pytest

import fastfc
from fastfc import optim
from fastfc.callbacks import Callback


def blobs(n=160, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)


def make(batchnorm=False, optimizer=None, dtype=np.float32):
    layers = [fastfc.Dense(6, 16, activation="relu")]
    layers += [fastfc.BatchNorm(16)] if batchnorm else []
    layers += [fastfc.Dense(16, 3)]
    return fastfc.Sequential(layers, optimizer=optimizer or optim.Adam(lr=0.01), seed=4,
                             dtype=dtype)


class Recorder(Callback):
    """The parameters after each finished step, and every hook called."""

    def __init__(self):
        self.thetas, self.calls = [], []

    def on_train_begin(self, logs=None):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch, logs=None):
        self.calls.append(f"epoch_begin {epoch}")

    def on_train_batch_begin(self, batch, logs=None):
        self.calls.append(f"batch_begin {batch}")

    def on_train_batch_gradients(self, batch, logs=None):
        self.calls.append(f"gradients {batch}")

    def on_train_batch_end(self, batch, logs=None):
        self.calls.append(f"batch_end {batch}")
        self.thetas.append(self.model._theta.copy())

    def on_epoch_end(self, epoch, logs=None):
        self.calls.append(f"epoch_end {epoch} " + " ".join(sorted(logs)))

    def on_train_end(self, logs=None):
        self.calls.append("train_end")


def poisoned(X, batch, size=32):
    """X with batch `batch` (unshuffled) so large that the forward pass overflows."""
    X = X.copy()
    X[batch * size:(batch + 1) * size] = 3e38
    return X


@pytest.mark.parametrize("batchnorm", [False, True])
def test_nonfinite_gradients_raise_naming_epoch_batch_and_layer(batchnorm):
    X, y = blobs()
    model, ref = make(batchnorm), make(batchnorm)
    ref.fit(X, y, epochs=1, batch_size=32, shuffle=False, verbose=0)   # epoch 0: fine
    for start in (0, 32):
        ref.train_on_batch(X[start:start + 32], y[start:start + 32])
    model.fit(X, y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    with np.errstate(over="ignore", invalid="ignore"), pytest.raises(FloatingPointError, match=r"fit: epoch 1, batch 2: the gradient of 'W' "
                                                 r"of Dense\(6 -> 16, relu\) at position 0 "
                                                 r"\(the first such layer\) holds NaN or Inf.*"
                                                 r"the update was not applied"):
        model.fit(poisoned(X, 2), y, epochs=1, batch_size=32, shuffle=False, verbose=0)
    np.testing.assert_array_equal(model._theta, ref._theta)    # its last finite weights
    assert model.optimizer.t == ref.optimizer.t == 7
    for bn, bn_ref in zip(model.layers, ref.layers):
        if isinstance(bn, fastfc.BatchNorm):   # the failed forward's statistics taken back
            np.testing.assert_array_equal(bn.running_mean, bn_ref.running_mean)
            np.testing.assert_array_equal(bn.running_var, bn_ref.running_var)


def test_nonfinite_gradients_warn_and_skip_the_batch():
    X, y = blobs()
    model, ref = make(), make()
    with pytest.warns(RuntimeWarning, match=r"fit: epoch 0, batch 3: .*Dense\(6 -> 16, relu\) "
                                            r"at position 0.*the batch is skipped") as caught:
        hist = model.fit(poisoned(X, 3), y, epochs=1, batch_size=32, shuffle=False,
                         verbose=0, on_nonfinite="warn")
    assert caught[0].filename == __file__      # points at the fit call
    for start in (0, 32, 64, 128):
        ref.train_on_batch(X[start:start + 32], y[start:start + 32])
    np.testing.assert_array_equal(model._theta, ref._theta)
    assert model.optimizer.t == 4 and np.isnan(hist["loss"][0])


def test_an_lr_that_overflows_the_dtype_is_refused_before_any_update():
    """lr = 1e300 is finite but Inf in float32: every weight it moves would be Inf."""
    X, y = blobs()
    for opt in (optim.SGD(lr=1e300), optim.Adam(lr=1e300)):
        model = fastfc.Sequential([fastfc.Dense(6, 8, activation="relu"),
                                   fastfc.Dense(8, 3)], optimizer=opt, seed=0)
        before = model._theta.copy()
        with pytest.raises(ValueError, match=r"lr = 1e\+300 overflows the model's float32 "
                                             r"\(largest 3\.403e\+38\)"):
            model.fit(X, y, epochs=1, batch_size=32, verbose=0)
        np.testing.assert_array_equal(model._theta, before)
        assert model.optimizer.t == 0 and model.epochs_done == 0


def test_nonfinite_ignore_applies_the_update_as_before():
    X, y = blobs()
    model = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.fit(poisoned(X, 1), y, epochs=1, batch_size=32, shuffle=False, verbose=0,
                  on_nonfinite="ignore")
    assert not np.isfinite(model._theta).all() and model.optimizer.t == 5


def test_a_nonfinite_loss_with_finite_gradients_is_named():
    X, y = blobs(32)
    model = make()

    class NaNLoss(fastfc.losses.SoftmaxCrossEntropy):
        def __call__(self, z, y, grad):
            super().__call__(z, y, grad)
            return float("nan")
    model.loss = NaNLoss()
    model._plans.clear()
    model._plan = lambda batch: None   # the loss in Python
    with pytest.raises(FloatingPointError, match=r"epoch 0, batch 0: the loss is nan; the "
                                                 r"update was not applied"):
        model.fit(X, y, epochs=1, verbose=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_fused_step_checks_the_gradients_only_under_the_guard(dtype):
    """With the guard, the fused C step's call checks the gradients as its backward ends
    (the guard reads the verdict: 0 at the poisoned batch); "ignore" checks nothing."""
    X, y = blobs()
    model = make(dtype=dtype)
    bad = X.astype(dtype)
    bad[64:96] = np.finfo(dtype).max   # batch 2: the forward overflows
    seen = []

    class Spy(Callback):
        def on_train_batch_gradients(self, batch, logs=None):
            seen.append(self.model._grads_finite)
    with pytest.warns(RuntimeWarning, match="batch 2"):
        model.fit(bad, y, epochs=1, batch_size=32, shuffle=False, verbose=0,
                  callbacks=[Spy()], on_nonfinite="warn")
    assert seen == [1, 1, 0, 1, 1] and not model._check_finite
    seen.clear()
    model.fit(X, y, epochs=1, batch_size=32, verbose=0, callbacks=[Spy()],
              on_nonfinite="ignore")
    assert seen == [-1] * 5


@pytest.mark.parametrize("hook,at,finished", [
    ("on_train_batch_begin", 3, 3), ("on_train_batch_gradients", 3, 3),
    ("on_train_batch_end", 3, 4), ("on_epoch_end", 0, 5), ("on_epoch_begin", 1, 5),
])
@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_in_a_callback_stops_fit_at_the_last_finished_step(hook, at, finished, error):
    """`finished` steps are done when the hook raises at `at` (a batch of epoch 0, or an
    epoch): the 160 samples are batches 0..4."""
    X, y = blobs()
    recorder = Recorder()
    straight = make()
    straight.fit(X, y, epochs=2, batch_size=32, verbose=0, callbacks=[recorder])

    class Raise(Callback):
        pass

    def raise_at(self, index, logs=None):
        if index == at and (hook.startswith("on_epoch") or self.model.epochs_done == 1):
            raise error("stop here")
    setattr(Raise, hook, raise_at)
    model = make()
    with pytest.raises(error, match="stop here"):
        model.fit(X, y, epochs=2, batch_size=32, verbose=0, callbacks=[Raise()])
    np.testing.assert_array_equal(model._theta, recorder.thetas[finished - 1])
    assert model.optimizer.t == finished


class InterruptedSGD(optim.SGD):
    """Ctrl-C in the middle of the third update (SGD with momentum: several NumPy calls)."""

    def update(self, params, grads, buf=None):
        if self.t == 3:
            signal.raise_signal(signal.SIGINT)
        super().update(params, grads, buf)


def test_ctrl_c_during_a_step_stops_after_the_step():
    # Python's own SIGINT handler, whatever an earlier test or library left installed
    # (failed once in a whole clean-venv run: the signal went to another handler)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_during_a_step()
    finally:
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_during_a_step():
    X, y = blobs()
    recorder = Recorder()
    make(optimizer=optim.SGD(lr=0.1, momentum=0.9)).fit(X, y, epochs=1, batch_size=32,
                                                        verbose=0, callbacks=[recorder])
    model = make(optimizer=InterruptedSGD(lr=0.1, momentum=0.9))
    with pytest.raises(KeyboardInterrupt):
        model.fit(X, y, epochs=1, batch_size=32, verbose=0)
    assert model.optimizer.t == 3
    np.testing.assert_array_equal(model._theta, recorder.thetas[2])   # the whole 3rd step
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # put back
    with pytest.raises(KeyboardInterrupt):   # outside a step: at once, as always
        signal.raise_signal(signal.SIGINT)


def test_hooks_run_in_order_and_a_callback_can_skip_an_update():
    X, y = blobs(64)
    recorder = Recorder()
    make().fit(X, y, epochs=2, batch_size=40, validation_split=0.25, verbose=0,
               callbacks=[recorder])
    epoch = ["batch_begin 0", "gradients 0", "batch_end 0"]
    assert recorder.calls == (
        ["train_begin", "epoch_begin 0"] + epoch + ["batch_begin 1", "gradients 1",
                                                    "batch_end 1",
                                                    "epoch_end 0 accuracy loss val_accuracy "
                                                    "val_loss"]
        + ["epoch_begin 1"] + epoch + ["batch_begin 1", "gradients 1", "batch_end 1",
                                       "epoch_end 1 accuracy loss val_accuracy val_loss",
                                       "train_end"])

    class Frozen(Callback):
        def on_train_batch_gradients(self, batch, logs=None):
            assert np.isfinite(logs["loss"])
            return False
    model = make()
    before = model._theta.copy()
    model.fit(X, y, epochs=2, verbose=0, callbacks=[Frozen()])
    np.testing.assert_array_equal(model._theta, before)
    assert model.optimizer.t == 0


def test_stop_training_from_a_callback():
    X, y = blobs(64)

    class StopAfterOne(Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = True
    model = make()
    hist = model.fit(X, y, epochs=5, verbose=0, callbacks=[StopAfterOne()])
    assert hist.epoch == [0] and model.epochs_done == 1
    assert len(model.fit(X, y, epochs=2, verbose=0)["loss"]) == 2   # reset by the next fit


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"on_nonfinite": "skip"}, ValueError,
     r"on_nonfinite must be one of 'raise', 'warn', 'ignore', got 'skip'"),
    ({"verbose": 3}, ValueError, r"verbose must be 0 \(silent\), 1 .* or 'auto', got 3"),
    ({"verbose": "yes"}, ValueError, "verbose must be 0"),
    ({"callbacks": Recorder()}, TypeError, "callbacks must be a list of Callback instances, "
                                           "got Recorder"),
    ({"callbacks": [print]}, TypeError, "callbacks must be fastfc.callbacks.Callback "
                                        "instances, got <built-in function print>"),
])
def test_bad_fit_arguments(kwargs, exc, match):
    X, y = blobs(20)
    model = make()
    before = model._theta.copy()
    with pytest.raises(exc, match=match):
        model.fit(X, y, **kwargs)
    np.testing.assert_array_equal(model._theta, before)


def state(model):
    """Everything that decides how a model trains on: weights, optimizer step, epoch count,
    shuffle generator, BatchNorm statistics, Dropout counters."""
    return (model._theta.copy(), model.optimizer.t, model.epochs_done,
            model._shuffle_rng.bit_generator.state["state"]["state"],
            [(l.running_mean.copy(), l.running_var.copy()) for l in model.layers
             if isinstance(l, fastfc.BatchNorm)],
            [l.calls for l in model.layers if isinstance(l, fastfc.Dropout)])


def assert_same_state(a, b):
    for x, y in zip(state(a), state(b)):
        if isinstance(x, list) and x and isinstance(x[0], tuple):
            for (m1, v1), (m2, v2) in zip(x, y):
                np.testing.assert_array_equal(m1, m2)
                np.testing.assert_array_equal(v1, v2)
        else:
            np.testing.assert_array_equal(x, y)


def make_moving(dropout_first=False):
    """A model whose training forward moves state: BatchNorm statistics, Dropout counters."""
    moving = [fastfc.BatchNorm(16), fastfc.Dropout(0.3)]
    return fastfc.Sequential([fastfc.Dense(6, 16, activation="relu")]
                             + moving[::-1 if dropout_first else 1]
                             + [fastfc.Dense(16, 3)], seed=4)


@pytest.mark.parametrize("hook", ["on_epoch_begin", "on_train_batch_begin",
                                  "on_train_batch_gradients"])
def test_a_failed_first_step_of_an_epoch_leaves_the_epoch_unstarted(hook):
    """An error before epoch 1's first step is done: the model is the one that stopped
    after epoch 0 (epoch count, shuffle, BatchNorm statistics, Dropout counters too), and
    training on trains as that one does."""
    X, y = blobs()
    done = make_moving()
    done.fit(X, y, epochs=1, batch_size=32, verbose=0)

    class Raise(Callback):
        pass

    def raise_in_epoch_1(self, *args, **kwargs):
        if self.model.epochs_done == 2:
            raise RuntimeError("stop here")
    setattr(Raise, hook, raise_in_epoch_1)
    failed = make_moving()
    with pytest.raises(RuntimeError, match="stop here"):
        failed.fit(X, y, epochs=3, batch_size=32, verbose=0, callbacks=[Raise()])
    assert_same_state(failed, done)
    for model in (failed, done):
        model.fit(X, y, epochs=1, batch_size=32, verbose=0)
    assert_same_state(failed, done)


def test_a_failed_train_on_batch_moves_nothing():
    X, y = blobs()
    model = make_moving(dropout_first=True)   # the Dropout counts the call, then BN fails
    model.fit(X, y, epochs=1, batch_size=32, verbose=0)
    before = make_moving(dropout_first=True)
    before.fit(X, y, epochs=1, batch_size=32, verbose=0)
    with pytest.raises(ValueError, match="BatchNorm"):
        model.train_on_batch(X[:1], y[:1])   # one row: BatchNorm has no batch variance
    assert_same_state(model, before)


def test_shuffle_is_a_flag():
    X, y = blobs()
    with pytest.raises(TypeError, match="shuffle must be True or False, got 'false'"):
        make().fit(X, y, epochs=1, shuffle="false", verbose=0)
