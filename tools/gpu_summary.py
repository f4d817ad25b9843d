#!/usr/bin/env python3
"""gpu_summary.py: the tables a reader of a tools/gpu_check.sh run wants first, from its JSON
lines: which steps failed, the CUDA test summary, the forward throughput next to PyTorch's, the
variants of the CUDA switches, the explanation throughput next to the PyTorch peers, the
goals of the explanation methods (ResNet-50, mixed precision), and the Python module's checks.

usage: tools/gpu_summary.py PATH [PATH ...]
  PATH: a gpu_check output folder (every *.jsonl in it is read) or a JSON-lines file, e.g.
  benchmarks/results/h100-2026-11-26b.jsonl. Markdown goes to standard output.
Lines that are not JSON objects are skipped; nothing here is measured, only arranged.
"""
import glob
import json
import os
import re
import sys

# The goals of the explanation methods (issue texts and PERFORMANCE.md), on an H200.
GOAL_EGC = 800.0          # Expected Grad-CAM, ResNet-50 mixed, S = 32, batch 32, images/s
GOAL_EGC_GIB = 3.0        # ... in at most this much device memory
GOAL_GRADCAM = 25000.0    # Grad-CAM, ResNet-50 mixed, batch 64, images/s
# What the peers reached on the H200 the goals were set on (PERFORMANCE.md): PyTorch's
# torch.compile fp16 + channels_last ResNet-50 forward at batch 256, and the compiled expert
# Expected Grad-CAM peer (S = 32, 32 images).
REF_COMPILED_FORWARD = 25262.0
REF_COMPILED_EGC = 769.0


def read_lines(paths):
    out = []
    for p in paths:
        files = sorted(glob.glob(os.path.join(p, "*.jsonl"))) if os.path.isdir(p) else [p]
        for f in files:
            with open(f) as fh:
                for line in fh:
                    line = line.strip()
                    if not line.startswith("{"):
                        continue
                    try:
                        d = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(d, dict):
                        out.append(d)
    return out


def gib(b):
    return "%.2f" % (b / 2.0**30) if isinstance(b, (int, float)) and b else ""


def as_num(v):
    """v when it is a number, else 0 (absent, null, text)."""
    return v if isinstance(v, (int, float)) else 0


def fmt(v):
    """A number with thousands separators and no decimals; "" when v is not a number."""
    return "{:,.0f}".format(v) if isinstance(v, (int, float)) else ""


def rate(d):
    return fmt(d.get("images_per_s"))


def model_name(d):
    return str(d.get("model", "")).replace(".onnx", "")


def is_egcam(d):
    b = str(d.get("backend", ""))
    return b == "cpu" or b == "cuda" or b.startswith("cuda:")


def num(d, key):
    """d[key] as a number, 0 when absent or not a number (null)."""
    return as_num(d.get(key))


def who(d):
    return "egcam" if is_egcam(d) else d.get("backend", "?")


def variant(d):
    """What set a line apart: the peer's mode, page-locked inputs, torch.compile, the CUDA
    switches set, adaptive sample counts."""
    v = [d["mode"]] if d.get("mode") else []
    v += [k for k in ("pinned", "compiled") if d.get(k)]
    if d.get("cuda_env"):
        v.append(d["cuda_env"])
    if d.get("samples_tol"):
        v.append("tol %g (mean %s samples)" % (d["samples_tol"], d.get("mean_samples")))
    return " ".join(v)


def half_last(precision):
    """Sort key: fp32 lines before the fp16/mixed ones."""
    return "fp32" if str(precision).startswith("fp32") else "half"


def table(head, rows):
    if not rows:
        return ""
    s = "| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
    for r in rows:
        s += "| " + " | ".join(str(c) for c in r) + " |\n"
    return s + "\n"


def steps_section(lines):
    steps = [d for d in lines if "step" in d]
    if not steps:
        return ""
    s = "## Steps\n\n"
    bad = [d for d in steps if d.get("status") in ("fail", "timeout") and d.get("step") != "total"]
    skipped = [d for d in steps if d.get("status") == "skipped"]
    total = [d for d in steps if d.get("step") == "total"]
    if total:
        s += "Total: %s s, %s failing step(s).\n\n" % (total[-1].get("seconds"), total[-1].get("rc"))
    for d in steps:
        if d.get("step") in ("cuda_tests_summary", "cpu_tests_summary", "tv_parity_summary"):
            sm = d.get("summary", {})
            s += "- %s: %s tests, %s failures, %s skipped%s\n" % (
                d["step"].replace("_summary", ""), sm.get("tests"), sm.get("failures"),
                sm.get("skipped"), (": " + ", ".join(sm.get("failed", []))) if sm.get("failed") else "")
    for d in bad:
        tail = str(d.get("tail", "")).strip().splitlines()
        s += "- **%s %s** (rc %s, %s s)%s\n" % (d["step"], d["status"], d.get("rc"), d.get("seconds"),
                                              (": `" + tail[-1][:160] + "`") if tail else "")
    if skipped:
        s += "- skipped: " + ", ".join("%s (%s)" % (d["step"], d.get("reason", "")) for d in skipped) + "\n"
    return s + "\n"


def python_section(lines):
    """The Python module's checks (tools/gpu_python_check.py): GPU maps against the CPU's and
    against the egcam tool's."""
    rows = []
    for d in lines:
        if d.get("check") == "python-gpu-vs-cpu":
            rows.append([d.get("method"), d.get("precision"), "GPU vs CPU",
                         "min Pearson %s, max abs diff %.2g, classes %s" % (
                             d.get("min_pearson"), as_num(d.get("max_abs")),
                             "same" if d.get("same_classes") else "differ"),
                         "ok" if d.get("ok") else "**FAIL**"])
        elif d.get("check") == "python-vs-tool":
            rows.append([d.get("method"), d.get("precision"), "module vs egcam explain",
                         "%s of %s maps bit-identical" % (d.get("bit_identical"), d.get("images")),
                         "ok" if d.get("ok") else "**FAIL**"])
        elif d.get("check") == "python-pinned":
            rows.append(["expected-gradcam", "mixed", "page-locked vs ordinary inputs",
                         "%s, maps %s" % ("page-locked" if d.get("pinned") else "NOT page-locked",
                                          "the same" if d.get("same_maps") else "differ"),
                         "ok" if d.get("ok") else "**FAIL**"])
        elif d.get("check") == "python-metrics-gpu-vs-cpu":
            rows.append(["metrics", "fp32", "GPU vs CPU evaluator",
                         "max AUC diff %.2g, max infidelity rel. diff %.2g" % (
                             as_num(d.get("max_auc_diff")), as_num(d.get("max_infidelity_rel_diff"))),
                         "ok" if d.get("ok") else "**FAIL**"])
    t = table(["method", "precision", "comparison", "result", ""], rows)
    return "## Python module\n\n" + t if t else ""


def first_s(d):
    """Seconds of setup and first run (algorithm searches, first-batch timings, graph
    recording: what a short job pays before the steady state), "" where the line has none."""
    if "first_ms" not in d:
        return ""
    return "%.2f" % ((num(d, "setup_ms") + num(d, "first_ms")) / 1e3)


def forward_section(lines):
    fw = [d for d in lines if d.get("bench") == "forward"]
    if not fw:
        return ""
    rows = [[model_name(d), who(d), d.get("precision", ""), d.get("batch", ""), variant(d),
             rate(d), gib(d.get("peak_device_bytes")), first_s(d)] for d in fw]
    rows.sort(key=lambda r: (r[0], half_last(r[2]), r[1] != "egcam", r[1], r[4]))
    return "## Forward\n\n" + table(["model", "who", "precision", "batch", "variant", "images/s",
                                      "peak GiB", "first run s"], rows)


def explain_section(lines):
    ex = [d for d in lines if d.get("bench") == "explain"]
    if not ex:
        return ""
    rows = [[model_name(d), d.get("method", ""), who(d), d.get("precision", ""),
             d.get("batch", ""), d.get("samples", ""), d.get("rows_per_pass", ""), variant(d),
             rate(d) or ("error: " + str(d["error"])[:80] if d.get("error") else ""),
             gib(d.get("peak_device_bytes")), first_s(d)] for d in ex]
    rows.sort(key=lambda r: (r[0], r[1], half_last(r[3]), r[2] != "egcam", str(r[2]),
                             as_num(r[4]), as_num(r[6]), r[7]))
    s = "## Explanations\n\n" + table(["model", "method", "who", "precision", "images", "S",
                                        "rows/pass", "variant", "images/s", "peak GiB",
                                        "first run s"], rows)
    ph = [d for d in lines if d.get("bench") == "explain-phases"]
    if ph:
        keys = ["scan", "upload", "clean", "perturb", "forward", "backward", "reduce", "finalize",
                "download"]
        prow = [[model_name(d), d.get("method", ""), d.get("precision", ""), d.get("batch", "")] +
                ["%.1f" % d.get("ms_per_run", {}).get(k, 0.0) for k in keys] for d in ph]
        s += "Where a run's time goes (ms per run):\n\n" + table(
            ["model", "method", "precision", "images"] + keys, prow)
    return s


def pick(lines, **want):
    """The line of the default configuration among those matching want (key: value, or key:
    callable(value) -> bool): no CUDA switch set, page-locked inputs preferred, then the
    fastest. None when nothing matches."""
    def ok(d):
        for k, v in want.items():
            if callable(v):
                if not v(d.get(k)):
                    return False
            elif d.get(k) != v:
                return False
        return not d.get("cuda_env") and not d.get("samples_tol")
    m = [d for d in lines if ok(d)]
    if not m:
        return None
    return max(m, key=lambda d: (bool(d.get("pinned")), num(d, "images_per_s")))


def cell(d, rows=False):
    """images/s (peak GiB[, rows per pass]) of a line, "" for none."""
    if d is None:
        return ""
    extra = ["%s GiB" % gib(d.get("peak_device_bytes"))] if gib(d.get("peak_device_bytes")) else []
    if rows and d.get("rows_per_pass"):
        extra.append("%s rows" % d["rows_per_pass"])
    return rate(d) + (" (%s)" % ", ".join(extra) if extra else "")


def issue_section(lines):
    """The figures the open issues' done-when asks for, one row per architecture: the forward
    at batch 256 (egcam fp32 and mixed, PyTorch fp32, fp16 eager and fp16 torch.compile), then
    Grad-CAM (batch 64) and Expected Grad-CAM (S = 32, 32 images) of egcam with no CUDA
    switch set (page-locked inputs where the run has them; for Expected Grad-CAM the fastest
    pass size, which the cell names) next to the PyTorch peers. Cells: images/s (peak device
    GiB)."""
    fw = [d for d in lines if d.get("bench") == "forward" and d.get("batch") == 256]
    ex = [d for d in lines if d.get("bench") == "explain"]
    models = sorted({model_name(d) for d in fw + ex if model_name(d) in ("resnet50", "vgg16", "alexnet")})
    if not models:
        return ""
    dev = next((d.get("device") for d in fw + ex if is_egcam(d) and d.get("device")), "")
    torch_fw = lambda b: re.match(r"pytorch-[0-9]", str(b)) is not None  # not the explainers
    s = "## The issues' tables (%s)\n\nForward, batch 256, images/s (peak GiB):\n\n" % dev
    rows = []
    for m in models:
        f = [d for d in fw if model_name(d) == m]
        rows.append([m, cell(pick(f, backend=is_cuda_backend, precision="fp32")),
                     cell(pick(f, backend=is_cuda_backend, precision="mixed")),
                     cell(pick(f, backend=torch_fw, precision="fp32-tf32", compiled=is_false)),
                     cell(pick(f, backend=torch_fw, precision="fp16-autocast-nhwc", compiled=is_false)),
                     cell(pick(f, backend=torch_fw, precision="fp16-autocast-nhwc", compiled=True))])
    s += table(["model", "egcam fp32 (TF32)", "egcam mixed", "PyTorch fp32 (TF32)",
                "PyTorch fp16 eager", "PyTorch fp16 torch.compile"], rows)
    rows = []
    for m in models:
        e = [d for d in ex if model_name(d) == m]
        g = dict(method="gradcam", batch=64)
        rows.append([m, "Grad-CAM, batch 64",
                     cell(pick(e, backend=is_cuda_backend, precision="fp32", **g)),
                     cell(pick(e, backend=is_cuda_backend, precision="mixed", **g)),
                     "pytorch-grad-cam style: fp32 %s; fp16 %s" % (
                         cell(pick(e, backend=lambda b: "gradcam" in str(b), precision="fp32-tf32", **g)) or "-",
                         cell(pick(e, backend=lambda b: "gradcam" in str(b), precision="fp16-autocast-nhwc", **g)) or "-")])
        x = dict(method="expected-gradcam", batch=32, samples=32)
        expert = lambda mode: cell(pick(e, backend=lambda b: "expert" in str(b), mode=mode, **x)) or "-"
        rows.append([m, "Expected Grad-CAM, S = 32, batch 32",
                     cell(pick(e, backend=is_cuda_backend, precision="fp32", **x), rows=True),
                     cell(pick(e, backend=is_cuda_backend, precision="mixed", **x), rows=True),
                     "expert eager fp32 %s; eager fp16 %s; compiled fp16 %s; naive %s" % (
                         expert("eager-fp32"), expert("eager-fp16"), expert("compile-fp16"),
                         cell(pick(e, backend=lambda b: "naive" in str(b), precision="fp16-autocast-nhwc", **x)) or
                         cell(pick(e, backend=lambda b: "naive" in str(b), **x)) or "-")])
    s += "Explanations, images/s (peak GiB):\n\n" + table(
        ["model", "what", "egcam fp32 (TF32)", "egcam mixed", "PyTorch peers"], rows)
    return s


def is_cuda_backend(b):
    return str(b) == "cuda" or str(b).startswith("cuda:")


def is_false(v):
    return not v


def goals_section(lines):
    ex = [d for d in lines if d.get("bench") == "explain" and is_egcam(d) and
          model_name(d) == "resnet50" and d.get("precision") == "mixed"]
    if not ex:
        return ""
    dev = ex[0].get("device", "")
    s = "## Goals (ResNet-50, mixed; the goals are for an H200; this run: %s)\n\n" % dev
    egc = [d for d in ex if d.get("method") == "expected-gradcam" and d.get("samples") == 32 and
           d.get("batch") == 32 and not d.get("samples_tol")]
    if egc:
        best = max(egc, key=lambda d: num(d, "images_per_s"))
        fits = [d for d in egc if 0 < num(d, "peak_device_bytes") <= GOAL_EGC_GIB * 2.0**30]
        bf = max(fits, key=lambda d: num(d, "images_per_s")) if fits else None
        s += "- Expected Grad-CAM, S = 32, 32 images: best %s images/s (%s rows per pass, %s GiB, " \
             "%s); goal {:,.0f} in at most %.0f GiB".format(GOAL_EGC) % (
                 rate(best), best.get("rows_per_pass"), gib(best.get("peak_device_bytes")),
                 best.get("cuda_env") or "defaults", GOAL_EGC_GIB)
        if bf is not None and bf is not best:
            s += "; best within %.0f GiB: %s images/s (%s rows)" % (GOAL_EGC_GIB, rate(bf),
                                                                  bf.get("rows_per_pass"))
        s += ".\n"
    gc = [d for d in ex if d.get("method") == "gradcam" and d.get("batch") == 64]
    if gc:
        best = max(gc, key=lambda d: num(d, "images_per_s"))
        s += "- Grad-CAM, 64 images: best %s images/s (%s); goal {:,.0f}.\n".format(GOAL_GRADCAM) % (
            rate(best), "pinned inputs" if best.get("pinned") else "ordinary memory")
    s += card_line(lines)
    return s + "\n"


def card_line(lines):
    """How this run's card compares with the one the goals were set on: the same peers'
    rates here against PERFORMANCE.md's, and the goals scaled by that ratio ("" without the
    compiled peers in the run)."""
    fw = [d for d in lines if d.get("bench") == "forward" and d.get("compiled") and
          model_name(d) == "resnet50" and "fp16" in str(d.get("precision", ""))]
    eg = [d for d in lines if d.get("bench") == "explain" and "expert" in str(d.get("backend", ""))
          and "compile" in str(d.get("precision", "")) and model_name(d) == "resnet50"]
    s = ""
    if fw:
        r = max(num(d, "images_per_s") for d in fw)
        k = r / REF_COMPILED_FORWARD
        s += ("- This card: `torch.compile` ResNet-50 fp16 forward %s images/s, %.2f of the %s of "
              "PERFORMANCE.md's H200; the goals scaled by that: Expected Grad-CAM %s, Grad-CAM "
              "%s images/s.\n" % (fmt(r), k, fmt(REF_COMPILED_FORWARD), fmt(GOAL_EGC * k),
                                  fmt(GOAL_GRADCAM * k)))
    if eg:
        r = max(num(d, "images_per_s") for d in eg)
        s += ("- The compiled expert Expected Grad-CAM peer here: %s images/s (%.2f of its %s "
              "there).\n" % (fmt(r), r / REF_COMPILED_EGC, fmt(REF_COMPILED_EGC)))
    return s


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    missing = [p for p in argv[1:] if not os.path.exists(p)]
    if missing:
        print("gpu_summary: no such file or folder: " + ", ".join(missing), file=sys.stderr)
        return 2
    lines = read_lines(argv[1:])
    if not lines:
        print("gpu_summary: no JSON lines in " + ", ".join(argv[1:]), file=sys.stderr)
        return 1
    print("# GPU check summary\n")
    for part in (steps_section, goals_section, issue_section, forward_section, explain_section,
                 python_section):
        sys.stdout.write(part(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
