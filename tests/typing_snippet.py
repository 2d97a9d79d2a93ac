"""A user's program over the public API: tests/test_typing.py checks it with
``mypy --strict`` and runs it, so the types it relies on are the ones fastfc has."""
import os
import sys
import tempfile
import warnings

import numpy as np
from numpy.typing import NDArray

import fastfc
from fastfc import optim
from fastfc.sklearn import MLPClassifier


def functional() -> float:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 5)).astype(np.float32)
    w = rng.standard_normal((5, 3)).astype(np.float32)
    b = np.zeros(3, np.float32)
    y = fastfc.linear(x, w, b, activation="relu")
    gx, gw, gb = fastfc.linear_backward(np.ones_like(y), x, w, y=y, activation="relu")
    _, gw_only, _ = fastfc.linear_backward(np.ones_like(y), x, w, compute_grad_x=False)
    c = fastfc.gemm(x, w, alpha=2.0)
    fastfc.gemm(x, w, beta=1.0, out=c)
    yd, mask = fastfc.dropout(y, 0.5, seed=1234)
    gd = fastfc.dropout_backward(np.ones_like(yd), mask, 0.5)
    kept: NDArray[np.bool_] = mask
    shapes = [gx.shape, gw.shape, gb.shape, gw_only.shape, gd.shape, kept.shape]
    return float(sum(len(s) for s in shapes))


def threads() -> int:
    before = fastfc.get_num_threads()
    fastfc.set_num_threads(1)
    isa: str = fastfc.get_config()["isa"]
    fastfc.set_num_threads(before)
    return len(isa) + fastfc.get_num_threads()


def model() -> float:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6)).astype(np.float32)
    labels = rng.integers(0, 3, 32)
    net = fastfc.Sequential([fastfc.Dense(6, 16, activation="relu"), fastfc.Dropout(0.1),
                             fastfc.BatchNorm(16), fastfc.ReLU(), fastfc.Dense(16, 3)],
                            loss="softmax_cross_entropy",
                            optimizer=optim.AdamW(lr=1e-2, schedule=optim.cosine_schedule(3)),
                            seed=0)
    net.fit(x, labels, epochs=2, batch_size=8, verbose=0)
    predicted: NDArray[np.generic] = net.predict(x)
    scores = net.evaluate(x, labels)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.npz")
        net.save(path)
        loaded = fastfc.load(path)
    assert np.array_equal(loaded.predict(x), predicted)
    binary = fastfc.Sequential([fastfc.Dense(6, 1)],
                               loss="binary_cross_entropy",
                               optimizer=optim.SGD(lr=0.1, momentum=0.9, nesterov=True,
                                                   schedule=optim.step_schedule(1, gamma=0.5)))
    binary.fit(x, (labels == 0).astype(np.float32), epochs=2, verbose=0)
    loss = scores["loss"]
    return 0.0 if loss is None else loss


def packed_and_interop() -> int:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    pw = fastfc.PackedWeights(rng.standard_normal((5, 3)).astype(np.float32))
    y = fastfc.linear(x, pw, activation="relu") + fastfc.gemm(x, fastfc.pack(pw, "bfloat16"))
    gx, _, _ = fastfc.linear_backward(np.ones_like(y), x, pw)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # three iterations do not converge: not the point
        clf.fit(x, [0, 1, 0, 1])
    net = fastfc.from_sklearn(clf)
    proto: bytes = fastfc.to_onnx(net)
    back = fastfc.from_onnx(proto)
    return len(y) + len(gx) + len(back.layers) + len(clf.predict_proba(x))


def main() -> None:
    total = functional() + threads() + model() + packed_and_interop()
    print("ok", total, file=sys.stderr)


if __name__ == "__main__":
    main()
