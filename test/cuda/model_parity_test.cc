// model_parity_test.cc: whole models on the CUDA backend against the CPU reference, through
// the public session API (egc_session_create / forward / backward).
//
// SharedModel: the four shared ONNX models at batch 1 and batch 32: the logits, and the
// gradient of each image's top-1 logit (the CPU's) with respect to the auto target layer,
// compared per image as |cuda - cpu| <= tol * range, the range being max - min of the CPU
// logits (max |grad| for the gradient). Two precisions: TF32 tensor-core math allowed
// (tol 2e-2: TF32 keeps 10 mantissa bits in products, so deep nets drift by ~1e-3 of the
// range) and strict fp32 with TF32 off (tol 1e-4). Inputs are real preprocessed images from
// the shared data (ImageNet sample for the MobileNets, CIFAR-10 test images for the ResNets)
// when present, else deterministic pseudo-random tensors.
//
// Torchvision: VGG16, ResNet-50 and AlexNet exported with random weights by
// benchmarks/peers/export_torchvision.py into the folder named by the environment variable
// EGC_TV_DIR (skipped when unset): egcam's CPU and CUDA logits against PyTorch's fp32 logits
// on the same 4 inputs, and the CUDA target-layer gradient against the CPU's (its channel
// sums where the target feeds a MaxPool, see below).
//
// Mixed precision (egc_session_create_ex with EGC_PREC_MIXED, TF32 allowed): logits against
// the CPU's within 2e-2 of the range (fp16 keeps 10 mantissa bits, like TF32, and rounds the
// stored activations too), and the target-layer gradient with a cosine similarity >= 0.999
// per image against the CPU's (for the torchvision exports whose target feeds a MaxPool, on
// the per-channel sums, see below).
//
// CUDA graphs: one session run repeatedly (plain first run, recording on the second, replays
// after) gives the same logits and target gradients as its first, plain run on the same
// inputs, in fp32 and mixed, and egc_session_describe reports the replay as on; a session with
// graphs off gives the same logits too.
//
// The worst element (image, index, both values) is reported on failure and printed on
// success. CUDA parts are skipped, with the reason, where no CUDA device or driver is present;
// model parts are skipped when their file is missing.
#include <gtest/gtest.h>

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "backend/backend.h"
#include "egcam/image.h"
#include "egcam/model.h"
}

#include "cuda_test_util.h"

namespace {

std::string shared_dir()
{
    const char *e = getenv("EGC_SHARED_DIR");
    return e && *e ? e : EGC_SHARED_DIR;
}

bool file_exists(const std::string &p)
{
    struct stat st;
    return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Sorted names of the regular entries (or sub-folders when dirs) of a folder; empty if absent.
std::vector<std::string> list_dir(const std::string &d, bool dirs)
{
    std::vector<std::string> out;
    DIR *h = opendir(d.c_str());
    if (!h) return out;
    while (struct dirent *e = readdir(h)) {
        if (e->d_name[0] == '.') continue;
        struct stat st;
        std::string p = d + "/" + e->d_name;
        if (stat(p.c_str(), &st) != 0) continue;
        if (dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode)) out.push_back(e->d_name);
    }
    closedir(h);
    std::sort(out.begin(), out.end());
    return out;
}

struct Outputs {
    std::vector<float> logits;  // [n, classes]
    std::vector<float> grad;    // [n, K*h*w] (empty without a target)
    int64_t k = 0, hw = 0;      // target channels and spatial size
};

// Per image and channel, the spatial sum of the gradient [n*K*h*w] -> [n*K]: Grad-CAM's
// channel weights (up to 1/hw).
std::vector<float> channel_sums(const Outputs &o)
{
    std::vector<float> w(o.hw ? o.grad.size() / (size_t)o.hw : 0, 0.0f);
    for (size_t i = 0; i < w.size(); i++) {
        double acc = 0;
        for (int64_t j = 0; j < o.hw; j++) acc += o.grad[i * (size_t)o.hw + (size_t)j];
        w[i] = (float)acc;
    }
    return w;
}

// Forward (and, with a target layer, backward of the seed) of n images on one device.
// seed is [n, classes]; when empty, the top-1 of each image's logits is used and written
// back into *seed.
testing::AssertionResult run(const egc_model *m, const char *device, int batch, int layer,
                             const std::vector<float> &x, int n, std::vector<float> *seed,
                             Outputs *o, egc_precision prec = EGC_PREC_FP32)
{
    egc_session *s = nullptr;
    egc_session_options so;
    egc_session_options_default(&so);
    so.precision = prec;
    if (egc_session_create_ex(m, device, batch, layer, &so, &s) != EGC_OK)
        return testing::AssertionFailure() << device << ": session: " << egc_last_error();
    const int classes = egc_model_num_classes(m);
    o->logits.assign((size_t)n * classes, 0.0f);
    if (egc_session_forward(s, x.data(), n, o->logits.data()) != EGC_OK) {
        std::string e = egc_last_error();
        egc_session_destroy(s);
        return testing::AssertionFailure() << device << ": forward: " << e;
    }
    if (layer >= 0) {
        if (seed->empty()) {
            seed->assign((size_t)n * classes, 0.0f);
            for (int i = 0; i < n; i++) {
                const float *r = o->logits.data() + (size_t)i * classes;
                (*seed)[(size_t)i * classes + (std::max_element(r, r + classes) - r)] = 1.0f;
            }
        }
        egc_shape ts = egc_session_target_shape(s);
        o->k = ts.ndim == 4 ? ts.d[1] : 0;
        o->hw = ts.ndim == 4 ? ts.d[2] * ts.d[3] : 0;
        o->grad.assign((size_t)n * (size_t)egc_shape_numel(&ts), 0.0f);
        if (egc_session_backward(s, seed->data(), n, o->grad.data(), nullptr) != EGC_OK) {
            std::string e = egc_last_error();
            egc_session_destroy(s);
            return testing::AssertionFailure() << device << ": backward: " << e;
        }
    }
    egc_session_destroy(s);
    return testing::AssertionSuccess();
}

// Per image i of n: |got - ref| <= tol * range_i with range_i = max - min of ref's row
// (use_abs: max |ref|). Reports the worst element relative to its row's range.
testing::AssertionResult close_rows(const std::string &what, const std::vector<float> &ref,
                                    const std::vector<float> &got, int n, double tol,
                                    bool use_abs)
{
    if (ref.size() != got.size() || n < 1 || ref.size() % (size_t)n)
        return testing::AssertionFailure() << what << ": sizes " << ref.size() << " vs "
                                           << got.size();
    const size_t per = ref.size() / (size_t)n;
    double worst = -1;
    size_t wi = 0, wk = 0;
    double wrange = 0;
    for (int i = 0; i < n; i++) {
        const float *r = ref.data() + (size_t)i * per, *g = got.data() + (size_t)i * per;
        double lo = r[0], hi = r[0], amax = 0;
        for (size_t k = 0; k < per; k++) {
            lo = std::min(lo, (double)r[k]);
            hi = std::max(hi, (double)r[k]);
            amax = std::max(amax, std::fabs((double)r[k]));
        }
        double range = use_abs ? amax : hi - lo;
        if (range <= 0) range = 1e-30;
        for (size_t k = 0; k < per; k++) {
            double d = std::fabs((double)g[k] - (double)r[k]);
            if (!(d == d) || !std::isfinite((double)g[k])) d = INFINITY;
            if (d / range > worst) {
                worst = d / range;
                wi = (size_t)i;
                wk = k;
                wrange = range;
            }
        }
    }
    char buf[320];
    snprintf(buf, sizeof buf,
             "%s: worst |diff|/range %.3g (tol %.1g) at image %zu element %zu: got %.9g, ref %.9g, "
             "range %.6g",
             what.c_str(), worst, tol, wi, wk, (double)got[wi * per + wk], (double)ref[wi * per + wk],
             wrange);
    if (worst <= tol) {
        printf("  %s\n", buf);
        return testing::AssertionSuccess();
    }
    return testing::AssertionFailure() << buf;
}

// Per image i of n: cosine similarity of got's and ref's rows >= min_cos (both rows zero
// counts as 1). Reports the worst image.
testing::AssertionResult cosine_rows(const std::string &what, const std::vector<float> &ref,
                                     const std::vector<float> &got, int n, double min_cos)
{
    if (ref.size() != got.size() || n < 1 || ref.size() % (size_t)n)
        return testing::AssertionFailure() << what << ": sizes " << ref.size() << " vs "
                                           << got.size();
    const size_t per = ref.size() / (size_t)n;
    double worst = 2;
    int wi = 0;
    for (int i = 0; i < n; i++) {
        double rr = 0, gg = 0, rg = 0;
        for (size_t k = 0; k < per; k++) {
            double r = ref[(size_t)i * per + k], g = got[(size_t)i * per + k];
            rr += r * r;
            gg += g * g;
            rg += r * g;
        }
        double cs = rr == 0 && gg == 0 ? 1.0 : rg / std::sqrt(rr * gg);
        if (!(cs == cs)) cs = -2; // NaN
        if (cs < worst) {
            worst = cs;
            wi = i;
        }
    }
    char buf[200];
    snprintf(buf, sizeof buf, "%s: worst per-image cosine %.6f (min %.4f) at image %d",
             what.c_str(), worst, min_cos, wi);
    if (worst >= min_cos) {
        printf("  %s\n", buf);
        return testing::AssertionSuccess();
    }
    return testing::AssertionFailure() << buf;
}

// Deterministic pseudo-random input in [-2, 2) for n images of c*h*w.
std::vector<float> random_input(int n, int c, int h, int w, unsigned seed)
{
    std::mt19937 r(seed);
    std::uniform_real_distribution<float> u(-2.0f, 2.0f);
    std::vector<float> x((size_t)n * c * h * w);
    for (auto &v : x) v = u(r);
    return x;
}

// ------------------------------------------------------------------ shared models

struct SharedCase {
    const char *model;    // file name under models/
    egc_preset preset;
    bool cifar;           // CIFAR-10 test images (else the ImageNet sample)
};

const SharedCase kShared[] = {
    {"mobilenet_v2_imagenet.onnx", EGC_PRESET_TF, false},
    {"mobilenet_v1_025_128_imagenet.onnx", EGC_PRESET_TF, false},
    {"resnet20_cifar10.onnx", EGC_PRESET_CIFAR, true},
    {"resnet56_cifar10.onnx", EGC_PRESET_CIFAR, true},
};

// n image paths from the shared data: the first n of the ImageNet sample (sorted), or for
// CIFAR-10 round-robin over the sorted class folders. Fewer when the data is absent.
std::vector<std::string> shared_images(bool cifar, int n)
{
    std::vector<std::string> out;
    const std::string d = shared_dir() + "/data/";
    if (!cifar) {
        for (const auto &f : list_dir(d + "imagenet-sample", false)) {
            if ((int)out.size() == n) break;
            out.push_back(d + "imagenet-sample/" + f);
        }
        return out;
    }
    std::vector<std::vector<std::string>> per;
    for (const auto &cls : list_dir(d + "cifar10-test", true)) {
        per.push_back({});
        for (const auto &f : list_dir(d + "cifar10-test/" + cls, false))
            per.back().push_back(d + "cifar10-test/" + cls + "/" + f);
    }
    for (size_t k = 0; (int)out.size() < n; k++) {
        bool any = false;
        for (auto &v : per)
            if (k < v.size() && (int)out.size() < n) {
                out.push_back(v[k]);
                any = true;
            }
        if (!any) break;
    }
    return out;
}

// In a test body: skips where CUDA cannot be used or the shared model of case sc is absent,
// else loads that model into m (the test destroys it).
#define LOAD_SHARED_OR_SKIP(sc, m)                                                          \
    do {                                                                                    \
        if (!cuda_skip_reason().empty()) GTEST_SKIP() << cuda_skip_reason();                \
        const std::string path_ = shared_dir() + "/models/" + (sc).model;                  \
        if (!file_exists(path_)) GTEST_SKIP() << "shared model " << path_ << " is not present"; \
        ASSERT_EQ(egc_model_load(path_.c_str(), &(m)), EGC_OK) << egc_last_error();       \
    } while (0)

class CudaModelShared : public testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(CudaModelShared, LogitsAndTargetGradientMatchCpu)
{
    const SharedCase &sc = kShared[std::get<0>(GetParam())];
    const int batch = std::get<1>(GetParam());
    egc_model *m = nullptr;
    LOAD_SHARED_OR_SKIP(sc, m);
    int c, h, w;
    egc_model_input_chw(m, &c, &h, &w);
    int layer = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &layer), EGC_OK) << egc_last_error();

    std::vector<std::string> imgs = shared_images(sc.cifar, batch);
    std::vector<float> x;
    if ((int)imgs.size() == batch) {
        x.resize((size_t)batch * c * h * w);
        for (int i = 0; i < batch; i++) {
            egc_image img{};
            ASSERT_EQ(egc_image_load(imgs[(size_t)i].c_str(), &img), EGC_OK) << egc_last_error();
            egc_status st = egc_preprocess(&img, sc.preset, w, h, x.data() + (size_t)i * c * h * w);
            egc_image_free(&img);
            ASSERT_EQ(st, EGC_OK) << egc_last_error();
        }
        printf("  %s batch %d: %d real images from %s\n", sc.model, batch, batch,
               sc.cifar ? "cifar10-test" : "imagenet-sample");
    } else {
        x = random_input(batch, c, h, w, 7u + (unsigned)batch);
        printf("  %s batch %d: shared images not present, pseudo-random inputs\n", sc.model,
               batch);
    }

    std::vector<float> seed;
    Outputs cpu, strict, tf32, mixed;
    ASSERT_TRUE(run(m, "cpu", batch, layer, x, batch, &seed, &cpu));
    {
        Tf32Env env(false);
        ASSERT_TRUE(run(m, "cuda", batch, layer, x, batch, &seed, &strict));
    }
    {
        Tf32Env env(true);
        ASSERT_TRUE(run(m, "cuda", batch, layer, x, batch, &seed, &tf32));
        ASSERT_TRUE(run(m, "cuda", batch, layer, x, batch, &seed, &mixed, EGC_PREC_MIXED));
    }
    const std::string tag = std::string(sc.model) + " b" + std::to_string(batch);
    EXPECT_TRUE(close_rows(tag + " logits mixed", cpu.logits, mixed.logits, batch, 2e-2, false));
    EXPECT_TRUE(cosine_rows(tag + " target grad mixed", cpu.grad, mixed.grad, batch, 0.999));
    EXPECT_TRUE(close_rows(tag + " logits fp32", cpu.logits, strict.logits, batch, 1e-4, false));
    EXPECT_TRUE(close_rows(tag + " target grad fp32", cpu.grad, strict.grad, batch, 1e-4, true));
    EXPECT_TRUE(close_rows(tag + " logits tf32", cpu.logits, tf32.logits, batch, 2e-2, false));
    EXPECT_TRUE(close_rows(tag + " target grad tf32", cpu.grad, tf32.grad, batch, 2e-2, true));
    egc_model_destroy(m);
}

std::string shared_name(const testing::TestParamInfo<std::tuple<int, int>> &info)
{
    std::string s = kShared[std::get<0>(info.param)].model;
    s = s.substr(0, s.find('.'));
    for (auto &ch : s)
        if (!isalnum((unsigned char)ch)) ch = '_';
    return s + "_b" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(, CudaModelShared,
                         testing::Combine(testing::Range(0, 4), testing::Values(1, 32)),
                         shared_name);

// ------------------------------------------------------------------ composite lowerings

// The composite lowerings on the GPU: HardSwish, HardSigmoid and ReduceMean (Mul, Add, Clip,
// GlobalAveragePool, Flatten: test/data/lower/composite_opset14.onnx, target the HardSwish
// output), LeakyRelu and PRelu (Relu, Mul, Add: leaky_prelu.onnx, target the LeakyRelu
// output), GlobalMaxPool and ReduceMax (whole-window MaxPools: global_max.onnx, target the
// Conv output), Squeeze and Unsqueeze (Reshapes: squeeze_unsqueeze.onnx, target the gated
// input), a small ConvNeXt (channels-last LayerNorms as MatMuls with 1/C, Mul, Sqrt, Div; the
// GELU's Erf; Linears on [N,H,W,C] between Transposes: convnext_block.onnx, target the stem's
// output), a small vision transformer (attention with a leading batch axis: 4-D MatMuls of two
// activations, Softmax, Transposes; the class token's Pad and Add, and Gather: vit_tiny.onnx,
// target the patch Conv, and the token layer of its first LayerNorm read as [N,8,3,3]), a
// model run one image per pass (a convolution along the batch axis: batch_conv.onnx, target
// the Conv), a DeiT-style transformer (timm's attention split on its own axis 0; two prefix
// tokens: deit_tiny.onnx, target the last block's norm1), a small Swin transformer (shifted
// windows, ScatterND-built masks folded at load time; channels-last layers read through their
// transpose: swin_tiny.onnx, target its final norm and its first block's output), a model
// whose input is channels last (the Transpose added at load, then the file's rescaling on
// [N,H,W,3] and its Transpose back: keras_nhwc.onnx, target relu2; a channels-last global
// pool, ReduceMean over axes 1 and 2: keras_head.onnx, target relu2), GroupNorm and
// InstanceNorm (Reshapes, means as MatMuls with 1/L, Sub, Mul, Sqrt, Div: group_norm.onnx,
// target relu1, its head through an InstanceNormalization), Tanh and the tanh GELU through
// Sigmoid (tanh_gelu.onnx, target act1), a maximum over the channels (a MaxPool over that
// axis between Transposes: cbam.onnx, target relu1), a nearest-neighbour Resize by 2 (a
// 6-D broadcast Mul between Reshapes: upsample_fuse.onnx, target its half-resolution branch),
// the exponential units (Exp, Softplus: exp_units.onnx, target its ELU), a final LogSoftmax
// left out (mnist_logsoftmax.onnx, gray, target relu2), bilinear, bicubic and nearest
// Resizes (MatMuls with interpolation matrices between Transposes: resize_modes.onnx, target
// relu1), a quantized model (QuantizeLinear / DequantizeLinear pairs: qdq_cnn.onnx, target
// relu1, compared within a step of its grid): logits and the target gradient,
// whose heads run backward through them, against the CPU.
class CudaModelComposite : public testing::TestWithParam<int> {};

TEST_P(CudaModelComposite, LogitsAndGradientMatchCpu)
{
    if (!cuda_skip_reason().empty()) GTEST_SKIP() << cuda_skip_reason();
    const char *files[] = {"composite_opset14.onnx", "leaky_prelu.onnx", "global_max.onnx",
                           "squeeze_unsqueeze.onnx", "convnext_block.onnx", "vit_tiny.onnx",
                           "vit_tiny.onnx", "batch_conv.onnx", "deit_tiny.onnx",
                           "swin_tiny.onnx", "swin_tiny.onnx", "keras_nhwc.onnx",
                           "keras_head.onnx", "group_norm.onnx", "tanh_gelu.onnx",
                           "cbam.onnx", "upsample_fuse.onnx", "exp_units.onnx",
                           "mnist_logsoftmax.onnx", "resize_modes.onnx", "qdq_cnn.onnx"},
               *targets[] = {"hs", "lr", "c", "g", "stem", "patch", "layer.ln_1", "conv",
                             "blocks.1.norm1", "norm", "features.1.0", "relu2", "relu2",
                             "relu1", "act1", "relu1", "low", "act1", "relu2", "relu1", "relu1"};
    const int which = GetParam();
    const std::string path = std::string(EGC_SOURCE_DIR) + "/test/data/lower/" + files[which];
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(path.c_str(), &m), EGC_OK) << egc_last_error();
    int layer = -1;
    ASSERT_EQ(egc_model_find_layer(m, targets[which], &layer), EGC_OK) << egc_last_error();
    for (int batch : {1, 9}) {
        int ic, ih, iw;
        egc_model_input_chw(m, &ic, &ih, &iw);
        std::vector<float> x = random_input(batch, ic, ih, iw, 31u + (unsigned)batch);
        for (auto &v : x) v *= 1.5f; // activations over both ends of the HardSigmoids
        std::vector<float> seed;
        Outputs cpu, strict, mixed;
        ASSERT_TRUE(run(m, "cpu", batch, layer, x, batch, &seed, &cpu));
        {
            Tf32Env env(false);
            ASSERT_TRUE(run(m, "cuda", batch, layer, x, batch, &seed, &strict));
            ASSERT_TRUE(run(m, "cuda", batch, layer, x, batch, &seed, &mixed, EGC_PREC_MIXED));
        }
        const std::string tag = std::string(files[which]) + " b" + std::to_string(batch);
        if (which == 20) {
            // quantized: a value the devices compute a last bit apart may round to the next
            // point of the grid (one step of 0.02 or 0.01), and flip a straight-through mask
            // where it is clamped: the logits within 2e-2 of the range, the gradient's cosine
            EXPECT_TRUE(close_rows(tag + " logits fp32", cpu.logits, strict.logits, batch, 2e-2, false));
            EXPECT_TRUE(cosine_rows(tag + " grad fp32", cpu.grad, strict.grad, batch, 0.99));
            EXPECT_TRUE(close_rows(tag + " logits mixed", cpu.logits, mixed.logits, batch, 5e-2, false));
            EXPECT_TRUE(cosine_rows(tag + " grad mixed", cpu.grad, mixed.grad, batch, 0.98));
            continue;
        }
        EXPECT_TRUE(close_rows(tag + " logits fp32", cpu.logits, strict.logits, batch, 1e-4, false));
        EXPECT_TRUE(close_rows(tag + " grad fp32", cpu.grad, strict.grad, batch, 1e-4, true));
        EXPECT_TRUE(close_rows(tag + " logits mixed", cpu.logits, mixed.logits, batch, 2e-2, false));
        if (which == 2 || which == 18) {
            // a max routes its gradient to one position, which fp16 rounding may move among
            // near-equal ones: the per-channel sums (Grad-CAM's weights) do not depend on it
            // (global_max's target, and the MNIST network's relu2 before its MaxPool)
            Outputs c1 = cpu, m1 = mixed;
            c1.grad = channel_sums(cpu);
            m1.grad = channel_sums(mixed);
            EXPECT_TRUE(close_rows(tag + " grad channel sums mixed", c1.grad, m1.grad, batch, 2e-2, true));
        } else {
            // composite_opset14's inputs reach over both ends of its HardSigmoids (x 1.5):
            // fp16 moves a few values across those kinks (cosine 0.9979 at worst of 9 images
            // on an H200)
            EXPECT_TRUE(cosine_rows(tag + " grad mixed", cpu.grad, mixed.grad, batch,
                                    which == 0 ? 0.995 : 0.999));
        }
    }
    egc_model_destroy(m);
}

INSTANTIATE_TEST_SUITE_P(, CudaModelComposite, testing::Range(0, 21));

// ------------------------------------------------------------------ torchvision exports
//
// In VGG16 and AlexNet the auto target (the last Relu) feeds a MaxPool. Its backward routes
// each window's gradient to the window's first maximum, a discontinuous choice: where Relu
// outputs tie at 0, or differ in the last bits between two devices, the gradient lands on a
// different element. The element-wise gradient is then compared only where the target is not
// followed by a MaxPool; the per-channel spatial sums (Grad-CAM's weights, invariant to that
// routing) are compared for every model.

struct Npy {
    egc_tensor t{};
    ~Npy() { egc_tensor_free(&t); }
};

class CudaModelTorchvision : public testing::TestWithParam<const char *> {};

TEST_P(CudaModelTorchvision, LogitsMatchPyTorch)
{
    const char *dir = getenv("EGC_TV_DIR");
    if (!dir || !*dir)
        GTEST_SKIP() << "EGC_TV_DIR is not set (run benchmarks/peers/export_torchvision.py DIR "
                        "and set EGC_TV_DIR=DIR)";
    const std::string base = std::string(dir) + "/" + GetParam();
    if (!file_exists(base + ".onnx")) GTEST_SKIP() << base << ".onnx is not present";
    Npy xin, ref;
    ASSERT_EQ(egc_npy_read((base + "_input.npy").c_str(), &xin.t), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_npy_read((base + "_logits.npy").c_str(), &ref.t), EGC_OK) << egc_last_error();
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load((base + ".onnx").c_str(), &m), EGC_OK) << egc_last_error();
    int c, h, w;
    egc_model_input_chw(m, &c, &h, &w);
    const int classes = egc_model_num_classes(m);
    ASSERT_EQ(xin.t.shape.ndim, 4);
    const int n = (int)xin.t.shape.d[0];
    ASSERT_EQ(xin.t.shape.d[1], c);
    ASSERT_EQ(xin.t.shape.d[2], h);
    ASSERT_EQ(xin.t.shape.d[3], w);
    ASSERT_EQ(egc_shape_numel(&ref.t.shape), (int64_t)n * classes);
    std::vector<float> x(xin.t.data, xin.t.data + egc_shape_numel(&xin.t.shape));
    std::vector<float> want(ref.t.data, ref.t.data + egc_shape_numel(&ref.t.shape));
    int layer = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &layer), EGC_OK) << egc_last_error();
    egc_layer_info next{};
    bool routed = layer + 1 < egc_model_num_layers(m) &&
                  egc_model_layer(m, layer + 1, &next) == EGC_OK && !strcmp(next.op, "MaxPool");

    // VGG16 and AlexNet have ReLUs in their classifier after the target. With random weights
    // many of their pre-activations sit near 0, and rounding differences (TF32, fp16, or a
    // different cuDNN algorithm) flip some of them, which reroutes part of the gradient while
    // the logits still agree tightly. Their target gradients are compared by per-image cosine.
    bool kinky = false;
    for (int l = layer + 1; l < egc_model_num_layers(m); l++) {
        egc_layer_info li{};
        if (egc_model_layer(m, l, &li) == EGC_OK && !strcmp(li.op, "Relu")) kinky = true;
    }

    std::vector<float> seed;
    Outputs cpu;
    ASSERT_TRUE(run(m, "cpu", n, layer, x, n, &seed, &cpu));
    EXPECT_TRUE(close_rows(std::string(GetParam()) + " cpu logits vs PyTorch", want, cpu.logits, n,
                           1e-4, false));
    if (!cuda_skip_reason().empty()) {
        egc_model_destroy(m);
        GTEST_SKIP() << "CPU part checked; " << cuda_skip_reason();
    }
    Outputs strict, tf32, mixed;
    {
        Tf32Env env(false);
        ASSERT_TRUE(run(m, "cuda", n, layer, x, n, &seed, &strict));
    }
    {
        Tf32Env env(true);
        ASSERT_TRUE(run(m, "cuda", n, layer, x, n, &seed, &tf32));
        ASSERT_TRUE(run(m, "cuda", n, layer, x, n, &seed, &mixed, EGC_PREC_MIXED));
    }
    const std::string tag = GetParam();
    EXPECT_TRUE(close_rows(tag + " cuda mixed logits vs PyTorch", want, mixed.logits, n, 2e-2, false));
    EXPECT_TRUE(cosine_rows(tag + " cuda mixed channel grad sums vs cpu", channel_sums(cpu),
                            channel_sums(mixed), n, kinky ? 0.99 : 0.999));
    if (!routed)
        EXPECT_TRUE(cosine_rows(tag + " cuda mixed target grad vs cpu", cpu.grad, mixed.grad, n,
                                0.999));
    EXPECT_TRUE(close_rows(tag + " cuda fp32 logits vs PyTorch", want, strict.logits, n, 1e-4, false));
    EXPECT_TRUE(close_rows(tag + " cuda tf32 logits vs PyTorch", want, tf32.logits, n, 2e-2, false));
    if (kinky) {
        EXPECT_TRUE(cosine_rows(tag + " cuda fp32 channel grad sums vs cpu", channel_sums(cpu),
                                channel_sums(strict), n, 0.999));
        EXPECT_TRUE(cosine_rows(tag + " cuda tf32 channel grad sums vs cpu", channel_sums(cpu),
                                channel_sums(tf32), n, 0.99));
    } else {
        EXPECT_TRUE(close_rows(tag + " cuda fp32 channel grad sums vs cpu", channel_sums(cpu),
                               channel_sums(strict), n, 1e-4, true));
        EXPECT_TRUE(close_rows(tag + " cuda tf32 channel grad sums vs cpu", channel_sums(cpu),
                               channel_sums(tf32), n, 2e-2, true));
    }
    if (routed) {
        size_t moved = 0;
        for (size_t i = 0; i < cpu.grad.size(); i++) moved += (cpu.grad[i] == 0) != (strict.grad[i] == 0);
        printf("  %s: target feeds a MaxPool; element-wise gradient not compared (%zu of %zu "
               "elements routed differently in fp32)\n",
               tag.c_str(), moved, cpu.grad.size());
    } else {
        EXPECT_TRUE(close_rows(tag + " cuda fp32 target grad vs cpu", cpu.grad, strict.grad, n,
                               1e-4, true));
        EXPECT_TRUE(close_rows(tag + " cuda tf32 target grad vs cpu", cpu.grad, tf32.grad, n,
                               2e-2, true));
    }
    egc_model_destroy(m);
}

// ------------------------------------------------------------------ CUDA graphs
//
// One session, inputs A, B, A, B, A: the first run issues every op call, the second records
// the trunk and replays it, the others replay. Logits (and, with a target layer, the target
// gradients) of each replay must equal those of the plain first run of the same input up to
// 1e-6 of the range (the same kernels and algorithms run; equality is expected).

class CudaModelGraphs : public testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(CudaModelGraphs, ReplayMatchesPlainRun)
{
    const SharedCase &sc = kShared[std::get<0>(GetParam())];
    const egc_precision prec = std::get<1>(GetParam()) ? EGC_PREC_MIXED : EGC_PREC_FP32;
    egc_model *m = nullptr;
    LOAD_SHARED_OR_SKIP(sc, m);
    int c, h, w;
    egc_model_input_chw(m, &c, &h, &w);
    const int classes = egc_model_num_classes(m);
    int layer = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &layer), EGC_OK) << egc_last_error();
    const int batch = 4;
    std::vector<float> xa = random_input(batch, c, h, w, 21u), xb = random_input(batch, c, h, w, 22u);
    std::vector<float> seed((size_t)batch * classes, 0.0f);
    for (int i = 0; i < batch; i++) seed[(size_t)i * classes + (size_t)(i * 7 % classes)] = 1.0f;

    for (int with_target = 0; with_target < 2; with_target++) {
        SCOPED_TRACE(with_target ? "with target layer" : "forward only");
        egc_session_options so;
        egc_session_options_default(&so);
        so.precision = prec;
        egc_session *s = nullptr;
        ASSERT_EQ(egc_session_create_ex(m, "cuda", batch, with_target ? layer : -1, &so, &s), EGC_OK)
            << egc_last_error();
        egc_shape ts = egc_session_target_shape(s);
        size_t ng = with_target ? (size_t)egc_shape_numel(&ts) * batch : 0;
        std::vector<float> la0, lb0, ga0, gb0;
        for (int r = 0; r < 5; r++) {
            const std::vector<float> &x = r % 2 ? xb : xa;
            std::vector<float> lg((size_t)batch * classes), gr(ng);
            ASSERT_EQ(egc_session_forward(s, x.data(), batch, lg.data()), EGC_OK) << egc_last_error();
            if (with_target)
                ASSERT_EQ(egc_session_backward(s, seed.data(), batch, gr.data(), nullptr), EGC_OK)
                    << egc_last_error();
            std::vector<float> &l0 = r % 2 ? lb0 : la0, &g0 = r % 2 ? gb0 : ga0;
            if (r < 2) {
                l0 = lg;
                g0 = gr;
                continue;
            }
            const std::string tag = std::string(sc.model) + " " + egc_precision_name(prec) +
                                    " run " + std::to_string(r);
            EXPECT_TRUE(close_rows(tag + " logits", l0, lg, batch, 1e-6, false));
            if (with_target) EXPECT_TRUE(close_rows(tag + " target grad", g0, gr, batch, 1e-6, true));
        }
        std::vector<char> desc(1 << 16);
        egc_session_describe(s, desc.data(), desc.size());
        std::string d(desc.data());
        EXPECT_NE(d.find("graph replay on"), std::string::npos) << d;
        if (prec == EGC_PREC_MIXED) EXPECT_NE(d.find("fp16 NHWC"), std::string::npos) << d;
        printf("%s", d.substr(0, d.find('\n') + 1).c_str());
        egc_session_destroy(s);
    }
    // graphs off: same logits as the replays (to TF32/fp16 reproducibility of a new search)
    {
        egc_session_options so;
        egc_session_options_default(&so);
        so.precision = prec;
        so.no_graphs = 1;
        egc_session *s = nullptr;
        ASSERT_EQ(egc_session_create_ex(m, "cuda", batch, -1, &so, &s), EGC_OK) << egc_last_error();
        std::vector<float> l1((size_t)batch * classes), l2((size_t)batch * classes);
        ASSERT_EQ(egc_session_forward(s, xa.data(), batch, l1.data()), EGC_OK) << egc_last_error();
        ASSERT_EQ(egc_session_forward(s, xa.data(), batch, l2.data()), EGC_OK) << egc_last_error();
        ASSERT_EQ(egc_session_forward(s, xa.data(), batch, l2.data()), EGC_OK) << egc_last_error();
        EXPECT_TRUE(close_rows(std::string(sc.model) + " graphs off, run 3 vs run 1", l1, l2, batch,
                               1e-6, false));
        std::vector<char> desc(1 << 16);
        egc_session_describe(s, desc.data(), desc.size());
        EXPECT_NE(std::string(desc.data()).find("off (not asked)"), std::string::npos)
            << desc.data();
        egc_session_destroy(s);
    }
    egc_model_destroy(m);
}

// MobileNet v2 (Clip, depthwise, asymmetric pads, Add) and ResNet-20 (Conv+Relu, Add+Relu).
INSTANTIATE_TEST_SUITE_P(, CudaModelGraphs,
                         testing::Combine(testing::Values(0, 2), testing::Values(0, 1)),
                         [](const testing::TestParamInfo<std::tuple<int, int>> &info) {
                             std::string s = kShared[std::get<0>(info.param)].model;
                             s = s.substr(0, s.find('.'));
                             for (auto &ch : s)
                                 if (!isalnum((unsigned char)ch)) ch = '_';
                             return s + (std::get<1>(info.param) ? "_mixed" : "_fp32");
                         });

// The logits of x (batch rows) on the CPU: the reference of the mixed-precision tests below.
testing::AssertionResult cpu_logits(egc_model *m, const std::vector<float> &x, int batch,
                                    std::vector<float> *want)
{
    want->assign((size_t)batch * (size_t)egc_model_num_classes(m), 0.0f);
    egc_session *s = nullptr;
    if (egc_session_create(m, "cpu", batch, -1, &s) != EGC_OK)
        return testing::AssertionFailure() << "cpu session: " << egc_last_error();
    egc_status st = egc_session_forward(s, x.data(), batch, want->data());
    egc_session_destroy(s);
    if (st != EGC_OK) return testing::AssertionFailure() << "cpu forward: " << egc_last_error();
    return testing::AssertionSuccess();
}

// The inputs of a mixed-precision test: `batch` rows of pseudo-random input for m (seed) in
// *x and their CPU logits in *want.
testing::AssertionResult mixed_reference(egc_model *m, int batch, unsigned seed,
                                         std::vector<float> *x, std::vector<float> *want)
{
    int c, h, w;
    egc_model_input_chw(m, &c, &h, &w);
    *x = random_input(batch, c, h, w, seed);
    return cpu_logits(m, *x, batch, want);
}

// The test name of the two shared models the fusion tests run on (kShared 0 and 2).
std::string mnv2_or_resnet20(const testing::TestParamInfo<int> &info)
{
    return std::string(info.param == 0 ? "mobilenet_v2" : "resnet20");
}

// A mixed-precision CUDA session of `batch` rows on x (the environment as the caller set it):
// the first forward's logits, the third's (graph replay), and the session's description.
struct MixedRun {
    std::vector<float> first, replay;
    std::string desc;
};
testing::AssertionResult mixed_run(egc_model *m, const std::vector<float> &x, int batch,
                                   MixedRun *r)
{
    const size_t nl = (size_t)batch * (size_t)egc_model_num_classes(m);
    r->first.assign(nl, 0.0f);
    r->replay.assign(nl, 0.0f);
    egc_session_options so;
    egc_session_options_default(&so);
    so.precision = EGC_PREC_MIXED;
    egc_session *s = nullptr;
    if (egc_session_create_ex(m, "cuda", batch, -1, &so, &s) != EGC_OK)
        return testing::AssertionFailure() << "cuda session: " << egc_last_error();
    egc_status st = egc_session_forward(s, x.data(), batch, r->first.data());
    for (int k = 0; k < 2 && st == EGC_OK; k++)
        st = egc_session_forward(s, x.data(), batch, r->replay.data());
    std::string err = st == EGC_OK ? "" : egc_last_error();
    std::vector<char> desc(1 << 16);
    egc_session_describe(s, desc.data(), desc.size());
    r->desc = desc.data();
    egc_session_destroy(s);
    if (st != EGC_OK) return testing::AssertionFailure() << "cuda forward: " << err;
    return testing::AssertionSuccess();
}

// Occurrences of what in d.
size_t count_in(const std::string &d, const char *what)
{
    size_t k = 0;
    for (size_t p = 0; (p = d.find(what, p)) != std::string::npos; p++) k++;
    return k;
}

// The two paths of the fp16 Conv+bias(+residual Add)(+Relu) epilogue in mixed plans, each
// forced (EGC_CUDA_HALF_FUSED=0: the convolution and bias_act_f16; =1: cuDNN's one call
// whenever it takes it and it passes the check): logits against the CPU as mixed precision
// must be, the session's description says which path each Conv took, and on ResNet-20 the
// residual Adds are done by their Convs.
class CudaModelHalfFused : public testing::TestWithParam<int> {};

TEST_P(CudaModelHalfFused, BothPathsMatchCpu)
{
    const SharedCase &sc = kShared[GetParam()];
    egc_model *m = nullptr;
    LOAD_SHARED_OR_SKIP(sc, m);
    const int batch = 6;
    std::vector<float> x, want;
    ASSERT_TRUE(mixed_reference(m, batch, 31u, &x, &want));
    EnvVar memo("EGC_CUDA_MEMO", "0"); // each path chosen here, not kept from a run before
    for (const char *mode : {"0", "1"}) {
        EnvVar env("EGC_CUDA_HALF_FUSED", mode);
        MixedRun r;
        ASSERT_TRUE(mixed_run(m, x, batch, &r));
        const std::string tag = std::string(sc.model) + " EGC_CUDA_HALF_FUSED=" + mode;
        EXPECT_TRUE(close_rows(tag + " logits vs cpu", want, r.first, batch, 2e-2, false));
        EXPECT_TRUE(close_rows(tag + " replay vs first forward", r.first, r.replay, batch, 1e-6, false));
        const std::string &d = r.desc;
        printf("%s", d.substr(0, d.find('\n') + 1).c_str());
        EXPECT_EQ(d.find("path chosen at the first forward"), std::string::npos) << d;
        if (!strcmp(mode, "0")) {
            EXPECT_EQ(d.find("in one call (cudnnConvolutionBiasActivationForward:"),
                      std::string::npos) << d;
        } else {
            // every candidate ends in one call, or in the kernel path because cuDNN refused
            // it (or has no identity activation for the chosen algorithm); none may differ
            size_t one = count_in(d, "in one call (cudnnConvolutionBiasActivationForward:");
            size_t refused = count_in(d, "cuDNN refused the one call");
            size_t identity = count_in(d, "takes no identity activation");
            printf("  %s: %zu Convs in one cuDNN call, %zu refused, %zu identity-only\n", sc.model,
                   one, refused, identity);
            EXPECT_GT(one + refused + identity, 0u) << d;
            EXPECT_EQ(count_in(d, "the one call differed"), 0u) << d;
        }
        if (GetParam() == 2) EXPECT_NE(d.find("done by the Conv of input 0"), std::string::npos) << d;
    }
    egc_model_destroy(m);
}

// The cuDNN operation-graph path of the fp16 Conv+bias(+residual)(+Relu) (EGC_CUDA_GRAPH_API=1):
// where cuDNN builds it, it must agree with the kernel path at the first forward (a graph
// that differed is reported and not used), and the logits match the CPU whichever path each
// Conv took; the description says per Conv what became of the graph.
class CudaModelGraphApi : public testing::TestWithParam<int> {};

TEST_P(CudaModelGraphApi, GraphPathMatchesCpu)
{
    const SharedCase &sc = kShared[GetParam()];
    egc_model *m = nullptr;
    LOAD_SHARED_OR_SKIP(sc, m);
    const int batch = 6;
    std::vector<float> x, want;
    ASSERT_TRUE(mixed_reference(m, batch, 43u, &x, &want));
    EnvVar env("EGC_CUDA_GRAPH_API", "1");
    EnvVar memo("EGC_CUDA_MEMO", "0"); // each graph built here, not kept from a run before
    MixedRun r;
    ASSERT_TRUE(mixed_run(m, x, batch, &r));
    const std::string tag = std::string(sc.model) + " EGC_CUDA_GRAPH_API=1";
    EXPECT_TRUE(close_rows(tag + " logits vs cpu", want, r.first, batch, 2e-2, false));
    EXPECT_TRUE(close_rows(tag + " replay vs first forward", r.first, r.replay, batch, 1e-6, false));
    const std::string &d = r.desc;
    size_t chosen = count_in(d, "in one cuDNN operation graph");
    size_t built = count_in(d, "; cuDNN graph (engine");
    size_t not_built = count_in(d, "cuDNN graph not built");
    size_t failed = count_in(d, "cuDNN graph failed");
    size_t differed = count_in(d, "cuDNN graph differed");
    printf("  %s: cuDNN graph chosen for %zu Convs, built but slower %zu, not built %zu, "
           "failed %zu, differed %zu\n", sc.model, chosen, built, not_built, failed, differed);
    if (not_built) printf("%s", d.c_str());
    EXPECT_GT(chosen + built + not_built + failed + differed, 0u) << d;
    EXPECT_EQ(differed, 0u) << d;
    EXPECT_EQ(failed, 0u) << d;
    egc_model_destroy(m);
}

INSTANTIATE_TEST_SUITE_P(, CudaModelGraphApi, testing::Values(0, 2),
                         mnv2_or_resnet20);

// The RGB input of ResNet-20's first convolution padded to 8 or 4 channels in mixed plans
// (EGC_CUDA_PAD_C; zero channels with zero weights): the logits still match the CPU, the
// session's description says what was padded, and without padding nothing is.
TEST(CudaModelInputPad, PaddedChannelsMatchCpu)
{
    const SharedCase &sc = kShared[2];
    egc_model *m = nullptr;
    LOAD_SHARED_OR_SKIP(sc, m);
    const int batch = 5;
    std::vector<float> x, want;
    ASSERT_TRUE(mixed_reference(m, batch, 41u, &x, &want));
    for (const char *mode : {"0", "4", "8"}) {
        EnvVar env("EGC_CUDA_PAD_C", mode);
        MixedRun r;
        ASSERT_TRUE(mixed_run(m, x, batch, &r));
        const std::string tag = std::string(sc.model) + " EGC_CUDA_PAD_C=" + mode;
        EXPECT_TRUE(close_rows(tag + " logits vs cpu", want, r.first, batch, 2e-2, false));
        if (!strcmp(mode, "0"))
            EXPECT_EQ(r.desc.find("padded to"), std::string::npos) << r.desc;
        else
            EXPECT_NE(r.desc.find(std::string("input channels 3 padded to ") + mode),
                      std::string::npos) << r.desc;
    }
    egc_model_destroy(m);
}

// egc_session_forward_offset on the GPU (the trunk, the offset added to the target in place,
// then the head): ResNet-20 at its auto layer, 6 rows with a random offset, fp32 without TF32
// and mixed, against the CPU's.
TEST(CudaModelOffset, ForwardWithAnOffsetMatchesCpu)
{
    if (!cuda_skip_reason().empty()) GTEST_SKIP() << cuda_skip_reason();
    const SharedCase &sc = kShared[2];
    egc_model *m = nullptr;
    LOAD_SHARED_OR_SKIP(sc, m);
    int layer = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &layer), EGC_OK) << egc_last_error();
    const int batch = 6, classes = egc_model_num_classes(m);
    int c, h, w;
    egc_model_input_chw(m, &c, &h, &w);
    std::vector<float> x = random_input(batch, c, h, w, 51u);
    std::vector<float> want((size_t)batch * classes), got(want.size());
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(m, "cpu", batch, layer, &s), EGC_OK) << egc_last_error();
    const egc_shape ts = egc_session_target_shape(s);
    std::vector<float> off((size_t)batch * (size_t)egc_shape_numel(&ts));
    for (size_t j = 0; j < off.size(); j++) off[j] = 0.05f * (float)std::sin(0.7 * (double)j);
    ASSERT_EQ(egc_session_forward_offset(s, x.data(), batch, off.data(), want.data()), EGC_OK)
        << egc_last_error();
    egc_session_destroy(s);
    Tf32Env env(false);
    for (egc_precision prec : {EGC_PREC_FP32, EGC_PREC_MIXED}) {
        egc_session_options so;
        egc_session_options_default(&so);
        so.precision = prec;
        ASSERT_EQ(egc_session_create_ex(m, "cuda", batch, layer, &so, &s), EGC_OK)
            << egc_last_error();
        ASSERT_EQ(egc_session_forward_offset(s, x.data(), batch, off.data(), got.data()), EGC_OK)
            << egc_last_error();
        const bool mixed = prec == EGC_PREC_MIXED;
        EXPECT_TRUE(close_rows(std::string("resnet20 offset logits ") + (mixed ? "mixed" : "fp32"),
                               want, got, batch, mixed ? 2e-2 : 1e-4, false));
        egc_session_destroy(s);
    }
    egc_model_destroy(m);
}

// Runs of a few rows on a session of many (egc_plan_use_rows: the whole batch is computed,
// the rows past them zero): 3 rows of a 16-row session give the CPU's logits and target
// gradients, fp32 and mixed, and whole-batch forwards (the recorded trunk replayed) and
// few-row forwards alternating on one session repeat their results bit for bit.
class CudaModelFewRows : public testing::TestWithParam<int> {};

TEST_P(CudaModelFewRows, FewRowsMatchCpu)
{
    const SharedCase &sc = kShared[GetParam()];
    egc_model *m = nullptr;
    LOAD_SHARED_OR_SKIP(sc, m);
    int c, h, w;
    egc_model_input_chw(m, &c, &h, &w);
    int layer = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &layer), EGC_OK) << egc_last_error();
    const int n = 3, batch = 16;
    std::vector<float> x = random_input(n, c, h, w, 53u), seed;
    Outputs cpu;
    ASSERT_TRUE(run(m, "cpu", n, layer, x, n, &seed, &cpu));
    const std::string tag = sc.model;
    Outputs strict, mixed;
    {
        Tf32Env t(false);
        ASSERT_TRUE(run(m, "cuda", batch, layer, x, n, &seed, &strict));
    }
    ASSERT_TRUE(run(m, "cuda", batch, layer, x, n, &seed, &mixed, EGC_PREC_MIXED));
    EXPECT_TRUE(close_rows(tag + " logits fp32", cpu.logits, strict.logits, n, 1e-4, false));
    EXPECT_TRUE(close_rows(tag + " target grad fp32", cpu.grad, strict.grad, n, 1e-4, true));
    EXPECT_TRUE(close_rows(tag + " logits mixed", cpu.logits, mixed.logits, n, 2e-2, false));
    EXPECT_TRUE(cosine_rows(tag + " target grad mixed", cpu.grad, mixed.grad, n, 0.999));
    // whole batches (recorded, then replayed) and few rows alternating on one session give
    // the same bits each time
    egc_session *s = nullptr;
    egc_session_options so;
    egc_session_options_default(&so);
    so.precision = EGC_PREC_MIXED;
    ASSERT_EQ(egc_session_create_ex(m, "cuda", batch, layer, &so, &s), EGC_OK) << egc_last_error();
    const size_t nc = (size_t)egc_model_num_classes(m);
    std::vector<float> xb = random_input(batch, c, h, w, 59u);
    std::vector<float> full[4], few[2];
    for (int k = 0; k < 4; k++) {
        full[k].assign((size_t)batch * nc, 0.0f);
        ASSERT_EQ(egc_session_forward(s, xb.data(), batch, full[k].data()), EGC_OK)
            << egc_last_error();
        if (k == 1 || k == 2) {
            few[k - 1].assign((size_t)n * nc, 0.0f);
            ASSERT_EQ(egc_session_forward(s, x.data(), n, few[k - 1].data()), EGC_OK)
                << egc_last_error();
        }
    }
    // (the first forward makes the timed choices: as the replay test, within 1e-6)
    EXPECT_TRUE(close_rows(tag + " first vs replayed", full[0], full[1], batch, 1e-6, false));
    for (int k = 2; k < 4; k++) EXPECT_EQ(full[k], full[1]) << tag << " whole batch " << k;
    EXPECT_EQ(few[1], few[0]) << tag << " few rows";
    egc_session_destroy(s);
    egc_model_destroy(m);
}

INSTANTIATE_TEST_SUITE_P(, CudaModelFewRows, testing::Values(0, 2),
                         mnv2_or_resnet20);

INSTANTIATE_TEST_SUITE_P(, CudaModelHalfFused, testing::Values(0, 2),
                         mnv2_or_resnet20);

INSTANTIATE_TEST_SUITE_P(, CudaModelTorchvision, testing::Values("vgg16", "resnet50", "alexnet"),
                         [](const testing::TestParamInfo<const char *> &info) {
                             return std::string(info.param);
                         });

}  // namespace
