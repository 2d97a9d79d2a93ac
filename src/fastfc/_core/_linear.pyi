"""Types of fastfc._core._linear: gemm, linear and linear_backward."""
from typing import Any, Literal, Optional, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fastfc.packing import PackedWeights

# float32 or float64: the promoted dtype of the inputs
_FloatArray = NDArray[np.floating[Any]]
_Activation = Optional[Literal["identity", "relu", "leaky_relu", "sigmoid", "tanh"]]
_Grads = tuple[Optional[_FloatArray], Optional[_FloatArray], Optional[_FloatArray]]

def gemm(a: ArrayLike, b: ArrayLike | PackedWeights, *, trans_a: bool = False, trans_b: bool = False,
         alpha: float = 1.0, beta: float = 0.0,
         out: Optional[_FloatArray] = None) -> _FloatArray: ...
def linear(x: ArrayLike, w: ArrayLike | PackedWeights, b: Optional[ArrayLike] = None, *,
           activation: _Activation = None, out: Optional[_FloatArray] = None,
           negative_slope: float = 0.01) -> _FloatArray: ...
@overload
def linear_backward(grad_y: ArrayLike, x: ArrayLike, w: ArrayLike | PackedWeights, *,
                    y: Optional[ArrayLike] = None, activation: _Activation = None,
                    negative_slope: float = 0.01, out: Optional[_Grads] = None,
                    compute_grad_x: Literal[True] = True
                    ) -> tuple[_FloatArray, _FloatArray, _FloatArray]: ...
@overload
def linear_backward(grad_y: ArrayLike, x: ArrayLike, w: ArrayLike | PackedWeights, *,
                    y: Optional[ArrayLike] = None, activation: _Activation = None,
                    negative_slope: float = 0.01, out: Optional[_Grads] = None,
                    compute_grad_x: Literal[False]) -> tuple[None, _FloatArray, _FloatArray]: ...
@overload
def linear_backward(grad_y: ArrayLike, x: ArrayLike, w: ArrayLike | PackedWeights, *,
                    y: Optional[ArrayLike] = None, activation: _Activation = None,
                    negative_slope: float = 0.01, out: Optional[_Grads] = None,
                    compute_grad_x: bool = True
                    ) -> tuple[Optional[_FloatArray], _FloatArray, _FloatArray]: ...
def panel_width(dtype: Any) -> int: ...
def pack_panels(w: ArrayLike, out: _FloatArray) -> _FloatArray: ...
