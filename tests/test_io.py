"""save()/load() keep reading what earlier fastfc wrote: tests/data holds a model saved by
the model.py of commit 72a8584 (tests/data/make_sequential_format_1.py wrote it), with the
predictions it gave and its weights after one more epoch of training."""
import io
import json
import os
import pathlib

import numpy as np
import pytest

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


def test_a_newer_format_and_a_file_not_npz_are_named(tmp_path):
    """A file of a newer save format names it and this fastfc's version; a file that is
    not an .npz archive says so (np.load alone spoke of pickled data)."""
    model = fastfc.load(DATA / "sequential-format-1.npz")
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as data:
        arrays = {name: data[name] for name in data.files}
    config = json.loads(str(arrays["config"]))
    config["format"] = "fastfc-sequential-2"
    arrays["config"] = np.array(json.dumps(config))
    np.savez(tmp_path / "newer.npz", **arrays)
    with pytest.raises(ValueError, match=r"format 'fastfc-sequential-2', written by a newer "
                                         rf"fastfc; fastfc {fastfc.__version__} reads "
                                         r"'fastfc-sequential-1'"):
        fastfc.load(tmp_path / "newer.npz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match=r"notes.txt is not a fastfc model file \(not an "
                                         r"\.npz archive\)"):
        fastfc.load(tmp_path / "notes.txt")


def test_load_reads_a_file_object_and_names_what_it_cannot_read():
    """save() writes to a file object; load() reads one back, Sequential and FrozenModel."""
    model = fastfc.load(DATA / "sequential-format-1.npz")
    x = np.random.default_rng(0).standard_normal((5, model.input_shape[0])).astype(model.dtype)
    for saved in (model, model.freeze()):
        f = io.BytesIO()
        saved.save(f)
        f.seek(0)
        back = fastfc.load(f)
        assert type(back) is type(saved)
        np.testing.assert_array_equal(back.predict_proba(x), saved.predict_proba(x))
    with pytest.raises(ValueError, match=r"not a fastfc model file \(not an \.npz archive\)"):
        fastfc.load(io.BytesIO(b"hello"))
    with pytest.raises(TypeError, match="path must be a str, an os.PathLike or a binary file "
                                        r"object .*, got int"):
        fastfc.load(3)


def test_load_takes_bytes_paths_and_refuses_text_files_and_pipes(tmp_path):
    model = fastfc.load(DATA / "sequential-format-1.npz")
    model.save(tmp_path / "m.npz")
    back = fastfc.load(os.fsencode(tmp_path / "m.npz"))
    np.testing.assert_array_equal(back._theta, model._theta)
    with open(tmp_path / "m.npz", encoding="latin-1") as text:
        with pytest.raises(TypeError, match="binary file object open for reading and "
                                            "seekable .* got TextIOWrapper"):
            fastfc.load(text)
    r, w = os.pipe()
    with os.fdopen(r, "rb") as pipe, os.fdopen(w, "wb"):
        with pytest.raises(TypeError, match="seekable"):
            fastfc.load(pipe)


def test_a_file_whose_last_layer_the_loss_applies_again_loads_with_a_warning(tmp_path):
    """Written before Sequential refused it: the weights stay reachable, as saved."""
    model = fastfc.Sequential([fastfc.Dense(4, 3), fastfc.Softmax()], loss="mse", seed=0)
    model.loss = fastfc.losses.get("softmax_cross_entropy")
    model.save(tmp_path / "old.npz")
    with pytest.warns(UserWarning, match=r"old.npz: the last layer, Softmax, applies the "
                                         r"softmax .* Loaded as saved"):
        back = fastfc.load(tmp_path / "old.npz")
    assert type(back.loss) is type(model.loss)
    np.testing.assert_array_equal(back._theta, model._theta)


def test_a_file_without_layers_is_named(tmp_path):
    model = fastfc.load(DATA / "sequential-format-1.npz")
    model.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as data:
        arrays = {name: data[name] for name in data.files}
    config = json.loads(str(arrays["config"]))
    config["layers"] = []
    arrays["config"] = np.array(json.dumps(config))
    np.savez(tmp_path / "empty.npz", **arrays)
    with pytest.raises(ValueError, match="at least one layer"):
        fastfc.load(tmp_path / "empty.npz")
