"""The built-in callbacks: progress (verbose 0/1/2, with and without tqdm, terminal or
not), early stopping, checkpoints, history."""
import re
import sys

import numpy as np
import pytest

import fastfc
from fastfc import optim
from fastfc.callbacks import EarlyStopping, ModelCheckpoint, ProgbarLogger


def blobs(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    return X, (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)


def make(seed=0):
    return fastfc.Sequential([fastfc.Dense(4, 8, activation="relu"), fastfc.Dense(8, 3)],
                             optimizer=optim.SGD(lr=0.05), seed=seed)


@pytest.fixture
def no_tqdm(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)   # import fails


@pytest.fixture
def every_batch(monkeypatch):
    monkeypatch.setattr(ProgbarLogger, "interval", 0.0)   # draw at every batch


def test_verbose_0_and_auto_off_a_terminal_write_nothing(capsys):
    X, y = blobs()
    make().fit(X, y, epochs=2, verbose=0)
    make().fit(X, y, epochs=2)                 # "auto": capsys's stdout is no terminal
    assert capsys.readouterr() == ("", "")


def test_auto_on_a_terminal_draws_the_bar(capsys, monkeypatch, no_tqdm):
    X, y = blobs()
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    make().fit(X, y, epochs=2)
    out = capsys.readouterr().out
    assert out.count("\n") == 2 and "epoch 2/2 [========================] 200/200" in out


def test_verbose_1_plain_line(capsys, no_tqdm, every_batch):
    X, y = blobs()
    make().fit(X, y, epochs=2, batch_size=64, validation_split=0.2, verbose=1)
    out = capsys.readouterr().out
    lines = out.split("\n")
    assert len(lines) == 3 and lines[2] == ""     # one finished line per epoch
    assert re.search(r"\repoch 1/2 \[=+\.+\] 64/160 loss=\d\.\d{4} accuracy=\d\.\d{4} "
                     r"ETA \d+\.\ds", lines[0])
    final = lines[1].split("\r")[-1]
    assert re.fullmatch(r"epoch 2/2 \[=+\] 160/160 loss=\d\.\d{4} accuracy=\d\.\d{4} "
                        r"val_loss=\d\.\d{4} val_accuracy=\d\.\d{4} \d+\.\ds", final), final


def test_verbose_1_with_tqdm(capsys, every_batch):
    pytest.importorskip("tqdm", reason="the tqdm bar needs tqdm")
    X, y = blobs()
    make().fit(X, y, epochs=2, batch_size=64, verbose=1)
    out = capsys.readouterr().out
    assert "epoch 1/2" in out and "epoch 2/2" in out and "200/200" in out
    assert re.search(r"loss=\d\.\d{4} accuracy=\d\.\d{4}", out)
    assert "sample" in out          # tqdm's unit: this is its bar, not the plain line


def test_verbose_2_one_line_per_epoch(capsys):
    X, y = blobs()
    make().fit(X, y, epochs=3, verbose=2, validation_data=blobs(50, seed=1))
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for i, line in enumerate(lines, 1):
        assert re.fullmatch(rf"epoch {i}/3 - \d+\.\ds - loss=\d\.\d{{4}} accuracy=\d\.\d{{4}} "
                            rf"val_loss=\d\.\d{{4}} val_accuracy=\d\.\d{{4}}", line), line


def test_a_regression_model_shows_no_accuracy(capsys):
    X, y = blobs()
    model = fastfc.Sequential([fastfc.Dense(4, 2)], loss="mse")
    model.fit(X, X[:, :2], epochs=1, verbose=2)
    assert "accuracy" not in capsys.readouterr().out


def test_the_bar_is_closed_when_fit_stops_on_an_error(capsys, every_batch):
    pytest.importorskip("tqdm", reason="the tqdm bar needs tqdm")
    X, y = blobs()

    class Boom(fastfc.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom") as caught:
        make().fit(X, y, epochs=1, verbose=1, callbacks=[Boom()])
    out = capsys.readouterr().out    # the traceback holds the bar: closed, not collected
    assert caught.value and "epoch 1/1" in out and out.endswith("\n")


def test_early_stopping_callback_restores_the_best_epoch():
    X, y = blobs()
    Xv, yv = blobs(100, seed=1)
    yv = (yv + 1) % 3     # labels training cannot fit: val_loss rises
    model = make()
    stop = EarlyStopping(patience=2)
    hist = model.fit(X, y, epochs=40, validation_data=(Xv, yv), verbose=0, callbacks=[stop])
    best = int(np.argmin(hist["val_loss"]))
    assert hist.epochs == best + 1 + 2 and model.stop_training
    assert model.evaluate(Xv, yv)["loss"] == hist["val_loss"][best]
    # the shortcut is the same callback
    other = make()
    assert other.fit(X, y, epochs=40, validation_data=(Xv, yv), verbose=0,
                     early_stopping=2).history == hist.history
    np.testing.assert_array_equal(other._theta, model._theta)


def test_early_stopping_monitor_min_delta_and_keeping_the_last_weights():
    X, y = blobs()
    model = make()
    stop = EarlyStopping(patience=0, monitor="accuracy", min_delta=10.0,
                         restore_best_weights=False)
    hist = model.fit(X, y, epochs=5, verbose=0, callbacks=[stop])
    assert hist.epochs == 2           # nothing improves by 10: stops after the second
    last = model._theta.copy()
    assert stop.best == hist["accuracy"][0]
    np.testing.assert_array_equal(model._theta, last)
    with pytest.raises(ValueError, match=r"the monitored metric 'val_auc' is not among the "
                                       r"epoch's metrics \['accuracy', 'loss'\]"):
        make().fit(X, y, epochs=1, verbose=0, callbacks=[EarlyStopping(monitor="val_auc")])
    with pytest.raises(ValueError, match="patience must be >= 0, got -1"):
        EarlyStopping(patience=-1)
    with pytest.raises(TypeError, match="monitor must be the name of an epoch metric"):
        EarlyStopping(monitor=3)
    with pytest.raises(TypeError, match="monitor must be the name of an epoch metric"):
        ModelCheckpoint("m.npz", monitor=["loss"])


def test_a_checkpoint_template_that_does_not_format_is_named(tmp_path):
    X, y = blobs()
    model = make()
    ckpt = ModelCheckpoint(str(tmp_path / "m-{epoch}-{val_loss:.3f}.npz"))
    with pytest.raises(ValueError, match=r"filepath .*m-\{epoch\}-\{val_loss:\.3f\}\.npz.* does "
                                         r"not format with the epoch's fields \['accuracy', "
                                         r"'epoch', 'loss'\]"):
        model.fit(X, y, epochs=2, verbose=0, callbacks=[ckpt])
    assert model.epochs_done == 1 and not list(tmp_path.iterdir())


def test_model_checkpoint_every_epoch_and_best_only(tmp_path):
    X, y = blobs()
    Xv, yv = blobs(100, seed=1)
    model = make()
    every = ModelCheckpoint(tmp_path / "ckpt-{epoch:02d}-{loss:.3f}.npz")
    best = ModelCheckpoint(str(tmp_path / "best.npz"), save_best_only=True)
    seen = []

    class Keep(fastfc.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.predict_proba(Xv))
    hist = model.fit(X, y, epochs=3, validation_data=(Xv, yv), verbose=0,
                     callbacks=[every, best, Keep()])
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ckpt"))
    assert names == [f"ckpt-{e + 1:02d}-{hist['loss'][e]:.3f}.npz" for e in range(3)]
    for e, name in enumerate(names):
        np.testing.assert_array_equal(fastfc.load(tmp_path / name).predict_proba(Xv), seen[e])
    b = int(np.argmin(hist["val_loss"]))
    np.testing.assert_array_equal(fastfc.load(tmp_path / "best.npz").predict_proba(Xv),
                                  seen[b])


def test_history_is_a_callback_of_its_own():
    X, y = blobs()
    mine = fastfc.History()
    model = make()
    returned = model.fit(X, y, epochs=2, verbose=0, callbacks=[mine])
    assert mine.history == returned.history and mine.epoch == [0, 1]
    assert returned.stopped_epoch == mine.stopped_epoch == 2


@pytest.mark.parametrize("mode", ["auto", "max"])
def test_accuracies_are_better_when_higher(tmp_path, mode):
    """As in Keras: monitor="val_accuracy" keeps (and checkpoints) the most accurate epoch,
    not the least; mode="min" turns it round, a bad mode is named."""
    X, y = blobs()
    Xv, yv = blobs(100, seed=1)
    model = make()
    stop = EarlyStopping(patience=100, monitor="val_accuracy", mode=mode)
    ckpt = ModelCheckpoint(tmp_path / "best.npz", monitor="val_accuracy", save_best_only=True,
                           mode=mode)
    seen = []

    class Keep(fastfc.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(self.model.predict_proba(Xv))
    hist = model.fit(X, y, epochs=6, validation_data=(Xv, yv), verbose=0,
                     callbacks=[Keep(), stop, ckpt])
    acc = hist["val_accuracy"]
    best = int(np.argmax(acc))   # the first of the most accurate
    assert len(set(acc)) > 1 and stop.best == ckpt.best == acc[best]
    np.testing.assert_array_equal(model.predict_proba(Xv), seen[best])
    np.testing.assert_array_equal(fastfc.load(tmp_path / "best.npz").predict_proba(Xv),
                                  seen[best])
    low = EarlyStopping(patience=100, monitor="val_accuracy", mode="min")
    make().fit(X, y, epochs=6, validation_data=(Xv, yv), verbose=0, callbacks=[low])
    assert low.best == min(acc)
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max', got 'up'"):
        EarlyStopping(mode="up")


def test_stop_training_at_a_batch_ends_the_epoch_there():
    """As in Keras: the epoch ends after the batch whose callback set stop_training, its
    logs averaged over the batches run, and the validation and epoch end still run."""
    X, y = blobs()
    seen = {}

    class StopAtThree(fastfc.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen["batches"], seen["size"], seen["loss"] = batch + 1, logs["size"], logs["loss"]
            if batch == 2:
                self.model.stop_training = True
    model = make()
    hist = model.fit(X, y, epochs=5, batch_size=16, validation_data=blobs(50, seed=1),
                     verbose=0, callbacks=[StopAtThree()])
    assert hist.epochs == 1 and seen["batches"] == 3 and seen["size"] == 48
    assert hist["loss"] == [seen["loss"]] and hist["val_loss"][0] is not None
    assert model.stop_training


def test_a_checkpoint_pickled_before_modes_still_saves_the_best(tmp_path):
    """Instances from before `mode` held best = inf and no mode: the first epoch is best."""
    X, y = blobs()
    ckpt = ModelCheckpoint(tmp_path / "best.npz", monitor="accuracy", save_best_only=True)
    del ckpt.__dict__["mode"]
    ckpt.best = float("inf")
    make().fit(X, y, epochs=2, verbose=0, callbacks=[ckpt])
    assert (tmp_path / "best.npz").exists() and ckpt.best < 1.5


def test_the_plain_line_of_a_stopped_epoch_counts_the_rows_run(capsys, no_tqdm):
    X, y = blobs()

    class StopAtThree(fastfc.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.model.stop_training = batch == 2
    make().fit(X, y, epochs=2, batch_size=16, verbose=1, callbacks=[StopAtThree()])
    last = capsys.readouterr().out.rstrip("\n").split("\r")[-1]
    assert " 48/200 " in last, last
