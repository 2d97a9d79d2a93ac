"""Types of fastfc._core._dropout: dropout and dropout_backward."""
from typing import Any, Optional, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray

# float32 or float64: the promoted dtype of the inputs
_FloatArray = NDArray[np.floating[Any]]
_Int = Union[int, np.integer[Any]]

def dropout(x: ArrayLike, p: float, *, seed: _Int, stream: _Int = 0,
            out: Optional[_FloatArray] = None) -> tuple[_FloatArray, NDArray[np.bool_]]: ...
def dropout_backward(grad_y: ArrayLike, mask: NDArray[np.bool_], p: float) -> _FloatArray: ...
