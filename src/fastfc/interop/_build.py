"""What the converters share: the unsupported-layer error and a Sequential from layers
whose parameters are set (checked against each other's shapes before anything is built)."""
import numpy as np

import fastfc
from fastfc import layers as layers_mod
from fastfc import losses
from fastfc.model.sequential import applied_twice


def unsupported(source, index, what, supported):
    """The ValueError for a layer/op (or an attribute of one) fastfc cannot honour."""
    return ValueError(f"{source} layer {index} ({what}) is not supported; supported: "
                      f"{supported}")


def built(make, what, source, index, supported):
    """make(): a layer from the source's settings, or the ValueError naming the layer and
    the setting fastfc refuses (a dropout rate of 1, a negative slope)."""
    try:
        return make()
    except (TypeError, ValueError) as e:
        raise unsupported(source, index, f"{what}: {e}", supported) from None


def set_params(layer, index, source, **arrays):
    """Give `layer` its parameters (copies, in its dtype later), or a ValueError naming
    the layer when a shape is not the one it needs."""
    want = layer.param_shapes()
    for name, value in arrays.items():
        value = np.array(value, copy=True)
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{source} layer {index} ({layer.describe()}): {name} has dtype "
                            f"{value.dtype}; expected real numbers")
        if value.shape != want[name]:
            raise ValueError(f"{source} layer {index} ({layer.describe()}): {name} has shape "
                             f"{value.shape}, expected {want[name]}")
        arrays[name] = value
    layer.params = arrays
    return layer


def running_stats(bn, index, source, mean, var):
    """Set a BatchNorm's running statistics, checking their shapes."""
    for name, value in (("running mean", mean), ("running variance", var)):
        if np.shape(value) != (bn.num_features,):
            raise ValueError(f"{source} layer {index} (BatchNorm): {name} has shape "
                             f"{np.shape(value)}, expected ({bn.num_features},)")
    bn.running_mean, bn.running_var = np.array(mean, copy=True), np.array(var, copy=True)


def sequential(layers, source, dtype, input_shape=None, loss="mse", origin=None):
    """A Sequential of `layers` (parameters set), or a ValueError naming the first layer
    whose input does not fit the one before it (by its index in the source, origin[i]
    for layers[i]); nothing is built then."""
    try:
        fn = losses.get(loss)
    except (TypeError, ValueError):   # Sequential names it below
        fn = None
    if layers and not isinstance(layers[-1], layers_mod.Dense) and applied_twice(layers[-1], fn):
        # the loss applies it: predict_proba would apply it twice, training on probabilities
        layers, origin = layers[:-1], origin and origin[:-1]
    if not layers:
        raise ValueError(f"{source}: there are no layers to convert")
    if input_shape is None:
        if not isinstance(layers[0], layers_mod.Dense):
            raise ValueError(f"{source}: the first layer is not a Dense/Linear, so the input "
                             f"shape is unknown: pass input_shape= (per sample)")
        input_shape = (layers[0].in_features,)
    shape = tuple(input_shape)
    for i, layer in enumerate(layers):
        try:
            shape = tuple(layer.output_shape(shape))
        except ValueError as e:
            where = i if origin is None else origin[i]
            raise ValueError(f"{source} layer {where} ({layer.describe()}): {e}") from None
    # running statistics set before are cast to the model dtype by Sequential
    return fastfc.Sequential(layers, loss=loss, input_shape=tuple(input_shape), dtype=dtype)


def float_dtype(dtype):
    """float64 stays float64; anything else (float16, bfloat16, float32) is float32."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def proba_activation(model, logits):
    """What predict_proba applies after the layers ("softmax", "sigmoid"), which an export
    appends so that its output is predict_proba's; None when `logits` or for the other
    losses (their outputs are the layers')."""
    if not isinstance(logits, (bool, np.bool_)):
        raise TypeError(f"logits must be True or False, got {logits!r}")
    if logits:
        return None
    return {losses.SoftmaxCrossEntropy: "softmax",
            losses.SigmoidBinaryCrossEntropy: "sigmoid"}.get(type(model.loss))


def exportable(model, caller):
    """The Sequential `caller` exports: `model`, or the network of a fitted MLP (as
    from_sklearn builds it, output activation included); else a TypeError."""
    if isinstance(model, fastfc.Sequential):
        return model
    if getattr(model, "coefs_", None) is not None and hasattr(model, "out_activation_"):
        from fastfc.interop.sklearn import from_sklearn
        return from_sklearn(model)
    hint = ("; export the Sequential it was frozen from" if isinstance(model, fastfc.FrozenModel)
            else "")
    raise TypeError(f"{caller}: model must be a fastfc Sequential or a fitted "
                    f"MLPClassifier/MLPRegressor, got {type(model).__name__}{hint}")
