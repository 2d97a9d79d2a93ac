"""Layers of a Sequential model, each a small class in the spirit of micrograd.

A layer has ``forward(x, training)`` and ``backward(grad)`` (which returns the gradient
of its input), ``params`` and ``grads`` (dicts of arrays, updated in place), and a JSON
``get_config()``. Output and input-gradient buffers are allocated once per batch shape
and reused: Dense allocates nothing per step, the others still make NumPy temporaries
(the fused C plan a Sequential of Dense, Dropout and activations trains with makes none).
"""
import warnings
from typing import Any, Callable, Optional, Union

import numpy as np

import fastfc
from fastfc import activations, initializers
from fastfc._checks import flag, integer, real, slope
from fastfc._state import Plain

RELU_FAMILY = ("relu", "leaky_relu")


class Layer(Plain):
    """Base class: no parameters, shape-preserving.

    Layers pickle and deep-copy as plain objects; a copy belongs to no model yet (the
    model it joins sets ``needs_input_grad``), and the buffers of the last call are not
    copied (the next call makes them)."""
    _not_copied = ("_owner", "needs_input_grad")
    _y = _gx = None    # the output and input-gradient buffers of the last call
    params = {}
    grads = {}
    needs_input_grad = True
    dtype = None    # the compute dtype, set by the Sequential the layer is in

    def output_shape(self, in_shape):
        return in_shape

    def param_shapes(self):
        """{name: shape} of the parameters, in the order a model keeps (and saves) them."""
        return {k: v.shape for k, v in self.params.items()}

    def init_params(self, rng, dtype):
        """Create the parameters (and zeroed gradients) with `rng`."""

    def get_config(self):
        return {}

    def describe(self):
        """A short name for summaries."""
        return type(self).__name__

    def _params(self):
        """The parameters, or a RuntimeError before they exist."""
        if not self.params:
            raise RuntimeError(f"{self.describe()} has no parameters yet: put it in a "
                               f"Sequential or call init_params(rng, dtype)")
        return self.params

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _as_float(x, dtype):
    """x as a float ndarray: in `dtype` when given, else promoted as fastfc's kernels do
    (float16 to float32, ints and bools to float64)."""
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise TypeError(f"x has dtype {x.dtype}; expected a real numeric array")
    if dtype is None:
        dtype = np.float32 if x.dtype.kind == "f" and x.dtype.itemsize <= 4 else np.float64
    return x if x.dtype == dtype else x.astype(dtype)


def _buffer(buf, shape, dtype):
    """`buf` when it already has this shape and dtype, else a new array."""
    if buf is None or buf.shape != shape or buf.dtype != dtype:
        return np.empty(shape, dtype)
    return buf


class Dense(Layer):
    """``act(x @ W + b)`` over the last axis; W has shape (in_features, out_features).

    The bias and activation run fused in ``fastfc.linear``; the backward pass is one
    ``fastfc.linear_backward`` call writing straight into the gradient buffers.

    Parameters
    ----------
    in_features, out_features : int >= 1
        The last axis of the input and of the output.
    activation : str, optional
        A name in ``fastfc.ACTIVATIONS`` (e.g. ``"relu"``), fused into the output; None is
        the identity.
    use_bias : bool
        Whether to add a bias b of shape (out_features,), initialized to zeros.
    init : str or callable, optional
        A name in ``fastfc.initializers.INITIALIZERS`` or a callable
        ``init(rng, shape, fan_in, fan_out, dtype)``; default ``"he_normal"`` after relu and
        leaky_relu, else ``"xavier_uniform"``. A zero init warns (RuntimeWarning).
    negative_slope : float >= 0
        The slope of leaky_relu for negative inputs (other activations ignore it).

    Examples
    --------
    >>> import numpy as np, fastfc
    >>> layer = fastfc.Dense(3, 2, activation="relu")
    >>> layer.init_params(np.random.default_rng(0), np.float64)
    >>> layer.forward(np.ones((4, 3))).shape
    (4, 2)
    """
    _not_copied = Layer._not_copied + ("_x", "_y", "_gx")
    _x = None   # not copied or pickled: a copy's backward needs a forward first
    _user_callables = ("_init_fn",)

    def __init__(self, in_features: int, out_features: int, activation: Optional[str] = None,
                 use_bias: bool = True, init: Union[str, Callable[..., Any], None] = None,
                 negative_slope: float = 0.01) -> None:
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"Dense: {name} must be a positive int, got {v!r}")
        if activation is not None:
            try:
                activations.get(activation)
            except ValueError as e:
                raise ValueError(f"Dense: {e}") from None
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.activation, self.use_bias = activation, flag(use_bias, "Dense: use_bias")
        self.negative_slope = slope(negative_slope, "Dense: negative_slope")
        if init is None:
            init = "he_normal" if activation in RELU_FAMILY else "xavier_uniform"
        self.init = init
        self._init_fn = initializers.get(init)
        if getattr(self._init_fn, "all_zero", False):
            warnings.warn("zero initialization: every neuron of the layer computes the same "
                          "function and receives the same gradient, so they stay identical",
                          RuntimeWarning, stacklevel=2)
        self._x = self._y = self._gx = None

    def output_shape(self, in_shape):
        if in_shape[-1] != self.in_features:
            raise ValueError(f"Dense expects {self.in_features} input features, got input "
                             f"shape {in_shape}")
        return in_shape[:-1] + (self.out_features,)

    def param_shapes(self):
        shapes = {"W": (self.in_features, self.out_features)}
        if self.use_bias:
            shapes["b"] = (self.out_features,)
        return shapes

    def init_params(self, rng, dtype):
        shape = (self.in_features, self.out_features)
        w = np.asarray(self._init_fn(rng, shape, self.in_features, self.out_features, dtype))
        if w.shape != shape:
            raise ValueError(f"{self.describe()}: init {self.init!r} returned shape {w.shape},"
                             f" expected {shape}")
        self.params = {"W": w.astype(dtype)}
        if self.use_bias:
            self.params["b"] = np.zeros(self.out_features, dtype)
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}

    def forward(self, x, training=False):
        w = self._params()["W"]
        x = _as_float(x, w.dtype)   # the output buffer has the weights' dtype
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Dense expects {self.in_features} input features, got input "
                             f"shape {x.shape}")
        self._y = _buffer(self._y, x.shape[:-1] + (self.out_features,), w.dtype)
        self._x = x
        return fastfc.linear(x, w, self.params.get("b"), activation=self.activation,
                             negative_slope=self.negative_slope, out=self._y)

    def backward(self, grad):
        if self._x is None:
            raise RuntimeError(f"{self.describe()}.backward needs a forward first")
        if self.needs_input_grad:
            self._gx = _buffer(self._gx, self._x.shape, grad.dtype)
        gb = self.grads.get("b")
        gx, _, gbias = fastfc.linear_backward(
            grad, self._x, self.params["W"], y=self._y, activation=self.activation,
            negative_slope=self.negative_slope, compute_grad_x=self.needs_input_grad,
            out=(self._gx if self.needs_input_grad else None, self.grads["W"], gb))
        return gx

    def get_config(self):
        init = self.init if isinstance(self.init, str) else None
        return {"in_features": self.in_features, "out_features": self.out_features,
                "activation": self.activation, "use_bias": self.use_bias, "init": init,
                "negative_slope": self.negative_slope}

    def describe(self):
        act = f", {self.activation}" if self.activation else ""
        return f"Dense({self.in_features} -> {self.out_features}{act})"

    def to_conv_kernel(self, height, width, channels):
        """The (height, width, channels, out) kernel of the valid convolution that equals
        this layer applied to a flattened (height, width, channels) map (C order)."""
        if height * width * channels != self.in_features:
            raise ValueError(f"to_conv_kernel: {height}x{width}x{channels} = "
                             f"{height * width * channels} != in_features {self.in_features}")
        return self._params()["W"].reshape(height, width, channels, self.out_features).copy()

    @classmethod
    def from_conv_kernel(cls, kernel, bias=None, activation=None, negative_slope=0.01):
        """A Dense equal to the valid convolution with `kernel` (h, w, c, out) over an
        (h, w, c) map, for inputs flattened in C order."""
        kernel = _as_float(kernel, None)
        if kernel.ndim != 4:
            raise ValueError(f"from_conv_kernel: kernel must be (h, w, c, out), got shape "
                             f"{kernel.shape}")
        h, w, c, out = kernel.shape
        layer = cls(h * w * c, out, activation=activation, use_bias=bias is not None,
                    negative_slope=negative_slope)
        layer.params = {"W": kernel.reshape(h * w * c, out).copy()}
        if bias is not None:
            layer.params["b"] = np.asarray(bias, kernel.dtype).reshape(out).copy()
        layer.grads = {k: np.zeros_like(v) for k, v in layer.params.items()}
        return layer


def _softmax(x, out):
    np.subtract(x, x.max(axis=-1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=-1, keepdims=True)
    return out


def _softmax_grad(y, g, out):
    np.multiply(g, y, out=out)
    out -= y * out.sum(axis=-1, keepdims=True)
    return out


class Activation(Layer):
    """An elementwise activation layer: ``activation`` names its row of
    ``fastfc.activations.TABLE``; its derivative is computed from its output."""
    activation = "identity"
    negative_slope = 0.0
    _not_copied = Layer._not_copied + ("_y", "_gx")

    def __init__(self) -> None:
        self._y = self._gx = None

    def forward(self, x, training=False):
        x = np.require(_as_float(x, self.dtype), requirements=["C_CONTIGUOUS", "ALIGNED"])
        self._y = _buffer(self._y, x.shape, x.dtype)
        # the C functions, as a Dense's fused activation and the model's C plan compute
        # them: NumPy's tanh and exp differ from them in the last bits
        return fastfc._core._act_forward(x, activations.CODES[self.activation],
                                         self.negative_slope, self._y)

    def backward(self, grad):
        self._gx = _buffer(self._gx, grad.shape, grad.dtype)
        return activations.TABLE[self.activation].derivative(self._y, grad,
                                                             self.negative_slope, self._gx)


class ReLU(Activation):
    activation = "relu"


class Sigmoid(Activation):
    activation = "sigmoid"


class Tanh(Activation):
    activation = "tanh"


class LeakyReLU(Activation):
    """Leaky ReLU: x where x >= 0, else ``negative_slope * x``.

    Parameters
    ----------
    negative_slope : float >= 0
        The slope for negative inputs.
    """
    activation = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = slope(negative_slope, "LeakyReLU: negative_slope")

    def get_config(self):
        return {"negative_slope": self.negative_slope}


class Softmax(Activation):
    """Softmax over the last axis (not elementwise: no C code, never fused)."""
    activation = None

    def forward(self, x, training=False):
        x = _as_float(x, self.dtype)
        self._y = _buffer(self._y, x.shape, x.dtype)
        return _softmax(x, self._y)

    def backward(self, grad):
        self._gx = _buffer(self._gx, grad.shape, grad.dtype)
        return _softmax_grad(self._y, grad, self._gx)


class Dropout(Layer):
    """Inverted dropout in training, identity in evaluation. The mask of call t is a pure
    function of (seed, t, element), so a seeded model trains identically every time. In a
    Sequential, the model's seed and the layer's position set `seed`.

    Parameters
    ----------
    p : float in [0, 1)
        The probability of zeroing an element; the kept ones are scaled by 1 / (1 - p).
    seed : int in [0, 2**64)
        Seeds the masks (replaced by the model's when the layer joins a Sequential).
    """
    _not_copied = Layer._not_copied + ("_y", "_gx", "_mask")

    def __init__(self, p: float = 0.5, seed: int = 0) -> None:
        p = real(p, "Dropout: p")
        if not 0 <= p < 1:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        seed = integer(seed, "Dropout: seed", 0)
        if seed >= 2**64:   # the masks' generator takes a 64-bit key
            raise ValueError(f"Dropout: seed must be in [0, 2**64), got {seed}")
        self.p, self.seed, self.calls = p, seed, 0
        self._y = self._gx = self._mask = None

    def forward(self, x, training=False):
        x = _as_float(x, self.dtype)
        if not training or self.p == 0:
            self._mask = None
            return x
        self._y = _buffer(self._y, x.shape, x.dtype)
        y, self._mask = fastfc.dropout(x, self.p, seed=self.seed, stream=self.calls, out=self._y)
        self.calls += 1
        return y

    def backward(self, grad):
        if self._mask is None:
            return grad
        return fastfc.dropout_backward(grad, self._mask, self.p)

    def get_config(self):
        return {"p": self.p, "seed": self.seed}


class BatchNorm(Layer):
    """Batch normalization over the last axis (1-d features): batch statistics in
    training, running statistics in evaluation.

    Parameters
    ----------
    num_features : int >= 1
        The size of the last axis; gamma (ones) and beta (zeros) have this shape.
    momentum : float in [0, 1]
        The weight of a training batch's statistics in the running ones:
        ``running = (1 - momentum) * running + momentum * batch`` (unbiased variance).
    eps : float > 0
        Added to the variance before its square root.
    """
    _not_copied = Layer._not_copied + ("_xhat", "_inv_std", "_batch_stats")

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) \
                or num_features < 1:
            raise ValueError(f"BatchNorm: num_features must be a positive int, got "
                             f"{num_features!r}")
        momentum, eps = real(momentum, "BatchNorm: momentum"), real(eps, "BatchNorm: eps")
        if not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm: momentum must be in [0, 1], got {momentum}")
        if not 0 < eps < np.inf:
            raise ValueError(f"BatchNorm: eps must be > 0 and finite, got {eps}")
        self.num_features, self.momentum, self.eps = int(num_features), momentum, eps
        self.running_mean = self.running_var = None

    def output_shape(self, in_shape):
        if in_shape[-1] != self.num_features:
            raise ValueError(f"BatchNorm expects {self.num_features} features, got input "
                             f"shape {in_shape}")
        return in_shape

    def param_shapes(self):
        return {"gamma": (self.num_features,), "beta": (self.num_features,)}

    def init_params(self, rng, dtype):
        self.params = {"gamma": np.ones(self.num_features, dtype),
                       "beta": np.zeros(self.num_features, dtype)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.running_mean = np.zeros(self.num_features, dtype)
        self.running_var = np.ones(self.num_features, dtype)

    def forward(self, x, training=False):
        params = self._params()
        x = _as_float(x, params["gamma"].dtype)
        if x.ndim == 0 or x.shape[-1] != self.num_features:
            raise ValueError(f"{self.describe()} expects {self.num_features} features, got "
                             f"input shape {x.shape}")
        axes = tuple(range(x.ndim - 1))
        if training:
            n = x.size // self.num_features
            if n < 2:
                raise ValueError(f"{self.describe()} in training needs more than one value "
                                 f"per feature (the batch variance), got input shape "
                                 f"{x.shape}")
            mean, var = x.mean(axis=axes), x.var(axis=axes)
            self.running_mean *= 1 - self.momentum
            self.running_mean += self.momentum * mean
            self.running_var *= 1 - self.momentum
            self.running_var += self.momentum * var * (n / (n - 1))
        else:
            mean, var = self.running_mean, self.running_var
        self._batch_stats = training
        self._inv_std = 1 / np.sqrt(var + self.eps)
        self._xhat = (x - mean) * self._inv_std
        return self._xhat * params["gamma"] + params["beta"]

    def backward(self, grad):
        axes = tuple(range(grad.ndim - 1))
        xhat, n = self._xhat, grad.size // self.num_features
        self.grads["gamma"][...] = (grad * xhat).sum(axis=axes)
        self.grads["beta"][...] = grad.sum(axis=axes)
        dxhat = grad * self.params["gamma"]
        if not self._batch_stats:   # after an evaluation forward: y is affine in x
            return dxhat * self._inv_std
        return self._inv_std / n * (n * dxhat - dxhat.sum(axis=axes)
                                    - xhat * (dxhat * xhat).sum(axis=axes))

    def get_config(self):
        return {"num_features": self.num_features, "momentum": self.momentum, "eps": self.eps}


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1*d2*...), C order."""
    _not_copied = Layer._not_copied + ("_shape",)

    def output_shape(self, in_shape):
        return (int(np.prod(in_shape)),)

    def forward(self, x, training=False):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad):
        return grad.reshape(self._shape)


class GlobalAvgPool(Layer):
    """(N, H, W, C) -> (N, C), the mean over H and W."""
    _not_copied = Layer._not_copied + ("_shape",)

    def output_shape(self, in_shape):
        if len(in_shape) != 3:
            raise ValueError(f"GlobalAvgPool expects (H, W, C) maps, got {in_shape}")
        return in_shape[-1:]

    def forward(self, x, training=False):
        if x.ndim != 4:
            raise ValueError(f"GlobalAvgPool expects (N, H, W, C) input, got shape {x.shape}")
        self._shape = x.shape
        return x.mean(axis=(1, 2))

    def backward(self, grad):
        n, h, w, c = self._shape
        return np.broadcast_to((grad / (h * w))[:, None, None, :], self._shape).copy()


LAYERS = {cls.__name__: cls for cls in (Dense, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, Dropout,
                                         BatchNorm, Flatten, GlobalAvgPool)}
