"""Tests of the Python module (python/egcam) on the shared CIFAR-10 ResNet-20 and its images:
maps bit for bit those of `egcam explain` and metrics bit for bit those of `egcam sweep`,
independent of how images are batched, the options as the library resolves them, the map
metrics against their definitions, overlays, and clear errors for bad input.

Environment: EGC_SHARED_DIR (the shared models and data; the tests skip without it), EGCAM_CLI
(the egcam tool, for the comparison with the command line), EGCAM_LIBRARY (libegcam.so).
Run by tests/run_tests.py (ctest test `python`)."""
import csv
import glob
import json
import os
import subprocess
import sys
import tempfile
import threading
import unittest

import numpy as np

import egcam

SHARED = os.environ.get("EGC_SHARED_DIR", "")
MODEL = os.path.join(SHARED, "models", "resnet20_cifar10.onnx")
CLI = os.environ.get("EGCAM_CLI", "")


def images(n, cls="cat", first=0):
    return sorted(glob.glob(os.path.join(SHARED, "data", "cifar10-test", cls, "*.jpg")))[first:first + n]


@unittest.skipUnless(os.path.exists(MODEL), "the shared models are not there (EGC_SHARED_DIR)")
class ExplainTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.model = egcam.Model(MODEL)
        cls.paths = images(3) + images(2, "ship", 3)  # five distinct file names
        cls.x = egcam.load_images(cls.paths, cls.model, preset="cifar")

    def test_model(self):
        self.assertRegex(egcam.__version__, r"^[0-9]+\.[0-9]+\.[0-9]+$")
        # the package's version (python/pyproject.toml) is the library's
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                               "pyproject.toml")) as f:
            self.assertIn('version = "%s"' % egcam.__version__, f.read())
        m = self.model
        self.assertEqual(m.input_shape, (3, 32, 32))
        self.assertEqual(m.num_classes, 10)
        layers = m.layers()
        auto = [l for l in layers if l["auto"]]
        self.assertEqual(len(auto), 1)
        self.assertTrue(auto[0]["candidate"])
        self.assertEqual(len(auto[0]["shape"]), 4)
        self.assertEqual(self.x.shape, (5, 3, 32, 32))
        self.assertEqual(self.x.dtype, np.float32)

    def test_maps_are_the_command_lines(self):
        if not CLI or not os.path.exists(CLI):
            self.skipTest("no egcam tool (EGCAM_CLI)")
        methods = ["gradcam", "expected-gradcam", "scorecam"]
        with tempfile.TemporaryDirectory() as out:
            # the module and the tool give the same bits with the same BLAS kernels: the tool
            # keeps the ones it loaded (EGC_BLAS_AUTO=0), as this process does
            subprocess.run([CLI, "explain", "--model", MODEL, "--preset", "cifar", "--method",
                            ",".join(methods), "--samples", "8", "--seed", "7", "--save", "npy",
                            "-q", "--out", out] + self.paths, check=True,
                           env=dict(os.environ, EGC_BLAS_AUTO="0"))
            manifest = [json.loads(l) for l in open(os.path.join(out, "manifest.jsonl"))]
            for meth in methods:
                ex = egcam.Explainer(self.model, meth, preset="cifar", samples=8, seed=7)
                r = ex.explain(self.x)
                for i, p in enumerate(self.paths):
                    stem = os.path.splitext(os.path.basename(p))[0]
                    want = np.load(os.path.join(out, meth, stem + ".npy"))
                    self.assertTrue(np.array_equal(r.maps[i], want), "%s %s" % (meth, p))
                    row = [d for d in manifest if d.get("method") == meth and
                           d.get("input", "").endswith(os.path.basename(p)) and
                           os.path.basename(os.path.dirname(d.get("input", ""))) ==
                           os.path.basename(os.path.dirname(p))]
                    self.assertEqual(len(row), 1, "%s %s: manifest rows %r" % (meth, p, row))
                    self.assertEqual(row[0]["class"], int(r.classes[i]))

    def test_batching_does_not_change_maps(self):
        ex = egcam.Explainer(self.model, "expected-gradcam", preset="cifar", samples=8, batch=24,
                             noise=0.1, baselines="uniform", uniform_count=4)
        whole = ex.explain(self.x)
        one = egcam.Explainer(self.model, "expected-gradcam", preset="cifar", samples=8, batch=3,
                              noise=0.1, baselines="uniform", uniform_count=4)
        for i in range(len(self.x)):
            r = one.explain(self.x[i])  # a single (3,H,W) image
            # the same draws; BLAS may round a product of another size in the last bits
            self.assertLessEqual(float(np.abs(r.maps[0] - whole.maps[i]).max()), 1e-5)
            self.assertEqual(r.image_ids[0], whole.image_ids[i])
        self.assertTrue(np.all(whole.samples == 8))
        self.assertEqual(ex.rows, 24)

    def test_classes_and_scores(self):
        logits = self.model.logits(self.x)
        self.assertEqual(logits.shape, (5, 10))
        ex = egcam.Explainer(self.model, "gradcam", preset="cifar")
        top = ex.explain(self.x, raw=True)
        self.assertTrue(np.array_equal(top.classes, logits.argmax(1)))
        self.assertTrue(np.allclose(top.scores, logits.max(1), rtol=1e-5, atol=1e-5))
        self.assertEqual(top.raw.shape, (5,) + ex.layer_shape)
        self.assertTrue(np.all(top.raw >= 0))
        self.assertEqual(top.maps.shape, (5, 32, 32))
        self.assertGreaterEqual(float(top.maps.min()), 0.0)
        self.assertLessEqual(float(top.maps.max()), 1.0)
        given = ex.explain(self.x, classes=[-1, 2, 2, 5, -1])
        self.assertEqual(list(given.classes), [top.classes[0], 2, 2, 5, top.classes[4]])
        self.assertTrue(np.array_equal(given.maps[0], top.maps[0]))
        self.assertTrue(np.array_equal(ex.explain(self.x, classes=4).classes, np.full(5, 4)))

    def test_resolved_options(self):
        ex = egcam.Explainer(self.model, "expected-gradcam", preset="cifar")
        o = ex.options
        self.assertEqual((o["method"], o["combine"], o["score"]), ("expected-gradcam", "B", "softmax"))
        self.assertEqual(o["samples"], 32)
        ig = egcam.Explainer(self.model, "integrated-gradcam", preset="cifar", samples=4)
        self.assertEqual((ig.options["alpha"], ig.options["combine"], ig.options["noise"]),
                         ("grid", "C", 0.0))
        self.assertEqual(ig.samples, 4)

    def test_reference_array_is_the_reference_file(self):
        refs = np.stack([self.x[1], self.x[3]])
        with tempfile.TemporaryDirectory() as d:
            f = os.path.join(d, "refs.npy")
            np.save(f, refs)
            a = egcam.Explainer(self.model, "expected-gradcam", preset="cifar", samples=8,
                                baselines=f).explain(self.x)
        b = egcam.Explainer(self.model, "expected-gradcam", preset="cifar", samples=8,
                            baselines=refs).explain(self.x)
        black = egcam.Explainer(self.model, "expected-gradcam", preset="cifar",
                                samples=8).explain(self.x)
        self.assertTrue(np.array_equal(a.maps, b.maps))
        self.assertFalse(np.array_equal(a.maps, black.maps))

    def test_overlay(self):
        r = egcam.Explainer(self.model, "gradcam", preset="cifar").explain(self.x[:1])
        ov = egcam.overlay(self.paths[0], r.maps[0], preset="cifar")
        self.assertEqual((ov.shape, ov.dtype), ((32, 32, 3), np.uint8))
        plain = egcam.overlay(self.paths[0], r.maps[0], preset="cifar", alpha=0.0)
        self.assertFalse(np.array_equal(ov, plain))
        # alpha 0: the picture itself, i.e. the preprocessed image undone
        back = self.x[0] * np.array([0.229, 0.224, 0.225])[:, None, None] + \
            np.array([0.485, 0.456, 0.406])[:, None, None]
        self.assertLessEqual(np.abs(plain.transpose(2, 0, 1) / 255.0 - back).max(), 1.5 / 255)
        with tempfile.TemporaryDirectory() as d:
            f = os.path.join(d, "o.png")
            egcam.save_overlay(f, self.paths[0], r.maps[0], preset="cifar", colormap="viridis",
                               on="original")
            with open(f, "rb") as fh:
                self.assertEqual(fh.read(8), b"\x89PNG\r\n\x1a\n")

    def test_metrics_are_the_sweeps(self):
        if not CLI or not os.path.exists(CLI):
            self.skipTest("no egcam tool (EGCAM_CLI)")
        paths = self.paths[:3]
        metrics = ["deletion", "insertion", "infidelity", "infidelity-gaussian",
                   "max-sensitivity", "avg-sensitivity", "sparseness", "complexity"]
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([CLI, "sweep", "--model", MODEL, "--preset", "cifar", "--methods",
                            "gradcam,expected-gradcam", "--samples", "8", "--metrics",
                            ",".join(metrics), "--sens-samples", "4", "-q", "--out", out] + paths,
                           check=True, env=dict(os.environ, EGC_BLAS_AUTO="0"))
            rows = {(r["image"], r["method"], r["metric"]): r["value"]
                    for r in csv.DictReader(open(os.path.join(out, "rows.csv")))}
        x = self.x[:3]
        ev = egcam.Evaluator(self.model, preset="cifar")
        for meth in ("gradcam", "expected-gradcam"):
            ex = egcam.Explainer(self.model, meth, preset="cifar", samples=8)
            r = ex.explain(x)
            c = ev.curves(x, r.maps)
            self.assertEqual(c["deletion_curves"].shape, (3, 33))  # 32 steps of 32 pixels
            sens = egcam.sensitivity(ex, x, samples=4)
            got = {"deletion": c["deletion"], "insertion": c["insertion"],
                   "infidelity": ev.infidelity(x, r.maps),
                   "infidelity-gaussian": ev.infidelity_gaussian(x, r.maps)[0],
                   "max-sensitivity": sens["max"], "avg-sensitivity": sens["avg"],
                   "sparseness": egcam.sparseness(r.maps), "complexity": egcam.entropy(r.maps)}
            for k, v in got.items():
                for i, p in enumerate(paths):
                    # rows.csv holds 9 significant digits: float32 values exactly
                    self.assertEqual(v[i], np.float32(rows[(p, meth, k)]), "%s %s %s" % (meth, k, p))
            self.assertTrue(np.all(sens["kept"] + sens["excluded"] == 4))
        self.assertTrue(np.array_equal(ev.logits(x), self.model.logits(x)))

    def test_map_metrics(self):
        rng = np.random.default_rng(3)
        maps = rng.random((4, 32, 32), dtype=np.float32)
        masks = np.zeros((4, 32, 32), dtype=bool)
        masks[:, 8:16, 8:24] = True
        # Gini and entropy as METRICS.md writes them
        a = np.sort(np.abs(maps.reshape(4, -1)) + 1e-7, axis=1)
        i = np.arange(1, a.shape[1] + 1)
        gini = ((2 * i - a.shape[1] - 1) * a).sum(1) / (a.shape[1] * a.sum(1))
        self.assertTrue(np.allclose(egcam.sparseness(maps), gini, atol=1e-5))
        p = np.abs(maps.reshape(4, -1)) / np.abs(maps.reshape(4, -1)).sum(1, keepdims=True)
        self.assertTrue(np.allclose(egcam.entropy(maps), -(p * np.log(p + 1e-12)).sum(1), atol=1e-4))
        energy = (maps * masks).reshape(4, -1).sum(1) / maps.reshape(4, -1).sum(1)
        self.assertTrue(np.allclose(egcam.energy_pointing(maps, masks), energy, atol=1e-5))
        k = int(masks[0].sum())
        top = np.argsort(-maps.reshape(4, -1), axis=1, kind="stable")[:, :k]
        rra = np.array([masks[j].ravel()[top[j]].mean() for j in range(4)])
        self.assertTrue(np.allclose(egcam.relevance_rank(maps, masks), rra, atol=1e-6))
        hit = np.array([masks[j].ravel()[maps[j].argmax()] for j in range(4)], dtype=np.float32)
        self.assertTrue(np.array_equal(egcam.pointing_game(maps, masks), hit))
        one = np.zeros((32, 32), dtype=np.float32)
        one[0, 0] = 1
        self.assertEqual(egcam.pointing_game(one, masks[0]), 0)
        self.assertEqual(egcam.pointing_game(one, masks[0], tolerance=12), 1)  # (8,8) is 11.3 away
        with self.assertRaises(egcam.Error):
            egcam.pointing_game(one, np.zeros((32, 32)))
        with self.assertRaises(ValueError):
            egcam.energy_pointing(maps, masks[:2])
        ev = egcam.Evaluator(self.model, preset="cifar")
        with self.assertRaises(ValueError):
            ev.curves(self.x, maps)  # 4 maps for 5 images

    def test_files(self):
        paths = images(40, "dog") + images(30, "frog")
        with tempfile.TemporaryDirectory() as d:
            cut = os.path.join(d, "cut.jpg")
            with open(paths[0], "rb") as src, open(cut, "wb") as dst:
                dst.write(src.read()[:150])
            files = paths[:25] + [cut, os.path.join(d, "missing.png")] + paths[25:]
            # errors="skip": the readable ones, in order, and the others named
            x, bad = egcam.load_images(files, self.model, preset="cifar", errors="skip", threads=3)
            self.assertEqual(x.shape[0], len(paths))
            self.assertEqual([q for q, _ in bad], files[25:27])
            self.assertIn("cut.jpg", bad[0][1])
            self.assertTrue(np.array_equal(x, egcam.load_images(paths, self.model, preset="cifar",
                                                                threads=1)))
            with self.assertRaises(egcam.Error) as c:
                egcam.load_images(files, self.model, preset="cifar")
            self.assertIn("cut.jpg", str(c.exception))
            ex = egcam.Explainer(self.model, "expected-gradcam", preset="cifar", samples=4, batch=16)
            seen = []
            res = list(ex.explain_files(files, chunk=20, progress=lambda a, b: seen.append((a, b))))
        self.assertEqual([r.path for r in res], files)
        self.assertEqual([r.path for r in res if r.error], files[25:27])
        whole = ex.explain(x)
        good = [r for r in res if not r.error]
        for i, r in enumerate(good):
            self.assertLessEqual(float(np.abs(r.map - whole.maps[i]).max()), 1e-5)
            self.assertEqual((r.cls, r.image_id, r.samples), (whole.classes[i], whole.image_ids[i], 4))
        self.assertEqual(seen, [(20, 72), (40, 72), (60, 72), (72, 72)])

    def test_example_compare_methods(self):
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "grid.png")
            env = dict(os.environ, PYTHONPATH=os.path.join(root, "python"), EGC_BLAS_AUTO="0")
            p = subprocess.run([sys.executable, os.path.join(root, "examples", "compare_methods.py"),
                                MODEL, "cifar", out] + self.paths[:3] + [os.path.join(d, "none.jpg")] +
                               ["--samples", "4", "--cell", "40"],
                               env=env, capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertIn("expected-gradcam", p.stdout)
            self.assertIn("none.jpg", p.stderr)  # the unreadable file is reported, not fatal
            with open(out, "rb") as f:
                head = f.read(24)
            self.assertEqual(head[:8], b"\x89PNG\r\n\x1a\n")
            w, h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
            self.assertEqual((w, h), (3 * 44 + 4, 3 * 44 + 4))  # 3 methods x 3 images of 40 + gaps

    def test_preset_of_your_own(self):
        """A preset with ImageNet's mean and std written out loads the images as cifar does;
        with BGR channels it swaps them; the explainer reports its canonical form; a bad one
        names its key."""
        same = egcam.load_images(self.paths, self.model,
                                 preset="cifar:mean=0.485,0.456,0.406:std=0.229,0.224,0.225")
        self.assertTrue(np.array_equal(same, self.x))
        bgr = egcam.load_images(self.paths, self.model, preset="cifar:mean=0.5:std=0.25:bgr")
        rgb = egcam.load_images(self.paths, self.model, preset="cifar:mean=0.5:std=0.25")
        self.assertTrue(np.array_equal(bgr, rgb[:, ::-1]))
        e = egcam.Explainer(self.model, "gradcam", preset="resize:std=1/255")
        self.assertEqual(e.options["preset"], "cifar:mean=0,0,0:std=0.00392156886,0.00392156886,"
                                              "0.00392156886")
        with self.assertRaises(egcam.Error) as cm:
            egcam.load_images(self.paths, self.model, preset="cifar:gamma=2")
        self.assertIn("'gamma=2' is not mean=.., std=.. or bgr", str(cm.exception))

    def test_out_buffers(self):
        buf = egcam.empty_pinned((8, 3, 32, 32), device="cpu")
        self.assertFalse(egcam.is_pinned(buf))  # ordinary memory for the CPU
        self.assertEqual((buf.dtype, buf.flags.c_contiguous), (np.float32, True))
        got = egcam.load_images(self.paths, self.model, preset="cifar", out=buf)
        self.assertEqual(got.shape, (5, 3, 32, 32))
        self.assertEqual(got.ctypes.data, buf.ctypes.data)
        self.assertTrue(np.array_equal(got, self.x))
        with tempfile.TemporaryDirectory() as d:
            missing = os.path.join(d, "missing.jpg")
            got, bad = egcam.load_images([missing] + self.paths, self.model, preset="cifar",
                                         out=buf, errors="skip")
        self.assertEqual(got.ctypes.data, buf.ctypes.data)  # the readable ones moved to the front
        self.assertTrue(np.array_equal(got, self.x))
        self.assertEqual([q for q, _ in bad], [missing])
        with self.assertRaises(ValueError):
            egcam.load_images(self.paths, self.model, preset="cifar", out=buf[:2])
        r = egcam.Explainer(self.model, "gradcam", preset="cifar").explain(got)
        self.assertTrue(np.array_equal(r.maps, egcam.Explainer(self.model, "gradcam",
                                                               preset="cifar").explain(self.x).maps))

    def test_threads_and_closing(self):
        ex = egcam.Explainer(self.model, "expected-gradcam", preset="cifar", samples=4)
        want = ex.explain(self.x).maps
        got = [None] * 4

        def work(k):
            got[k] = ex.explain(self.x).maps

        ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for g in got:
            self.assertTrue(np.array_equal(g, want))
        # a model closed first closes its explainers: no run on a freed model
        m = egcam.Model(MODEL)
        e2 = egcam.Explainer(m, "gradcam", preset="cifar")
        m.close()
        with self.assertRaises(egcam.Error):
            e2.explain(self.x)
        with self.assertRaises(egcam.Error):
            egcam.Explainer(m, "gradcam")

    def test_errors(self):
        with self.assertRaises(egcam.Error) as c:
            egcam.Model(os.path.join(SHARED, "no-such-model.onnx"))
        self.assertEqual(c.exception.status, "io")
        self.assertIn("no-such-model.onnx", str(c.exception))
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "cut.onnx")
            with open(MODEL, "rb") as src, open(bad, "wb") as dst:
                dst.write(src.read()[:5000])
            with self.assertRaises(egcam.Error) as c:
                egcam.Model(bad)
            self.assertIn("cut.onnx", str(c.exception))
            img = os.path.join(d, "cut.jpg")
            with open(self.paths[0], "rb") as src, open(img, "wb") as dst:
                dst.write(src.read()[:200])
            with self.assertRaises(egcam.Error) as c:
                egcam.load_images([img], self.model, preset="cifar")
            self.assertIn("cut.jpg", str(c.exception))
        with self.assertRaises(egcam.Error) as c:
            egcam.Explainer(self.model, "grad-cam")
        self.assertEqual(c.exception.status, "argument")
        self.assertIn("grad-cam", str(c.exception))
        with self.assertRaises(egcam.Error) as c:
            egcam.Explainer(self.model, "gradcam", layer="no_such_layer")
        self.assertIn("no_such_layer", str(c.exception))
        with self.assertRaises(egcam.Error):
            egcam.Explainer(self.model, "expected-gradcam", combine="D")
        with self.assertRaises(egcam.Error):
            egcam.Explainer(self.model, "gradcam", device="tpu")
        ex = egcam.Explainer(self.model, "gradcam", preset="cifar")
        with self.assertRaises(ValueError):
            ex.explain(np.zeros((2, 3, 64, 64), dtype=np.float32))
        with self.assertRaises(egcam.Error) as c:
            ex.explain(self.x, classes=10)
        self.assertEqual(c.exception.status, "argument")
        # the explainer still works after the errors
        self.assertEqual(ex.explain(self.x[:2]).maps.shape, (2, 32, 32))
        ex.close()
        with self.assertRaises(egcam.Error):
            ex.explain(self.x)


class FromTorchTest(unittest.TestCase):
    """egcam.from_torch on a small network; skipped without PyTorch."""

    def test_export_and_module_layers(self):
        try:
            import torch
        except ImportError:
            self.skipTest("PyTorch is not installed")
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, padding=1, stride=2), torch.nn.Hardswish(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(16, 5))
        with torch.no_grad():
            net[1].running_mean.uniform_(-0.5, 0.5)
            net[1].running_var.uniform_(0.5, 2.0)
        m = egcam.from_torch(net, (3, 20, 24))
        self.assertTrue(net.training)  # its mode is given back
        self.assertEqual((m.input_shape, m.num_classes), ((3, 20, 24), 5))
        net.eval()
        x = torch.randn(4, 3, 20, 24)
        logits = net(x).detach().numpy()
        self.assertLessEqual(float(np.abs(m.logits(x.numpy()) - logits).max()), 1e-5)
        # Grad-CAM at module 4 (the Hardswish) by name, against autograd
        acts = {}
        h = net[4].register_forward_hook(lambda mod, i, o: acts.__setitem__("a", o))
        y = net(x)
        h.remove()
        a = acts["a"]
        a.retain_grad()
        y.gather(1, y.argmax(1)[:, None]).sum().backward()
        want = torch.relu((a.grad.mean((2, 3), keepdim=True) * a).sum(1)).detach().numpy()
        ex = egcam.Explainer(m, "gradcam", layer="4")
        self.assertTrue(ex.layer.startswith("/4/"), ex.layer)
        r = ex.explain(x.numpy(), raw=True)
        self.assertTrue(np.array_equal(r.classes, logits.argmax(1)))
        self.assertLessEqual(float(np.abs(r.raw - want).max()), 1e-5 * float(np.abs(want).max()))



LOWER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "test", "data",
                     "lower")


class VisionTransformerTest(unittest.TestCase):
    """A small vision transformer (test/data/lower/vit_tiny.onnx, made by
    tools/gen_lower_cases.py with PyTorch's activations and gradients at its first LayerNorm):
    its token layer as a CAM layer, Grad-CAM and Expected Grad-CAM on it; and a small Swin
    transformer's channels-last norm."""

    def test_token_layer_gradcam(self):
        m = egcam.Model(os.path.join(LOWER, "vit_tiny.onnx"))
        x = np.load(os.path.join(LOWER, "vit_tiny_in.npy"))
        a = np.load(os.path.join(LOWER, "vit_tiny_tokens_act.npy")).astype(np.float64)
        g = np.load(os.path.join(LOWER, "vit_tiny_tokens_grad.npy")).astype(np.float64)
        auto = [l for l in m.layers() if l["auto"]]
        self.assertEqual(len(auto), 1)
        self.assertEqual(auto[0]["tokens"], (1, 3, 3))
        self.assertEqual(auto[0]["shape"], (1, 10, 8))
        ex = egcam.Explainer(m, "gradcam", layer="layer.ln_1", batch=2)
        self.assertEqual(ex.layer, auto[0]["name"])
        r = ex.explain(x, raw=True)
        want = np.maximum((g.mean(axis=(2, 3), keepdims=True) * a).sum(1), 0)
        self.assertEqual(r.raw.shape, (3, 3, 3))
        self.assertLessEqual(float(np.abs(r.raw - want).max()), 1e-5 * float(np.abs(want).max()))
        self.assertEqual(r.maps.shape, (3, 12, 12))
        e = egcam.Explainer(m, "expected-gradcam", samples=4, batch=2).explain(x)
        self.assertEqual(e.maps.shape, (3, 12, 12))
        self.assertTrue(np.isfinite(e.maps).all())

    def test_swin_channels_last_gradcam(self):
        """A small torchvision Swin transformer (test/data/lower/swin_tiny.onnx): `auto` is its
        final norm, channels last; Grad-CAM there is PyTorch's on the transposed activation and
        gradient (pytorch-grad-cam's reshape_transform for Swin)."""
        m = egcam.Model(os.path.join(LOWER, "swin_tiny.onnx"))
        x = np.load(os.path.join(LOWER, "swin_tiny_in.npy"))
        a = np.load(os.path.join(LOWER, "swin_tiny_norm_act.npy")).astype(np.float64)
        g = np.load(os.path.join(LOWER, "swin_tiny_norm_grad.npy")).astype(np.float64)
        auto = [l for l in m.layers() if l["auto"]]
        self.assertEqual(len(auto), 1)
        self.assertTrue(auto[0].get("channels_last"))
        self.assertNotIn("tokens", auto[0])
        self.assertEqual(auto[0]["shape"], (1, 8, 8, 8))
        r = egcam.Explainer(m, "gradcam", layer="norm", batch=3).explain(x, raw=True)
        want = np.maximum((g.mean(axis=(2, 3), keepdims=True) * a).sum(1), 0)
        self.assertEqual(r.raw.shape, (3, 8, 8))
        self.assertLessEqual(float(np.abs(r.raw - want).max()), 1e-5 * float(np.abs(want).max()))
        self.assertEqual(r.maps.shape, (3, 16, 16))

    def test_channels_last_input(self):
        """A model whose input is channels last (test/data/lower/keras_nhwc.onnx, as Keras
        exports take images): its logits are PyTorch's, and images given channels first or
        channels last give the same maps."""
        m = egcam.Model(os.path.join(LOWER, "keras_nhwc.onnx"))
        self.assertTrue(m.input_channels_last)
        self.assertEqual(m.input_shape, (3, 8, 8))
        x = np.load(os.path.join(LOWER, "keras_nhwc_in.npy"))
        xl = np.load(os.path.join(LOWER, "keras_nhwc_in_last.npy"))
        want = np.load(os.path.join(LOWER, "keras_nhwc_out.npy"))
        for images in (x, xl):
            got = m.logits(images)
            self.assertLessEqual(float(np.abs(got - want).max()), 1e-5 * float(np.abs(want).max()))
        e = egcam.Explainer(m, "gradcam", batch=3)
        r = e.explain(x)
        self.assertTrue(np.array_equal(e.explain(xl).maps, r.maps))
        self.assertFalse(egcam.Model(os.path.join(LOWER, "swin_tiny.onnx")).input_channels_last)
        self.assertFalse(m.output_softmax_removed)
        self.assertIsNone(m.output_removed)
        s = egcam.Model(os.path.join(LOWER, "keras_softmax.onnx"))
        self.assertTrue(s.output_softmax_removed)
        self.assertEqual(s.output_removed, "Softmax")
        with self.assertRaises(egcam.Error) as cm:
            egcam.Model(os.path.join(LOWER, "dynamic_hw.onnx"))
        self.assertIn("input-size", str(cm.exception))
        for size, stem in (((20, 20), "dynamic_hw"), ((24, 16), "dynamic_hw_b")):
            d = egcam.Model(os.path.join(LOWER, "dynamic_hw.onnx"), input_size=size)
            self.assertEqual(d.input_shape, (3,) + size)
            want = np.load(os.path.join(LOWER, stem + "_out.npy"))
            got = d.logits(np.load(os.path.join(LOWER, stem + "_in.npy")))
            self.assertLessEqual(float(np.abs(got - want).max()), 1e-5 * float(np.abs(want).max()))
        ls = egcam.Model(os.path.join(LOWER, "mnist_logsoftmax.onnx"))
        self.assertEqual(ls.output_removed, "LogSoftmax")
        want = np.load(os.path.join(LOWER, "mnist_logsoftmax_logits.npy"))
        got = ls.logits(np.load(os.path.join(LOWER, "mnist_logsoftmax_in.npy")))
        self.assertLessEqual(float(np.abs(got - want).max()), 1e-5 * float(np.abs(want).max()))
        want = np.load(os.path.join(LOWER, "keras_softmax_logits.npy"))
        got = s.logits(np.load(os.path.join(LOWER, "keras_softmax_in.npy")))
        self.assertLessEqual(float(np.abs(got - want).max()), 1e-5 * float(np.abs(want).max()))
        with self.assertRaises(ValueError):
            e.explain(xl[:, :4])

    @unittest.skipUnless(os.path.exists(MODEL), "the shared data are not there (EGC_SHARED_DIR)")
    def test_gray_model(self):
        """A model of gray images (test/data/lower/gray_cnn.onnx): load_images makes the
        tensors PIL and torchvision make (convert("L"), MNIST's mean and std as a preset of
        your own) bit for bit; arrays (n,1,H,W) and (n,H,W) give the same maps."""
        m = egcam.Model(os.path.join(LOWER, "gray_cnn.onnx"))
        self.assertEqual(m.input_shape, (1, 28, 28))
        want = np.load(os.path.join(LOWER, "gray_cnn_in.npy"))
        paths = [os.path.join(SHARED, "data", "cifar10-test", "cat", "%04d.jpg" % k)
                 for k in range(3)]
        x = egcam.load_images(paths, m, preset="cifar:mean=0.1307:std=0.3081")
        self.assertEqual(x.shape, (3, 1, 28, 28))
        self.assertTrue(np.array_equal(x, want))
        e = egcam.Explainer(m, "expected-gradcam", samples=4, preset="cifar:mean=0.1307:std=0.3081")
        r = e.explain(x)
        self.assertEqual(r.maps.shape, (3, 28, 28))
        self.assertTrue(np.array_equal(e.explain(x[:, 0]).maps, r.maps))


if __name__ == "__main__":
    unittest.main()
