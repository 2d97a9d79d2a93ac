import pytest

from fastfc.bench import QUICK_SHAPES, backward_case
from conftest import LIBS, pick


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("shape", QUICK_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_backward_relu(benchmark, lib, shape):
    fn = pick(backward_case(*shape), lib)
    benchmark.group = f"backward float32 {'x'.join(map(str, shape))}"
    benchmark(fn)
