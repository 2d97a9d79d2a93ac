import re

import numpy as np
import pytest

from fastfc import losses
from gradcheck import numeric_grad


@pytest.fixture
def rng():
    return np.random.default_rng(5)


def targets(name, rng, n, k):
    if name in ("softmax_cross_entropy", "hinge"):
        return rng.integers(0, k, n)
    if name == "binary_cross_entropy":
        return rng.integers(0, 2, (n, k)).astype(float)
    return rng.standard_normal((n, k))


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "binary_cross_entropy", "mse", "hinge"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_values_and_gradients_in_float32_match_float64(rng, name, dtype):
    """The model's default dtype runs the fused C loss in float32: its value and gradient
    must be float64's within float32 rounding."""
    loss = losses.get(name)
    z = (rng.standard_normal((33, 7)) * 3).astype(dtype)
    y = loss.check_targets(targets(name, rng, 33, 7), 7, 33)
    g64, g = np.empty(z.shape), np.empty(z.shape, dtype)
    want = loss(z.astype(np.float64), y, g64)
    got = loss(z, y, g)
    tol = 50 * float(np.finfo(dtype).eps)
    assert got == pytest.approx(want, rel=tol, abs=tol)
    np.testing.assert_allclose(g, g64, rtol=tol, atol=tol * np.abs(g64).max())


def test_soft_label_cross_entropy_gradient(rng):
    """Probability rows that do not sum to 1 (label smoothing done loosely): the gradient
    is (sum_j y_j) p - y, checked by central differences."""
    loss = losses.get("softmax_cross_entropy")
    z = rng.standard_normal((6, 4))
    y = loss.check_targets(rng.random((6, 4)) * 2, 4, 6)
    grad = np.empty_like(z)
    loss(z, y, grad)
    num = numeric_grad(lambda: loss(z, y, np.empty_like(z)), z)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "binary_cross_entropy", "mse", "hinge"])
def test_loss_gradients(rng, name):
    loss = losses.get(name)
    z = rng.standard_normal((6, 4)) * 2
    y = loss.check_targets(targets(name, rng, 6, 4), 4, 6)
    grad = np.empty_like(z)
    loss(z, y, grad)
    num = numeric_grad(lambda: loss(z, y, np.empty_like(z)), z)
    np.testing.assert_allclose(grad, num, rtol=1e-5, atol=1e-7)


def test_softmax_cross_entropy_values_and_one_hot(rng):
    loss = losses.get("softmax_cross_entropy")
    z = rng.standard_normal((5, 3))
    y = np.array([0, 2, 1, 1, 0])
    lse = np.log(np.exp(z).sum(1))
    want = np.mean(lse - z[np.arange(5), y])
    assert loss(z, y, np.empty_like(z)) == pytest.approx(want, rel=1e-12)
    onehot = np.eye(3)[y]
    g1, g2 = np.empty_like(z), np.empty_like(z)
    assert loss(z, loss.check_targets(onehot, 3, 5), g2) == pytest.approx(want, rel=1e-12)
    loss(z, y, g1)
    np.testing.assert_allclose(g1, g2, atol=1e-15)
    # stable for huge logits
    big = np.array([[1000.0, 0.0, -1000.0]])
    g = np.empty_like(big)
    assert loss(big, np.array([2]), g) == pytest.approx(2000.0)
    assert np.isfinite(g).all()


def test_binary_cross_entropy_is_stable():
    loss = losses.get("binary_cross_entropy")
    z = np.array([[800.0], [-800.0]])
    y = np.array([[0.0], [1.0]])
    g = np.empty_like(z)
    assert loss(z, y, g) == pytest.approx(800.0)
    np.testing.assert_allclose(g, [[0.5], [-0.5]])


def test_hinge_value():
    loss = losses.get("hinge")
    z = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    y = np.array([0, 1, 2])   # the CS231n example: losses 2.9, 0, 12.9
    assert loss(z, y, np.empty_like(z)) == pytest.approx((2.9 + 0 + 12.9) / 3)


def test_bad_names_and_targets():
    with pytest.raises(ValueError, match="unknown loss 'l1'; valid: softmax_cross_entropy"):
        losses.get("l1")
    ce = losses.get("softmax_cross_entropy")
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\), got values in \[0, 3\]"):
        ce.check_targets(np.array([0, 3]), 3, 2)
    with pytest.raises(ValueError, match="y has 3 rows but X has 2"):
        ce.check_targets(np.array([0, 1, 2]), 3, 2)
    with pytest.raises(ValueError, match="non-integer"):
        ce.check_targets(np.array([0.5, 1.0]), 3, 2)


@pytest.mark.parametrize("n", [1, 7, 65, 1000])
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.uint64, np.float64])
def test_every_label_out_of_range_is_found(n, dtype):
    """The one-pass range check: a bad label anywhere, of any integer or float dtype, is
    refused with the range the caller gave; labels in range pass unchanged."""
    ce = losses.get("softmax_cross_entropy")
    y = (np.arange(n) % 10).astype(dtype)
    np.testing.assert_array_equal(ce.check_targets(y, 10, n), np.arange(n) % 10)
    bads = [10, 255] + ([-1] if np.dtype(dtype).kind in "if" else []) + \
        ([-(2**40)] if dtype in (np.int64, np.float64) else []) + \
        ([2**64 - 1, 2**63] if dtype is np.uint64 else []) + \
        ([1e30, -1e30] if dtype is np.float64 else [])
    for bad in bads:
        for at in {0, n // 2, n - 1}:
            yb = y.copy()
            yb[at] = bad
            with pytest.raises(ValueError, match=r"labels must be in \[0, 10\), got values in "
                               rf"\[{re.escape(str(yb.min()))}, {re.escape(str(yb.max()))}\]"):
                ce.check_targets(yb, 10, n)


@pytest.mark.parametrize("name,y", [
    ("mse", np.array([[0.0, np.nan], [1.0, 2.0]])),
    ("mse", np.array([0.0, np.inf])),
    ("binary_cross_entropy", np.array([[0.0, np.nan], [1.0, 0.0]])),   # [0, 1] check misses NaN
    ("binary_cross_entropy", np.array([[0.0, 1.0], [-np.inf, 0.0]])),
    ("softmax_cross_entropy", np.array([[0.0, np.nan], [1.0, 0.0]])),
])
def test_non_finite_targets(name, y):
    n_out = 2 if y.ndim == 2 else 1
    with pytest.raises(ValueError, match="y contains NaN or Inf"):
        losses.get(name).check_targets(y, n_out, 2)


def test_target_rows_and_shapes():
    ce = losses.get("softmax_cross_entropy")
    with pytest.raises(ValueError, match=r"one-hot or probability rows of y must be >= 0, "
                                         r"got -0.5"):
        ce.check_targets(np.array([[1.5, -0.5], [0.0, 1.0]]), 2, 2)
    for name in ("softmax_cross_entropy", "hinge", "mse", "binary_cross_entropy"):
        with pytest.raises(ValueError, match="y must have one row per sample, got the scalar 1"):
            losses.get(name).check_targets(1, 1, 1)
    labels = np.arange(12, dtype=np.int64).reshape(6, 2)[:, 0] % 3
    got = ce.check_targets(labels, 3, 6)
    assert got.flags.c_contiguous and got.dtype == np.int64
    np.testing.assert_array_equal(got, labels)
