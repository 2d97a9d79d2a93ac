"""Types of fastfc._core._plan: the training-step kernels (private to fastfc.losses,
fastfc.optim and fastfc.model) and MLPPlan."""
from typing import Any, Optional, Union

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

_FloatArray = NDArray[np.floating[Any]]

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
    inference: bool
    output: _FloatArray
    grad_output: _FloatArray
    check_finite: bool
    grads_finite: int
    def __new__(cls, specs: list[dict[str, Any]], batch: int, dtype: DTypeLike) -> MLPPlan: ...
    def set_stream(self, i: int, stream: Union[int, np.integer[Any]]) -> None: ...
    def forward(self, x: _FloatArray) -> _FloatArray: ...
    def backward(self, x: _FloatArray) -> None: ...
    def xent_step(self, x: _FloatArray, labels: NDArray[np.int64]) -> float: ...
