"""Types of the compiled boundary fastfc._kernels (the implementation is _kernels.pyx)."""
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Optional, Union, overload

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

# float32 or float64: the promoted dtype of the inputs
_FloatArray = NDArray[np.floating[Any]]
_ActivationName = Literal["identity", "relu", "leaky_relu", "sigmoid", "tanh"]
_Activation = Optional[_ActivationName]
_Int = Union[int, np.integer[Any]]

# configuration and threads
ISA_NAMES: tuple[str, ...]
EMULATED_ISA: str
ISA: str
CPU_ISA: str

def set_num_threads(n: _Int) -> None: ...
def get_num_threads() -> int: ...
def get_config() -> dict[str, Any]: ...
def _wide_regions() -> int: ...
def fma_peak_gflops(dtype: DTypeLike = ...) -> float: ...
def philox4x32_10(ctr: Sequence[_Int], key: Sequence[_Int]) -> tuple[int, int, int, int]: ...

# argument checks
ACTIVATIONS: Mapping[str, int]

# gemm, linear, linear_backward
def gemm(a: ArrayLike, b: ArrayLike, *, trans_a: bool = False, trans_b: bool = False,
         alpha: float = 1.0, beta: float = 0.0,
         out: Optional[_FloatArray] = None) -> _FloatArray: ...
def linear(x: ArrayLike, w: ArrayLike, b: Optional[ArrayLike] = None, *,
           activation: _Activation = None, out: Optional[_FloatArray] = None,
           negative_slope: float = 0.01) -> _FloatArray: ...
@overload
def linear_backward(grad_y: ArrayLike, x: ArrayLike, w: ArrayLike, *,
                    y: Optional[ArrayLike] = None, activation: _Activation = None,
                    negative_slope: float = 0.01,
                    out: Optional[tuple[Optional[_FloatArray], Optional[_FloatArray],
                                        Optional[_FloatArray]]] = None,
                    compute_grad_x: Literal[True] = True) -> tuple[_FloatArray, _FloatArray,
                                                                   _FloatArray]: ...
@overload
def linear_backward(grad_y: ArrayLike, x: ArrayLike, w: ArrayLike, *,
                    y: Optional[ArrayLike] = None, activation: _Activation = None,
                    negative_slope: float = 0.01,
                    out: Optional[tuple[Optional[_FloatArray], Optional[_FloatArray],
                                        Optional[_FloatArray]]] = None,
                    compute_grad_x: Literal[False]) -> tuple[None, _FloatArray, _FloatArray]: ...
@overload
def linear_backward(grad_y: ArrayLike, x: ArrayLike, w: ArrayLike, *,
                    y: Optional[ArrayLike] = None, activation: _Activation = None,
                    negative_slope: float = 0.01,
                    out: Optional[tuple[Optional[_FloatArray], Optional[_FloatArray],
                                        Optional[_FloatArray]]] = None,
                    compute_grad_x: bool = True) -> tuple[Optional[_FloatArray], _FloatArray,
                                                          _FloatArray]: ...

# dropout
def dropout(x: ArrayLike, p: float, *, seed: _Int, stream: _Int = 0,
            out: Optional[_FloatArray] = None) -> tuple[_FloatArray, NDArray[np.bool_]]: ...
def dropout_backward(grad_y: ArrayLike, mask: NDArray[np.bool_], p: float) -> _FloatArray: ...

# training-step kernels (private to fastfc.losses, fastfc.optim and fastfc.model)
def _softmax_xent(z: _FloatArray, labels: ArrayLike, grad: Optional[_FloatArray] = None,
                  prob: Optional[_FloatArray] = None, grad_scale: float = 1.0) -> float: ...
def _labels_in_range(labels: NDArray[np.int64], n: int) -> bool: ...
def _all_finite(x: _FloatArray) -> bool: ...
def _adam_update(p: _FloatArray, g: _FloatArray, m: _FloatArray, v: _FloatArray, lr: float,
                 beta1: float, beta2: float, eps: float, weight_decay: float,
                 decoupled: bool, step: int) -> None: ...

class MLPPlan:
    batch: int
    n_in: int
    n_out: int
    output: _FloatArray
    grad_output: _FloatArray
    def __new__(cls, specs: list[dict[str, Any]], batch: int, dtype: DTypeLike) -> MLPPlan: ...
    def set_stream(self, i: int, stream: _Int) -> None: ...
    def forward(self, x: _FloatArray) -> _FloatArray: ...
    def backward(self, x: _FloatArray) -> None: ...
    def xent_step(self, x: _FloatArray, labels: NDArray[np.int64]) -> float: ...
