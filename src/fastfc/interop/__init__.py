"""Weights in and out of fastfc: PyTorch, scikit-learn, Keras (plain specs) and ONNX.
Each converter imports its library only when called (the extras torch, sklearn, onnx)."""
from fastfc.interop.keras import from_keras
from fastfc.interop.onnx import from_onnx, to_onnx
from fastfc.interop.sklearn import from_sklearn
from fastfc.interop.torch import from_torch, to_torch

__all__ = ["from_torch", "to_torch", "from_sklearn", "from_keras", "to_onnx", "from_onnx"]
