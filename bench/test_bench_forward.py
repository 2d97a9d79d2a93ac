import numpy as np
import pytest

from fastfc.bench import QUICK_SHAPES, forward_case
from conftest import LIBS, pick


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("shape", QUICK_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
def test_forward_relu(benchmark, lib, shape, dtype):
    fn = pick(forward_case(*shape, dtype=dtype), lib)
    benchmark.group = f"forward {dtype.__name__} {'x'.join(map(str, shape))}"
    benchmark(fn)
