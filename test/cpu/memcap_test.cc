// memcap_test.cc: the device-memory cap and the automatic batch splitting, on the CPU
// backend with the shared ResNet-20 (CIFAR-10).
//
// Session: a batch-16 session under a cap between the bytes of a batch-1 and a batch-16
// session reports a chunk in 1..15, holds no more device bytes than the cap, says so in the
// first line of its description, and gives the logits of 16 random images and, seeded with a
// one-hot class per row, the target-layer gradients and activations of the uncapped
// session (after a forward in several passes, so the backward must run the passes again);
// backward keeps to the rows of the last forward. A cap below what one row needs gives
// EGC_E_NOMEM naming the cap. The extra bytes a caller declares count against the cap.
// Explainer: Grad-CAM and Expected Grad-CAM (4 samples) under a cap run fewer rows per pass
// than the batch asked (which the options keep), stay within the cap, and give the maps of
// the uncapped explainers for 7 images.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "egcam/explain.h"
#include "egcam/model.h"

namespace {

const std::string kModel = std::string(EGC_SHARED_DIR) + "/models/resnet20_cifar10.onnx";

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

class MemCap : public ::testing::Test {
protected:
    void SetUp() override
    {
        egc_model *m = nullptr;
        ASSERT_EQ(egc_model_load(kModel.c_str(), &m), EGC_OK) << egc_last_error();
        model.reset(m);
        egc_model_input_chw(m, &c, &h, &w);
        classes = egc_model_num_classes(m);
        ASSERT_EQ(egc_model_find_layer(m, "auto", &layer), EGC_OK);
    }

    SessPtr Session(int batch, size_t cap, egc_status want = EGC_OK, size_t extra_row = 0,
                    size_t extra_fixed = 0)
    {
        egc_session_options so;
        egc_session_options_default(&so);
        so.max_device_bytes = cap;
        so.extra_row_bytes = extra_row;
        so.extra_fixed_bytes = extra_fixed;
        egc_session *s = nullptr;
        egc_status st = egc_session_create_ex(model.get(), "cpu", batch, layer, &so, &s);
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

    ModelPtr model;
    int c = 0, h = 0, w = 0, classes = 0, layer = -1;
};

// max |a - b| / max(1, max |b|)
double RelDiff(const std::vector<float> &a, const std::vector<float> &b)
{
    double d = 0, mx = 1;
    for (size_t i = 0; i < a.size(); i++) {
        d = std::max(d, (double)std::fabs(a[i] - b[i]));
        mx = std::max(mx, (double)std::fabs(b[i]));
    }
    return d / mx;
}

TEST_F(MemCap, SplitSessionMatchesUncapped)
{
    const int B = 16;
    SessPtr full = Session(B, 0), one = Session(1, 0);
    ASSERT_TRUE(full && one);
    EXPECT_EQ(egc_session_chunk(full.get()), B);
    size_t b16 = egc_session_device_bytes(full.get()), b1 = egc_session_device_bytes(one.get());
    ASSERT_GT(b16, b1);
    // About five rows' worth above one row.
    size_t cap = b1 + (b16 - b1) * 4 / 15;
    SessPtr capped = Session(B, cap);
    ASSERT_TRUE(capped);
    int chunk = egc_session_chunk(capped.get());
    EXPECT_GT(chunk, 0);
    EXPECT_LT(chunk, B);
    EXPECT_LE(egc_session_device_bytes(capped.get()), cap);
    std::printf("cap %zu bytes (batch 1: %zu, batch 16: %zu): chunk %d, %zu bytes\n", cap, b1,
                b16, chunk, egc_session_device_bytes(capped.get()));
    std::string desc(1 << 16, '\0');
    egc_session_describe(capped.get(), &desc[0], desc.size());
    EXPECT_EQ(desc.rfind("batch 16 split into passes of " + std::to_string(chunk) + " rows", 0),
              0u)
        << desc.substr(0, 200);
    egc_session_describe(full.get(), &desc[0], desc.size());
    EXPECT_EQ(desc.find("split"), std::string::npos);

    std::vector<float> x = Images(B, 1);
    const size_t nc = (size_t)classes;
    std::vector<float> l_full(B * nc), l_cap(B * nc, NAN);
    ASSERT_EQ(egc_session_forward(full.get(), x.data(), B, l_full.data()), EGC_OK);
    ASSERT_EQ(egc_session_forward(capped.get(), x.data(), B, l_cap.data()), EGC_OK)
        << egc_last_error();
    EXPECT_LE(RelDiff(l_cap, l_full), 1e-5);

    egc_shape ts = egc_session_target_shape(full.get());
    size_t per = (size_t)ts.d[1] * (size_t)ts.d[2] * (size_t)ts.d[3];
    std::vector<float> seed(B * nc, 0.0f);
    for (int i = 0; i < B; i++) seed[(size_t)i * nc + (size_t)((i * 3) % classes)] = 1.0f;
    std::vector<float> g_full(B * per), a_full(B * per), g_cap(B * per, NAN), a_cap(B * per, NAN);
    ASSERT_EQ(egc_session_backward(full.get(), seed.data(), B, g_full.data(), a_full.data()),
              EGC_OK);
    ASSERT_EQ(egc_session_backward(capped.get(), seed.data(), B, g_cap.data(), a_cap.data()),
              EGC_OK)
        << egc_last_error();
    double gmax = 0;
    for (float v : g_full) gmax = std::max(gmax, (double)std::fabs(v));
    ASSERT_GT(gmax, 0.0);
    EXPECT_LE(RelDiff(g_cap, g_full), 1e-5);
    EXPECT_LE(RelDiff(a_cap, a_full), 1e-5);

    // A second backward of the first rows only (the plan now holds the last pass) and one of
    // fewer rows than a pass.
    for (int n : {chunk + 1, chunk - 1 > 0 ? chunk - 1 : 1}) {
        std::vector<float> g(n * per, NAN);
        ASSERT_EQ(egc_session_backward(capped.get(), seed.data(), n, g.data(), nullptr), EGC_OK)
            << egc_last_error();
        std::vector<float> want(g_full.begin(), g_full.begin() + (long)(n * per));
        EXPECT_LE(RelDiff(g, want), 1e-5) << n << " rows";
    }
    // More rows than the last forward: refused.
    ASSERT_EQ(egc_session_forward(capped.get(), x.data(), 3, l_cap.data()), EGC_OK);
    EXPECT_EQ(egc_session_backward(capped.get(), seed.data(), 4, g_cap.data(), nullptr),
              EGC_E_ARG);
    EXPECT_NE(std::string(egc_last_error()).find("forward of 3"), std::string::npos)
        << egc_last_error();
}

TEST_F(MemCap, CapBelowOneRowIsNoMem)
{
    SessPtr one = Session(1, 0);
    ASSERT_TRUE(one);
    size_t b1 = egc_session_device_bytes(one.get());
    size_t cap = b1 - 1;
    SessPtr s = Session(8, cap, EGC_E_NOMEM);
    EXPECT_FALSE(s);
    std::string msg = egc_last_error();
    EXPECT_NE(msg.find(std::to_string(cap) + " bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(b1) + " bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("resnet20_cifar10.onnx"), std::string::npos) << msg;
    // Exactly one row's bytes fit one row.
    SessPtr s1 = Session(8, b1);
    ASSERT_TRUE(s1);
    EXPECT_EQ(egc_session_chunk(s1.get()), 1);
}

TEST_F(MemCap, ExtraBytesCountAgainstTheCap)
{
    SessPtr full = Session(16, 0);
    ASSERT_TRUE(full);
    size_t b16 = egc_session_device_bytes(full.get());
    // The session alone fits at 16 rows; with 1 MiB per row declared beside it, it cannot.
    SessPtr plain = Session(16, b16);
    ASSERT_TRUE(plain);
    EXPECT_EQ(egc_session_chunk(plain.get()), 16);
    const size_t row = 1 << 20;
    SessPtr extra = Session(16, b16 + 4 * row, EGC_OK, row);
    ASSERT_TRUE(extra);
    int chunk = egc_session_chunk(extra.get());
    EXPECT_GE(chunk, 4);
    EXPECT_LT(chunk, 16);
    EXPECT_LE(egc_session_device_bytes(extra.get()) + (size_t)chunk * row, b16 + 4 * row);
    // Fixed extra bytes larger than the cap leave no room at all.
    SessPtr none = Session(16, b16, EGC_E_NOMEM, 0, b16);
    EXPECT_FALSE(none);
}

TEST_F(MemCap, ExplainerSplitGivesTheSameMaps)
{
    const int B = 16, N = 7;
    std::vector<float> x = Images(N, 7);
    int HW = h * w;
    for (egc_method method : {EGC_METHOD_GRADCAM, EGC_METHOD_EXPECTED_GRADCAM}) {
        SCOPED_TRACE(egc_method_name(method));
        egc_explain_options o;
        egc_explain_options_default(&o);
        o.method = method;
        o.samples = 4;
        o.batch = B;
        o.preset = EGC_PRESET_CIFAR;
        o.precision = EGC_PREC_FP32;
        auto make = [&](int batch, size_t cap, egc_status want) {
            egc_explain_options oo = o;
            oo.batch = batch;
            oo.max_device_bytes = cap;
            egc_explainer *e = nullptr;
            EXPECT_EQ(egc_explainer_create(model.get(), "cpu", &oo, &e), want) << egc_last_error();
            return ExplPtr(e);
        };
        ExplPtr full = make(B, 0, EGC_OK), one = make(1, 0, EGC_OK);
        ASSERT_TRUE(full && one);
        EXPECT_EQ(egc_explainer_rows(full.get()), B);
        size_t e16 = egc_explainer_device_bytes(full.get());
        size_t e1 = egc_explainer_device_bytes(one.get());
        ASSERT_GT(e16, e1);
        size_t cap = e1 + (e16 - e1) / 3;
        ExplPtr capped = make(B, cap, EGC_OK);
        ASSERT_TRUE(capped);
        int rows = egc_explainer_rows(capped.get());
        EXPECT_GT(rows, 0);
        EXPECT_LT(rows, B);
        EXPECT_EQ(egc_explainer_options(capped.get())->batch, B);
        EXPECT_EQ(egc_explainer_options(capped.get())->max_device_bytes, cap);
        EXPECT_LE(egc_explainer_device_bytes(capped.get()), cap);
        std::printf("%s: cap %zu bytes (batch 1: %zu, 16: %zu): %d rows, %zu bytes\n",
                    egc_method_name(method), cap, e1, e16, rows,
                    egc_explainer_device_bytes(capped.get()));

        std::vector<float> m_full((size_t)N * HW), m_cap((size_t)N * HW, NAN);
        std::vector<egc_cam_result> r_full(N), r_cap(N);
        for (int i = 0; i < N; i++) {
            memset(&r_full[i], 0, sizeof r_full[i]);
            memset(&r_cap[i], 0, sizeof r_cap[i]);
            r_full[i].map = m_full.data() + (size_t)i * HW;
            r_cap[i].map = m_cap.data() + (size_t)i * HW;
        }
        ASSERT_EQ(egc_explainer_run(full.get(), x.data(), N, nullptr, r_full.data()), EGC_OK);
        ASSERT_EQ(egc_explainer_run(capped.get(), x.data(), N, nullptr, r_cap.data()), EGC_OK)
            << egc_last_error();
        for (int i = 0; i < N; i++) {
            EXPECT_EQ(r_cap[i].cls, r_full[i].cls) << "image " << i;
            EXPECT_NEAR(r_cap[i].score, r_full[i].score, 1e-5 * std::max(1.0f, std::fabs(r_full[i].score)));
        }
        double d = 0;
        for (size_t i = 0; i < m_full.size(); i++)
            d = std::max(d, (double)std::fabs(m_cap[i] - m_full[i]));
        EXPECT_LE(d, 1e-5);

        // Not even one row under a tiny cap.
        ExplPtr none = make(B, e1 / 2, EGC_E_NOMEM);
        EXPECT_FALSE(none);
        EXPECT_NE(std::string(egc_last_error()).find(std::to_string(e1 / 2)), std::string::npos)
            << egc_last_error();
    }
}

}  // namespace
