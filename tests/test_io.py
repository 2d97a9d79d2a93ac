"""save()/load() keep reading what earlier fastfc wrote: tests/data holds a model saved by
the model.py of commit 72a8584 (tests/data/make_sequential_format_1.py wrote it), with the
predictions it gave and its weights after one more epoch of training."""
import json
import pathlib

import numpy as np

import fastfc

DATA = pathlib.Path(__file__).parent / "data"


def test_a_file_written_before_the_model_package_loads_and_trains_on():
    with np.load(DATA / "sequential-format-1-expected.npz") as want:
        X, y, proba, theta = want["X"], want["y"], want["proba"], \
            want["theta_after_one_more_epoch"]
    model = fastfc.load(DATA / "sequential-format-1.npz")
    np.testing.assert_array_equal(model.predict_proba(X), proba)
    assert model.epochs_done == 2 and model.optimizer.t == 8
    model.fit(X, y, epochs=1, batch_size=16, verbose=0)
    np.testing.assert_array_equal(model._theta, theta)


def test_save_still_writes_that_format(tmp_path):
    model = fastfc.load(DATA / "sequential-format-1.npz")
    model.save(tmp_path / "again.npz")
    with np.load(DATA / "sequential-format-1.npz") as old, \
            np.load(tmp_path / "again.npz") as new:
        assert sorted(old.files) == sorted(new.files)
        for name in old.files:
            if name in ("config", "training"):
                assert json.loads(str(old[name])) == json.loads(str(new[name])), name
            else:
                np.testing.assert_array_equal(old[name], new[name], err_msg=name)
