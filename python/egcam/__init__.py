"""egcam from Python: Grad-CAM-family saliency maps (above all Expected Grad-CAM) of ONNX image
classifiers, computed by the egcam library (libegcam.so) on the CPU or a GPU, with NumPy arrays
in and out. The maps are those of `egcam explain` bit for bit (the same library does the work).

    import egcam
    model = egcam.Model("resnet50.onnx")
    x = egcam.load_images(["cat.jpg", "dog.png"], model, preset="torchvision")  # (2,3,224,224)
    ex = egcam.Explainer(model, "expected-gradcam", samples=32, device="cuda", precision="mixed")
    r = ex.explain(x)               # r.maps (2,224,224) float32 in [0,1], r.classes, r.scores
    egcam.save_overlay("cat_cam.png", "cat.jpg", r.maps[0], preset="torchvision")
    ev = egcam.Evaluator(model, device="cuda")    # the metrics of `egcam sweep`, any maps
    ev.curves(x, r.maps)["deletion"]              # deletion AUCs (n,)

The library is found at $EGCAM_LIBRARY (a path to libegcam.so), beside this package, in the
build/ folder of the source tree this package sits in (tools/setup.sh and tools/build.sh make
it), or, installed by `cmake --install`, in the libraries' folder (PREFIX/lib/libegcam.so for
the module in PREFIX/lib/egcam/python). Failures raise egcam.Error, whose message names the file, option or layer and the reason;
its `status` says the kind ("io", "argument", "format", "device", ...). Method names and
options are those of the command line and docs/USER_GUIDE.md; docs/PYTHON.md has the details.
"""
import ctypes
import os
import sys
import threading
import time
import weakref

import numpy as np

__all__ = ["Error", "Model", "from_torch", "Explainer", "Explanation", "FileResult", "Evaluator",
           "load_images", "empty_pinned", "is_pinned", "overlay", "save_image",
           "save_overlay", "sensitivity", "sparseness", "entropy", "pointing_game",
           "energy_pointing", "relevance_rank", "METHODS"]

METHODS = ("gradcam", "gradcampp", "xgradcam", "hirescam", "layercam", "scorecam",
           "smooth-gradcam", "integrated-gradcam", "expected-gradcam", "expected-gradcampp",
           "expected-xgradcam", "expected-hirescam", "expected-layercam")


class Error(RuntimeError):
    """A failure: its message names the file, option or layer and the reason; status is the
    library's word for the kind ("argument", "io", "format", "unsupported", "shape",
    "out-of-memory", "device", "internal")."""

    def __init__(self, status, message):
        super().__init__(message or status)
        self.status = status
        self.message = message


# ---- the C types of the public headers (include/egcam/*.h) ----
_MAX_DIMS = 8


class _Shape(ctypes.Structure):
    _fields_ = [("ndim", ctypes.c_int), ("d", ctypes.c_int64 * _MAX_DIMS)]


class _LayerInfo(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("node", ctypes.c_char_p), ("op", ctypes.c_char_p),
                ("shape", _Shape), ("is_candidate", ctypes.c_int), ("is_auto", ctypes.c_int)]


class _Image(ctypes.Structure):
    _fields_ = [("w", ctypes.c_int), ("h", ctypes.c_int), ("rgb", ctypes.POINTER(ctypes.c_uint8))]


class _Options(ctypes.Structure):
    _fields_ = [("method", ctypes.c_int), ("layer", ctypes.c_char_p), ("preset", ctypes.c_int),
                ("score", ctypes.c_int), ("samples", ctypes.c_int), ("baselines", ctypes.c_int),
                ("baseline_file", ctypes.c_char_p), ("uniform_count", ctypes.c_int),
                ("noise", ctypes.c_float), ("alpha", ctypes.c_int), ("combine", ctypes.c_int),
                ("seed", ctypes.c_uint64), ("batch", ctypes.c_int),
                ("plan_file", ctypes.c_char_p), ("precision", ctypes.c_int),
                ("max_device_bytes", ctypes.c_size_t), ("samples_tol", ctypes.c_float),
                ("samples_round", ctypes.c_int)]


class _CamResult(ctypes.Structure):
    _fields_ = [("cls", ctypes.c_int), ("score", ctypes.c_float), ("image_id", ctypes.c_uint64),
                ("samples", ctypes.c_int), ("raw", ctypes.POINTER(ctypes.c_float)),
                ("map", ctypes.POINTER(ctypes.c_float))]


class _InfidOptions(ctypes.Structure):
    _fields_ = [("patch", ctypes.c_int), ("black", ctypes.c_float * 3), ("samples", ctypes.c_int),
                ("sigma", ctypes.c_float), ("seed", ctypes.c_uint64)]


class _SensOptions(ctypes.Structure):
    _fields_ = [("radius", ctypes.c_float), ("samples", ctypes.c_int), ("seed", ctypes.c_uint64)]


class _SensResult(ctypes.Structure):
    _fields_ = [("max_sens", ctypes.c_float), ("avg_sens", ctypes.c_float),
                ("kept", ctypes.c_int), ("excluded", ctypes.c_int)]


_P = ctypes.c_void_p
_F = ctypes.POINTER(ctypes.c_float)
# name: (result type, argument types); every egc_status function returns c_int
_SIGS = {
    "egc_version": (ctypes.c_char_p, []),
    "egc_status_name": (ctypes.c_char_p, [ctypes.c_int]),
    "egc_last_error": (ctypes.c_char_p, []),
    "egc_clear_error": (None, []),
    "egc_model_load": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(_P)]),
    "egc_model_load_sized": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
                                            ctypes.POINTER(_P)]),
    "egc_model_destroy": (None, [_P]),
    "egc_model_input_chw": (None, [_P] + [ctypes.POINTER(ctypes.c_int)] * 3),
    "egc_model_num_classes": (ctypes.c_int, [_P]),
    "egc_model_num_layers": (ctypes.c_int, [_P]),
    "egc_model_layer": (ctypes.c_int, [_P, ctypes.c_int, ctypes.POINTER(_LayerInfo)]),
    "egc_model_layer_tokens": (ctypes.c_int, [_P, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                              ctypes.POINTER(ctypes.c_int),
                                              ctypes.POINTER(ctypes.c_int)]),
    "egc_model_layer_channels_last": (ctypes.c_int, [_P, ctypes.c_int]),
    "egc_model_input_channels_last": (ctypes.c_int, [_P]),
    "egc_model_output_softmax_removed": (ctypes.c_int, [_P]),
    "egc_session_create": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
                                          ctypes.POINTER(_P)]),
    "egc_session_destroy": (None, [_P]),
    "egc_session_forward": (ctypes.c_int, [_P, _F, ctypes.c_int, _F]),
    "egc_session_device": (ctypes.c_char_p, [_P]),
    "egc_host_alloc": (ctypes.c_int, [ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(_P)]),
    "egc_host_free": (None, [_P]),
    "egc_host_pinned": (ctypes.c_int, [_P]),
    "egc_image_load": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(_Image)]),
    "egc_image_free": (None, [ctypes.POINTER(_Image)]),
    "egc_image_save": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(_Image), ctypes.c_int]),
    "egc_preset_parse": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]),
    "egc_preprocess_channels": (ctypes.c_int, [ctypes.POINTER(_Image), ctypes.c_int,
                                               ctypes.c_int, ctypes.c_int, ctypes.c_int, _F]),
    "egc_preset_geometry": (ctypes.c_int, [ctypes.POINTER(_Image), ctypes.c_int, ctypes.c_int,
                                           ctypes.c_int, ctypes.POINTER(_Image)]),
    "egc_preset_crop_box": (ctypes.c_int, [ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                           ctypes.c_int, ctypes.c_int, _F]),
    "egc_colormap_parse": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]),
    "egc_overlay": (ctypes.c_int, [ctypes.POINTER(_Image), _F, ctypes.c_int, ctypes.c_int,
                                   ctypes.c_int, ctypes.c_float, ctypes.POINTER(_Image)]),
    "egc_overlay_box": (ctypes.c_int, [ctypes.POINTER(_Image), _F, ctypes.c_int, ctypes.c_int,
                                       _F, ctypes.c_int, ctypes.c_float,
                                       ctypes.POINTER(_Image)]),
    "egc_precision_parse": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]),
    "egc_method_parse": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]),
    "egc_method_name": (ctypes.c_char_p, [ctypes.c_int]),
    "egc_score_name": (ctypes.c_char_p, [ctypes.c_int]),
    "egc_baselines_name": (ctypes.c_char_p, [ctypes.c_int]),
    "egc_alpha_name": (ctypes.c_char_p, [ctypes.c_int]),
    "egc_combine_name": (ctypes.c_char_p, [ctypes.c_int]),
    "egc_preset_name": (ctypes.c_char_p, [ctypes.c_int]),
    "egc_precision_name": (ctypes.c_char_p, [ctypes.c_int]),
    "egc_explain_options_default": (None, [ctypes.POINTER(_Options)]),
    "egc_explainer_create": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.POINTER(_Options),
                                            ctypes.POINTER(_P)]),
    "egc_explainer_destroy": (None, [_P]),
    "egc_explainer_options": (ctypes.POINTER(_Options), [_P]),
    "egc_explainer_samples": (ctypes.c_int, [_P]),
    "egc_explainer_layer": (ctypes.c_char_p, [_P]),
    "egc_explainer_rows": (ctypes.c_int, [_P]),
    "egc_explainer_geometry": (None, [_P] + [ctypes.POINTER(ctypes.c_int)] * 4),
    "egc_explainer_device_bytes": (ctypes.c_size_t, [_P]),
    "egc_explainer_device": (ctypes.c_char_p, [_P]),
    "egc_evaluator_create_ex": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_int, ctypes.c_size_t,
                                               ctypes.POINTER(_P)]),
    "egc_evaluator_destroy": (None, [_P]),
    "egc_evaluator_logits": (ctypes.c_int, [_P, _F, ctypes.c_int, _F]),
    "egc_curve_steps": (ctypes.c_int, [ctypes.c_int, ctypes.c_int]),
    "egc_metric_curves": (ctypes.c_int, [_P, _F, _F, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                         ctypes.c_int, _F, _F, _F, _F]),
    "egc_infidelity_options_default": (None, [ctypes.c_int, ctypes.POINTER(_InfidOptions)]),
    "egc_metric_infidelity": (ctypes.c_int, [_P, _F, _F, ctypes.c_int,
                                             ctypes.POINTER(ctypes.c_int),
                                             ctypes.POINTER(_InfidOptions), _F]),
    "egc_metric_infidelity_gaussian": (ctypes.c_int, [_P, _F, _F, ctypes.c_int,
                                                      ctypes.POINTER(ctypes.c_int),
                                                      ctypes.POINTER(_InfidOptions), _F, _F]),
    "egc_sensitivity_options_default": (None, [ctypes.POINTER(_SensOptions)]),
    "egc_metric_sensitivity": (ctypes.c_int, [_P, _F, _F, ctypes.POINTER(ctypes.c_int),
                                              ctypes.c_int, ctypes.POINTER(_SensOptions),
                                              ctypes.POINTER(_SensResult)]),
    "egc_pointing_game": (ctypes.c_int, [_F, ctypes.POINTER(ctypes.c_uint8), ctypes.c_int,
                                         ctypes.c_int, ctypes.c_float,
                                         ctypes.POINTER(ctypes.c_int)]),
    "egc_energy_pointing": (ctypes.c_float, [_F, ctypes.POINTER(ctypes.c_uint8), ctypes.c_int]),
    "egc_relevance_rank": (ctypes.c_int, [_F, ctypes.POINTER(ctypes.c_uint8), ctypes.c_int, _F]),
    "egc_sparseness": (ctypes.c_int, [_F, ctypes.c_int, _F]),
    "egc_complexity": (ctypes.c_float, [_F, ctypes.c_int]),
    "egc_explainer_run": (ctypes.c_int, [_P, _F, ctypes.c_int, ctypes.POINTER(ctypes.c_int),
                                         ctypes.POINTER(_CamResult)]),
}

# The enumerations without a parse function in the library: name -> value, checked against
# the library's own names when it is loaded.
_SCORES = {"default": -1, "logit": 0, "softmax": 1}
_BASELINES = {"black": 0, "blur": 1, "uniform": 2, "self": 3, "file": 4}
_ALPHAS = {"uniform": 0, "grid": 1, "stratified": 2}
_COMBINES = {"default": -1, "A": 0, "B": 1, "C": 2}
_NOISE_DEFAULT = -1.0


def _find_library():
    env = os.environ.get("EGCAM_LIBRARY")
    if env:
        return env
    here = os.path.dirname(os.path.abspath(__file__))
    for cand in (os.path.join(here, "libegcam.so"),
                 os.path.join(here, "..", "..", "build", "libegcam.so"),  # a checkout
                 os.path.join(here, "..", "..", "..", "libegcam.so")):    # cmake --install
        if os.path.exists(cand):
            return os.path.normpath(cand)
    raise ImportError("egcam: libegcam.so not found: set EGCAM_LIBRARY to its path, or build it "
                      "(bash tools/build.sh) in the source tree this package sits in")


def _load():
    path = _find_library()
    try:
        lib = ctypes.CDLL(path)
    except OSError as e:
        raise ImportError("egcam: cannot load %s: %s" % (path, e)) from None
    for name, (res, args) in _SIGS.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args
    # The option struct and the enumerations as this module knows them must be the library's:
    # its defaults land in the fields where the header puts them, and its names match.
    o = _Options()
    lib.egc_explain_options_default(ctypes.byref(o))
    if (o.samples, o.uniform_count, o.batch, o.samples_round, o.seed) != (32, 16, 32, 8, 0) or \
            o.noise != _NOISE_DEFAULT:
        raise ImportError("egcam: %s does not match this module (egc_explain_options)" % path)
    io = _InfidOptions()
    lib.egc_infidelity_options_default(0, ctypes.byref(io))  # the tf preset: black is -1
    so = _SensOptions()
    lib.egc_sensitivity_options_default(ctypes.byref(so))
    if (io.patch, io.samples, io.seed, list(io.black)) != (4, 32, 0, [-1.0] * 3) or \
            abs(io.sigma - 0.1) > 1e-7 or (so.samples, so.seed) != (200, 0) or \
            abs(so.radius - 0.2) > 1e-7:
        raise ImportError("egcam: %s does not match this module (metric options)" % path)
    for fn, table in ((lib.egc_score_name, _SCORES), (lib.egc_baselines_name, _BASELINES),
                      (lib.egc_alpha_name, _ALPHAS), (lib.egc_combine_name, _COMBINES)):
        for name, v in table.items():
            if fn(v).decode() != name:
                raise ImportError("egcam: %s does not match this module (%s)" % (path, name))
    return lib, path


_lib, LIBRARY = _load()
__version__ = _lib.egc_version().decode()


def _blas_kernels():
    """The OpenBLAS kernels this process runs ("SkylakeX", "Haswell", "Prescott", ...), or ""."""
    try:
        fn = _lib.openblas_get_corename
    except AttributeError:
        return ""
    fn.restype = ctypes.c_char_p
    fn.argtypes = []
    name = fn()
    return name.decode() if name else ""


def _better_kernels():
    """What the CPU could run instead of OpenBLAS's SSE3 fallback, as the egcam tool decides."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        return None
    if all(x in flags for x in ("avx512f", "avx512dq", "avx512bw", "avx512vl")):
        return "SkylakeX"
    if "avx2" in flags and "fma" in flags:
        return "Haswell"
    return None


# OpenBLAS picks its kernels once, when it loads (NumPy loads it too). The egcam tool runs
# itself again with better ones when OpenBLAS does not know the CPU and falls back to its SSE3
# kernels; a Python process cannot, so it says how (EGC_BLAS_AUTO=0 keeps it quiet).
BLAS_KERNELS = _blas_kernels()
if BLAS_KERNELS == "Prescott" and not os.environ.get("OPENBLAS_CORETYPE") and \
        os.environ.get("EGC_BLAS_AUTO") != "0" and _better_kernels():
    import warnings
    warnings.warn("egcam: OpenBLAS runs its SSE3 (Prescott) kernels on this CPU; start Python "
                  "with OPENBLAS_CORETYPE=%s for CPU runs about twice as fast (the egcam tool "
                  "does that by itself; the maps then match its maps bit for bit)"
                  % _better_kernels(), RuntimeWarning, stacklevel=2)


def _check(status):
    """Raises Error for a non-zero egc_status, with the library's message."""
    if status != 0:
        msg = _lib.egc_last_error()
        name = _lib.egc_status_name(status)
        _lib.egc_clear_error()
        raise Error(name.decode() if name else "status %d" % status,
                    msg.decode("utf-8", "replace") if msg else "")


def _parsed(fn, word, what):
    out = ctypes.c_int()
    if not isinstance(word, str):
        raise TypeError("egcam: %s must be a string, not %r" % (what, word))
    _check(fn(word.encode(), ctypes.byref(out)))
    return out.value


def _choice(table, word, what):
    if word not in table:
        raise Error("argument", "%s %r: one of %s" % (what, word, ", ".join(sorted(table))))
    return table[word]


def _fptr(a):
    return a.ctypes.data_as(_F)


def _images_array(x, chw):
    """x as a C-ordered float32 array (n,C,H,W) matching the model's input chw; images given
    channels last, (n,H,W,C) or (H,W,C), are transposed (channels first wins where both fit)."""
    a = np.asarray(x, dtype=np.float32)
    if a.ndim == 3 and chw[0] == 1 and tuple(a.shape[1:]) == tuple(chw[1:]):
        a = a[:, None]  # gray images (n,H,W)
    elif a.ndim == 3:
        a = a[None]
    last = (chw[1], chw[2], chw[0])
    if a.ndim == 4 and tuple(a.shape[1:]) != tuple(chw) and tuple(a.shape[1:]) == last:
        a = a.transpose(0, 3, 1, 2)
    a = np.ascontiguousarray(a)
    if a.ndim != 4 or tuple(a.shape[1:]) != tuple(chw):
        raise ValueError("egcam: images of shape %s, the model takes (N,%d,%d,%d) or channels "
                         "last (N,%d,%d,%d)" % (tuple(np.shape(x)), chw[0], chw[1], chw[2],
                                                chw[1], chw[2], chw[0]))
    if a.shape[0] < 1:
        raise ValueError("egcam: no images")
    return a


class _Closing:
    """close() at the end of a with-block and when collected."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        self.close()


class _Handle(_Closing):
    """A library object made on a Model (an explainer, an evaluator): runs take turns under
    its lock, close() frees it with the library function named by _destroy, and the model
    closes it first when it is closed itself."""
    _destroy = ""  # the egc_*_destroy function
    _what = ""     # its name in messages

    def _attach(self, model, handle):
        self._h = handle
        self._lock = threading.Lock()  # one run at a time (its buffers are its own)
        model._explainers.add(self)

    def _run(self, fn, *args):
        """fn(handle, *args) under the lock, its status checked."""
        with self._lock:
            if not getattr(self, "_h", None):
                raise Error("argument", "the %s was closed" % self._what)
            _check(fn(self._h, *args))

    def close(self):
        """Frees its memory (on the device too); its runs fail afterwards."""
        if getattr(self, "_h", None):
            with self._lock:
                if self._h:
                    getattr(_lib, self._destroy)(self._h)
                    self._h = None


class Model(_Closing):
    """An ONNX classifier loaded and checked by egcam (egc_model_load). Immutable; any number
    of Explainers may share it. `close()` (or a with-block) frees it; it must outlive them.
    input_size=(H, W): the image size a model exported with dynamic H and W axes runs at
    (egc_model_load_sized); a file whose size is fixed loads only at that size."""

    def __init__(self, path, input_size=None):
        self.path = os.fspath(path)
        h = _P()
        if input_size is None:
            _check(_lib.egc_model_load(self.path.encode(), ctypes.byref(h)))
        else:
            ih, iw = (int(v) for v in input_size)
            _check(_lib.egc_model_load_sized(self.path.encode(), ih, iw, ctypes.byref(h)))
        self._h = h
        c, hh, w = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        _lib.egc_model_input_chw(h, ctypes.byref(c), ctypes.byref(hh), ctypes.byref(w))
        self.input_shape = (c.value, hh.value, w.value)
        # the file's input is channels last, (N,H,W,3) (Keras, TensorFlow): egcam still takes
        # images (N,3,H,W) (input_shape), or channels last, and transposes them
        self.input_channels_last = bool(_lib.egc_model_input_channels_last(h))
        # the file's output is a Softmax (Keras classifiers) or LogSoftmax (PyTorch models
        # trained with NLLLoss) over the classes: egcam leaves it out and takes its input as
        # the logits; output_removed names it ("Softmax", "LogSoftmax", or None)
        removed = _lib.egc_model_output_softmax_removed(h)
        self.output_softmax_removed = bool(removed)
        self.output_removed = {1: "Softmax", 2: "LogSoftmax"}.get(removed)
        self.num_classes = _lib.egc_model_num_classes(h)
        self._explainers = weakref.WeakSet()  # closed before the model is
        self._evaluators = {}  # (device, batch) -> the Evaluator logits() runs through

    def _handle(self):
        if not self._h:
            raise Error("argument", "model %s was closed" % self.path)
        return self._h

    def layers(self):
        """The layers in execution order: dicts with name, node, op, shape (at batch 1),
        candidate (usable as a CAM target), auto (the one layer="auto" picks); for a
        vision transformer's token layer, tokens: (prefix, gh, gw), its prefix tokens and
        its grid of patches, which a CAM reads as a gh x gw image; and for a channels-last
        layer [1,H,W,C] (Swin's stages, ConvNeXt's LayerNorms), channels_last: True, which a
        CAM reads as its transpose [1,C,H,W]."""
        h = self._handle()
        out = []
        for i in range(_lib.egc_model_num_layers(h)):
            li = _LayerInfo()
            _check(_lib.egc_model_layer(h, i, ctypes.byref(li)))
            d = {"name": li.name.decode(), "node": (li.node or b"").decode(),
                 "op": li.op.decode(), "shape": tuple(li.shape.d[:li.shape.ndim]),
                 "candidate": bool(li.is_candidate), "auto": bool(li.is_auto)}
            p, gh, gw = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
            if _lib.egc_model_layer_tokens(h, i, ctypes.byref(p), ctypes.byref(gh),
                                           ctypes.byref(gw)):
                d["tokens"] = (p.value, gh.value, gw.value)
            if _lib.egc_model_layer_channels_last(h, i):
                d["channels_last"] = True
            out.append(d)
        return out

    def logits(self, x, device="cpu", batch=32):
        """The logits (n, classes) of preprocessed images x (n,C,H,W), through an Evaluator
        kept per device and batch (the model is put on the device once)."""
        ev = self._evaluators.get((device, int(batch)))
        if ev is None or not ev._h:
            ev = self._evaluators[(device, int(batch))] = Evaluator(self, device, batch)
        return ev.logits(x)

    def close(self):
        """Frees the model, after the explainers made on it (they cannot outlive it)."""
        for ex in list(getattr(self, "_explainers", ())):
            ex.close()
        getattr(self, "_evaluators", {}).clear()
        if getattr(self, "_h", None):
            _lib.egc_model_destroy(self._h)
            self._h = None

    def __repr__(self):
        return "egcam.Model(%r, input %s, %d classes)" % (self.path, self.input_shape,
                                                         self.num_classes)


def _load_image(path):
    img = _Image()
    _check(_lib.egc_image_load(os.fspath(path).encode(), ctypes.byref(img)))
    return img


class _HostBlock:
    """A block of egc_host_alloc memory, freed when the last array on it goes."""

    def __init__(self, device, shape, dtype):
        self.shape, self.dtype = tuple(int(d) for d in shape), np.dtype(dtype)
        nbytes = max(1, int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize)
        p = _P()
        _check(_lib.egc_host_alloc(device.encode(), nbytes, ctypes.byref(p)))
        self.ptr = p.value
        self.__array_interface__ = {"shape": self.shape, "typestr": self.dtype.str,
                                    "data": (self.ptr, False), "version": 3}

    def __del__(self):
        if getattr(self, "ptr", None):
            _lib.egc_host_free(self.ptr)
            self.ptr = None


def empty_pinned(shape, dtype=np.float32, device="cuda"):
    """An uninitialised array in host memory that the GPU `device` reads at the bus's full
    speed (page-locked; ordinary memory for the CPU, or where locking fails): images decoded
    into it (load_images(..., out=)) upload without a staging copy. is_pinned(a) says which."""
    return np.asarray(_HostBlock(device, shape, dtype))


def is_pinned(a):
    """Whether array a lies in page-locked memory of empty_pinned."""
    return bool(_lib.egc_host_pinned(ctypes.c_void_p(np.asarray(a).ctypes.data)))


def from_torch(module, input_shape=(3, 224, 224), path=None):
    """A PyTorch classifier (an nn.Module taking (N,C,H,W) images and returning (N,classes)
    logits) exported to ONNX the way egcam reads it, and loaded: an egcam.Model. The export is
    the one weights/export_torchvision.py makes: eval mode (restored afterwards), no gradients,
    the TorchScript exporter at opset 13, a dynamic batch, constants folded (BatchNormalization
    into the convolutions). Layers may then be named by module path, as the module's names
    are kept ("layer4", "features.29"). path: where the .onnx file goes (default: a temporary
    file, removed once loaded). Needs torch (only here)."""
    import inspect
    import tempfile
    import torch
    params = list(module.parameters())
    dev = params[0].device if params else torch.device("cpu")
    x = torch.zeros((1,) + tuple(int(d) for d in input_shape), device=dev)
    kw = dict(opset_version=13, input_names=["input"], output_names=["logits"],
              dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, do_constant_folding=True)
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False
    tmp = None
    if path is None:
        fd, tmp = tempfile.mkstemp(suffix=".onnx", prefix="egcam-torch-")
        os.close(fd)
    training = module.training
    try:
        module.eval()
        with torch.no_grad():
            torch.onnx.export(module, x, tmp or os.fspath(path), **kw)
        m = Model(tmp or path)
        if tmp:
            m.path = "<%s exported from PyTorch>" % type(module).__name__
        return m
    finally:
        module.train(training)
        if tmp:
            os.unlink(tmp)


def _decode_into(path, p, c, w, h, dst):
    """One image file decoded and preprocessed into dst (c,h,w); None, or the Error."""
    try:
        img = _load_image(path)
    except Error as e:
        return e
    try:
        _check(_lib.egc_preprocess_channels(ctypes.byref(img), p, c, w, h, _fptr(dst)))
    except Error as e:
        return e
    finally:
        _lib.egc_image_free(ctypes.byref(img))
    return None


def load_images(paths, model, preset="torchvision", errors="raise", threads=None, out=None):
    """Decodes image files (JPEG, PNG, BMP) and preprocesses them as `egcam explain --preset`
    does for `model` (a Model or its input (C,H,W)): a float32 array (n,C,H,W), or the first n
    images of `out` (a C-ordered float32 array of at least n images, e.g. from empty_pinned).
    The files are decoded by `threads` threads (default: one per CPU). errors="raise": the
    first file that cannot be read raises Error naming it; errors="skip": returns (images of
    the files that could be read, [(path, message) of the others]), in the order given (with
    `out`, the readable ones moved to its front)."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    paths = [os.fspath(q) for q in paths]
    if errors not in ("raise", "skip"):
        raise ValueError("egcam: errors=%r: 'raise' or 'skip'" % (errors,))
    c, h, w = model.input_shape if isinstance(model, Model) else tuple(model)
    if c not in (1, 3):
        raise ValueError("egcam: the model takes %d channels; images are RGB (3) or gray (1)" % c)
    p = _parsed(_lib.egc_preset_parse, preset, "preset")
    if out is None:
        out = np.empty((len(paths), c, h, w), dtype=np.float32)
    else:
        if not (isinstance(out, np.ndarray) and out.dtype == np.float32 and
                out.flags.c_contiguous and out.shape[1:] == (c, h, w) and
                out.shape[0] >= len(paths)):
            raise ValueError("egcam: out must be a C-ordered float32 array of at least "
                             "(%d,%d,%d,%d)" % (len(paths), c, h, w))
        out = out[:len(paths)]
    nt = max(1, min(len(paths), threads or os.cpu_count() or 1))
    if nt == 1:
        msgs = [_decode_into(q, p, c, w, h, out[i]) for i, q in enumerate(paths)]
    else:  # the library releases the interpreter lock: the decoders run side by side
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(nt) as pool:
            msgs = list(pool.map(lambda i: _decode_into(paths[i], p, c, w, h, out[i]),
                                 range(len(paths))))
    bad = [(q, m) for q, m in zip(paths, msgs) if m is not None]
    if errors == "raise":
        if bad:
            raise bad[0][1]
        return out
    bad = [(q, str(m)) for q, m in bad]
    keep = [i for i, m in enumerate(msgs) if m is None]
    if len(keep) == len(paths):
        return out, bad
    for k, i in enumerate(keep):  # in place, so that the images stay where out lies
        if k != i:
            out[k] = out[i]
    return out[:len(keep)], bad


class _Progress:
    """Progress of a long run on standard error ("\r" updates), or through a callable(done,
    total)."""

    def __init__(self, progress, total, what):
        self.clock = time.monotonic
        self.fn = progress if callable(progress) else None
        self.on = bool(progress) and total > 0
        self.total, self.what, self.t0, self.last = total, what, self.clock(), -1.0

    def __call__(self, done):
        if not self.on:
            return
        if self.fn:
            self.fn(done, self.total)
            return
        t = self.clock()
        if done < self.total and t - self.last < 0.5:
            return
        self.last = t
        rate = done / max(t - self.t0, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else 0
        sys.stderr.write("\regcam: %s %d/%d images, %.1f images/s, %s %ds   " % (
            self.what, done, self.total, rate, "ETA" if done < self.total else "in",
            eta if done < self.total else t - self.t0))
        if done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


class FileResult:
    """One image of Explainer.explain_files: path, and either error (a message; everything
    else None) or map (H,W) float32, raw (h,w) (with raw=True), cls, score, image_id, samples."""

    __slots__ = ("path", "error", "map", "raw", "cls", "score", "image_id", "samples")

    def __init__(self, path, error=None, map=None, raw=None, cls=None, score=None,
                 image_id=None, samples=None):
        self.path, self.error, self.map, self.raw = path, error, map, raw
        self.cls, self.score, self.image_id, self.samples = cls, score, image_id, samples

    def __repr__(self):
        if self.error:
            return "egcam.FileResult(%r, error=%r)" % (self.path, self.error)
        return "egcam.FileResult(%r, class %d, score %.4g)" % (self.path, self.cls, self.score)


class Explanation:
    """What Explainer.explain gives for n images: maps (n,H,W) float32 in [0,1] (the final
    maps, at the model input's size), raw (n,h,w) float32 (the method's map at the target
    layer before normalisation; None unless asked for), classes (n,) int (the explained
    classes), scores (n,) float32 (the class score on the clean input: logit or softmax),
    image_ids (n,) uint64 (the keys of the images' random draws) and samples (n,) int (samples
    drawn per image; 0 for single-pass methods)."""

    def __init__(self, maps, raw, classes, scores, image_ids, samples):
        self.maps, self.raw, self.classes = maps, raw, classes
        self.scores, self.image_ids, self.samples = scores, image_ids, samples

    def __len__(self):
        return len(self.maps)

    def __repr__(self):
        return "egcam.Explanation(%d maps of %dx%d)" % (len(self.maps), self.maps.shape[1],
                                                        self.maps.shape[2])


class Explainer(_Handle):
    """One method with its options on one model and device (egc_explainer_create): all memory
    is reserved here, then explain() runs any number of images. The options are those of
    `egcam explain` (docs/USER_GUIDE.md):

      method       one of METHODS (default "gradcam")
      device       "cpu", "cuda" or "cuda:N"
      precision    "fp32" or "mixed" (fp16 trunk on a GPU; the CPU computes fp32)
      layer        target layer: a tensor or node name, a module path of a PyTorch export
                   ("layer4", "features.29": the module's output), or "auto"
      preset       how the inputs were normalised ("torchvision", "tf", "cifar", or one of them
                   with a normalisation of your own, "torchvision:mean=0.5:std=0.5", as
                   `egcam classify --help-presets` says): defines the black and uniform
                   baselines
      samples      S, samples per image of the sampled methods
      baselines    "black", "blur", "uniform", "self", a path to a reference .npy file
                   (R,3,H,W), or such an array
      uniform_count  size of the uniform reference set
      noise        rho (None: the method's default)
      alpha        "uniform", "grid" or "stratified"
      combine      "A", "B", "C" (None: the method's default)
      score        "logit" or "softmax" (None: the method's default)
      seed         the seed of every random draw
      batch        rows (images x samples) per pass through the model (None: 128 on a GPU,
                   32 on the CPU, as `egcam explain`)
      plan_file    a sample plan (CSV, see docs/USER_GUIDE.md) instead of random draws
      max_device_bytes  device memory cap (0: none): passes get fewer rows, the same maps
      samples_tol, samples_round  adaptive sample counts (0: fixed counts)

    The resolved options (the method's defaults filled in) are in .options; .layer, .samples,
    .rows (rows per pass after any split), .device and .device_bytes describe the explainer.
    """
    _destroy, _what = "egc_explainer_destroy", "explainer"

    def __init__(self, model, method="gradcam", device="cpu", precision="fp32", layer="auto",
                 preset="torchvision", samples=32, baselines="black", uniform_count=16,
                 noise=None, alpha="uniform", combine=None, score=None, seed=0, batch=None,
                 plan_file=None, max_device_bytes=0, samples_tol=0.0, samples_round=8):
        if not isinstance(model, Model):
            raise TypeError("egcam: Explainer needs an egcam.Model, not %r" % type(model))
        self.model = model
        o = _Options()
        _lib.egc_explain_options_default(ctypes.byref(o))
        o.method = _parsed(_lib.egc_method_parse, method, "method")
        o.precision = _parsed(_lib.egc_precision_parse, precision, "precision")
        o.preset = _parsed(_lib.egc_preset_parse, preset, "preset")
        keep = []  # the bytes the option strings point to, alive until creation is done
        if layer is not None:
            keep.append(str(layer).encode())
            o.layer = keep[-1]
        tmp = None
        if isinstance(baselines, np.ndarray):
            import tempfile
            fd, tmp = tempfile.mkstemp(suffix=".npy", prefix="egcam-refs-")
            os.close(fd)
            np.save(tmp, np.ascontiguousarray(baselines, dtype=np.float32))
            baselines = tmp
        if baselines in _BASELINES and baselines != "file":
            o.baselines = _BASELINES[baselines]
        else:
            o.baselines = _BASELINES["file"]
            keep.append(os.fspath(baselines).encode())
            o.baseline_file = keep[-1]
        o.samples = int(samples)
        o.uniform_count = int(uniform_count)
        o.noise = _NOISE_DEFAULT if noise is None else float(noise)
        o.alpha = _choice(_ALPHAS, alpha, "alpha")
        o.combine = _COMBINES["default"] if combine is None else _choice(
            {k: v for k, v in _COMBINES.items() if k != "default"}, combine, "combine")
        o.score = _SCORES["default"] if score is None else _choice(
            {k: v for k, v in _SCORES.items() if k != "default"}, score, "score")
        o.seed = int(seed)
        if batch is None:  # as `egcam explain`: a GPU computes whole passes, fuller is faster
            batch = 128 if str(device).startswith("cuda") else 32
        o.batch = int(batch)
        if plan_file is not None:
            keep.append(os.fspath(plan_file).encode())
            o.plan_file = keep[-1]
        o.max_device_bytes = int(max_device_bytes)
        o.samples_tol = float(samples_tol)
        o.samples_round = int(samples_round)
        h = _P()
        try:
            _check(_lib.egc_explainer_create(model._handle(), device.encode(), ctypes.byref(o),
                                             ctypes.byref(h)))
        finally:
            if tmp:
                os.unlink(tmp)
        self._attach(model, h)
        self._device_arg = device
        ih, iw, H, W = (ctypes.c_int() for _ in range(4))
        _lib.egc_explainer_geometry(h, ctypes.byref(ih), ctypes.byref(iw), ctypes.byref(H),
                                    ctypes.byref(W))
        self.layer_shape = (ih.value, iw.value)
        self.map_shape = (H.value, W.value)
        self.layer = _lib.egc_explainer_layer(h).decode()
        self.samples = _lib.egc_explainer_samples(h)
        self.rows = _lib.egc_explainer_rows(h)
        self.device = _lib.egc_explainer_device(h).decode()
        self.device_bytes = _lib.egc_explainer_device_bytes(h)
        r = _lib.egc_explainer_options(h).contents
        name = lambda fn, v: fn(v).decode()
        self.options = {
            "method": name(_lib.egc_method_name, r.method), "layer": self.layer,
            "preset": name(_lib.egc_preset_name, r.preset),
            "score": name(_lib.egc_score_name, r.score), "samples": self.samples,
            "baselines": name(_lib.egc_baselines_name, r.baselines),
            "uniform_count": r.uniform_count, "noise": float("%.7g" % r.noise),
            "alpha": name(_lib.egc_alpha_name, r.alpha),
            "combine": name(_lib.egc_combine_name, r.combine), "seed": r.seed,
            "batch": r.batch, "precision": name(_lib.egc_precision_name, r.precision),
            "samples_tol": float("%.7g" % r.samples_tol), "samples_round": r.samples_round}

    def explain(self, x, classes=None, raw=False):
        """Explains preprocessed images x (n,C,H,W), or one image (C,H,W): classes None (the
        top-1 class of each image), one int for all, or one per image (negative: top-1).
        Returns an Explanation. Calls from several threads take turns."""
        if not getattr(self, "_h", None):
            raise Error("argument", "the explainer was closed")
        a = _images_array(x, self.model.input_shape)
        n = a.shape[0]
        cls = None
        if classes is not None:
            c = np.broadcast_to(np.asarray(classes), (n,))
            if not np.issubdtype(c.dtype, np.integer):
                raise TypeError("egcam: classes must be integers")
            cls = np.ascontiguousarray(c, dtype=np.int32)
        H, W = self.map_shape
        maps = np.empty((n, H, W), dtype=np.float32)
        raws = np.empty((n,) + self.layer_shape, dtype=np.float32) if raw else None
        res = (_CamResult * n)()
        for i in range(n):
            res[i].map = _fptr(maps[i])
            if raw:
                res[i].raw = _fptr(raws[i])
        cp = cls.ctypes.data_as(ctypes.POINTER(ctypes.c_int)) if cls is not None else None
        self._run(_lib.egc_explainer_run, _fptr(a), n, cp, res)
        return Explanation(maps, raws,
                           np.array([r.cls for r in res], dtype=np.int64),
                           np.array([r.score for r in res], dtype=np.float32),
                           np.array([r.image_id for r in res], dtype=np.uint64),
                           np.array([r.samples for r in res], dtype=np.int64))

    __call__ = explain

    def explain_files(self, paths, classes=None, raw=False, chunk=None, progress=False):
        """Explains image files as `egcam explain` does a folder, a chunk of images at a time
        (default: 4 passes' worth, at least 64; the next chunk is decoded while this one is
        explained), yielding one FileResult per file in order; a file that cannot be read
        gives a FileResult with its error and the run goes on. classes: None, one int, or one
        per file. progress=True prints images done, images/s and the time left on standard
        error; a callable gets (done, total) instead."""
        if isinstance(paths, (str, bytes, os.PathLike)):
            paths = [paths]
        paths = [os.fspath(q) for q in paths]
        n = len(paths)
        cls_all = None if classes is None else np.broadcast_to(np.asarray(classes), (n,))
        chunk = int(chunk) if chunk else max(64, 4 * self.rows)
        preset = self.options["preset"]
        prog = _Progress(progress, n, self.options["method"])
        # two chunk buffers in memory the device reads at full speed (page-locked for a GPU):
        # one is explained while the next chunk is decoded into the other
        bufs = [empty_pinned((min(chunk, n),) + self.model.input_shape, device=self._device_arg)
                for _ in range(2 if n > chunk else 1)] if n else []
        from concurrent.futures import ThreadPoolExecutor
        with ThreadPoolExecutor(1) as loader:
            load = lambda a: load_images(paths[a:a + chunk], self.model, preset, errors="skip",
                                         out=bufs[(a // chunk) % len(bufs)])
            nxt = loader.submit(load, 0) if n else None
            for a in range(0, n, chunk):
                x, bad = nxt.result()
                nxt = loader.submit(load, a + chunk) if a + chunk < n else None
                bad = dict(bad)
                part = paths[a:a + chunk]
                good = [i for i, q in enumerate(part) if q not in bad]
                r = None
                if good:
                    c = None if cls_all is None else cls_all[a:a + chunk][good]
                    r = self.explain(x, classes=c, raw=raw)
                k = 0
                for i, q in enumerate(part):
                    if q in bad:
                        yield FileResult(q, error=bad[q])
                        continue
                    yield FileResult(q, map=r.maps[k], raw=None if r.raw is None else r.raw[k],
                                     cls=int(r.classes[k]), score=float(r.scores[k]),
                                     image_id=int(r.image_ids[k]), samples=int(r.samples[k]))
                    k += 1
                prog(min(a + chunk, n))

    def __repr__(self):
        return "egcam.Explainer(%s on %s, layer %s)" % (self.options["method"], self.device,
                                                        self.layer)


def _image_array(img):
    n = img.w * img.h * 3
    return np.ctypeslib.as_array(img.rgb, shape=(n,)).reshape(img.h, img.w, 3).copy()


def overlay(image, saliency, preset="torchvision", colormap="turbo", alpha=0.5,
            on="model"):
    """A map coloured and blended over its photo, as `egcam explain` writes it: an (h,w,3)
    uint8 RGB array. image: the image file; saliency: an (H,W) map in [0,1]; on="model" puts
    it over the model's view of the photo (the preset's crop, at the map's size), "original"
    over the full-size photo (what the model did not see at half brightness)."""
    m = np.ascontiguousarray(saliency, dtype=np.float32)
    if m.ndim != 2:
        raise ValueError("egcam: a map is 2-D (H,W), not of shape %s" % (m.shape,))
    mh, mw = m.shape
    p = _parsed(_lib.egc_preset_parse, preset, "preset")
    cm = _parsed(_lib.egc_colormap_parse, colormap, "colormap")
    img = _load_image(image)
    out = _Image()
    try:
        if on == "original":
            box = np.empty(4, dtype=np.float32)
            _check(_lib.egc_preset_crop_box(p, img.w, img.h, mw, mh, _fptr(box)))
            _check(_lib.egc_overlay_box(ctypes.byref(img), _fptr(m), mw, mh, _fptr(box), cm,
                                        float(alpha), ctypes.byref(out)))
        elif on == "model":
            sized = _Image()
            _check(_lib.egc_preset_geometry(ctypes.byref(img), p, mw, mh, ctypes.byref(sized)))
            try:
                _check(_lib.egc_overlay(ctypes.byref(sized), _fptr(m), mw, mh, cm, float(alpha),
                                        ctypes.byref(out)))
            finally:
                _lib.egc_image_free(ctypes.byref(sized))
        else:
            raise ValueError("egcam: on=%r: 'model' or 'original'" % (on,))
        return _image_array(out)
    finally:
        _lib.egc_image_free(ctypes.byref(img))
        _lib.egc_image_free(ctypes.byref(out))


def save_image(path, rgb, quality=90):
    """An (h,w,3) uint8 RGB array written as PNG, or as JPEG (quality 1..100) for .jpg/.jpeg."""
    a = np.asarray(rgb)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise ValueError("egcam: an image is an (h,w,3) uint8 array, not %s %s" % (a.shape, a.dtype))
    a = np.ascontiguousarray(a)
    img = _Image(a.shape[1], a.shape[0], a.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)))
    _check(_lib.egc_image_save(os.fspath(path).encode(), ctypes.byref(img), int(quality)))


def save_overlay(path, image, saliency, **kw):
    """overlay(image, saliency, **kw) written to path (PNG, or JPEG for .jpg/.jpeg)."""
    save_image(path, overlay(image, saliency, **kw))


# ---- metrics (include/egcam/metrics.h; the definitions are METRICS.md's) ----

def _maps_array(maps, n, hw):
    m = np.ascontiguousarray(maps, dtype=np.float32)
    if m.ndim == 2:
        m = m[None]
    if m.shape != (n,) + tuple(hw):
        raise ValueError("egcam: maps of shape %s, expected (%d,%d,%d)"
                         % (tuple(np.shape(maps)), n, hw[0], hw[1]))
    return m


def _classes_array(classes, n):
    if classes is None:
        return None, None
    c = np.broadcast_to(np.asarray(classes), (n,))
    if not np.issubdtype(c.dtype, np.integer):
        raise TypeError("egcam: classes must be integers")
    c = np.ascontiguousarray(c, dtype=np.int32)
    return c, c.ctypes.data_as(ctypes.POINTER(ctypes.c_int))


class Evaluator(_Handle):
    """The faithfulness metrics that run the model, for maps from egcam or any other tool
    (egc_evaluator_create_ex): one forward-only session of `batch` rows on `device`, every
    buffer reserved here; the perturbed inputs are made on the device. x is (n,3,H,W) as for
    Explainer.explain, maps (n,H,W) in [0,1] at the input's size, classes None (the clean
    top-1), one int, or one per image (negative: top-1). `preset` says how x was normalised
    (the infidelity's black patches). Calls from several threads take turns."""
    _destroy, _what = "egc_evaluator_destroy", "evaluator"

    def __init__(self, model, device="cpu", batch=32, preset="torchvision", max_device_bytes=0):
        if not isinstance(model, Model):
            raise TypeError("egcam: Evaluator needs an egcam.Model, not %r" % type(model))
        self.model = model
        self._preset = _parsed(_lib.egc_preset_parse, preset, "preset")
        h = _P()
        _check(_lib.egc_evaluator_create_ex(model._handle(), device.encode(), int(batch),
                                            int(max_device_bytes), ctypes.byref(h)))
        self._attach(model, h)

    def _inputs(self, x, maps):
        a = _images_array(x, self.model.input_shape)
        return a, _maps_array(maps, a.shape[0], self.model.input_shape[1:])

    def logits(self, x):
        """The logits (n, classes) of x."""
        a = _images_array(x, self.model.input_shape)
        out = np.empty((a.shape[0], self.model.num_classes), dtype=np.float32)
        self._run(_lib.egc_evaluator_logits, _fptr(a), a.shape[0], _fptr(out))
        return out

    def curves(self, x, maps, classes=None, step=None, deletion=True, insertion=True):
        """Deletion and insertion (RISE protocol): the softmax probability of the class as the
        most salient pixels go (deletion: set to 0) or come in (insertion: from a blurred
        image), `step` pixels a step (default: the input's width). Returns a dict with
        "deletion" and "insertion" AUCs (n,) and their curves (n, steps+1)."""
        a, m = self._inputs(x, maps)
        n, (_, H, W) = a.shape[0], self.model.input_shape
        step = W if step is None else int(step)
        if step < 1:
            raise ValueError("egcam: step must be >= 1")
        k = _lib.egc_curve_steps(H * W, step) + 1
        _, cp = _classes_array(classes, n)
        out = {}
        bufs = {}
        for name, want in (("deletion", deletion), ("insertion", insertion)):
            bufs[name] = (np.empty(n, dtype=np.float32), np.empty((n, k), dtype=np.float32)) \
                if want else (None, None)
        if not deletion and not insertion:
            raise ValueError("egcam: ask for deletion, insertion or both")
        ptr = lambda v: _fptr(v) if v is not None else None
        self._run(_lib.egc_metric_curves, _fptr(a), _fptr(m), n, cp, step,
                  ptr(bufs["deletion"][0]), ptr(bufs["insertion"][0]),
                  ptr(bufs["deletion"][1]), ptr(bufs["insertion"][1]))
        for name, (auc, curve) in bufs.items():
            if auc is not None:
                out[name] = auc
                out[name + "_curves"] = curve
        out["step"] = step
        return out

    def _infid_options(self, **kw):
        o = _InfidOptions()
        _lib.egc_infidelity_options_default(self._preset, ctypes.byref(o))
        for k, v in kw.items():
            setattr(o, k, v)
        return o

    def infidelity(self, x, maps, classes=None, patch=4):
        """Infidelity, Quantus's patch protocol: patches of patch x patch pixels blacked out
        cumulatively in raster order; the mean squared gap between the logit's drop and the
        map's sum over the removed input. (n,) float32; lower is better."""
        a, m = self._inputs(x, maps)
        n = a.shape[0]
        _, cp = _classes_array(classes, n)
        o = self._infid_options(patch=int(patch))
        out = np.empty(n, dtype=np.float32)
        self._run(_lib.egc_metric_infidelity, _fptr(a), _fptr(m), n, cp, ctypes.byref(o),
                  _fptr(out))
        return out

    def infidelity_gaussian(self, x, maps, classes=None, samples=32, sigma=0.1, seed=0):
        """Infidelity with Gaussian perturbations and optimal scaling (Captum's
        normalize=True): (values (n,), beta (n,)); lower is better."""
        a, m = self._inputs(x, maps)
        n = a.shape[0]
        _, cp = _classes_array(classes, n)
        o = self._infid_options(samples=int(samples), sigma=float(sigma), seed=int(seed))
        out = np.empty(n, dtype=np.float32)
        beta = np.empty(n, dtype=np.float32)
        self._run(_lib.egc_metric_infidelity_gaussian, _fptr(a), _fptr(m), n, cp,
                  ctypes.byref(o), _fptr(out), _fptr(beta))
        return out, beta

    def __repr__(self):
        return "egcam.Evaluator(%r)" % (self.model.path,)


def sensitivity(explainer, x, maps=None, classes=None, radius=0.2, samples=200, seed=0):
    """Max- and Avg-Sensitivity of an Explainer: how much its maps move under uniform noise
    U(-radius, radius) on x (Frobenius norm relative to the map); perturbed inputs whose top-1
    class changes are left out and counted. maps and classes: the explainer's on x (computed
    when not given). Returns a dict of (n,) arrays: max, avg, kept, excluded."""
    if not isinstance(explainer, Explainer):
        raise TypeError("egcam: sensitivity needs an egcam.Explainer")
    a = _images_array(x, explainer.model.input_shape)
    n = a.shape[0]
    if maps is None or classes is None:
        r = explainer.explain(a)
        maps = r.maps if maps is None else maps
        classes = r.classes if classes is None else classes
    m = _maps_array(maps, n, explainer.map_shape)
    _, cp = _classes_array(classes, n)
    o = _SensOptions()
    _lib.egc_sensitivity_options_default(ctypes.byref(o))
    o.radius, o.samples, o.seed = float(radius), int(samples), int(seed)
    res = (_SensResult * n)()
    explainer._run(_lib.egc_metric_sensitivity, _fptr(a), _fptr(m), cp, n, ctypes.byref(o), res)
    return {"max": np.array([v.max_sens for v in res], dtype=np.float32),
            "avg": np.array([v.avg_sens for v in res], dtype=np.float32),
            "kept": np.array([v.kept for v in res], dtype=np.int64),
            "excluded": np.array([v.excluded for v in res], dtype=np.int64)}


def _per_map(maps, fn):
    m = np.ascontiguousarray(maps, dtype=np.float32)
    one = m.ndim == 2
    if one:
        m = m[None]
    if m.ndim != 3:
        raise ValueError("egcam: maps are (H,W) or (n,H,W), not of shape %s" % (m.shape,))
    out = np.array([fn(m[i]) for i in range(m.shape[0])], dtype=np.float32)
    return out[0] if one else out


def sparseness(maps):
    """Gini sparseness of each map (higher is sparser): a float for one (H,W) map, (n,) for
    (n,H,W)."""
    def one(mi):
        v = ctypes.c_float()
        _check(_lib.egc_sparseness(_fptr(mi), mi.size, ctypes.byref(v)))
        return v.value
    return _per_map(maps, one)


def entropy(maps):
    """Entropy complexity of each map (lower is simpler; `complexity` in egcam sweep)."""
    return _per_map(maps, lambda mi: _lib.egc_complexity(_fptr(mi), mi.size))


def _with_masks(maps, masks, fn):
    m = np.ascontiguousarray(maps, dtype=np.float32)
    k = np.ascontiguousarray(np.asarray(masks) != 0, dtype=np.uint8)
    one = m.ndim == 2
    if one:
        m, k = m[None], k[None] if k.ndim == 2 else k
    if m.ndim != 3 or k.shape != m.shape:
        raise ValueError("egcam: maps %s and masks %s must both be (H,W) or (n,H,W)"
                         % (np.shape(maps), np.shape(masks)))
    kp = lambda i: k[i].ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))
    out = np.array([fn(m[i], kp(i)) for i in range(m.shape[0])], dtype=np.float32)
    return out[0] if one else out


def pointing_game(maps, masks, tolerance=0.0):
    """1 where the map's largest pixel lies in the mask (non-zero pixels; with tolerance,
    within that many pixels of it), else 0. An empty mask raises Error."""
    def one(mi, kp):
        hit = ctypes.c_int()
        _check(_lib.egc_pointing_game(_fptr(mi), kp, mi.shape[0], mi.shape[1],
                                      float(tolerance), ctypes.byref(hit)))
        return hit.value
    return _with_masks(maps, masks, one)


def energy_pointing(maps, masks):
    """The share of each map's mass inside its mask (NaN for an all-zero map)."""
    return _with_masks(maps, masks, lambda mi, kp: _lib.egc_energy_pointing(_fptr(mi), kp,
                                                                             mi.size))


def relevance_rank(maps, masks):
    """Relevance rank accuracy: the share of the mask among the map's |mask| most salient
    pixels. An empty mask raises Error."""
    def one(mi, kp):
        v = ctypes.c_float()
        _check(_lib.egc_relevance_rank(_fptr(mi), kp, mi.size, ctypes.byref(v)))
        return v.value
    return _with_masks(maps, masks, one)
