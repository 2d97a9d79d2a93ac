# cython: language_level=3, cdivision=True
"""The training-step kernels of the model API (fastfc.losses, fastfc.optim) and the C plan
of a model's layers (fastfc.model)."""
import numpy as np
cimport numpy as cnp
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t

from fastfc._core.capi cimport *
from libc.stdlib cimport calloc, free
from fastfc._core._args cimport (
    _F32, _is_native, _dtype, _empty2, _activation_code, _slope, _check_p, _check_seed)
from fastfc._core._config cimport num_threads

cnp.import_array()

# Private helpers of the model API (fastfc.losses, fastfc.optim): they trust their caller
# for shapes but still refuse what would make C read or write out of bounds.

cdef int _require(object a, str name, int typenum, bint contiguous,
                  bint writeable=True) except -1:
    if type(a) is not np.ndarray or not _is_native(a, typenum) or (writeable and not
            cnp.PyArray_ISWRITEABLE(<cnp.ndarray>a)) or not \
            cnp.PyArray_ISALIGNED(<cnp.ndarray>a) or (contiguous and not
            cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a)):
        raise TypeError(f"{name} must be a" + (" writeable," if writeable else "n") +
                        f" aligned, native {_dtype(typenum)} ndarray" +
                        (" (C-contiguous)" if contiguous else ""))
    return 0


def _softmax_xent(z, labels, grad=None, prob=None, double grad_scale=1.0):
    """Summed softmax cross-entropy of 2-D logits z for int64 labels; writes
    (softmax - onehot) * grad_scale into grad and softmax into prob when given."""
    if type(z) is not np.ndarray or z.ndim != 2:
        raise ValueError("z must be a 2-D ndarray")
    cdef int dt = cnp.PyArray_TYPE(<cnp.ndarray>z)
    if dt != cnp.NPY_FLOAT and dt != cnp.NPY_DOUBLE:
        raise TypeError(f"z must be float32 or float64, got {z.dtype}")
    if z.strides[1] != z.itemsize or z.strides[0] % z.itemsize or not _is_native(z, dt) \
            or not cnp.PyArray_ISALIGNED(<cnp.ndarray>z):
        z = np.array(z, dtype=_dtype(dt), order="C")   # a copy: native, aligned, rows in C order
    cdef int64_t m = z.shape[0], n = z.shape[1]
    labels = np.require(labels, np.int64, ["C_CONTIGUOUS", "ALIGNED"])
    if labels.shape != (m,):
        raise ValueError(f"labels has shape {labels.shape}, expected ({m},)")
    for name, a in (("grad", grad), ("prob", prob)):
        if a is not None:
            _require(a, name, dt, True)
            if a.shape != (m, n):
                raise ValueError(f"{name} has shape {a.shape}, expected {(m, n)}")
    cdef void *pz = cnp.PyArray_DATA(<cnp.ndarray>z)
    cdef int64_t rs = z.strides[0] // z.itemsize
    cdef int64_t *pl = <int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels)
    cdef void *pg = NULL if grad is None else cnp.PyArray_DATA(<cnp.ndarray>grad)
    cdef void *pp = NULL if prob is None else cnp.PyArray_DATA(<cnp.ndarray>prob)
    cdef double total
    if dt == cnp.NPY_FLOAT:
        with nogil:
            total = fastfc_ssoftmax_xent(m, n, <float *>pz, rs, pl, <float>grad_scale,
                                         <float *>pg, <float *>pp)
    else:
        with nogil:
            total = fastfc_dsoftmax_xent(m, n, <double *>pz, rs, pl, grad_scale,
                                         <double *>pg, <double *>pp)
    if total == -1 and m > 0 and (labels.min() < 0 or labels.max() >= n):
        raise ValueError(f"labels must be in [0, {n}), got values in "
                         f"[{labels.min()}, {labels.max()}]")
    return total


def _labels_in_range(labels, int64_t n):
    """Whether every value of a 1-D C-contiguous int64 array is in [0, n): one pass, where
    min() and max() are two NumPy calls."""
    if type(labels) is not np.ndarray or labels.dtype != np.int64 or labels.ndim != 1 or \
            not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>labels) or \
            not cnp.PyArray_ISALIGNED(<cnp.ndarray>labels):
        raise TypeError("labels must be a 1-D C-contiguous aligned int64 ndarray")
    cdef const int64_t *p = <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels)
    cdef int64_t i, size = labels.shape[0]
    cdef bint ok = True
    with nogil:
        for i in range(size):
            ok &= (<uint64_t>p[i]) < (<uint64_t>n)   # a negative label wraps past n
    return ok


def _act_forward(x, int act, double slope, out):
    """out = act(x) elementwise with the C kernels' functions (those of linear's epilogue
    and of a model's C plan), for C-contiguous arrays of one float dtype and size."""
    cdef int dt = cnp.NPY_DOUBLE if getattr(x, "dtype", None) == np.float64 else cnp.NPY_FLOAT
    _require(x, "x", dt, True, False)
    _require(out, "out", dt, True)
    if act < FASTFC_ACT_IDENTITY or act > FASTFC_ACT_TANH:
        raise ValueError(f"act must be a code of fastfc.ACTIVATIONS, got {act}")
    if out.size != x.size:
        raise ValueError(f"out has {out.size} elements, x {x.size}")
    cdef int64_t n = x.size
    cdef const void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef void *po = cnp.PyArray_DATA(<cnp.ndarray>out)
    cdef int nt = num_threads()
    with nogil:
        if dt == cnp.NPY_FLOAT:
            fastfc_sact_forward(nt, n, <const float *>px, act, <float>slope, <float *>po)
        else:
            fastfc_dact_forward(nt, n, <const double *>px, act, slope, <double *>po)
    return out


def _all_finite(x):
    """Whether a C-contiguous float32/float64 ndarray holds no NaN and no Inf."""
    if type(x) is not np.ndarray or not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>x) or \
            not cnp.PyArray_ISALIGNED(<cnp.ndarray>x):
        raise TypeError("x must be a C-contiguous aligned ndarray")
    cdef int dt = cnp.PyArray_TYPE(<cnp.ndarray>x)
    if (dt != cnp.NPY_FLOAT and dt != cnp.NPY_DOUBLE) or cnp.PyArray_ISBYTESWAPPED(x):
        raise TypeError(f"x must be native float32 or float64, got {x.dtype}")
    cdef int64_t n = x.size
    cdef const void *p = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef int nt = num_threads(), ok
    with nogil:
        if dt == cnp.NPY_FLOAT:
            ok = fastfc_sall_finite(nt, n, <const float *>p)
        else:
            ok = fastfc_dall_finite(nt, n, <const double *>p)
    return bool(ok)


def _adam_update(p, g, m, v, double lr, double beta1, double beta2, double eps,
                 double weight_decay, bint decoupled, int64_t step):
    """One in-place Adam/AdamW step over flat, C-contiguous buffers of one dtype."""
    cdef int dt = cnp.PyArray_TYPE(<cnp.ndarray>p) if type(p) is np.ndarray else -1
    if dt != cnp.NPY_FLOAT and dt != cnp.NPY_DOUBLE:
        raise TypeError("p must be a float32 or float64 ndarray")
    for name, a in (("p", p), ("g", g), ("m", m), ("v", v)):
        _require(a, name, dt, True)
        if a.size != p.size:
            raise ValueError(f"{name} has {a.size} elements, p has {p.size}")
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    cdef int64_t n = p.size
    cdef void *pp = cnp.PyArray_DATA(<cnp.ndarray>p)
    cdef void *pg = cnp.PyArray_DATA(<cnp.ndarray>g)
    cdef void *pm = cnp.PyArray_DATA(<cnp.ndarray>m)
    cdef void *pv = cnp.PyArray_DATA(<cnp.ndarray>v)
    cdef int nt = num_threads()
    if dt == cnp.NPY_FLOAT:
        with nogil:
            fastfc_sadam(nt, n, <float *>pp, <float *>pg, <float *>pm, <float *>pv, lr, beta1,
                         beta2, eps, weight_decay, decoupled, step)
    else:
        with nogil:
            fastfc_dadam(nt, n, <double *>pp, <double *>pg, <double *>pm, <double *>pv, lr,
                         beta1, beta2, eps, weight_decay, decoupled, step)


# ---------------------------------------------------------------- fused MLP passes

_LAYER_KINDS = {"dense": FASTFC_LAYER_DENSE, "dropout": FASTFC_LAYER_DROPOUT,
                "act": FASTFC_LAYER_ACT}


cdef void *_data_of(object a, str name, int typenum, tuple shape,
                    bint writeable=True) except NULL:
    """The data of a C-contiguous native ndarray of this dtype and shape (writeable
    unless told)."""
    _require(a, name, typenum, True, writeable)
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    return cnp.PyArray_DATA(<cnp.ndarray>a)


cdef class MLPPlan:
    """The layers of a model as C structs over buffers allocated once, for the fused
    forward/backward passes of a training step (private to fastfc.model).

    ``specs`` lists the layers in order: ``{"kind": "dense", "w", "b", "gw", "gb", "act",
    "slope"}`` (b and gb may be None), ``{"kind": "dropout", "features", "p", "seed"}`` or
    ``{"kind": "act", "features", "act", "slope"}``. The plan owns every activation, mask
    and input-gradient buffer; ``output`` is the last layer's and ``grad_output`` the
    buffer for the gradient of the loss with respect to it.

    An inference plan (``gw`` None in every dense spec) runs ``forward`` only; its dense
    ``w`` may be the uint16 bits of bfloat16 weights, or a PackedWeights (fastfc.pack).

    With ``check_finite`` set, ``backward`` and ``xent_step`` check the Dense layers'
    gradients for NaN and Inf as they are made (the GEMM scans each block of dW it writes,
    in L1; db after it), and set
    ``grads_finite`` (1 or 0; -1 when not checked): fit's non-finite guard reads it."""
    cdef fastfc_layer *L
    cdef int n
    cdef int typenum
    cdef readonly bint inference
    cdef readonly int64_t batch, n_in, n_out
    cdef readonly object output, grad_output
    cdef list _keep
    cdef public bint check_finite
    cdef readonly int grads_finite
    cdef int _nonfinite   # every Dense layer's flag while check_finite (fastfc_layer.nonfinite)

    def __cinit__(self, list specs, int64_t batch, dtype):
        self.n = len(specs)
        self.grads_finite = -1
        if self.n == 0 or batch < 1:
            raise ValueError("MLPPlan needs layers and batch >= 1")
        self.typenum = cnp.NPY_FLOAT if np.dtype(dtype) == _F32 else cnp.NPY_DOUBLE
        self.batch = batch
        self.L = <fastfc_layer *>calloc(self.n, sizeof(fastfc_layer))
        if self.L == NULL:
            raise MemoryError()
        self._keep = []
        cdef int i, t = self.typenum
        cdef fastfc_layer *l
        cdef int64_t features = -1, ld
        self.inference = any(sp["kind"] == "dense" and sp.get("gw") is None for sp in specs)
        if self.inference and any(sp["kind"] == "dense" and sp.get("gw") is not None
                                  for sp in specs):
            raise ValueError("MLPPlan: give gw for every dense layer (training) or none "
                             "(inference)")
        for i, spec in enumerate(specs):
            l = &self.L[i]
            l.kind = _LAYER_KINDS[spec["kind"]]
            if l.kind == FASTFC_LAYER_DENSE:
                w = spec["w"]
                l.in_, l.out = w.shape
                if self.inference and type(w) is not np.ndarray and hasattr(w, "storage"):
                    w = w._data   # PackedWeights: floats or bfloat16 bits, maybe in panels
                if self.inference and w.ndim == 3:
                    bits = type(w) is np.ndarray and w.dtype == np.uint16
                    if bits and (t != cnp.NPY_FLOAT or not w.flags.c_contiguous or
                                 not w.flags.aligned):
                        raise TypeError("MLPPlan: bfloat16 panels are C-contiguous and "
                                        "compute in float32")
                    if not bits:
                        _require(w, "w", t, True, False)
                    if w.shape[1] != l.in_ or w.shape[0] * w.shape[2] < l.out:
                        raise ValueError(f"MLPPlan: panels {w.shape} do not hold weights "
                                         f"({l.in_}, {l.out})")
                    if bits:
                        l.wh = <const uint16_t *>cnp.PyArray_DATA(<cnp.ndarray>w)
                    else:
                        l.wp = cnp.PyArray_DATA(<cnp.ndarray>w)
                    l.wnr = <int>w.shape[2]
                elif self.inference and type(w) is np.ndarray and w.dtype == np.uint16:
                    if t != cnp.NPY_FLOAT or not w.flags.c_contiguous:
                        raise TypeError("MLPPlan: bfloat16 weights are C-contiguous and "
                                        "compute in float32")
                    l.wh = <const uint16_t *>cnp.PyArray_DATA(<cnp.ndarray>w)
                else:
                    l.w = _data_of(w, "w", t, (l.in_, l.out), not self.inference)
                if spec["b"] is not None:
                    l.b = _data_of(spec["b"], "b", t, (l.out,), not self.inference)
                if not self.inference:
                    l.gw = _data_of(spec["gw"], "gw", t, (l.in_, l.out))
                    if spec["b"] is not None:
                        l.gb = _data_of(spec["gb"], "gb", t, (l.out,))
                self._keep += [w, spec.get("gw"), spec["b"], spec.get("gb")]
            else:
                l.in_ = l.out = spec["features"]
                if l.kind == FASTFC_LAYER_DROPOUT:
                    l.p = _check_p(spec["p"], "MLPPlan")
                    l.seed = _check_seed(spec["seed"], "seed", "MLPPlan")
            if features >= 0 and l.in_ != features:
                raise ValueError(f"layer {i} takes {l.in_} features, the one before gives "
                                 f"{features}")
            features = l.out
            if l.kind != FASTFC_LAYER_DROPOUT:
                l.act = _activation_code(spec["act"], "MLPPlan")
                l.slope = _slope(spec.get("slope", 0.01), "MLPPlan")
            ld = l.out
            if self.inference and l.kind == FASTFC_LAYER_DENSE and i + 1 < self.n and \
                    specs[i + 1]["kind"] == "dense":   # the next Dense reads these rows in place
                ld = fastfc_srows_ld(l.out) if t == cnp.NPY_FLOAT else fastfc_drows_ld(l.out)
            y = _empty2(batch, ld, t)
            l.y = cnp.PyArray_DATA(y)
            l.ldy = ld
            self._keep.append(y)
            y = y[:, :l.out]
            if l.kind == FASTFC_LAYER_DROPOUT:
                mask = np.empty((batch, l.in_), np.uint8)
                l.mask = <uint8_t *>cnp.PyArray_DATA(<cnp.ndarray>mask)
                self._keep.append(mask)
            if l.kind == FASTFC_LAYER_DENSE and i > 0 and not self.inference:
                gx = _empty2(batch, l.in_, t)
                l.gx = cnp.PyArray_DATA(gx)
                self._keep.append(gx)
            self.output = y
        self.n_in, self.n_out = self.L[0].in_, features
        self.grad_output = _empty2(batch, features, t)

    def __dealloc__(self):
        free(self.L)

    cdef void _arm_check(self) noexcept:
        """Before a backward: the Dense layers' gradients checked as they are made (the GEMM
        scans each block of dW it writes, in L1) when check_finite, else not at all."""
        cdef int i
        cdef int *flag = &self._nonfinite if self.check_finite else NULL
        self._nonfinite = 0
        for i in range(self.n):
            if self.L[i].kind == FASTFC_LAYER_DENSE:
                self.L[i].nonfinite = flag

    cdef int _checked(self) noexcept nogil:
        """grads_finite after a backward: whether every Dense layer's dW and db are finite
        (-1 without check_finite)."""
        if not self.check_finite:
            return -1
        return 0 if self._nonfinite else 1

    def set_stream(self, int i, stream):
        """The counter word of dropout layer i's masks for the next forward pass."""
        if not 0 <= i < self.n:
            raise IndexError(f"MLPPlan.set_stream: layer {i} out of range for a plan of "
                             f"{self.n} layers")
        if self.L[i].kind != FASTFC_LAYER_DROPOUT:
            raise ValueError(f"MLPPlan.set_stream: layer {i} is not a dropout layer")
        self.L[i].stream = _check_seed(stream, "stream", "MLPPlan.set_stream")

    cdef const void *_input(self, x) except NULL:
        if type(x) is not np.ndarray or not _is_native(x, self.typenum) or \
                not cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>x) or \
                not cnp.PyArray_ISALIGNED(<cnp.ndarray>x):
            raise TypeError(f"x must be a C-contiguous aligned native {_dtype(self.typenum)} "
                            f"ndarray")
        if x.shape != (self.batch, self.n_in):
            raise ValueError(f"x has shape {x.shape}, expected {(self.batch, self.n_in)}")
        return cnp.PyArray_DATA(<cnp.ndarray>x)

    def forward(self, x):
        """Training-mode forward pass; returns ``output``."""
        cdef const void *px = self._input(x)
        cdef int nt = num_threads(), rc
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                rc = fastfc_smlp_forward(nt, self.batch, <const float *>px, self.n, self.L)
            else:
                rc = fastfc_dmlp_forward(nt, self.batch, <const double *>px, self.n, self.L)
        if rc == -2:
            raise RuntimeError("MLPPlan: weights packed for another kernel path; pack again")
        if rc:
            raise MemoryError("fastfc: out of memory for the GEMM pack buffers")
        return self.output

    cdef int _trains(self) except -1:
        if self.inference:
            raise RuntimeError("MLPPlan: an inference plan has no gradients")
        return 0

    def backward(self, x):
        """Gradients of every parameter from ``grad_output`` (consumed) after ``forward(x)``."""
        self._trains()
        cdef const void *px = self._input(x)
        cdef void *pg = cnp.PyArray_DATA(<cnp.ndarray>self.grad_output)
        cdef int nt = num_threads(), rc
        self._arm_check()
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                rc = fastfc_smlp_backward(nt, self.batch, <const float *>px, <float *>pg,
                                          self.n, self.L)
            else:
                rc = fastfc_dmlp_backward(nt, self.batch, <const double *>px, <double *>pg,
                                          self.n, self.L)
            self.grads_finite = self._checked() if rc == 0 else -1
        if rc:
            raise MemoryError("fastfc: out of memory for the GEMM pack buffers")

    def xent_step(self, x, labels):
        """forward, mean softmax cross-entropy against int64 labels, backward; the loss."""
        self._trains()
        cdef const void *px = self._input(x)
        if type(labels) is not np.ndarray or labels.dtype != np.int64 or \
                labels.shape != (self.batch,) or not labels.flags.c_contiguous or \
                not labels.flags.aligned:
            raise TypeError(f"labels must be a C-contiguous aligned int64 array of shape "
                            f"({self.batch},)")
        cdef const int64_t *pl = <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>labels)
        cdef void *pg = cnp.PyArray_DATA(<cnp.ndarray>self.grad_output)
        cdef int nt = num_threads(), rc
        cdef double loss = 0
        self._arm_check()
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                rc = fastfc_smlp_xent_step(nt, self.batch, <const float *>px, pl, <float *>pg,
                                           self.n, self.L, &loss)
            else:
                rc = fastfc_dmlp_xent_step(nt, self.batch, <const double *>px, pl,
                                           <double *>pg, self.n, self.L, &loss)
            self.grads_finite = self._checked() if rc == 0 else -1
        if rc == -2:
            raise ValueError(f"labels must be in [0, {self.n_out}), got values in "
                             f"[{labels.min()}, {labels.max()}]")
        if rc:
            raise MemoryError("fastfc: out of memory for the GEMM pack buffers")
        return loss

