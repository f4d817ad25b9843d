// exec_test.cc: the executor: memory planning (activations share an arena), the trunk/head
// split, and backward through a real non-linear head checked against finite differences.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

extern "C" {
#include "backend/backend.h"
#include "model/exec.h"
#include "model/lower.h"
#include "model/onnx.h"
}

namespace {

struct Fixture {
    egc_graph g{};
    egc_backend *be = nullptr;
    bool ok = false;
    // model: a file of the shared models, or a path when it holds a '/'
    explicit Fixture(const char *model)
    {
        std::string p = strchr(model, '/') ? std::string(model)
                                           : std::string(EGC_SHARED_DIR) + "/models/" + model;
        egc_onnx_model *m = nullptr;
        if (egc_onnx_load(p.c_str(), &m) != EGC_OK) return;
        egc_status st = egc_lower(m, model, nullptr, nullptr, 0, &g);
        egc_onnx_free(m);
        ok = st == EGC_OK && egc_cpu_backend_create(&be) == EGC_OK;
    }
    ~Fixture()
    {
        egc_backend_destroy(be);
        egc_graph_clear(&g);
    }
    int value(const char *name) const
    {
        for (int v = 0; v < g.n_values; v++)
            if (g.values[v].name && std::string(g.values[v].name) == name) return v;
        return -1;
    }
};

void fill(std::vector<float> &x, unsigned seed)
{
    for (auto &v : x) {
        seed = seed * 1664525u + 1013904223u;
        v = (float)((seed >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    }
}

TEST(Exec, ActivationsShareMemory)
{
    Fixture f("resnet20_cifar10.onnx");
    ASSERT_TRUE(f.ok) << egc_last_error();
    egc_plan *p = nullptr;
    ASSERT_EQ(egc_plan_create(&f.g, f.be, 8, -1, &p), EGC_OK) << egc_last_error();
    std::vector<egc_shape> shapes((size_t)f.g.n_values);
    ASSERT_EQ(egc_graph_infer(&f.g, 8, shapes.data()), EGC_OK);
    size_t all = 0;
    for (int v = 0; v < f.g.n_values; v++)
        if (!f.g.values[v].is_const) all += (size_t)egc_shape_numel(&shapes[(size_t)v]) * 4;
    // 57 layers of up to 8x16x32x32 floats: the plan must reuse buffers, not keep them all.
    EXPECT_LT(egc_plan_bytes(p), all / 4) << "plan " << egc_plan_bytes(p) << " vs sum " << all;
    egc_plan_destroy(p);
}

TEST(Exec, TargetMustReachTheOutput)
{
    Fixture f("resnet20_cifar10.onnx");
    ASSERT_TRUE(f.ok);
    egc_plan *p = nullptr;
    EXPECT_EQ(egc_plan_create(&f.g, f.be, 1, f.g.n_values + 5, &p), EGC_E_ARG);
    EXPECT_EQ(egc_plan_create(&f.g, f.be, 0, -1, &p), EGC_E_ARG);
}

// A plan of 2 images with its backward run at a target: the input filled (fill(seed) times
// scale), the forward, the backward of sum_i w_i logit(i, c_i) for the two (c_i, w_i) given,
// and copies of the target's activation and gradient. objective() runs the head again from
// the (possibly changed) target activation and gives that sum.
struct HeadRun {
    egc_plan *p = nullptr;
    egc_view a{}, out{};
    std::vector<float> grad, act;
    int classes = 0, c0 = 0, c1 = 0;
    float w0 = 0, w1 = 0;
    double gmax = 0;
    ~HeadRun() { egc_plan_destroy(p); }
    void run(const Fixture &f, const char *target_name, unsigned seed, float scale, int cls0,
             float wt0, int cls1, float wt1)
    {
        int target = f.value(target_name);
        ASSERT_GE(target, 0) << target_name;
        ASSERT_EQ(egc_plan_create(&f.g, f.be, 2, target, &p), EGC_OK) << egc_last_error();
        egc_view in = egc_plan_value(p, f.g.input), ga = egc_plan_grad(p, target);
        a = egc_plan_value(p, target);
        out = egc_plan_value(p, f.g.output);
        ASSERT_NE(ga.ptr, nullptr);
        std::vector<float> x((size_t)egc_shape_numel(&in.shape));
        fill(x, seed);
        for (auto &v : x) v *= scale;
        ASSERT_EQ(f.be->upload(f.be, in.ptr, x.data(), x.size() * 4), EGC_OK);
        ASSERT_EQ(egc_plan_forward(p), EGC_OK) << egc_last_error();
        classes = (int)out.shape.d[1];
        c0 = cls0, c1 = cls1, w0 = wt0, w1 = wt1;
        std::vector<float> sd((size_t)2 * classes, 0.0f);
        sd[(size_t)c0] = w0;
        sd[(size_t)classes + (size_t)c1] = w1;
        ASSERT_EQ(egc_plan_backward(p, sd.data()), EGC_OK) << egc_last_error();
        const size_t na = (size_t)egc_shape_numel(&a.shape);
        grad.assign(ga.ptr, ga.ptr + na);
        act.assign(a.ptr, a.ptr + na);
        for (float g : grad) gmax = std::max(gmax, (double)std::fabs(g));
    }
    double objective()
    {
        EXPECT_EQ(egc_plan_forward_head(p), EGC_OK);
        return (double)w0 * out.ptr[c0] + (double)w1 * out.ptr[classes + c1];
    }
    // Central difference of objective() at target element k with step h.
    double difference(size_t k, float h)
    {
        a.ptr[k] = act[k] + h;
        double fp = objective();
        a.ptr[k] = act[k] - h;
        double fm = objective();
        a.ptr[k] = act[k];
        return (fp - fm) / (2.0 * h);
    }
};

// Backward from a logit to an early layer (the head holds 13 convolutions, ReLUs, the
// strided-slice + pad shortcuts) against central differences through forward_head.
TEST(Exec, HeadBackwardMatchesFiniteDifferences)
{
    Fixture f("resnet20_cifar10.onnx");
    ASSERT_TRUE(f.ok);
    HeadRun h; // class 3 of image 0 and class 7 of image 1
    ASSERT_NO_FATAL_FAILURE(h.run(f, "/layer2/layer2.1/Relu_1_output_0", 7, 1.0f, 3, 1.0f, 7, 1.0f));
    unsigned s = 99;
    int checked = 0, kinks = 0;
    double worst = 0;
    for (int t = 0; t < 60; t++) {
        s = s * 1664525u + 1013904223u;
        size_t k = (size_t)(s >> 4) % h.act.size();
        double e = std::fabs(h.difference(k, 1e-2f) - h.grad[k]);
        if (e > 5e-3 * h.gmax) kinks++;
        else worst = std::max(worst, e);
        checked++;
    }
    // A difference step can cross a ReLU kink inside the head and make that one difference
    // inexact: allow a few such samples, and hold all the others to 5e-3 of the largest
    // gradient.
    std::printf("head backward: %d of 60 differences off, worst of the rest %.3g (max |grad| %.3g)\n",
                kinks, worst, h.gmax);
    EXPECT_LE(kinks, 6) << kinks << " of 60 differences disagree";
    EXPECT_LE(worst, 5e-3 * h.gmax) << "worst |fd - grad| " << worst << " (max |grad| " << h.gmax << ")";
    EXPECT_EQ(checked, 60);
}

// Central differences of sum(seed . logits) against the backward at `target` of the lowering
// test model `file` (batch 2, inputs spread over [-scale, scale)), for every element of the
// target: differences whose step crosses a kink of the head (kink(value, h)) are left out, the
// rest must agree to 2e-3 of the largest gradient. *smooth counts the elements checked.
void head_differences(const char *file, const char *target_name, float scale, float step,
                      const std::function<bool(float, float)> &kink, int *smooth, int *kinks)
{
    std::string path = std::string(EGC_SOURCE_DIR) + "/test/data/lower/" + file;
    Fixture f(path.c_str());
    ASSERT_TRUE(f.ok) << egc_last_error();
    HeadRun h;
    ASSERT_NO_FATAL_FAILURE(h.run(f, target_name, 11, scale, 1, 1.0f, 2, -0.5f));
    ASSERT_GT(h.gmax, 0.0);
    double worst = 0;
    *smooth = *kinks = 0;
    for (size_t k = 0; k < h.act.size(); k++) { // every element: the heads are small
        if (kink(h.act[k], step)) {
            ++*kinks;
            continue;
        }
        worst = std::max(worst, std::fabs(h.difference(k, step) - h.grad[k]));
        ++*smooth;
    }
    std::printf("%s head backward at %s: %zu elements, %d checked, %d at a kink, worst |fd - "
                "grad| %.3g (max |grad| %.3g)\n", file, target_name, h.act.size(), *smooth,
                *kinks, worst, h.gmax);
    EXPECT_LE(worst, 2e-3 * h.gmax);
}

// Backward through the composite lowerings (HardSwish, HardSigmoid, ReduceMean: Mul, Add,
// Clip, GlobalAveragePool, Flatten): the target is the HardSwish output, which reaches the
// logits both through HardSigmoid (alpha 0.3, beta 0.4: flat outside [-4/3, 2]) and directly
// (the gating Mul). Both the sloped and the flat parts must be visited.
TEST(Exec, CompositeHeadBackwardMatchesFiniteDifferences)
{
    int sloped = 0, flat = 0;
    auto kink = [&](float v, float h) {
        float z = 0.3f * v + 0.4f;
        if (std::fabs(z) < 0.3f * h || std::fabs(z - 1.0f) < 0.3f * h) return true;
        (z <= 0.0f || z >= 1.0f ? flat : sloped)++;
        return false;
    };
    int smooth, kinks;
    head_differences("composite_opset14.onnx", "hs", 3.0f, 1e-2f, kink, &smooth, &kinks);
    EXPECT_GT(sloped, 20);
    EXPECT_GT(flat, 20);
}

// Backward through PRelu (a slope per channel, one of them negative and one above 1) from
// the LeakyRelu output, on both sides of 0.
TEST(Exec, PReluHeadBackwardMatchesFiniteDifferences)
{
    int neg = 0, pos = 0;
    auto kink = [&](float v, float h) {
        if (std::fabs(v) < h) return true;
        (v < 0 ? neg : pos)++;
        return false;
    };
    int smooth, kinks;
    head_differences("leaky_prelu.onnx", "lr", 2.0f, 1e-2f, kink, &smooth, &kinks);
    EXPECT_GT(neg, 20);
    EXPECT_GT(pos, 20);
}

// Backward through a small ConvNeXt block and head from the stem's output: depthwise Conv,
// channels-last LayerNorms (the means as MatMuls with 1/C, Pow 2 as a Mul reading one value
// twice, Sqrt, Div), the GELU's Erf, Linears on [N,H,W,C] and the Transposes between. All of
// it is smooth: every element is checked.
TEST(Exec, ConvNeXtHeadBackwardMatchesFiniteDifferences)
{
    int smooth, kinks;
    head_differences("convnext_block.onnx", "/stem/stem.1/Transpose_1_output_0", 1.0f, 1e-2f,
                     [](float, float) { return false; }, &smooth, &kinks);
    EXPECT_EQ(smooth, 2 * 8 * 6 * 6);
}

}  // namespace
