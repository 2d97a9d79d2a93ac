import pytest

from fastfc.bench import dropout_case
from conftest import pick


@pytest.mark.parametrize("lib", ["fastfc", "numpy", "numpy_f32rng", "torch"])
def test_dropout_4m(benchmark, lib):
    fn = pick(dropout_case(4 * 1024 * 1024), lib)
    benchmark.group = "dropout 4M float32"
    benchmark(fn)
