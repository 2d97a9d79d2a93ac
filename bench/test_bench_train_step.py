import pytest

from fastfc.bench import TRAIN_BATCHES, train_case
from conftest import LIBS, pick


@pytest.mark.parametrize("lib", LIBS)
@pytest.mark.parametrize("batch", TRAIN_BATCHES)
def test_train_on_batch_784_128_64_10(benchmark, lib, batch):
    fn = pick(train_case(batch), lib)
    benchmark.group = f"train step batch {batch}"
    benchmark(fn)
