// metric_rows_test.cc: the backend-made rows of the fidelity metrics on the CPU backend.
//
// Covers: the Gaussian-infidelity rows of m_gauss_rows against the host formula the metric
// used before the rows moved to the backend (computed here: standard normals of the key
// (seed, image id, sample) from egc_sample_normals, I = sigma * normal, row = x - I, aux =
// sum_j phi[j % hw] * I_j in double), bit for bit, on odd sizes (C = 3, 37 x 29), a partial
// first image and with and without per-image sample offsets; the noise is N(0, sigma^2) in
// distribution, fresh per sample and per image; argument errors. On the real ResNet-20:
// egc_metric_infidelity_gaussian equals the old host pipeline recomputed here (host rows
// through egc_evaluator_logits, then beta and the score) within 1e-6 relative when one
// group holds every image, and close when the images span several groups; egc_metric_curves
// gives exactly the AUCs and curves of two egc_metric_curve calls (with and without given
// classes, one curve alone, several groups), and its argument errors.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "core/philox.h"
#include "egcam/metrics.h"
#include "egcam/model.h"
#include "metrics/metrics_internal.h"

namespace {

const std::string kModels = std::string(EGC_SHARED_DIR) + "/models/";

bool exists(const std::string &p) { return access(p.c_str(), R_OK) == 0; }

std::vector<float> randv(size_t n, uint32_t seed, float lo = -2.0f, float hi = 2.0f)
{
    std::mt19937 g(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(n);
    for (auto &x : v) x = u(g);
    return v;
}

// The Gaussian row of image x (chw values) and map phi (hw values) for sample id s (s < 0:
// the clean row), as the metric computed it on the host before m_gauss_rows.
double old_gauss_row(const float *x, const float *phi, size_t chw, size_t hw, uint64_t seed,
                     uint64_t id, int64_t s, float sigma, float *out)
{
    if (s < 0) {
        std::copy(x, x + chw, out);
        return 0.0;
    }
    std::vector<float> nrm(chw);
    egc_sample_normals(seed, id, (uint32_t)s, chw, nrm.data());
    double sum = 0;
    for (size_t j = 0; j < chw; j++) {
        float I = sigma * nrm[j];
        sum += (double)phi[j % hw] * (double)I;
        out[j] = x[j] - I;
    }
    return sum;
}

struct Cpu {
    egc_backend *be = nullptr;
    Cpu() { EXPECT_EQ(egc_backend_create("cpu", &be), EGC_OK) << egc_last_error(); }
    ~Cpu() { egc_backend_destroy(be); }
};

// A group of 3 images of 3 x 37 x 29 values (not a multiple of 4) and 4 samples each.
struct GaussCase {
    const int images = 3, C = 3, hw = 37 * 29, S = 4;
    const size_t chw = (size_t)C * hw;
    const uint64_t seed = 0x0123456789abcdefULL ^ EGC_METRIC_KEY_GAUSS;
    const float sigma = 0.37f;
    std::vector<float> x, phi;
    std::vector<uint64_t> ids;
    std::vector<uint32_t> s0 = {0, 5, 1000};
    GaussCase()
    {
        x = randv((size_t)images * chw, 11);
        phi = randv((size_t)images * hw, 12, 0.0f, 1.0f);
        for (int i = 0; i < images; i++) ids.push_back(egc_image_id(x.data() + i * chw, chw));
    }
    egc_gauss_spec spec(bool offsets) const
    {
        egc_gauss_spec sp;
        memset(&sp, 0, sizeof sp);
        sp.x = x.data();
        sp.phi = phi.data();
        sp.ids = ids.data();
        sp.sample0 = offsets ? s0.data() : nullptr;
        sp.seed = seed;
        sp.sigma = sigma;
        sp.C = C;
        sp.hw = hw;
        sp.rows_per = S + 1;
        return sp;
    }
};

TEST(MetricRows, GaussRowsAreTheHostFormula)
{
    GaussCase c;
    Cpu cpu;
    ASSERT_TRUE(cpu.be && cpu.be->m_gauss_rows && cpu.be->m_gauss_scratch);
    for (bool offsets : {false, true}) {
        SCOPED_TRACE(offsets ? "with sample offsets" : "without sample offsets");
        egc_gauss_spec sp = c.spec(offsets);
        const int n = 12, r0 = 2; // rows 2..13 of 15: a partial first image
        size_t sb = cpu.be->m_gauss_scratch(cpu.be, n, (int64_t)c.chw);
        std::vector<char> scratch(std::max<size_t>(sb, 1));
        std::vector<float> out((size_t)n * c.chw, 7.0f);
        std::vector<double> aux((size_t)n, -1.0);
        ASSERT_EQ(cpu.be->m_gauss_rows(cpu.be, &sp, r0, n, scratch.data(), out.data(), aux.data()),
                  EGC_OK)
            << egc_last_error();
        std::vector<float> want(c.chw);
        for (int t = 0; t < n; t++) {
            int r = r0 + t, i = r / (c.S + 1), k = r % (c.S + 1);
            int64_t s = k == 0 ? -1 : (int64_t)(k - 1) + (offsets ? c.s0[(size_t)i] : 0);
            double a = old_gauss_row(c.x.data() + i * c.chw, c.phi.data() + (size_t)i * c.hw,
                                     c.chw, (size_t)c.hw, c.seed, c.ids[(size_t)i], s, c.sigma,
                                     want.data());
            EXPECT_EQ(memcmp(want.data(), out.data() + (size_t)t * c.chw, c.chw * sizeof(float)), 0)
                << "row " << r << " differs from the host formula";
            EXPECT_EQ(aux[(size_t)t], a) << "dot product of row " << r;
            if (k == 0) EXPECT_EQ(aux[(size_t)t], 0.0) << "clean row " << r;
        }
    }
}

// Properties that hold whatever the code: the noise I = x - row is N(0, sigma^2), differs
// between samples and images, and a sample offset o makes step k the sample k - 1 + o.
TEST(MetricRows, GaussNoiseIsFreshAndOffsetsShiftTheSamples)
{
    GaussCase c;
    Cpu cpu;
    ASSERT_TRUE(cpu.be && cpu.be->m_gauss_rows);
    const int rows = c.images * (c.S + 1);
    std::vector<float> plain((size_t)rows * c.chw), offs((size_t)rows * c.chw);
    std::vector<double> a0((size_t)rows), a1((size_t)rows);
    egc_gauss_spec sp = c.spec(false), so = c.spec(true);
    ASSERT_EQ(cpu.be->m_gauss_rows(cpu.be, &sp, 0, rows, nullptr, plain.data(), a0.data()), EGC_OK);
    ASSERT_EQ(cpu.be->m_gauss_rows(cpu.be, &so, 0, rows, nullptr, offs.data(), a1.data()), EGC_OK);
    auto noise = [&](const std::vector<float> &o, int i, int k) {
        std::vector<double> v(c.chw);
        for (size_t j = 0; j < c.chw; j++)
            v[j] = (double)c.x[(size_t)i * c.chw + j] -
                   (double)o[((size_t)i * (c.S + 1) + (size_t)k) * c.chw + j];
        return v;
    };
    for (int i = 0; i < c.images; i++)
        for (int k = 1; k <= c.S; k++) {
            auto v = noise(plain, i, k);
            double m = 0, q = 0;
            for (double e : v) m += e;
            m /= (double)v.size();
            for (double e : v) q += (e - m) * (e - m);
            double sd = std::sqrt(q / (double)v.size());
            EXPECT_LT(std::fabs(m), 4.0 * c.sigma / std::sqrt((double)v.size())) << i << "," << k;
            EXPECT_NEAR(sd, c.sigma, 0.05 * c.sigma) << "image " << i << " sample " << k;
            if (k > 1) EXPECT_NE(v, noise(plain, i, k - 1)) << "samples repeat";
            if (i > 0) EXPECT_NE(v, noise(plain, i - 1, k)) << "images share noise";
        }
    // Image 0 has offset 0: the same rows. Image 1 has offset 5 > S: every sample new.
    for (int k = 0; k <= c.S; k++)
        EXPECT_EQ(memcmp(&plain[(size_t)k * c.chw], &offs[(size_t)k * c.chw],
                         c.chw * sizeof(float)),
                  0);
    for (int k = 1; k <= c.S; k++) EXPECT_NE(noise(plain, 1, k), noise(offs, 1, k));
    // Image 1 at step 1 with offset 5 is sample 5 of the host formula.
    std::vector<float> want(c.chw);
    old_gauss_row(c.x.data() + c.chw, c.phi.data() + c.hw, c.chw, (size_t)c.hw, c.seed, c.ids[1],
                  5, c.sigma, want.data());
    EXPECT_EQ(memcmp(want.data(), &offs[((size_t)(c.S + 1) + 1) * c.chw], c.chw * sizeof(float)),
              0);
}

TEST(MetricRows, GaussArgumentErrors)
{
    GaussCase c;
    Cpu cpu;
    ASSERT_TRUE(cpu.be && cpu.be->m_gauss_rows);
    std::vector<float> out(c.chw);
    double aux = 0;
    egc_gauss_spec sp = c.spec(false);
    EXPECT_EQ(cpu.be->m_gauss_rows(cpu.be, &sp, 0, 0, nullptr, nullptr, nullptr), EGC_OK)
        << "no rows is a no-op";
    EXPECT_EQ(cpu.be->m_gauss_rows(cpu.be, &sp, 0, 1, nullptr, out.data(), nullptr), EGC_E_ARG);
    EXPECT_NE(std::string(egc_last_error()).find("m_gauss_rows"), std::string::npos)
        << egc_last_error();
    sp.sigma = 0.0f;
    EXPECT_EQ(cpu.be->m_gauss_rows(cpu.be, &sp, 0, 1, nullptr, out.data(), &aux), EGC_E_ARG);
    sp = c.spec(false);
    sp.ids = nullptr;
    EXPECT_EQ(cpu.be->m_gauss_rows(cpu.be, &sp, 0, 1, nullptr, out.data(), &aux), EGC_E_ARG);
    sp = c.spec(false);
    EXPECT_EQ(cpu.be->m_gauss_rows(cpu.be, &sp, -1, 1, nullptr, out.data(), &aux), EGC_E_ARG);
}

// ---------------------------------------------------------------- metrics on ResNet-20

struct ModelH {
    egc_model *m = nullptr;
    ~ModelH() { egc_model_destroy(m); }
};
struct EvalH {
    egc_evaluator *e = nullptr;
    ~EvalH() { egc_evaluator_destroy(e); }
};

#define NEED_RESNET20()                                                                  \
    do {                                                                                 \
        if (!exists(kModels + "resnet20_cifar10.onnx"))                                  \
            GTEST_SKIP() << "shared model resnet20_cifar10.onnx not found";              \
    } while (0)

class MetricsResnet : public ::testing::Test {
protected:
    void SetUp() override
    {
        NEED_RESNET20();
        ASSERT_EQ(egc_model_load((kModels + "resnet20_cifar10.onnx").c_str(), &model.m), EGC_OK)
            << egc_last_error();
        x = randv((size_t)n * chw, 21, -2.0f, 2.0f);
        maps = randv((size_t)n * hw, 22, 0.0f, 1.0f);
    }
    static constexpr int n = 6, hw = 32 * 32;
    static constexpr size_t chw = 3 * (size_t)hw;
    ModelH model;
    std::vector<float> x, maps;
};

// The Gaussian infidelity as the metric computed it before m_gauss_rows: host rows, scored
// through egc_evaluator_logits (top-1 classes first), then beta and the score.
void old_gaussian(egc_evaluator *ev, const std::vector<float> &x, const std::vector<float> &maps,
                  int n, size_t chw, size_t hw, const egc_infidelity_options &o,
                  std::vector<float> *out, std::vector<float> *beta)
{
    const int S = o.samples, classes = 10;
    std::vector<float> lg((size_t)n * classes);
    ASSERT_EQ(egc_evaluator_logits(ev, x.data(), n, lg.data()), EGC_OK) << egc_last_error();
    std::vector<int> cls((size_t)n);
    for (int i = 0; i < n; i++)
        cls[(size_t)i] = (int)(std::max_element(&lg[(size_t)i * classes],
                                                &lg[(size_t)i * classes] + classes) -
                               &lg[(size_t)i * classes]);
    const int rows = n * (S + 1);
    std::vector<float> z((size_t)rows * chw), zl((size_t)rows * classes);
    std::vector<double> aux((size_t)rows);
    for (int r = 0; r < rows; r++) {
        int i = r / (S + 1), k = r % (S + 1);
        const float *xi = x.data() + (size_t)i * chw;
        aux[(size_t)r] = old_gauss_row(xi, maps.data() + (size_t)i * hw, chw, hw,
                                       o.seed ^ EGC_METRIC_KEY_GAUSS, egc_image_id(xi, chw),
                                       k - 1, o.sigma, z.data() + (size_t)r * chw);
    }
    ASSERT_EQ(egc_evaluator_logits(ev, z.data(), rows, zl.data()), EGC_OK) << egc_last_error();
    out->assign((size_t)n, 0.0f);
    beta->assign((size_t)n, 0.0f);
    for (int i = 0; i < n; i++) {
        int c = cls[(size_t)i];
        double f0 = zl[(size_t)i * (S + 1) * classes + (size_t)c], sd = 0, ss = 0;
        std::vector<double> s((size_t)S), d((size_t)S);
        for (int k = 0; k < S; k++) {
            size_t r = (size_t)i * (S + 1) + (size_t)k + 1;
            s[(size_t)k] = aux[r];
            d[(size_t)k] = f0 - (double)zl[r * classes + (size_t)c];
            sd += s[(size_t)k] * d[(size_t)k];
            ss += s[(size_t)k] * s[(size_t)k];
        }
        double b = ss > 0 ? sd / ss : 0.0, e = 0;
        for (int k = 0; k < S; k++) {
            double t = b * s[(size_t)k] - d[(size_t)k];
            e += t * t;
        }
        (*out)[(size_t)i] = (float)(e / S);
        (*beta)[(size_t)i] = (float)b;
    }
}

TEST_F(MetricsResnet, GaussianInfidelityIsTheOldHostPipeline)
{
    egc_infidelity_options o;
    egc_infidelity_options_default(EGC_PRESET_CIFAR, &o);
    o.samples = 5;
    o.sigma = 0.2f;
    o.seed = 3;
    // batch 64: one group holds all 6 images and the rows run in the same forwards as the
    // old stream; batch 4: two groups of images, the forwards are composed differently.
    for (int batch : {64, 4}) {
        SCOPED_TRACE("batch " + std::to_string(batch));
        EvalH ev;
        ASSERT_EQ(egc_evaluator_create(model.m, "cpu", batch, &ev.e), EGC_OK) << egc_last_error();
        std::vector<float> got((size_t)n), beta((size_t)n), want, wbeta;
        ASSERT_EQ(egc_metric_infidelity_gaussian(ev.e, x.data(), maps.data(), n, nullptr, &o,
                                                 got.data(), beta.data()),
                  EGC_OK)
            << egc_last_error();
        old_gaussian(ev.e, x, maps, n, chw, hw, o, &want, &wbeta);
        const double tol = batch == 64 ? 1e-6 : 1e-4;
        for (int i = 0; i < n; i++) {
            EXPECT_LE(std::fabs((double)got[(size_t)i] - want[(size_t)i]),
                      tol * std::max(1e-3, std::fabs((double)want[(size_t)i])))
                << "infidelity of image " << i << ": " << got[(size_t)i] << " vs "
                << want[(size_t)i];
            EXPECT_LE(std::fabs((double)beta[(size_t)i] - wbeta[(size_t)i]),
                      tol * std::max(1e-3, std::fabs((double)wbeta[(size_t)i])))
                << "beta of image " << i << ": " << beta[(size_t)i] << " vs " << wbeta[(size_t)i];
        }
    }
}

TEST_F(MetricsResnet, CombinedCurvesEqualTheSeparateCalls)
{
    EvalH ev;
    // batch 4: the 6 images make two groups
    ASSERT_EQ(egc_evaluator_create(model.m, "cpu", 4, &ev.e), EGC_OK) << egc_last_error();
    const int step = 37, T = egc_curve_steps(hw, step);
    const size_t pts = (size_t)n * (size_t)(T + 1);
    std::vector<int> given = {3, -1, 0, 9, -1, 5};
    for (const int *classes : {(const int *)nullptr, (const int *)given.data()}) {
        SCOPED_TRACE(classes ? "given classes" : "top-1 classes");
        std::vector<float> ad((size_t)n), ai((size_t)n), cd(pts), ci(pts);
        ASSERT_EQ(egc_metric_curve(ev.e, EGC_CURVE_DELETION, x.data(), maps.data(), n, classes,
                                   step, ad.data(), cd.data()),
                  EGC_OK)
            << egc_last_error();
        ASSERT_EQ(egc_metric_curve(ev.e, EGC_CURVE_INSERTION, x.data(), maps.data(), n, classes,
                                   step, ai.data(), ci.data()),
                  EGC_OK)
            << egc_last_error();
        EXPECT_NE(ad, ai) << "deletion and insertion should differ";
        std::vector<float> bd((size_t)n, -1), bi((size_t)n, -1), ed(pts, -1), ei(pts, -1);
        ASSERT_EQ(egc_metric_curves(ev.e, x.data(), maps.data(), n, classes, step, bd.data(),
                                    bi.data(), ed.data(), ei.data()),
                  EGC_OK)
            << egc_last_error();
        EXPECT_EQ(bd, ad) << "deletion AUCs";
        EXPECT_EQ(bi, ai) << "insertion AUCs";
        EXPECT_EQ(ed, cd) << "deletion curves";
        EXPECT_EQ(ei, ci) << "insertion curves";
        // One curve alone, without the curves.
        std::vector<float> only((size_t)n, -1);
        ASSERT_EQ(egc_metric_curves(ev.e, x.data(), maps.data(), n, classes, step, nullptr,
                                    only.data(), nullptr, ci.data()),
                  EGC_OK);
        EXPECT_EQ(only, ai) << "insertion alone";
        ASSERT_EQ(egc_metric_curves(ev.e, x.data(), maps.data(), n, classes, step, only.data(),
                                    nullptr, nullptr, nullptr),
                  EGC_OK);
        EXPECT_EQ(only, ad) << "deletion alone";
    }
    std::vector<float> a((size_t)n);
    EXPECT_EQ(egc_metric_curves(ev.e, x.data(), maps.data(), n, nullptr, step, nullptr, nullptr,
                                nullptr, nullptr),
              EGC_E_ARG);
    EXPECT_NE(std::string(egc_last_error()).find("no output for the AUCs"), std::string::npos);
    EXPECT_EQ(egc_metric_curves(ev.e, x.data(), maps.data(), n, nullptr, 0, a.data(), a.data(),
                                nullptr, nullptr),
              EGC_E_ARG);
    EXPECT_NE(std::string(egc_last_error()).find("step 0"), std::string::npos);
    EXPECT_EQ(egc_metric_curves(ev.e, x.data(), nullptr, n, nullptr, step, a.data(), nullptr,
                                nullptr, nullptr),
              EGC_E_ARG);
    std::vector<int> bad((size_t)n, 10);
    EXPECT_EQ(egc_metric_curves(ev.e, x.data(), maps.data(), n, bad.data(), step, a.data(),
                                a.data(), nullptr, nullptr),
              EGC_E_ARG);
    EXPECT_EQ(egc_metric_curve(ev.e, EGC_CURVE_DELETION, x.data(), maps.data(), n, nullptr, step,
                               nullptr, nullptr),
              EGC_E_ARG);
}

} // namespace
