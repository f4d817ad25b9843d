// memcap_cuda_test.cc: the device-memory cap and the automatic batch splitting on the CUDA
// backend, where the session's bytes are what cudaMalloc gave (weights, arenas, the cuBLAS
// and cuDNN workspaces), with the shared ResNet-20 (CIFAR-10), strict fp32 (TF32 off).
//
// A batch-16 session under a cap between the bytes of a batch-1 and a batch-16 session
// reports a chunk in 1..15, holds no more device bytes than the cap, and gives the logits of
// 16 random images and, seeded with a one-hot class per row, the target-layer gradients and
// activations of the uncapped session within 1e-4 of their range (the passes may pick other
// convolution algorithms than the full batch). A cap below one row's bytes gives
// EGC_E_NOMEM naming the cap. An explainer (Grad-CAM, Expected Grad-CAM with 4 samples)
// under a cap runs fewer rows per pass, stays within it, and gives the maps of the uncapped
// one within 1e-4. Skipped, with the reason, where no CUDA device or driver is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "backend/backend.h"
#include "egcam/explain.h"
#include "egcam/model.h"
}

namespace {

const std::string kModel = std::string(EGC_SHARED_DIR) + "/models/resnet20_cifar10.onnx";

const std::string &cuda_skip_reason()
{
    static std::string reason;
    static bool probed = false;
    if (!probed) {
        probed = true;
        egc_backend *be = nullptr;
        if (egc_backend_create("cuda", &be) != EGC_OK)
            reason = std::string("no usable CUDA device: ") + egc_last_error();
        egc_backend_destroy(be);
    }
    return reason;
}

// EGC_CUDA_TF32=0 while it lives.
class NoTf32 {
public:
    NoTf32()
    {
        const char *o = getenv("EGC_CUDA_TF32");
        had_ = o != nullptr;
        if (had_) old_ = o;
        setenv("EGC_CUDA_TF32", "0", 1);
    }
    ~NoTf32()
    {
        if (had_) setenv("EGC_CUDA_TF32", old_.c_str(), 1);
        else unsetenv("EGC_CUDA_TF32");
    }

private:
    std::string old_;
    bool had_ = false;
};

struct ModelDel {
    void operator()(egc_model *m) const { egc_model_destroy(m); }
};
struct SessDel {
    void operator()(egc_session *s) const { egc_session_destroy(s); }
};
struct ExplDel {
    void operator()(egc_explainer *e) const { egc_explainer_destroy(e); }
};
using ModelPtr = std::unique_ptr<egc_model, ModelDel>;
using SessPtr = std::unique_ptr<egc_session, SessDel>;
using ExplPtr = std::unique_ptr<egc_explainer, ExplDel>;

// max |a - b| / max(1e-12, max b - min b)
double RangeDiff(const std::vector<float> &a, const std::vector<float> &b)
{
    double d = 0, lo = b[0], hi = b[0];
    for (size_t i = 0; i < a.size(); i++) {
        d = std::max(d, (double)std::fabs(a[i] - b[i]));
        lo = std::min(lo, (double)b[i]);
        hi = std::max(hi, (double)b[i]);
    }
    return d / std::max(1e-12, hi - lo);
}

class MemCapCuda : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!cuda_skip_reason().empty()) GTEST_SKIP() << cuda_skip_reason();
        egc_model *m = nullptr;
        ASSERT_EQ(egc_model_load(kModel.c_str(), &m), EGC_OK) << egc_last_error();
        model.reset(m);
        egc_model_input_chw(m, &c, &h, &w);
        classes = egc_model_num_classes(m);
        ASSERT_EQ(egc_model_find_layer(m, "auto", &layer), EGC_OK);
    }

    SessPtr Session(int batch, size_t cap, egc_status want = EGC_OK)
    {
        egc_session_options so;
        egc_session_options_default(&so);
        so.max_device_bytes = cap;
        egc_session *s = nullptr;
        egc_status st = egc_session_create_ex(model.get(), "cuda", batch, layer, &so, &s);
        EXPECT_EQ(st, want) << egc_last_error();
        return SessPtr(s);
    }

    std::vector<float> Images(int n, unsigned seed) const
    {
        std::mt19937 rng(seed);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        std::vector<float> x((size_t)n * c * h * w);
        for (float &v : x) v = nd(rng);
        return x;
    }

    NoTf32 no_tf32;
    ModelPtr model;
    int c = 0, h = 0, w = 0, classes = 0, layer = -1;
};

TEST_F(MemCapCuda, SplitSessionMatchesUncapped)
{
    const int B = 16;
    SessPtr full = Session(B, 0), one = Session(1, 0);
    ASSERT_TRUE(full && one);
    size_t b16 = egc_session_device_bytes(full.get()), b1 = egc_session_device_bytes(one.get());
    ASSERT_GT(b16, b1);
    size_t cap = b1 + (b16 - b1) * 4 / 15;
    SessPtr capped = Session(B, cap);
    ASSERT_TRUE(capped);
    int chunk = egc_session_chunk(capped.get());
    EXPECT_GT(chunk, 0);
    EXPECT_LT(chunk, B);
    EXPECT_LE(egc_session_device_bytes(capped.get()), cap);
    std::printf("cap %zu bytes (batch 1: %zu, batch 16: %zu): chunk %d, %zu bytes\n", cap, b1,
                b16, chunk, egc_session_device_bytes(capped.get()));

    std::vector<float> x = Images(B, 3);
    const size_t nc = (size_t)classes;
    std::vector<float> l_full(B * nc), l_cap(B * nc, NAN);
    ASSERT_EQ(egc_session_forward(full.get(), x.data(), B, l_full.data()), EGC_OK)
        << egc_last_error();
    ASSERT_EQ(egc_session_forward(capped.get(), x.data(), B, l_cap.data()), EGC_OK)
        << egc_last_error();
    EXPECT_LE(RangeDiff(l_cap, l_full), 1e-4);

    egc_shape ts = egc_session_target_shape(full.get());
    size_t per = (size_t)ts.d[1] * (size_t)ts.d[2] * (size_t)ts.d[3];
    std::vector<float> seed(B * nc, 0.0f);
    for (int i = 0; i < B; i++) seed[(size_t)i * nc + (size_t)((i * 3) % classes)] = 1.0f;
    std::vector<float> g_full(B * per), a_full(B * per), g_cap(B * per, NAN), a_cap(B * per, NAN);
    ASSERT_EQ(egc_session_backward(full.get(), seed.data(), B, g_full.data(), a_full.data()),
              EGC_OK)
        << egc_last_error();
    ASSERT_EQ(egc_session_backward(capped.get(), seed.data(), B, g_cap.data(), a_cap.data()),
              EGC_OK)
        << egc_last_error();
    EXPECT_LE(RangeDiff(g_cap, g_full), 1e-4);
    EXPECT_LE(RangeDiff(a_cap, a_full), 1e-4);
}

TEST_F(MemCapCuda, CapBelowOneRowIsNoMem)
{
    SessPtr one = Session(1, 0);
    ASSERT_TRUE(one);
    size_t cap = egc_session_device_bytes(one.get()) / 2;
    SessPtr s = Session(8, cap, EGC_E_NOMEM);
    EXPECT_FALSE(s);
    EXPECT_NE(std::string(egc_last_error()).find(std::to_string(cap) + " bytes"),
              std::string::npos)
        << egc_last_error();
}

TEST_F(MemCapCuda, ExplainerSplitGivesTheSameMaps)
{
    const int B = 16, N = 7, HW = h * w;
    std::vector<float> x = Images(N, 11);
    for (egc_method method : {EGC_METHOD_GRADCAM, EGC_METHOD_EXPECTED_GRADCAM}) {
        SCOPED_TRACE(egc_method_name(method));
        auto make = [&](int batch, size_t cap) {
            egc_explain_options o;
            egc_explain_options_default(&o);
            o.method = method;
            o.samples = 4;
            o.batch = batch;
            o.preset = EGC_PRESET_CIFAR;
            o.max_device_bytes = cap;
            egc_explainer *e = nullptr;
            EXPECT_EQ(egc_explainer_create(model.get(), "cuda", &o, &e), EGC_OK)
                << egc_last_error();
            return ExplPtr(e);
        };
        ExplPtr full = make(B, 0), one = make(1, 0);
        ASSERT_TRUE(full && one);
        size_t e16 = egc_explainer_device_bytes(full.get());
        size_t e1 = egc_explainer_device_bytes(one.get());
        ASSERT_GT(e16, e1);
        size_t cap = e1 + (e16 - e1) / 3;
        ExplPtr capped = make(B, cap);
        ASSERT_TRUE(capped);
        int rows = egc_explainer_rows(capped.get());
        EXPECT_GT(rows, 0);
        EXPECT_LT(rows, B);
        EXPECT_LE(egc_explainer_device_bytes(capped.get()), cap);
        std::vector<float> m_full((size_t)N * HW), m_cap((size_t)N * HW, NAN);
        std::vector<egc_cam_result> r_full(N), r_cap(N);
        for (int i = 0; i < N; i++) {
            memset(&r_full[i], 0, sizeof r_full[i]);
            memset(&r_cap[i], 0, sizeof r_cap[i]);
            r_full[i].map = m_full.data() + (size_t)i * HW;
            r_cap[i].map = m_cap.data() + (size_t)i * HW;
        }
        ASSERT_EQ(egc_explainer_run(full.get(), x.data(), N, nullptr, r_full.data()), EGC_OK)
            << egc_last_error();
        ASSERT_EQ(egc_explainer_run(capped.get(), x.data(), N, nullptr, r_cap.data()), EGC_OK)
            << egc_last_error();
        double d = 0;
        for (size_t i = 0; i < m_full.size(); i++)
            d = std::max(d, (double)std::fabs(m_cap[i] - m_full[i]));
        EXPECT_LE(d, 1e-4);
    }
}

}  // namespace
