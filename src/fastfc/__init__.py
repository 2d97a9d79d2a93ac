"""fastfc: fast dense (fully connected) layers for NumPy on CPUs.

The functional API (``gemm``, ``linear``, ``linear_backward``, ``dropout``,
``dropout_backward``) runs C11 + OpenMP kernels with the GIL released;
``fastfc.reference`` holds the same operations in plain NumPy.
"""
from fastfc._core import (
    ACTIVATIONS,
    dropout,
    dropout_backward,
    gemm,
    get_config,
    get_num_threads,
    linear,
    linear_backward,
    set_num_threads,
)

__version__ = "0.1.0"

__all__ = ["gemm", "linear", "linear_backward", "dropout", "dropout_backward",
           "set_num_threads", "get_num_threads", "show_config", "get_config", "ACTIVATIONS",
           "pack", "PackedWeights"]


def show_config() -> None:
    """Print the version, the ISA path in use, the CPU's ISAs, threads and block sizes."""
    cfg = get_config()
    print(f"fastfc {__version__}")
    print(f"  isa in use      : {cfg['isa']}")
    print(f"  cpu supports    : {', '.join(cfg['isas_supported'])}")
    print(f"  threads         : {cfg['threads']}")
    print(f"  openmp          : {cfg['openmp']}")
    print(f"  idle threads    : {cfg['wait_policy']}")
    for dt in ("float32", "float64"):
        blocks = cfg[f"blocks_{dt}"]
        print(f"  blocks {dt:8s}: " + " ".join(f"{k}={v}" for k, v in blocks.items()))
    print("  tuning table (FASTFC_<NAME> overrides a value):")
    for name, (value, source) in cfg["tuning"].items():
        print(f"    {name:20s} {value:>12d}  {source}")

from fastfc.packing import PackedWeights, pack  # noqa: E402
from fastfc import initializers, losses, optim  # noqa: E402
from fastfc.layers import (BatchNorm, Dense, Dropout, Flatten, GlobalAvgPool,  # noqa: E402
                           LeakyReLU, ReLU, Sigmoid, Softmax, Tanh)
from fastfc.model import FrozenModel, History, Sequential, load  # noqa: E402
from fastfc import callbacks  # noqa: E402

__all__ += ["Dense", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Dropout", "BatchNorm",
            "Flatten", "GlobalAvgPool", "Sequential", "FrozenModel", "History", "load", "optim", "losses",
            "initializers", "callbacks"]

from fastfc.interop import (from_keras, from_onnx, from_sklearn, from_torch,  # noqa: E402
                            to_onnx, to_torch)

__all__ += ["from_torch", "to_torch", "from_sklearn", "from_keras", "to_onnx", "from_onnx"]

from fastfc import threadpool as _threadpool  # noqa: E402

_threadpool.register()  # threadpoolctl sees fastfc's threads when it is installed
