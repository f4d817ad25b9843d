// memcap_cases.h: the cases of the device-memory cap and the automatic batch splitting,
// written once and run on the device a test names ("cpu" in test/cpu/memcap_test.cc, "cuda"
// in test/cuda/memcap_cuda_test.cc) with that device's tolerance, on the shared ResNet-20
// (CIFAR-10).
//
// memcap_split_session_matches_uncapped: a batch-16 session under a cap between the bytes of
// a batch-1 and a batch-16 session reports a chunk in 1..15, holds no more device bytes than
// the cap, says so in the first line of its description, and gives the logits of 16 random
// images and, seeded with a one-hot class per row, the target-layer gradients and activations
// of the uncapped session (after a forward in several passes, so the backward must run the
// passes again); backward keeps to the rows of the last forward.
// memcap_cap_below_one_row_is_nomem: a cap below what one row needs gives EGC_E_NOMEM naming
// the cap and the model; where a session's bytes depend on its rows alone (the CPU), the
// message names one row's bytes too and exactly those bytes fit one row per pass.
// memcap_explainer_split_same_maps: Grad-CAM and Expected Grad-CAM (4 samples) under a cap
// run fewer rows per pass than the batch asked (which the options keep), stay within the
// cap, give the classes, scores and maps of the uncapped explainers for 7 images, and a cap
// of half a row gives EGC_E_NOMEM naming it.
#ifndef EGC_TEST_MEMCAP_CASES_H
#define EGC_TEST_MEMCAP_CASES_H

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "egcam/explain.h"
#include "egcam/model.h"

struct MemcapModelDel {
    void operator()(egc_model *m) const { egc_model_destroy(m); }
};
struct MemcapSessDel {
    void operator()(egc_session *s) const { egc_session_destroy(s); }
};
struct MemcapExplDel {
    void operator()(egc_explainer *e) const { egc_explainer_destroy(e); }
};
using MemcapSessPtr = std::unique_ptr<egc_session, MemcapSessDel>;
using MemcapExplPtr = std::unique_ptr<egc_explainer, MemcapExplDel>;

// Whether a session's device bytes follow from its rows alone. On the CPU they are its
// plan's; on CUDA they are what cudaMalloc gave, which holds the workspaces of the
// convolution algorithms a timed search picked, so two sessions of one row may differ.
inline bool memcap_bytes_exact(const char *device) { return std::strcmp(device, "cpu") == 0; }

// The shared ResNet-20 and the sessions, explainers and images of the cases on one device.
struct MemcapModel {
    explicit MemcapModel(const char *dev) : device(dev) {}

    // Loads the model (a fatal failure when it cannot).
    void Load()
    {
        const std::string path = std::string(EGC_SHARED_DIR) + "/models/resnet20_cifar10.onnx";
        egc_model *m = nullptr;
        ASSERT_EQ(egc_model_load(path.c_str(), &m), EGC_OK) << egc_last_error();
        model.reset(m);
        egc_model_input_chw(m, &c, &h, &w);
        classes = egc_model_num_classes(m);
        ASSERT_EQ(egc_model_find_layer(m, "auto", &layer), EGC_OK);
    }

    // A session of the auto target layer under cap (0: none); expects status want.
    MemcapSessPtr Session(int batch, size_t cap, egc_status want = EGC_OK, size_t extra_row = 0,
                          size_t extra_fixed = 0) const
    {
        egc_session_options so;
        egc_session_options_default(&so);
        so.max_device_bytes = cap;
        so.extra_row_bytes = extra_row;
        so.extra_fixed_bytes = extra_fixed;
        egc_session *s = nullptr;
        egc_status st = egc_session_create_ex(model.get(), device, batch, layer, &so, &s);
        EXPECT_EQ(st, want) << egc_last_error();
        return MemcapSessPtr(s);
    }

    // An explainer of options o with batch and cap replaced; expects status want.
    MemcapExplPtr Explainer(const egc_explain_options &o, int batch, size_t cap,
                            egc_status want) const
    {
        egc_explain_options oo = o;
        oo.batch = batch;
        oo.max_device_bytes = cap;
        egc_explainer *e = nullptr;
        EXPECT_EQ(egc_explainer_create(model.get(), device, &oo, &e), want) << egc_last_error();
        return MemcapExplPtr(e);
    }

    // n standard-normal images.
    std::vector<float> Images(int n, unsigned seed) const
    {
        std::mt19937 rng(seed);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        std::vector<float> x((size_t)n * c * h * w);
        for (float &v : x) v = nd(rng);
        return x;
    }

    const char *device;
    std::unique_ptr<egc_model, MemcapModelDel> model;
    int c = 0, h = 0, w = 0, classes = 0, layer = -1;
};

// max |a - b| over the smaller of max(1, max |b|) and the range of b (max b - min b, at
// least 1e-12): within tol of both scales.
inline double memcap_diff(const std::vector<float> &a, const std::vector<float> &b)
{
    double d = 0, mx = 1, lo = b[0], hi = b[0];
    for (size_t i = 0; i < a.size(); i++) {
        d = std::max(d, (double)std::fabs(a[i] - b[i]));
        mx = std::max(mx, (double)std::fabs(b[i]));
        lo = std::min(lo, (double)b[i]);
        hi = std::max(hi, (double)b[i]);
    }
    return d / std::min(mx, std::max(1e-12, hi - lo));
}

inline void memcap_split_session_matches_uncapped(const char *device, double tol)
{
    MemcapModel mm(device);
    ASSERT_NO_FATAL_FAILURE(mm.Load());
    const int B = 16;
    MemcapSessPtr full = mm.Session(B, 0), one = mm.Session(1, 0);
    ASSERT_TRUE(full && one);
    EXPECT_EQ(egc_session_chunk(full.get()), B);
    size_t b16 = egc_session_device_bytes(full.get()), b1 = egc_session_device_bytes(one.get());
    ASSERT_GT(b16, b1);
    // About five rows' worth above one row.
    size_t cap = b1 + (b16 - b1) * 4 / 15;
    MemcapSessPtr capped = mm.Session(B, cap);
    ASSERT_TRUE(capped);
    int chunk = egc_session_chunk(capped.get());
    EXPECT_GT(chunk, 0);
    EXPECT_LT(chunk, B);
    EXPECT_LE(egc_session_device_bytes(capped.get()), cap);
    std::printf("%s: cap %zu bytes (batch 1: %zu, batch 16: %zu): chunk %d, %zu bytes\n", device,
                cap, b1, b16, chunk, egc_session_device_bytes(capped.get()));
    std::string desc(1 << 16, '\0');
    egc_session_describe(capped.get(), &desc[0], desc.size());
    EXPECT_EQ(desc.rfind("batch 16 split into passes of " + std::to_string(chunk) + " rows", 0),
              0u)
        << desc.substr(0, 200);
    egc_session_describe(full.get(), &desc[0], desc.size());
    EXPECT_EQ(desc.find("split"), std::string::npos);

    std::vector<float> x = mm.Images(B, 1);
    const size_t nc = (size_t)mm.classes;
    std::vector<float> l_full(B * nc), l_cap(B * nc, NAN);
    ASSERT_EQ(egc_session_forward(full.get(), x.data(), B, l_full.data()), EGC_OK)
        << egc_last_error();
    ASSERT_EQ(egc_session_forward(capped.get(), x.data(), B, l_cap.data()), EGC_OK)
        << egc_last_error();
    EXPECT_LE(memcap_diff(l_cap, l_full), tol);

    egc_shape ts = egc_session_target_shape(full.get());
    size_t per = (size_t)ts.d[1] * (size_t)ts.d[2] * (size_t)ts.d[3];
    std::vector<float> seed(B * nc, 0.0f);
    for (int i = 0; i < B; i++) seed[(size_t)i * nc + (size_t)((i * 3) % mm.classes)] = 1.0f;
    std::vector<float> g_full(B * per), a_full(B * per), g_cap(B * per, NAN), a_cap(B * per, NAN);
    ASSERT_EQ(egc_session_backward(full.get(), seed.data(), B, g_full.data(), a_full.data()),
              EGC_OK)
        << egc_last_error();
    ASSERT_EQ(egc_session_backward(capped.get(), seed.data(), B, g_cap.data(), a_cap.data()),
              EGC_OK)
        << egc_last_error();
    double gmax = 0;
    for (float v : g_full) gmax = std::max(gmax, (double)std::fabs(v));
    ASSERT_GT(gmax, 0.0);
    EXPECT_LE(memcap_diff(g_cap, g_full), tol);
    EXPECT_LE(memcap_diff(a_cap, a_full), tol);

    // A second backward of the first rows only (the plan now holds the last pass), one of
    // fewer rows than a pass, and then one of a whole pass (more rows than the plan holds
    // after the one before: it must run the forward again).
    for (int n : {chunk + 1, chunk - 1 > 0 ? chunk - 1 : 1, chunk}) {
        std::vector<float> g(n * per, NAN);
        ASSERT_EQ(egc_session_backward(capped.get(), seed.data(), n, g.data(), nullptr), EGC_OK)
            << egc_last_error();
        std::vector<float> want(g_full.begin(), g_full.begin() + (long)(n * per));
        EXPECT_LE(memcap_diff(g, want), tol) << n << " rows";
    }
    // More rows than the last forward: refused.
    ASSERT_EQ(egc_session_forward(capped.get(), x.data(), 3, l_cap.data()), EGC_OK);
    EXPECT_EQ(egc_session_backward(capped.get(), seed.data(), 4, g_cap.data(), nullptr),
              EGC_E_ARG);
    EXPECT_NE(std::string(egc_last_error()).find("forward of 3"), std::string::npos)
        << egc_last_error();
}

inline void memcap_cap_below_one_row_is_nomem(const char *device)
{
    MemcapModel mm(device);
    ASSERT_NO_FATAL_FAILURE(mm.Load());
    const bool exact = memcap_bytes_exact(device);
    MemcapSessPtr one = mm.Session(1, 0);
    ASSERT_TRUE(one);
    size_t b1 = egc_session_device_bytes(one.get());
    // One byte short where one row's bytes are known; half a row where they may vary.
    size_t cap = exact ? b1 - 1 : b1 / 2;
    MemcapSessPtr s = mm.Session(8, cap, EGC_E_NOMEM);
    EXPECT_FALSE(s);
    std::string msg = egc_last_error();
    EXPECT_NE(msg.find(std::to_string(cap) + " bytes"), std::string::npos) << msg;
    EXPECT_NE(msg.find("resnet20_cifar10.onnx"), std::string::npos) << msg;
    if (!exact) return;
    EXPECT_NE(msg.find(std::to_string(b1) + " bytes"), std::string::npos) << msg;
    // Exactly one row's bytes fit one row.
    MemcapSessPtr s1 = mm.Session(8, b1);
    ASSERT_TRUE(s1);
    EXPECT_EQ(egc_session_chunk(s1.get()), 1);
}

inline void memcap_explainer_split_same_maps(const char *device, double tol)
{
    MemcapModel mm(device);
    ASSERT_NO_FATAL_FAILURE(mm.Load());
    const int B = 16, N = 7, HW = mm.h * mm.w;
    std::vector<float> x = mm.Images(N, 7);
    for (egc_method method : {EGC_METHOD_GRADCAM, EGC_METHOD_EXPECTED_GRADCAM}) {
        SCOPED_TRACE(egc_method_name(method));
        egc_explain_options o;
        egc_explain_options_default(&o);
        o.method = method;
        o.samples = 4;
        o.batch = B;
        o.preset = EGC_PRESET_CIFAR;
        o.precision = EGC_PREC_FP32;
        MemcapExplPtr full = mm.Explainer(o, B, 0, EGC_OK), one = mm.Explainer(o, 1, 0, EGC_OK);
        ASSERT_TRUE(full && one);
        EXPECT_EQ(egc_explainer_rows(full.get()), B);
        size_t e16 = egc_explainer_device_bytes(full.get());
        size_t e1 = egc_explainer_device_bytes(one.get());
        ASSERT_GT(e16, e1);
        size_t cap = e1 + (e16 - e1) / 3;
        MemcapExplPtr capped = mm.Explainer(o, B, cap, EGC_OK);
        ASSERT_TRUE(capped);
        int rows = egc_explainer_rows(capped.get());
        EXPECT_GT(rows, 0);
        EXPECT_LT(rows, B);
        EXPECT_EQ(egc_explainer_options(capped.get())->batch, B);
        EXPECT_EQ(egc_explainer_options(capped.get())->max_device_bytes, cap);
        EXPECT_LE(egc_explainer_device_bytes(capped.get()), cap);
        std::printf("%s %s: cap %zu bytes (batch 1: %zu, 16: %zu): %d rows, %zu bytes\n", device,
                    egc_method_name(method), cap, e1, e16, rows,
                    egc_explainer_device_bytes(capped.get()));

        std::vector<float> m_full((size_t)N * HW), m_cap((size_t)N * HW, NAN);
        std::vector<egc_cam_result> r_full(N), r_cap(N);
        for (int i = 0; i < N; i++) {
            std::memset(&r_full[i], 0, sizeof r_full[i]);
            std::memset(&r_cap[i], 0, sizeof r_cap[i]);
            r_full[i].map = m_full.data() + (size_t)i * HW;
            r_cap[i].map = m_cap.data() + (size_t)i * HW;
        }
        ASSERT_EQ(egc_explainer_run(full.get(), x.data(), N, nullptr, r_full.data()), EGC_OK)
            << egc_last_error();
        ASSERT_EQ(egc_explainer_run(capped.get(), x.data(), N, nullptr, r_cap.data()), EGC_OK)
            << egc_last_error();
        for (int i = 0; i < N; i++) {
            EXPECT_EQ(r_cap[i].cls, r_full[i].cls) << "image " << i;
            EXPECT_NEAR(r_cap[i].score, r_full[i].score,
                        tol * std::max(1.0f, std::fabs(r_full[i].score)))
                << "image " << i;
        }
        double d = 0;
        for (size_t i = 0; i < m_full.size(); i++)
            d = std::max(d, (double)std::fabs(m_cap[i] - m_full[i]));
        EXPECT_LE(d, tol);

        // Not even one row under a tiny cap.
        MemcapExplPtr none = mm.Explainer(o, B, e1 / 2, EGC_E_NOMEM);
        EXPECT_FALSE(none);
        EXPECT_NE(std::string(egc_last_error()).find(std::to_string(e1 / 2)), std::string::npos)
            << egc_last_error();
    }
}

#endif  // EGC_TEST_MEMCAP_CASES_H
