"""Types of fastfc._core._config: the ISA path, threads and the configuration."""
from collections.abc import Sequence
from typing import Any, Union

import numpy as np
from numpy.typing import DTypeLike

_Int = Union[int, np.integer[Any]]

ISA_NAMES: tuple[str, ...]
EMULATED_ISA: str
TEST_KERNELS: bool
ISA: str
CPU_ISA: str

def set_num_threads(n: _Int) -> None: ...
def get_num_threads() -> int: ...
def get_config() -> dict[str, Any]: ...
def _wide_regions() -> int: ...
def fma_peak_gflops(dtype: DTypeLike = ...) -> float: ...
def philox4x32_10(ctr: Sequence[_Int], key: Sequence[_Int]) -> tuple[int, int, int, int]: ...
