"""egcam from Python: Grad-CAM-family saliency maps (above all Expected Grad-CAM) of ONNX image
classifiers, computed by the egcam library (libegcam.so) on the CPU or a GPU, with NumPy arrays
in and out. The maps are those of `egcam explain` bit for bit (the same library does the work).

    import egcam
    model = egcam.Model("resnet50.onnx")
    x = egcam.load_images(["cat.jpg", "dog.png"], model, preset="torchvision")  # (2,3,224,224)
    ex = egcam.Explainer(model, "expected-gradcam", samples=32, device="cuda", precision="mixed")
    r = ex.explain(x)               # r.maps (2,224,224) float32 in [0,1], r.classes, r.scores
    egcam.save_overlay("cat_cam.png", "cat.jpg", r.maps[0], preset="torchvision")

The library is found at $EGCAM_LIBRARY (a path to libegcam.so), beside this package, or in the
build/ folder of the source tree this package sits in (tools/setup.sh and tools/build.sh make
it). Failures raise egcam.Error, whose message names the file, option or layer and the reason;
its `status` says the kind ("io", "argument", "format", "device", ...). Method names and
options are those of the command line and docs/USER_GUIDE.md; docs/PYTHON.md has the details.
"""
import ctypes
import os
import threading
import weakref

import numpy as np

__all__ = ["Error", "Model", "Explainer", "Explanation", "load_images", "overlay",
           "save_overlay", "METHODS"]

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


_P = ctypes.c_void_p
_F = ctypes.POINTER(ctypes.c_float)
# name: (result type, argument types); every egc_status function returns c_int
_SIGS = {
    "egc_status_name": (ctypes.c_char_p, [ctypes.c_int]),
    "egc_last_error": (ctypes.c_char_p, []),
    "egc_clear_error": (None, []),
    "egc_model_load": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(_P)]),
    "egc_model_destroy": (None, [_P]),
    "egc_model_input_chw": (None, [_P] + [ctypes.POINTER(ctypes.c_int)] * 3),
    "egc_model_num_classes": (ctypes.c_int, [_P]),
    "egc_model_num_layers": (ctypes.c_int, [_P]),
    "egc_model_layer": (ctypes.c_int, [_P, ctypes.c_int, ctypes.POINTER(_LayerInfo)]),
    "egc_session_create": (ctypes.c_int, [_P, ctypes.c_char_p, ctypes.c_int, ctypes.c_int,
                                          ctypes.POINTER(_P)]),
    "egc_session_destroy": (None, [_P]),
    "egc_session_forward": (ctypes.c_int, [_P, _F, ctypes.c_int, _F]),
    "egc_session_device": (ctypes.c_char_p, [_P]),
    "egc_image_load": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(_Image)]),
    "egc_image_free": (None, [ctypes.POINTER(_Image)]),
    "egc_image_save": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(_Image), ctypes.c_int]),
    "egc_preset_parse": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]),
    "egc_preprocess": (ctypes.c_int, [ctypes.POINTER(_Image), ctypes.c_int, ctypes.c_int,
                                      ctypes.c_int, _F]),
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
                 os.path.join(here, "..", "..", "build", "libegcam.so")):
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
    for fn, table in ((lib.egc_score_name, _SCORES), (lib.egc_baselines_name, _BASELINES),
                      (lib.egc_alpha_name, _ALPHAS), (lib.egc_combine_name, _COMBINES)):
        for name, v in table.items():
            if fn(v).decode() != name:
                raise ImportError("egcam: %s does not match this module (%s)" % (path, name))
    return lib, path


_lib, LIBRARY = _load()


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
    """x as a C-ordered float32 array (n,C,H,W) matching the model's input chw."""
    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim == 3:
        a = a[None]
    if a.ndim != 4 or tuple(a.shape[1:]) != tuple(chw):
        raise ValueError("egcam: images of shape %s, the model takes (N,%d,%d,%d)"
                         % (tuple(np.shape(x)), chw[0], chw[1], chw[2]))
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


class Model(_Closing):
    """An ONNX classifier loaded and checked by egcam (egc_model_load). Immutable; any number
    of Explainers may share it. `close()` (or a with-block) frees it; it must outlive them."""

    def __init__(self, path):
        self.path = os.fspath(path)
        h = _P()
        _check(_lib.egc_model_load(self.path.encode(), ctypes.byref(h)))
        self._h = h
        c, hh, w = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        _lib.egc_model_input_chw(h, ctypes.byref(c), ctypes.byref(hh), ctypes.byref(w))
        self.input_shape = (c.value, hh.value, w.value)
        self.num_classes = _lib.egc_model_num_classes(h)
        self._explainers = weakref.WeakSet()  # closed before the model is

    def _handle(self):
        if not self._h:
            raise Error("argument", "model %s was closed" % self.path)
        return self._h

    def layers(self):
        """The layers in execution order: dicts with name, node, op, shape (at batch 1),
        candidate (usable as a CAM target) and auto (the one layer="auto" picks)."""
        h = self._handle()
        out = []
        for i in range(_lib.egc_model_num_layers(h)):
            li = _LayerInfo()
            _check(_lib.egc_model_layer(h, i, ctypes.byref(li)))
            out.append({"name": li.name.decode(), "node": (li.node or b"").decode(),
                        "op": li.op.decode(), "shape": tuple(li.shape.d[:li.shape.ndim]),
                        "candidate": bool(li.is_candidate), "auto": bool(li.is_auto)})
        return out

    def logits(self, x, device="cpu", batch=32):
        """The logits (n, classes) of preprocessed images x (n,C,H,W)."""
        a = _images_array(x, self.input_shape)
        n = a.shape[0]
        s = _P()
        _check(_lib.egc_session_create(self._handle(), device.encode(), min(batch, n), -1,
                                       ctypes.byref(s)))
        out = np.empty((n, self.num_classes), dtype=np.float32)
        try:
            step = min(batch, n)
            for i in range(0, n, step):
                m = min(step, n - i)
                _check(_lib.egc_session_forward(s, _fptr(a[i:i + m]), m, _fptr(out[i:i + m])))
        finally:
            _lib.egc_session_destroy(s)
        return out

    def close(self):
        """Frees the model, after the explainers made on it (they cannot outlive it)."""
        for ex in list(getattr(self, "_explainers", ())):
            ex.close()
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


def load_images(paths, model, preset="torchvision"):
    """Decodes image files (JPEG, PNG, BMP) and preprocesses them as `egcam explain --preset`
    does for `model` (a Model or its input (C,H,W)): a float32 array (n,3,H,W)."""
    if isinstance(paths, (str, bytes, os.PathLike)):
        paths = [paths]
    c, h, w = model.input_shape if isinstance(model, Model) else tuple(model)
    if c != 3:
        raise ValueError("egcam: the model takes %d channels, images have 3" % c)
    p = _parsed(_lib.egc_preset_parse, preset, "preset")
    out = np.empty((len(paths), 3, h, w), dtype=np.float32)
    for i, path in enumerate(paths):
        img = _load_image(path)
        try:
            _check(_lib.egc_preprocess(ctypes.byref(img), p, w, h, _fptr(out[i])))
        finally:
            _lib.egc_image_free(ctypes.byref(img))
    return out


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


class Explainer(_Closing):
    """One method with its options on one model and device (egc_explainer_create): all memory
    is reserved here, then explain() runs any number of images. The options are those of
    `egcam explain` (docs/USER_GUIDE.md):

      method       one of METHODS (default "gradcam")
      device       "cpu", "cuda" or "cuda:N"
      precision    "fp32" or "mixed" (fp16 trunk on a GPU; the CPU computes fp32)
      layer        target layer (tensor or node name) or "auto"
      preset       how the inputs were normalised ("torchvision", "tf", "cifar"): defines the
                   black and uniform baselines
      samples      S, samples per image of the sampled methods
      baselines    "black", "blur", "uniform", "self", a path to a reference .npy file
                   (R,3,H,W), or such an array
      uniform_count  size of the uniform reference set
      noise        rho (None: the method's default)
      alpha        "uniform", "grid" or "stratified"
      combine      "A", "B", "C" (None: the method's default)
      score        "logit" or "softmax" (None: the method's default)
      seed         the seed of every random draw
      batch        rows (images x samples) per pass through the model
      plan_file    a sample plan (CSV, see docs/USER_GUIDE.md) instead of random draws
      max_device_bytes  device memory cap (0: none): passes get fewer rows, the same maps
      samples_tol, samples_round  adaptive sample counts (0: fixed counts)

    The resolved options (the method's defaults filled in) are in .options; .layer, .samples,
    .rows (rows per pass after any split), .device and .device_bytes describe the explainer.
    """

    def __init__(self, model, method="gradcam", device="cpu", precision="fp32", layer="auto",
                 preset="torchvision", samples=32, baselines="black", uniform_count=16,
                 noise=None, alpha="uniform", combine=None, score=None, seed=0, batch=32,
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
        self._h = h
        self._lock = threading.Lock()  # one run at a time (an explainer's buffers are its own)
        model._explainers.add(self)
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
        """Explains preprocessed images x (n,3,H,W), or one image (3,H,W): classes None (the
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
        with self._lock:
            if not self._h:
                raise Error("argument", "the explainer was closed")
            _check(_lib.egc_explainer_run(self._h, _fptr(a), n, cp, res))
        return Explanation(maps, raws,
                           np.array([r.cls for r in res], dtype=np.int64),
                           np.array([r.score for r in res], dtype=np.float32),
                           np.array([r.image_id for r in res], dtype=np.uint64),
                           np.array([r.samples for r in res], dtype=np.int64))

    __call__ = explain

    def close(self):
        """Frees the explainer's memory (on the device too); explain() fails afterwards."""
        if getattr(self, "_h", None):
            with self._lock:
                if self._h:
                    _lib.egc_explainer_destroy(self._h)
                    self._h = None

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


def save_overlay(path, image, saliency, **kw):
    """overlay(image, saliency, **kw) written to path (PNG, or JPEG for .jpg/.jpeg)."""
    rgb = np.ascontiguousarray(overlay(image, saliency, **kw))
    img = _Image(rgb.shape[1], rgb.shape[0], rgb.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)))
    _check(_lib.egc_image_save(os.fspath(path).encode(), ctypes.byref(img), 90))
