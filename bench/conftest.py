"""pytest-benchmark suite: `pytest bench/` (not part of the default `pytest` run).

The cases (inputs and one callable per library) come from fastfc.bench, the same code as
`python -m fastfc bench`. Compare libraries with `--benchmark-group-by=param:shape`.
Speed is never asserted here: these are measurements.
"""
import pytest

LIBS = ["fastfc", "numpy", "torch"]


def pick(fns, lib):
    if lib not in fns:
        pytest.skip(f"{lib} is not installed")
    return fns[lib]
