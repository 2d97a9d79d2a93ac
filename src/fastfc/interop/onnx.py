"""fastfc Sequential <-> ONNX (built with ``onnx.helper``): Gemm on 2-D inputs, MatMul +
Add for N-d ones, Relu, Tanh, Sigmoid, LeakyRelu, Softmax, BatchNormalization, Flatten and
Dropout, in inference form (opset >= 13). ONNX keeps float attributes (LeakyRelu's alpha,
BatchNormalization's epsilon) in float32: a float64 model comes back that much rounded."""
import numbers
import operator
import os

from typing import TYPE_CHECKING, Any

import numpy as np

from fastfc import layers as L
from fastfc.interop._build import (built, exportable, proba_activation, running_stats,
                                   sequential, set_params, unsupported)

if TYPE_CHECKING:
    from fastfc.model.sequential import Sequential

SUPPORTED = ("a chain of Gemm (transA=0), MatMul (+ Add of a bias), Relu, Tanh, Sigmoid, "
             "Identity, LeakyRelu, Softmax (last axis), BatchNormalization (inference, on 2-D "
             "inputs), Flatten (axis=1), Dropout (inference) with weights as initializers")
_ACTS = {"relu": "Relu", "tanh": "Tanh", "sigmoid": "Sigmoid"}


def _onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError("fastfc.to_onnx/from_onnx need onnx: pip install fastfc[onnx]") \
            from e
    return onnx


def to_onnx(model: "Sequential", opset: int = 17, logits: bool = False) -> bytes:
    """The model as a serialized ONNX ModelProto.

    Dense layers on 1-D samples are Gemm nodes, on N-d samples MatMul + Add.

    Parameters
    ----------
    model : Sequential
        Or a fitted MLPClassifier/MLPRegressor, exported as ``from_sklearn`` builds it.
    opset : int, default 17
        The ONNX operator set version of the graph, 13 to what the installed onnx knows.
    logits : bool, default False
        With a loss that applies a Softmax (softmax_cross_entropy) or Sigmoid
        (binary_cross_entropy) to the layers' outputs, the graph ends with it, so that
        "output" is predict_proba; True leaves it off.

    Returns
    -------
    bytes
        Input "input" of shape (N, *model.input_shape), output "output", in the model's
        dtype.

    Examples
    --------
    >>> import fastfc
    >>> model = fastfc.Sequential([fastfc.Dense(4, 3, activation="relu")], loss="mse")
    >>> data = fastfc.to_onnx(model)      # onnxruntime.InferenceSession(data) runs it
    """
    onnx = _onnx()
    model = exportable(model, "to_onnx")
    from onnx import TensorProto, helper, numpy_helper
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral) \
            or not 13 <= opset <= newest:
        raise ValueError(f"opset must be an int from 13 (Softmax over the last axis) to "
                         f"{newest} (the installed onnx's newest), got {opset!r}")
    opset = operator.index(opset)
    last = proba_activation(model, logits)
    elem = TensorProto.DOUBLE if model.dtype == np.float64 else TensorProto.FLOAT
    nodes, inits, cur, shape = [], [], "input", tuple(model.input_shape)

    def const(name, value):
        inits.append(numpy_helper.from_array(np.asarray(value, model.dtype), name))
        return name

    def node(op, inputs, name, **attrs):
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name

    for i, layer in enumerate(model.layers):
        kind, p = type(layer), f"l{i}"
        if kind is L.Dense:
            w = const(f"{p}_W", layer.params["W"])
            if len(shape) == 1:
                bias = [const(f"{p}_b", layer.params["b"])] if layer.use_bias else []
                cur = node("Gemm", [cur, w] + bias, f"{p}_gemm")
            else:
                cur = node("MatMul", [cur, w], f"{p}_matmul")
                if layer.use_bias:
                    cur = node("Add", [cur, const(f"{p}_b", layer.params["b"])], f"{p}_add")
            if layer.activation in _ACTS:
                cur = node(_ACTS[layer.activation], [cur], f"{p}_act")
            elif layer.activation == "leaky_relu":
                cur = node("LeakyRelu", [cur], f"{p}_act", alpha=layer.negative_slope)
        elif kind in (L.ReLU, L.Tanh, L.Sigmoid):
            cur = node({L.ReLU: "Relu", L.Tanh: "Tanh", L.Sigmoid: "Sigmoid"}[kind], [cur], p)
        elif kind is L.LeakyReLU:
            cur = node("LeakyRelu", [cur], p, alpha=layer.negative_slope)
        elif kind is L.Softmax:
            cur = node("Softmax", [cur], p, axis=-1)
        elif kind is L.Dropout:
            cur = node("Dropout", [cur, const(f"{p}_ratio", layer.p)], p)
        elif kind is L.Flatten:
            cur = node("Flatten", [cur], p, axis=1)
        elif kind is L.BatchNorm and len(shape) == 1:
            cur = node("BatchNormalization",
                       [cur, const(f"{p}_gamma", layer.params["gamma"]),
                        const(f"{p}_beta", layer.params["beta"]),
                        const(f"{p}_mean", layer.running_mean),
                        const(f"{p}_var", layer.running_var)],
                       p, epsilon=layer.eps, momentum=1 - layer.momentum)
        else:
            raise unsupported("fastfc", i, f"{layer.describe()} on samples of shape {shape}",
                              "Dense, ReLU, Tanh, Sigmoid, LeakyReLU, Softmax, Dropout, "
                              "Flatten, BatchNorm on 1-D samples")
        shape = tuple(layer.output_shape(shape))
    if last:
        node("Softmax" if last == "softmax" else "Sigmoid", [cur], "proba",
             **({"axis": -1} if last == "softmax" else {}))
    nodes[-1].output[0] = "output"      # a Sequential has a layer, each layer a node
    graph = helper.make_graph(
        nodes, "fastfc", [helper.make_tensor_value_info("input", elem, ["N", *model.input_shape])],
        [helper.make_tensor_value_info("output", elem, ["N", *shape])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="fastfc")
    onnx.checker.check_model(proto)
    return proto.SerializeToString()


def _load(onnx, source):
    if isinstance(source, onnx.ModelProto):
        return source
    if isinstance(source, (bytes, bytearray, memoryview)):
        read, what = (lambda: onnx.load_from_string(bytes(source))), "the bytes"
    elif isinstance(source, (str, os.PathLike)):
        read, what = (lambda: onnx.load(os.fspath(source))), f"{os.fspath(source)!r}"
    else:
        read = None
    if read is not None:
        from google.protobuf.message import DecodeError   # onnx's parser
        try:
            proto = read()
        except DecodeError as e:
            raise ValueError(f"from_onnx: {what} is not an ONNX model ({e})") from None
        if not proto.HasField("graph"):   # empty input parses as an empty model
            raise ValueError(f"from_onnx: {what} is not an ONNX model (no graph)")
        return proto
    raise TypeError(f"from_onnx takes bytes, a path or an onnx.ModelProto, got "
                    f"{type(source).__name__}")


def from_onnx(source: Any, loss: Any = "mse") -> "Sequential":
    """A fastfc Sequential of an ONNX model that is a chain of the supported nodes.

    Parameters
    ----------
    source : bytes, str, os.PathLike or onnx.ModelProto
    loss : str, default "mse"
        The Sequential's loss (for further training). One that applies the last
        Softmax (softmax_cross_entropy) or Sigmoid (binary_cross_entropy) itself takes
        the logits: that layer is left out, so predict_proba is the source's output.

    Returns
    -------
    Sequential
        A ValueError names the node, its index and what is supported when a node cannot
        be honoured.

    Examples
    --------
    >>> import fastfc
    >>> model = fastfc.Sequential([fastfc.Dense(4, 3, activation="relu")], loss="mse")
    >>> again = fastfc.from_onnx(fastfc.to_onnx(model))
    """
    onnx = _onnx()
    from onnx import TensorProto, helper, numpy_helper
    graph = _load(onnx, source).graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in inits]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise ValueError(f"from_onnx reads graphs of one input and one output, got "
                         f"{len(inputs)} and {len(graph.output)}")
    tensor = inputs[0].type.tensor_type
    dtypes = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64}
    if tensor.elem_type not in dtypes:
        raise ValueError(f"from_onnx: the input is of ONNX type "
                         f"{TensorProto.DataType.Name(tensor.elem_type)}; supported: FLOAT, "
                         f"DOUBLE")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim][1:]
    input_shape = tuple(dims) if dims and None not in dims else None
    rank, cur, layers, origin = len(dims), inputs[0].name, [], []
    nodes, aliases = list(graph.node), set()   # positions kept: messages name them
    for j, node in enumerate(nodes):
        # torch.onnx.export names a shared initializer again with Identity (or a Constant)
        if node.op_type == "Identity" and node.input[0] in inits:
            inits[node.output[0]] = inits[node.input[0]]
            aliases.add(j)
        elif node.op_type == "Constant" and [x.name for x in node.attribute] == ["value"]:
            inits[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
            aliases.add(j)

    def initializer(i, node, k, what):
        if len(node.input) <= k or node.input[k] not in inits:
            raise unsupported("ONNX", i, f"{node.op_type} {node.name!r}: its {what} is not an "
                              f"initializer", SUPPORTED)
        return inits[node.input[k]]

    i = 0
    while i < len(nodes):
        if i in aliases:
            i += 1
            continue
        node, at = nodes[i], i
        op, a = node.op_type, {x.name: helper.get_attribute_value(x) for x in node.attribute}
        where = f"{op} {node.name!r}"
        if not node.input or node.input[0] != cur:
            raise unsupported("ONNX", i, f"{where} does not take the previous node's output",
                              SUPPORTED)
        if op == "Identity":        # on the data path: no layer
            cur, i = node.output[0], i + 1
            continue
        if op == "Gemm":
            if a.get("transA", 0) or rank != 1:
                raise unsupported("ONNX", i, f"{where} with transA={a.get('transA', 0)} on "
                                  f"a rank-{rank + 1} input", SUPPORTED)
            w = initializer(i, node, 1, "B")
            w = (w.T if a.get("transB", 0) else w) * a.get("alpha", 1.0)
            b = initializer(i, node, 2, "C").reshape(-1) * a.get("beta", 1.0) \
                if len(node.input) > 2 and node.input[2] else None
            if b is not None and b.size == 1:
                b = np.full(w.shape[1], b[0], w.dtype)
            layer = L.Dense(w.shape[0], w.shape[1], use_bias=b is not None)
            layers.append(set_params(layer, i, "ONNX", W=w, **({} if b is None else {"b": b})))
        elif op == "MatMul":
            w = initializer(i, node, 1, "B")
            if w.ndim != 2:
                raise unsupported("ONNX", i, f"{where} with B of shape {w.shape}", SUPPORTED)
            j = next((j for j in range(i + 1, len(nodes)) if j not in aliases), len(nodes))
            b, nxt = None, nodes[j] if j < len(nodes) else None
            if nxt is not None and nxt.op_type == "Add" and nxt.input[0] == node.output[0] \
                    and len(nxt.input) > 1 and nxt.input[1] in inits:
                b = inits[nxt.input[1]]
                if b.size != w.shape[1]:
                    raise ValueError(f"ONNX layer {j} (Add {nxt.name!r}): a bias of shape "
                                     f"{b.shape} after a MatMul of {w.shape[1]} outputs")
                b, i, node = b.reshape(-1), j, nxt
            layer = L.Dense(w.shape[0], w.shape[1], use_bias=b is not None)
            layers.append(set_params(layer, at, "ONNX", W=w,
                                     **({} if b is None else {"b": b})))
        elif op in ("Relu", "Tanh", "Sigmoid"):
            layers.append({"Relu": L.ReLU, "Tanh": L.Tanh, "Sigmoid": L.Sigmoid}[op]())
        elif op == "LeakyRelu":
            slope = a.get("alpha", 0.01)
            layers.append(built(lambda: L.LeakyReLU(slope),
                                f"LeakyReLU with negative_slope {slope!r}", "ONNX", at, SUPPORTED))
        elif op == "Softmax" and a.get("axis", -1) in (-1, rank):
            layers.append(L.Softmax())
        elif op == "Flatten" and a.get("axis", 1) == 1:
            layers.append(L.Flatten())
            rank = 1
        elif op == "Dropout" and (len(node.input) < 3 or not node.input[2] or
                                  not initializer(i, node, 2, "training_mode")):
            ratio = initializer(i, node, 1, "ratio") if len(node.input) > 1 and node.input[1] \
                else 0.5
            layers.append(built(lambda: L.Dropout(float(ratio)), f"Dropout with ratio {ratio!r}",
                                "ONNX", at, SUPPORTED))
        elif op == "BatchNormalization" and rank == 1 and not a.get("training_mode", 0):
            gamma, beta, mean, var = (initializer(i, node, k, n) for k, n in
                                      enumerate(("scale", "B", "mean", "var"), 1))
            bn = built(lambda: L.BatchNorm(gamma.shape[0], momentum=1 - a.get("momentum", 0.9),
                                           eps=a.get("epsilon", 1e-5)),
                       "BatchNormalization", "ONNX", at, SUPPORTED)
            set_params(bn, i, "ONNX", gamma=gamma, beta=beta)
            running_stats(bn, i, "ONNX", mean, var)
            layers.append(bn)
        else:
            raise unsupported("ONNX", i, f"{where} with attributes {a}", SUPPORTED)
        origin.append(at)
        cur = node.output[0]
        i += 1
    if cur != graph.output[0].name:
        raise ValueError(f"from_onnx: the graph's output {graph.output[0].name!r} is not the "
                         f"last node's output {cur!r}")
    return sequential(layers, "ONNX", dtypes[tensor.elem_type], input_shape, loss, origin)
