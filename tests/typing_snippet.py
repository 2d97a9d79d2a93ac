"""A user's program over the public API: tests/test_typing.py checks it with
``mypy --strict`` and runs it, so the types it relies on are the ones fastfc has."""
import sys

import numpy as np
from numpy.typing import NDArray

import fastfc


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


def main() -> None:
    total = functional() + threads()
    print("ok", total, file=sys.stderr)


if __name__ == "__main__":
    main()
