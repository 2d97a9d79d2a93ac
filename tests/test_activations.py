"""The one activation table: its codes are the C enum's, its maths is the C kernels', and
the layers, the reference and the model's fused plan all read it."""
import ast
import os
import subprocess
import sys

import numpy as np
import pytest

import fastfc
from fastfc import activations, reference
from gradcheck import numeric_grad

NAMES = ["identity", "relu", "leaky_relu", "sigmoid", "tanh"]


def test_the_codes_are_the_c_enum_and_the_compiled_modules_mapping():
    assert list(activations.TABLE) == NAMES
    assert fastfc.ACTIVATIONS is fastfc._core.ACTIVATIONS is activations.CODES   # one table
    assert dict(activations.CODES) == {n: i for i, n in enumerate(NAMES)}
    with open(__file__.replace("tests/test_activations.py", "csrc/include/fastfc.h")) as f:
        header = f.read()
    for name, code in activations.CODES.items():
        assert f"FASTFC_ACT_{name.upper()} = {code}" in header


def test_a_table_that_disagrees_with_the_c_enum_stops_the_import():
    """Swapped codes would run sigmoid where tanh is named: fastfc refuses to import."""
    code = f"""
import importlib.util, sys, types
spec = importlib.util.spec_from_file_location("fastfc.activations", {activations.__file__!r})
table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(table)
table.CODES = types.MappingProxyType({{**table.CODES, "sigmoid": 4, "tanh": 3}})
sys.modules["fastfc.activations"] = table
import fastfc
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert run.returncode != 0
    assert "ImportError: fastfc.activations.CODES {'identity': 0, 'relu': 1, 'leaky_relu': 2, " \
           "'sigmoid': 4, 'tanh': 3} differ from enum fastfc_act" in run.stderr, run.stderr


def test_the_table_imports_only_numpy():
    """The compiled module imports its codes from it: no cycle through fastfc."""
    tree = ast.parse(open(activations.__file__).read())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported <= {"numpy", "types", "typing"}, imported


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("slope", [0.0, 0.2])
def test_derivative_from_the_output_is_the_derivative(name, slope):
    row = activations.get(name)
    rng = np.random.default_rng(4)
    z = rng.standard_normal((5, 7))
    z[np.abs(z) < 1e-3] = 0.5       # away from the kink of relu / leaky_relu
    r = rng.standard_normal(z.shape)
    y = row.forward(z, slope)
    got = row.derivative(y, r, slope)
    want = numeric_grad(lambda: float(np.sum(row.forward(z, slope) * r)), z)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_out_gives_the_same_values_and_dtype(name, dtype):
    row = activations.get(name)
    z = np.random.default_rng(1).standard_normal((3, 17)).astype(dtype)
    z[0, :3] = [np.nan, np.inf, -np.inf]
    g = np.random.default_rng(2).standard_normal(z.shape).astype(dtype)
    y = row.forward(z, 0.1)
    out = np.full_like(z, 7.0)
    assert row.forward(z, 0.1, out) is out
    np.testing.assert_array_equal(out, y)
    d = row.derivative(y, g, 0.1)
    assert row.derivative(y, g, 0.1, out) is out
    np.testing.assert_array_equal(out, d)
    assert y.dtype == d.dtype == dtype


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_the_c_kernels_compute_what_the_table_says(name):
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((9, 6)), rng.standard_normal((6, 4))
    y = fastfc.linear(x, w, activation=name, negative_slope=0.3)
    np.testing.assert_allclose(y, activations.get(name).forward(x @ w, 0.3), rtol=1e-12,
                               atol=1e-14)
    gy = rng.standard_normal(y.shape)
    gx, _, _ = fastfc.linear_backward(gy, x, w, y=y, activation=name, negative_slope=0.3)
    dz = activations.get(name).derivative(y, gy, 0.3)
    np.testing.assert_allclose(gx, dz @ w.T, rtol=1e-12, atol=1e-14)


def test_relu_gradient_is_zero_where_the_output_is_not_positive_even_for_nan():
    """The C kernels' semantics (y > 0 ? dy : 0), which the reference and the layer share."""
    y = np.array([0.0, 1.0, 0.0, np.nan])
    g = np.array([np.nan, 2.0, np.inf, 3.0])
    np.testing.assert_array_equal(activations.get("relu").derivative(y, g, 0.0),
                                  [0.0, 2.0, 0.0, 0.0])
    layer = fastfc.ReLU()
    layer.forward(np.array([-1.0, 1.0, -2.0, np.nan]))
    np.testing.assert_array_equal(layer.backward(g), [0.0, 2.0, 0.0, 0.0])
    np.testing.assert_array_equal(reference.activation_grad(g, y, "relu"), [0.0, 2.0, 0.0, 0.0])


@pytest.mark.parametrize("layer,name", [(fastfc.ReLU(), "relu"), (fastfc.Sigmoid(), "sigmoid"),
                                        (fastfc.Tanh(), "tanh"),
                                        (fastfc.LeakyReLU(0.25), "leaky_relu")])
def test_layers_and_reference_read_the_table(layer, name):
    """The reference is the table's NumPy function; a layer computes what a Dense's fused
    epilogue computes (x @ I is x: only the activation acts), within 4 eps of NumPy."""
    z = np.random.default_rng(6).standard_normal((4, 5)) * 40
    want = activations.get(name).forward(z, 0.25)
    np.testing.assert_array_equal(reference.activate(z, name, 0.25), want)
    got = layer.forward(z)
    np.testing.assert_array_equal(got, fastfc.linear(z, np.eye(5), activation=name,
                                                     negative_slope=0.25))
    np.testing.assert_allclose(got, want, rtol=4 * np.finfo(z.dtype).eps, atol=0)
    assert layer.activation == name


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="unknown activation 'gelu'; valid: 'identity', 'relu'"):
        activations.get("gelu")
    with pytest.raises(ValueError, match=r"unknown activation \['relu'\]"):
        reference.activate(np.ones(2), ["relu"])
    assert activations.get(None).name == "identity"
