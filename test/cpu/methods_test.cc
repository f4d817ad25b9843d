// methods_test.cc: the CAM methods, the sampled family and their random numbers.
//
// Covers: Philox4x32-10 against the Random123 known-answer vectors and the documented key
// mapping; Box-Muller normals against libm and in distribution; the image id; the
// shared post-processing (bilinear upsampling as PyTorch does it, min-max); the per-image
// formulas on hand-made tensors; the sample plan parser; and on the real ResNet-20 the
// special cases of METHODS.md (S=1/self/rho=0 is Grad-CAM; a GAP+linear head with logit
// score makes aggregation A Grad-CAM for every baseline set; grid/black/C is the mean of
// per-step Grad-CAMs along the black->x path computed here through the session API; D={x},
// rho>0, A is the mean of noisy gradients), independence from batch size and position, and
// the golden maps made by tools/make_cam_golden.py with PyTorch.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/philox.h"
#include "egcam/explain.h"
#include "egcam/image.h"
#include "egcam/model.h"
#include "methods/methods.h"

namespace {

const std::string kModels = std::string(EGC_SHARED_DIR) + "/models/";
const std::string kData = std::string(EGC_SHARED_DIR) + "/data/";
const std::string kGolden = std::string(EGC_SOURCE_DIR) + "/test/golden/cam/";

// ---------------------------------------------------------------- Philox

TEST(MethodsPhilox, Random123KnownAnswers)
{
    struct {
        uint32_t ctr[4], key[2], out[4];
    } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
         {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
         {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (const auto &k : kat) {
        egc_philox4 c;
        for (int i = 0; i < 4; i++) c.v[i] = k.ctr[i];
        egc_philox4 r = egc_philox4x32_10(c, k.key[0], k.key[1]);
        for (int i = 0; i < 4; i++) EXPECT_EQ(r.v[i], k.out[i]) << "word " << i;
    }
}

TEST(MethodsPhilox, KeyMapping)
{
    // counter = (block, sample, lo(id), hi(id)), key = (lo(seed), hi(seed)).
    const uint64_t seed = 0x299f31d0a4093822ULL, id = 0x0370734413198a2eULL;
    egc_philox4 r = egc_philox_block(seed, id, 0x85a308d3u, 0x243f6a88u);
    const uint32_t want[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
    for (int i = 0; i < 4; i++) EXPECT_EQ(r.v[i], want[i]);
    // Block 0 gives the scalars: baseline = (w0 * R) >> 32, alpha = (w1 >> 8) * 2^-24.
    egc_philox4 b0 = egc_philox_block(7, 99, 3, 0);
    uint32_t b;
    float a;
    egc_sample_scalars(7, 99, 3, 10, &b, &a);
    EXPECT_EQ(b, (uint32_t)(((uint64_t)b0.v[0] * 10u) >> 32));
    EXPECT_EQ(a, (float)(b0.v[1] >> 8) / 16777216.0f);
    EXPECT_GE(a, 0.0f);
    EXPECT_LT(a, 1.0f);
}

// Stratified alphas (alpha_mode 2): row s of an image draws (s + u) / S with u the uniform
// alpha the same key gives (mode 0), so one draw lies in each stratum [s/S, (s+1)/S); with
// sample offsets (sample0) u comes from the offset sample ids and the strata stay those of s.
TEST(MethodsPhilox, StratifiedAlphasOnePerStratum)
{
    const uint64_t ids[2] = {0x0123456789abcdefULL, 42};
    const float sigma[2] = {0.0f, 0.5f};
    const uint32_t s0[2] = {0, 1000};
    for (int offsets : {0, 1}) {
        egc_sample_spec sp;
        memset(&sp, 0, sizeof sp);
        sp.seed = 99;
        sp.ids = ids;
        sp.sigma = sigma;
        sp.sample0 = offsets ? s0 : nullptr;
        sp.S = 16;
        sp.R = 3;
        for (int64_t r = 0; r < 2 * sp.S; r++) {
            sp.alpha_mode = 0;
            egc_sample_draw u = egc_sample_row(&sp, r);
            sp.alpha_mode = 2;
            egc_sample_draw d = egc_sample_row(&sp, r);
            const int64_t s = r % sp.S;
            EXPECT_EQ(d.alpha, ((float)s + u.alpha) / (float)sp.S) << r;
            EXPECT_GE(d.alpha, (float)s / (float)sp.S) << r;
            EXPECT_LE(d.alpha, (float)(s + 1) / (float)sp.S) << r;
            EXPECT_EQ(d.baseline, u.baseline) << r; // only alpha changes
            EXPECT_EQ(d.sample, u.sample) << r;
        }
    }
}

TEST(MethodsPhilox, NormalsMatchLibmAndAreStandard)
{
    const size_t n = 200003;  // not a multiple of 4
    std::vector<float> v(n);
    egc_sample_normals(42, 0x1234, 5, n, v.data());
    double maxerr = 0, sum = 0, sum2 = 0;
    for (size_t j = 0; j < n; j++) {
        egc_philox4 w = egc_philox_block(42, 0x1234, 5, (uint32_t)(1 + j / 4));
        uint32_t a = w.v[(j % 4) & ~1u], bb = w.v[(j % 4) | 1u];
        double u1 = ((a >> 8) + 1.0) / 16777216.0, u2 = (bb >> 8) / 16777216.0;
        double r = std::sqrt(-2.0 * std::log(u1));
        double ref = (j % 2 == 0) ? r * std::cos(2 * M_PI * u2) : r * std::sin(2 * M_PI * u2);
        maxerr = std::max(maxerr, std::fabs(ref - (double)v[j]));
        sum += v[j];
        sum2 += (double)v[j] * v[j];
    }
    EXPECT_LT(maxerr, 2e-6);
    double mean = sum / n, var = sum2 / n - mean * mean;
    EXPECT_NEAR(mean, 0.0, 0.01);
    EXPECT_NEAR(var, 1.0, 0.01);
    // Prefixes agree: drawing fewer values gives the same first values.
    std::vector<float> v2(7);
    egc_sample_normals(42, 0x1234, 5, 7, v2.data());
    for (int j = 0; j < 7; j++) EXPECT_EQ(v2[j], v[j]);
    // Another sample id gives other values.
    egc_sample_normals(42, 0x1234, 6, 7, v2.data());
    EXPECT_NE(v2[0], v[0]);
}

TEST(MethodsPhilox, LogAndSinCosAreAccurate)
{
    for (uint32_t k : {1u, 2u, 3u, 1000u, 11863283u, 11863284u, 16777215u, 16777216u}) {
        double want = std::log(k / 16777216.0);
        EXPECT_NEAR(egc_philox_log24(k), want, 1e-15 * std::max(1.0, std::fabs(want))) << k;
    }
    for (uint32_t k : {0u, 1u, 2097151u, 2097152u, 4194304u, 8388608u, 12582912u, 16777215u,
                       123456u, 9999999u}) {
        double s, c, t = 2 * M_PI * (k / 16777216.0);
        egc_philox_sincos24(k, &s, &c);
        EXPECT_NEAR(s, std::sin(t), 1e-15) << k;
        EXPECT_NEAR(c, std::cos(t), 1e-15) << k;
    }
}

TEST(MethodsPhilox, ImageIdIsTheSumOfWordHashes)
{
    const float x[3] = {1.0f, -2.5f, 0.15625f};
    // computed by tools/make_cam_golden.py's independent numpy image_id from the spec
    EXPECT_EQ(egc_image_id(x, 3), 0xe423d6b705f2624eULL);
    EXPECT_EQ(egc_image_id(x, 0), 0xe220a8397b1dcdafULL);
    float y[3] = {1.0f, -2.5f, 0.15625f};
    y[2] = std::nextafter(y[2], 1.0f);
    EXPECT_NE(egc_image_id(y, 3), egc_image_id(x, 3));
    // the position counts, not just the multiset of values
    const float p[3] = {-2.5f, 1.0f, 0.15625f};
    EXPECT_NE(egc_image_id(p, 3), egc_image_id(x, 3));
    // the bits count: -0 and +0 differ
    const float z0[2] = {0.0f, 1.0f}, z1[2] = {-0.0f, 1.0f};
    EXPECT_NE(egc_image_id(z0, 2), egc_image_id(z1, 2));
    // the sum is order-free: the id is the spec's final mix of the word hashes in any order
    uint64_t sum = 0;
    for (int j = 2; j >= 0; j--) {
        uint32_t u;
        std::memcpy(&u, &x[j], 4);
        sum += egc_id_word((uint64_t)j, u);
    }
    EXPECT_EQ(egc_id_final(sum, 3), egc_image_id(x, 3));
}

TEST(MethodsPhilox, ImageScanGivesIdRangeAndFirstNonFinite)
{
    std::vector<float> x = {0.5f, -0.0f, 3.0f, -1.25f, 2.0f};
    uint64_t id = 0;
    float r[2];
    int64_t bad = 7;
    egc_image_scan(x.data(), x.size(), &id, r, &bad);
    EXPECT_EQ(id, egc_image_id(x.data(), x.size()));
    EXPECT_EQ(r[0], -1.25f);
    EXPECT_EQ(r[1], 3.0f);
    EXPECT_EQ(bad, -1);
    x[3] = NAN;
    x[1] = INFINITY;
    id = 99;
    egc_image_scan(x.data(), x.size(), nullptr, r, &bad);
    EXPECT_EQ(bad, 1);
    EXPECT_EQ(id, 99u);
    const float z[3] = {-0.0f, -0.0f, -0.0f};
    egc_image_scan(z, 3, &id, r, &bad);
    EXPECT_FALSE(std::signbit(r[0]));  // -0 counts as +0
    EXPECT_FALSE(std::signbit(r[1]));
    EXPECT_EQ(bad, -1);
}

TEST(MethodsPhilox, UniformBytesCoverTheRange)
{
    std::vector<uint8_t> b(4096 * 3);
    egc_sample_bytes(1, EGC_UNIFORM_REF_ID, 0, b.size(), b.data());
    int hist[4] = {0, 0, 0, 0};
    for (uint8_t v : b) hist[v >> 6]++;
    for (int q = 0; q < 4; q++) EXPECT_NEAR(hist[q], (int)b.size() / 4, (int)b.size() / 20);
    egc_philox4 w = egc_philox_block(1, EGC_UNIFORM_REF_ID, 0, 1);
    EXPECT_EQ(b[5], (uint8_t)(w.v[1] >> 24));
}

// ---------------------------------------------------------------- post-processing

// --layer with a module path of a PyTorch export ("layer3", "layer3.1.conv2"): the module's
// output, i.e. its scope's last layer; exact tensor and node names still come first; a module
// that ends in a non-4-D layer, or that the export does not have, is an error naming it.
TEST(ModelLayers, PyTorchModulePaths)
{
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load((kModels + "resnet20_cifar10.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    auto name_of = [&](const char *path) -> std::string {
        int i = -1;
        if (egc_model_find_layer(m, path, &i) != EGC_OK) return std::string("ERROR: ") + egc_last_error();
        egc_layer_info li;
        EXPECT_EQ(egc_model_layer(m, i, &li), EGC_OK);
        return li.name;
    };
    EXPECT_EQ(name_of("layer3"), "/layer3/layer3.2/Relu_1_output_0");
    EXPECT_EQ(name_of("layer3.1"), "/layer3/layer3.1/Relu_1_output_0");
    EXPECT_EQ(name_of("layer2.0.conv1"), "/layer2/layer2.0/conv1/Conv_output_0");
    EXPECT_EQ(name_of("/layer3/layer3.1/Relu"), "/layer3/layer3.1/Relu_output_0"); // a node name
    EXPECT_EQ(name_of("layer3"), name_of("auto"));
    std::string e = name_of("linear");
    EXPECT_NE(e.find("module 'linear' ends in layer"), std::string::npos) << e;
    EXPECT_NE(e.find("which is not a 4-D activation with spatial size > 1"), std::string::npos) << e;
    for (const char *bad : {"layer3.9", "layer", "layer3..1", ".layer3", "layer3/", "3"}) {
        e = name_of(bad);
        EXPECT_NE(e.find(std::string("no layer named '") + bad + "'"), std::string::npos) << e;
    }
    egc_model_destroy(m);
}

TEST(MethodsCam, UpsampleMatchesPyTorchHalfPixel)
{
    // F.interpolate(torch.tensor([[1.,2.],[3.,4.]])[None,None], (4,4), mode="bilinear",
    // align_corners=False)
    const float in[4] = {1, 2, 3, 4};
    const float want[16] = {1.0f, 1.25f, 1.75f, 2.0f, 1.5f, 1.75f, 2.25f, 2.5f,
                            2.5f, 2.75f, 3.25f, 3.5f, 3.0f, 3.25f, 3.75f, 4.0f};
    float out[16];
    egc_cam_upsample_bilinear(in, 2, 2, out, 4, 4);
    for (int i = 0; i < 16; i++) EXPECT_FLOAT_EQ(out[i], want[i]) << i;
    // Non-integer factor 3 -> 5 along one axis: source x = (X + 0.5) * 0.6 - 0.5.
    const float row[3] = {0, 10, 20};
    float o5[5];
    egc_cam_upsample_bilinear(row, 1, 3, o5, 1, 5);
    const float w5[5] = {0.0f, 4.0f, 10.0f, 16.0f, 20.0f};
    for (int i = 0; i < 5; i++) EXPECT_NEAR(o5[i], w5[i], 1e-5) << i;
}

TEST(MethodsCam, FinalizeSpansZeroToOne)
{
    const float raw[6] = {0.0f, 2.0f, 5.0f, 1.0f, 0.5f, 3.0f};
    float map[12 * 8], scratch[6];
    egc_cam_finalize(raw, 2, 3, map, 8, 12, scratch);
    float mn = *std::min_element(map, map + 96), mx = *std::max_element(map, map + 96);
    EXPECT_FLOAT_EQ(mn, 0.0f);
    EXPECT_NEAR(mx, 1.0f, 1e-6);
    EXPECT_EQ(raw[2], 5.0f);  // raw untouched
    const float flat[6] = {0, 0, 0, 0, 0, 0};
    egc_cam_finalize(flat, 2, 3, map, 8, 12, scratch);
    for (int i = 0; i < 96; i++) EXPECT_EQ(map[i], 0.0f);
}

// K = 2 channels of 2x2.
const float kG[8] = {1.0f, -2.0f, 0.5f, 0.0f, -1.0f, 3.0f, 2.0f, -0.5f};
const float kA[8] = {1.0f, 2.0f, 3.0f, 4.0f, 0.5f, 0.0f, 1.5f, 2.0f};

TEST(MethodsCam, PerImageFormulas)
{
    float wk[2], L[4];
    // Grad-CAM: w = (-0.125, 0.875).
    egc_gradcam(kG, kA, 2, 4, wk, L);
    EXPECT_FLOAT_EQ(wk[0], -0.125f);
    EXPECT_FLOAT_EQ(wk[1], 0.875f);
    for (int i = 0; i < 4; i++)
        EXPECT_NEAR(L[i], std::max(0.0, -0.125 * kA[i] + 0.875 * kA[4 + i]), 1e-6) << i;
    // XGrad-CAM.
    egc_xgradcam(kG, kA, 2, 4, wk, L);
    EXPECT_NEAR(wk[0], (1 * 1 - 2 * 2 + 0.5 * 3 + 0) / (10 + 1e-7), 1e-6);
    EXPECT_NEAR(wk[1], (-0.5 + 0 + 3 - 1) / (4 + 1e-7), 1e-6);
    // Grad-CAM++: only positive gradients count.
    egc_gradcampp(kG, kA, 2, 4, wk, L);
    auto a = [](double g, double s) { return g * g / (2 * g * g + s * g * g * g + 1e-6); };
    EXPECT_NEAR(wk[0], a(1, 10) * 1 + a(0.5, 10) * 0.5, 1e-6);
    EXPECT_NEAR(wk[1], a(3, 4) * 3 + a(2, 4) * 2, 1e-6);
    // HiResCAM and LayerCAM.
    egc_hirescam(kG, kA, 2, 4, wk, L);
    for (int i = 0; i < 4; i++)
        EXPECT_NEAR(L[i], std::max(0.0f, kG[i] * kA[i] + kG[4 + i] * kA[4 + i]), 1e-6) << i;
    egc_layercam(kG, kA, 2, 4, wk, L);
    for (int i = 0; i < 4; i++)
        EXPECT_NEAR(L[i], std::max(0.0f, kG[i] * kA[i]) + std::max(0.0f, kG[4 + i]) * kA[4 + i],
                    1e-6)
            << i;
    // Score-CAM weights are a softmax of the scores.
    const float s[2] = {0.2f, 0.7f};
    egc_scorecam_map(s, kA, 2, 4, wk, L);
    EXPECT_NEAR(wk[0], 1.0 / (1.0 + std::exp(0.5)), 1e-6);
    EXPECT_NEAR(wk[0] + wk[1], 1.0, 1e-6);
}

TEST(MethodsCam, AggregationsAndSamplePoint)
{
    float acc[8] = {0};
    egc_expected_accum_a(acc, kG, 8);
    egc_expected_accum_a(acc, kA, 8);
    egc_expected_mean(acc, 8, 2);
    for (int i = 0; i < 8; i++) EXPECT_FLOAT_EQ(acc[i], (kG[i] + kA[i]) / 2) << i;
    float accb[8] = {0};
    egc_expected_accum_b(accb, kA, kG, kG, 8);
    for (int i = 0; i < 8; i++) EXPECT_FLOAT_EQ(accb[i], (kA[i] - kG[i]) * kG[i]) << i;
    float m[4] = {0}, wk[2], tmp[4], L[4];
    egc_expected_accum_c(m, kG, kA, 2, 4, wk, tmp);
    egc_gradcam(kG, kA, 2, 4, wk, L);
    for (int i = 0; i < 4; i++) EXPECT_EQ(m[i], L[i]);
    // z = x' + a (x - x') without noise; with noise e = sigma * normal(noise key).
    float z[8], nz[8];
    egc_expected_point(kA, kG, 8, 0.25f, 0.0f, 0, 0, 0, z);
    for (int i = 0; i < 8; i++) EXPECT_FLOAT_EQ(z[i], kG[i] + 0.25f * (kA[i] - kG[i]));
    egc_expected_point(kA, kA, 8, 0.6f, 0.0f, 0, 0, 0, z);
    for (int i = 0; i < 8; i++) EXPECT_EQ(z[i], kA[i]);  // x' = x gives x exactly
    egc_expected_point(kA, kG, 8, 0.25f, 0.5f, 9, 77, 3, z);
    egc_sample_normals(9, 77, 3, 8, nz);
    for (int i = 0; i < 8; i++)
        EXPECT_FLOAT_EQ(z[i], (kG[i] + 0.25f * (kA[i] - kG[i])) + 0.5f * nz[i]);
}

TEST(MethodsCam, BlurIsANormalisedGaussian)
{
    const int H = 20, W = 20;
    std::vector<float> x(H * W, 1.0f), tmp(H * W), out(H * W);
    egc_blur_gaussian11(x.data(), 1, H, W, tmp.data(), out.data());
    EXPECT_NEAR(out[10 * W + 10], 1.0f, 1e-6);  // interior: weights sum to 1
    EXPECT_LT(out[0], 0.6f);                     // corner: zero padding
    // An impulse gives the kernel: k(dy) k(dx) with k(t) ~ exp(-t^2/50).
    std::fill(x.begin(), x.end(), 0.0f);
    x[10 * W + 10] = 1.0f;
    egc_blur_gaussian11(x.data(), 1, H, W, tmp.data(), out.data());
    double sum = 0;
    for (int t = -5; t <= 5; t++) sum += std::exp(-t * t / 50.0);
    EXPECT_NEAR(out[10 * W + 10], 1.0 / (sum * sum), 1e-7);
    EXPECT_NEAR(out[13 * W + 8], std::exp(-9 / 50.0) * std::exp(-4 / 50.0) / (sum * sum), 1e-7);
    EXPECT_EQ(out[16 * W + 10], 0.0f);
}

TEST(MethodsOptions, NamesRoundTrip)
{
    for (int i = 0; i < EGC_METHOD_COUNT; i++) {
        egc_method m;
        ASSERT_EQ(egc_method_parse(egc_method_name((egc_method)i), &m), EGC_OK);
        EXPECT_EQ(m, (egc_method)i);
    }
    egc_method m;
    EXPECT_EQ(egc_method_parse("grad-cam", &m), EGC_E_ARG);
    EXPECT_NE(std::string(egc_last_error()).find("grad-cam"), std::string::npos);
    EXPECT_TRUE(egc_method_is_sampled(EGC_METHOD_EXPECTED_LAYERCAM));
    EXPECT_FALSE(egc_method_is_sampled(EGC_METHOD_SCORECAM));
}

// ---------------------------------------------------------------- on ResNet-20

struct ModelDel {
    void operator()(egc_model *m) const { egc_model_destroy(m); }
};
struct ExplDel {
    void operator()(egc_explainer *e) const { egc_explainer_destroy(e); }
};
using ModelPtr = std::unique_ptr<egc_model, ModelDel>;
using ExplPtr = std::unique_ptr<egc_explainer, ExplDel>;

ModelPtr LoadModel(const std::string &name)
{
    egc_model *m = nullptr;
    egc_status st = egc_model_load((kModels + name).c_str(), &m);
    EXPECT_EQ(st, EGC_OK) << egc_last_error();
    return ModelPtr(st == EGC_OK ? m : nullptr);
}

// n CIFAR test images preprocessed with the cifar preset: [n,3,32,32].
std::vector<float> CifarImages(int n)
{
    const char *cls[] = {"cat", "dog", "ship", "airplane", "frog", "truck", "bird", "horse"};
    std::vector<float> x((size_t)n * 3 * 32 * 32);
    for (int i = 0; i < n; i++) {
        char path[512];
        snprintf(path, sizeof path, "%scifar10-test/%s/%04d.jpg", kData.c_str(), cls[i % 8],
                 i / 8);
        egc_image img;
        EXPECT_EQ(egc_image_load(path, &img), EGC_OK) << egc_last_error();
        EXPECT_EQ(egc_preprocess(&img, EGC_PRESET_CIFAR, 32, 32, x.data() + (size_t)i * 3072),
                  EGC_OK);
        egc_image_free(&img);
    }
    return x;
}

struct Maps {
    std::vector<egc_cam_result> r;
    std::vector<float> raw, map;
    int hw = 0, HW = 0;
};

Maps Explain(egc_explainer *e, const float *x, int n, const int *classes = nullptr)
{
    Maps m;
    int h, w, H, W;
    egc_explainer_geometry(e, &h, &w, &H, &W);
    m.hw = h * w;
    m.HW = H * W;
    m.r.resize(n);
    m.raw.assign((size_t)n * m.hw, -1.0f);
    m.map.assign((size_t)n * m.HW, -1.0f);
    for (int i = 0; i < n; i++) {
        m.r[i].raw = m.raw.data() + (size_t)i * m.hw;
        m.r[i].map = m.map.data() + (size_t)i * m.HW;
    }
    egc_status st = egc_explainer_run(e, x, n, classes, m.r.data());
    EXPECT_EQ(st, EGC_OK) << egc_last_error();
    return m;
}

ExplPtr Make(const egc_model *m, const egc_explain_options &o)
{
    egc_explainer *e = nullptr;
    egc_status st = egc_explainer_create(m, "cpu", &o, &e);
    EXPECT_EQ(st, EGC_OK) << egc_last_error();
    return ExplPtr(st == EGC_OK ? e : nullptr);
}

egc_explain_options Opts(egc_method method)
{
    egc_explain_options o;
    egc_explain_options_default(&o);
    o.method = method;
    o.preset = EGC_PRESET_CIFAR;
    o.samples = 8;
    o.batch = 16;
    o.seed = 1234;
    return o;
}

// Max |a-b| over the map relative to the range of a (plus a small floor).
double RelErr(const float *a, const float *b, int n)
{
    float mn = a[0], mx = a[0];
    double e = 0;
    for (int i = 0; i < n; i++) {
        mn = std::min(mn, a[i]);
        mx = std::max(mx, a[i]);
        e = std::max(e, (double)std::fabs(a[i] - b[i]));
    }
    return e / std::max(1e-12, (double)(mx - mn));
}

class MethodsResNet : public ::testing::Test {
  protected:
    void SetUp() override
    {
        model = LoadModel("resnet20_cifar10.onnx");
        ASSERT_TRUE(model);
        x = CifarImages(7);
    }
    ModelPtr model;
    std::vector<float> x;
};

TEST_F(MethodsResNet, AutoLayerIsTheLastBlock)
{
    auto e = Make(model.get(), Opts(EGC_METHOD_GRADCAM));
    ASSERT_TRUE(e);
    int h, w, H, W;
    egc_explainer_geometry(e.get(), &h, &w, &H, &W);
    EXPECT_EQ(h, 8);
    EXPECT_EQ(w, 8);
    EXPECT_EQ(H, 32);
    EXPECT_EQ(W, 32);
}

// A non-finite value in a batch is an error naming the image and the first bad index (the
// scan entry finds it on the backend); the images before it in the call are still explained
// when they sit in an earlier group.
TEST_F(MethodsResNet, NonFiniteInputIsAnErrorNamingImageAndIndex)
{
    for (egc_method method : {EGC_METHOD_GRADCAM, EGC_METHOD_EXPECTED_GRADCAM}) {
        auto o = Opts(method);
        o.batch = 4;
        auto e = Make(model.get(), o);
        ASSERT_TRUE(e);
        std::vector<float> y = x;
        y[5 * 3072 + 2000] = INFINITY;
        y[5 * 3072 + 1500] = NAN;
        std::vector<egc_cam_result> r(7);
        for (auto &ri : r) ri = egc_cam_result{};
        EXPECT_EQ(egc_explainer_run(e.get(), y.data(), 7, nullptr, r.data()), EGC_E_ARG);
        std::string msg = egc_last_error();
        EXPECT_NE(msg.find("image 5 of the batch holds a non-finite value at 1500"),
                  std::string::npos)
            << msg;
        // the first group (images 0..3) was explained: its ids are the images' hashes
        for (int i = 0; i < 4; i++)
            EXPECT_EQ(r[i].image_id, egc_image_id(x.data() + (size_t)i * 3072, 3072)) << i;
    }
}

TEST_F(MethodsResNet, GradCamClassesScoresAndMaps)
{
    auto e = Make(model.get(), Opts(EGC_METHOD_GRADCAM));
    ASSERT_TRUE(e);
    Maps a = Explain(e.get(), x.data(), 7);
    // Auto class = top-1; the score is its logit.
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(model.get(), "cpu", 7, -1, &s), EGC_OK);
    std::vector<float> logits(7 * 10);
    ASSERT_EQ(egc_session_forward(s, x.data(), 7, logits.data()), EGC_OK);
    egc_session_destroy(s);
    int n_ok = 0;
    for (int i = 0; i < 7; i++) {
        int top = (int)(std::max_element(&logits[i * 10], &logits[i * 10] + 10) - &logits[i * 10]);
        EXPECT_EQ(a.r[i].cls, top);
        EXPECT_NEAR(a.r[i].score, logits[i * 10 + top], 1e-4);
        EXPECT_EQ(a.r[i].image_id, egc_image_id(x.data() + (size_t)i * 3072, 3072));
        const float *m = a.map.data() + (size_t)i * a.HW;
        float mx = *std::max_element(m, m + a.HW), mn = *std::min_element(m, m + a.HW);
        EXPECT_GE(mn, 0.0f);
        EXPECT_LE(mx, 1.0f);
        n_ok += mx > 0.99f;
    }
    EXPECT_GE(n_ok, 6);  // a map that is not all zero spans [0,1]
    // An explicit class changes the map; an out-of-range class is an error.
    std::vector<int> cls(7, -1);
    cls[0] = (a.r[0].cls + 1) % 10;
    Maps b = Explain(e.get(), x.data(), 7, cls.data());
    EXPECT_EQ(b.r[0].cls, cls[0]);
    EXPECT_GT(RelErr(a.raw.data(), b.raw.data(), 64) + RelErr(b.raw.data(), a.raw.data(), 64), 1e-3);
    for (int i = 1; i < 7; i++) EXPECT_EQ(b.r[i].cls, a.r[i].cls);
    cls[0] = 10;
    std::vector<egc_cam_result> r(7);
    EXPECT_EQ(egc_explainer_run(e.get(), x.data(), 7, cls.data(), r.data()), EGC_E_ARG);
}

TEST_F(MethodsResNet, OneSelfSampleWithoutNoiseIsGradCam)
{
    auto g = Make(model.get(), Opts(EGC_METHOD_GRADCAM));
    for (auto score : {EGC_SCORE_LOGIT, EGC_SCORE_SOFTMAX}) {
        auto o = Opts(EGC_METHOD_EXPECTED_GRADCAM);
        o.samples = 1;
        o.baselines = EGC_BASELINES_SELF;
        o.noise = 0.0f;
        o.score = score;
        o.combine = EGC_COMBINE_A; // expected-gradcam's default is B: (A(x) - A(x))G = 0 here
        auto e = Make(model.get(), o);
        auto og = Opts(EGC_METHOD_GRADCAM);
        og.score = score;
        auto gs = Make(model.get(), og);
        ASSERT_TRUE(e && gs);
        Maps a = Explain(gs.get(), x.data(), 7), b = Explain(e.get(), x.data(), 7);
        for (int i = 0; i < 7; i++) {
            // 1e-5: the two explainers may batch the rows differently (EGC_MERGE_CLEAN=1
            // puts the clean and sample rows in one pass), and the CPU's GEMMs round a row
            // by the pass's size
            EXPECT_LT(RelErr(a.raw.data() + i * 64, b.raw.data() + i * 64, 64), 1e-5) << i;
            EXPECT_EQ(a.r[i].cls, b.r[i].cls);
        }
    }
}

TEST_F(MethodsResNet, GapLinearHeadWithLogitMakesVariantAGradCam)
{
    auto g = Make(model.get(), Opts(EGC_METHOD_GRADCAM));
    ASSERT_TRUE(g);
    Maps ref = Explain(g.get(), x.data(), 7);
    for (auto bl : {EGC_BASELINES_BLACK, EGC_BASELINES_BLUR, EGC_BASELINES_UNIFORM}) {
        auto o = Opts(EGC_METHOD_EXPECTED_GRADCAM);
        o.baselines = bl;
        o.noise = 0.3f;
        o.combine = EGC_COMBINE_A;
        o.score = EGC_SCORE_LOGIT;
        auto e = Make(model.get(), o);
        ASSERT_TRUE(e);
        Maps m = Explain(e.get(), x.data(), 7);
        for (int i = 0; i < 7; i++)
            EXPECT_LT(RelErr(ref.raw.data() + i * 64, m.raw.data() + i * 64, 64), 1e-5)
                << egc_baselines_name(bl) << " image " << i;
        // With the softmax score the gradient is not constant: the map changes.
        o.score = EGC_SCORE_SOFTMAX;
        auto es = Make(model.get(), o);
        Maps ms = Explain(es.get(), x.data(), 7);
        double d = 0;
        for (int i = 0; i < 7; i++)
            d = std::max(d, RelErr(ref.raw.data() + i * 64, ms.raw.data() + i * 64, 64));
        EXPECT_GT(d, 1e-3) << egc_baselines_name(bl);
    }
}

// Grad-CAM map of rows z[n] for class cls through the session API.
void PathGradCams(const egc_model *m, const std::vector<float> &z, int n, int cls,
                  std::vector<float> &maps)
{
    int layer = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &layer), EGC_OK);
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(m, "cpu", n, layer, &s), EGC_OK);
    std::vector<float> logits(n * 10), seed(n * 10, 0.0f), g((size_t)n * 4096), a((size_t)n * 4096);
    ASSERT_EQ(egc_session_forward(s, z.data(), n, logits.data()), EGC_OK);
    for (int i = 0; i < n; i++) seed[i * 10 + cls] = 1.0f;
    ASSERT_EQ(egc_session_backward(s, seed.data(), n, g.data(), a.data()), EGC_OK);
    egc_session_destroy(s);
    maps.assign((size_t)n * 64, 0.0f);
    for (int i = 0; i < n; i++)
        for (int p = 0; p < 64; p++) {
            double v = 0;
            for (int k = 0; k < 64; k++) {
                double w = 0;
                for (int q = 0; q < 64; q++) w += g[(size_t)i * 4096 + k * 64 + q];
                v += w / 64 * a[(size_t)i * 4096 + k * 64 + p];
            }
            maps[(size_t)i * 64 + p] = (float)std::max(0.0, v);
        }
}

TEST_F(MethodsResNet, IntegratedIsTheMeanOfGradCamsOnTheBlackPath)
{
    const int S = 6;
    auto o = Opts(EGC_METHOD_INTEGRATED_GRADCAM);
    o.samples = S;
    auto e = Make(model.get(), o);
    ASSERT_TRUE(e);
    const egc_explain_options *ro = egc_explainer_options(e.get());
    EXPECT_EQ(ro->combine, EGC_COMBINE_C);
    EXPECT_EQ(ro->alpha, EGC_ALPHA_GRID);
    EXPECT_EQ(ro->baselines, EGC_BASELINES_BLACK);
    Maps m = Explain(e.get(), x.data(), 3);
    // Black in the cifar preset: (0 - mean) / std.
    const float mean[3] = {0.485f, 0.456f, 0.406f}, sd[3] = {0.229f, 0.224f, 0.225f};
    for (int i = 0; i < 3; i++) {
        std::vector<float> z((size_t)S * 3072);
        for (int s = 0; s < S; s++)
            for (int c = 0; c < 3; c++)
                for (int p = 0; p < 1024; p++) {
                    float b = (0.0f - mean[c]) / sd[c];
                    float xv = x[(size_t)i * 3072 + c * 1024 + p];
                    z[(size_t)s * 3072 + c * 1024 + p] = b + (float)s / S * (xv - b);
                }
        std::vector<float> maps;
        PathGradCams(model.get(), z, S, m.r[i].cls, maps);
        std::vector<float> want(64, 0.0f);
        for (int s = 0; s < S; s++)
            for (int p = 0; p < 64; p++) want[p] += maps[(size_t)s * 64 + p] / S;
        EXPECT_LT(RelErr(want.data(), m.raw.data() + i * 64, 64), 1e-4) << i;
    }
}

TEST_F(MethodsResNet, SmoothIsTheMeanOfNoisyGradients)
{
    const int S = 5;
    auto o = Opts(EGC_METHOD_SMOOTH_GRADCAM);
    o.samples = S;
    o.noise = 0.2f;
    o.score = EGC_SCORE_SOFTMAX;  // the logit gradient would be constant
    auto e = Make(model.get(), o);
    ASSERT_TRUE(e);
    Maps m = Explain(e.get(), x.data(), 2);
    int layer = -1;
    ASSERT_EQ(egc_model_find_layer(model.get(), "auto", &layer), EGC_OK);
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(model.get(), "cpu", S, layer, &s), EGC_OK);
    for (int i = 0; i < 2; i++) {
        const float *xi = x.data() + (size_t)i * 3072;
        float mn = *std::min_element(xi, xi + 3072), mx = *std::max_element(xi, xi + 3072);
        float sigma = 0.2f * (mx - mn);
        uint64_t id = egc_image_id(xi, 3072);
        std::vector<float> z((size_t)S * 3072), noise(3072);
        for (int k = 0; k < S; k++) {
            egc_sample_normals(1234, id, (uint32_t)k, 3072, noise.data());
            for (int j = 0; j < 3072; j++) z[(size_t)k * 3072 + j] = xi[j] + sigma * noise[j];
        }
        std::vector<float> logits(S * 10), seed(S * 10), g((size_t)S * 4096), a(4096 * S);
        ASSERT_EQ(egc_session_forward(s, z.data(), S, logits.data()), EGC_OK);
        int c = m.r[i].cls;
        for (int k = 0; k < S; k++) {
            const float *l = &logits[k * 10];
            double mxl = *std::max_element(l, l + 10), sum = 0;
            for (int j = 0; j < 10; j++) sum += std::exp(l[j] - mxl);
            double pc = std::exp(l[c] - mxl) / sum;
            for (int j = 0; j < 10; j++)
                seed[k * 10 + j] = (float)(pc * ((j == c) - std::exp(l[j] - mxl) / sum));
        }
        ASSERT_EQ(egc_session_backward(s, seed.data(), S, g.data(), nullptr), EGC_OK);
        // A(x) from a clean pass.
        ASSERT_EQ(egc_session_forward(s, xi, 1, logits.data()), EGC_OK);
        ASSERT_EQ(egc_session_backward(s, seed.data(), 1, nullptr, a.data()), EGC_OK);
        std::vector<float> want(64);
        for (int p = 0; p < 64; p++) {
            double v = 0;
            for (int k = 0; k < 64; k++) {
                double w = 0;
                for (int t = 0; t < S; t++)
                    for (int q = 0; q < 64; q++) w += g[(size_t)t * 4096 + k * 64 + q];
                v += w / (64.0 * S) * a[k * 64 + p];
            }
            want[p] = (float)std::max(0.0, v);
        }
        EXPECT_LT(RelErr(want.data(), m.raw.data() + i * 64, 64), 1e-4) << i;
    }
    egc_session_destroy(s);
}

TEST_F(MethodsResNet, MapsDoNotDependOnBatchOrPosition)
{
    for (auto method : {EGC_METHOD_GRADCAM, EGC_METHOD_EXPECTED_GRADCAM, EGC_METHOD_SCORECAM}) {
        for (auto comb : {EGC_COMBINE_A, EGC_COMBINE_B, EGC_COMBINE_C}) {
            if (method != EGC_METHOD_EXPECTED_GRADCAM && comb != EGC_COMBINE_A) continue;
            // Score-CAM runs K = 64 masked rows per image: fewer images keep it quick.
            const int n = method == EGC_METHOD_SCORECAM ? 3 : 7, mid = n / 2;
            auto o = Opts(method);
            o.combine = comb;
            o.score = EGC_SCORE_SOFTMAX;
            o.baselines = EGC_BASELINES_UNIFORM;
            o.uniform_count = 3;
            o.samples = 5;
            o.batch = 1;
            auto e1 = Make(model.get(), o);
            o.batch = 7;
            auto e7 = Make(model.get(), o);
            ASSERT_TRUE(e1 && e7);
            Maps a = Explain(e1.get(), x.data(), n), b = Explain(e7.get(), x.data(), n);
            // The middle image alone, and all images in reverse order.
            Maps c = Explain(e7.get(), x.data() + (size_t)mid * 3072, 1);
            std::vector<float> rev((size_t)n * 3072);
            for (int i = 0; i < n; i++)
                std::copy(x.begin() + (size_t)(n - 1 - i) * 3072,
                          x.begin() + (size_t)(n - i) * 3072, rev.begin() + (size_t)i * 3072);
            Maps d = Explain(e7.get(), rev.data(), n);
            const char *name = egc_method_name(method);
            for (int i = 0; i < n; i++) {
                EXPECT_LT(RelErr(a.raw.data() + i * 64, b.raw.data() + i * 64, 64), 1e-5)
                    << name << " " << egc_combine_name(comb) << " " << i;
                EXPECT_LT(RelErr(a.raw.data() + i * 64, d.raw.data() + (n - 1 - i) * 64, 64), 1e-5)
                    << name << " " << egc_combine_name(comb) << " " << i;
                EXPECT_EQ(a.r[i].image_id, d.r[n - 1 - i].image_id);
            }
            EXPECT_LT(RelErr(a.raw.data() + mid * 64, c.raw.data(), 64), 1e-5) << name;
            EXPECT_LT(RelErr(a.map.data() + mid * 1024, c.map.data(), 1024), 1e-4) << name;
        }
    }
}

// Results whose maps lie back to back get them by a download straight into the caller's
// memory; results whose maps lie elsewhere (here in reverse order, one without a map) get
// them copied: the same maps either way, and a result without a map buffer gets none.
TEST_F(MethodsResNet, MapsReachScatteredAndContiguousBuffersAlike)
{
    for (auto method : {EGC_METHOD_GRADCAM, EGC_METHOD_EXPECTED_GRADCAM}) {
        auto o = Opts(method);
        o.samples = 3;
        o.batch = 4;
        auto e = Make(model.get(), o);
        ASSERT_TRUE(e);
        const int n = 7;
        Maps a = Explain(e.get(), x.data(), n);
        std::vector<float> maps((size_t)n * 1024, -1.0f), raw((size_t)n * 64, -1.0f);
        std::vector<egc_cam_result> r((size_t)n);
        for (int i = 0; i < n; i++) {
            r[(size_t)i].map = i == 2 ? nullptr : maps.data() + (size_t)(n - 1 - i) * 1024;
            r[(size_t)i].raw = raw.data() + (size_t)i * 64;
        }
        ASSERT_EQ(egc_explainer_run(e.get(), x.data(), n, nullptr, r.data()), EGC_OK)
            << egc_last_error();
        for (int i = 0; i < n; i++) {
            const float *want = a.map.data() + (size_t)i * 1024;
            const float *got = maps.data() + (size_t)(n - 1 - i) * 1024;
            if (i == 2) {
                EXPECT_EQ(*std::max_element(got, got + 1024), -1.0f) << "written without a buffer";
                continue;
            }
            EXPECT_EQ(std::memcmp(want, got, 1024 * sizeof(float)), 0) << egc_method_name(method) << " " << i;
            EXPECT_EQ(std::memcmp(a.raw.data() + i * 64, raw.data() + i * 64, 64 * sizeof(float)), 0);
        }
    }
}

// The clean rows of a sampled method riding in the first sample pass (EGC_MERGE_CLEAN=1,
// the CUDA default) give the maps, classes and scores of a clean pass of their own (=0, the
// CPU default): every aggregation, the baselines that read the group's images (self, blur
// with its activations for B), a group smaller than the pass (the
// clean rows share it with samples), a group that fills it (they take it alone), several
// groups, given and top-1 classes, and the methods that fix the options (integrated,
// smooth, an expected variant).
TEST_F(MethodsResNet, MergedCleanRowsGiveTheSeparatePassMaps)
{
    struct Env {
        explicit Env(const char *v) { setenv("EGC_MERGE_CLEAN", v, 1); }
        ~Env() { unsetenv("EGC_MERGE_CLEAN"); }
    };
    struct Cfg {
        egc_method method;
        egc_combine comb;
        egc_baselines base;
        int batch, n;
    };
    const Cfg cfgs[] = {
        {EGC_METHOD_EXPECTED_GRADCAM, EGC_COMBINE_A, EGC_BASELINES_UNIFORM, 16, 3},
        {EGC_METHOD_EXPECTED_GRADCAM, EGC_COMBINE_B, EGC_BASELINES_UNIFORM, 16, 3},
        {EGC_METHOD_EXPECTED_GRADCAM, EGC_COMBINE_C, EGC_BASELINES_UNIFORM, 16, 3},
        {EGC_METHOD_EXPECTED_GRADCAM, EGC_COMBINE_A, EGC_BASELINES_SELF, 8, 7},
        {EGC_METHOD_EXPECTED_GRADCAM, EGC_COMBINE_B, EGC_BASELINES_BLUR, 5, 7},
        {EGC_METHOD_EXPECTED_GRADCAM, EGC_COMBINE_B, EGC_BASELINES_BLACK, 3, 7},
        {EGC_METHOD_INTEGRATED_GRADCAM, EGC_COMBINE_C, EGC_BASELINES_BLACK, 4, 7},
        {EGC_METHOD_SMOOTH_GRADCAM, EGC_COMBINE_A, EGC_BASELINES_SELF, 16, 2},
        {EGC_METHOD_EXPECTED_LAYERCAM, EGC_COMBINE_A, EGC_BASELINES_BLACK, 7, 7},
    };
    const int given[7] = {3, -1, 0, 9, -1, 5, -1};
    for (const Cfg &c : cfgs) {
        for (const int *cls : {(const int *)nullptr, given}) {
            SCOPED_TRACE(std::string(egc_method_name(c.method)) + " " + egc_combine_name(c.comb) +
                         " " + egc_baselines_name(c.base) + " batch " + std::to_string(c.batch) +
                         " n " + std::to_string(c.n) + (cls ? " given classes" : ""));
            auto o = Opts(c.method);
            o.combine = c.comb;
            o.baselines = c.base;
            o.uniform_count = 3;
            o.score = EGC_SCORE_SOFTMAX;
            o.noise = 0.1f;
            o.samples = 5;
            o.batch = c.batch;
            Maps a, b;
            {
                Env env("0");
                auto e = Make(model.get(), o);
                ASSERT_TRUE(e);
                a = Explain(e.get(), x.data(), c.n, cls);
            }
            {
                Env env("1");
                auto e = Make(model.get(), o);
                ASSERT_TRUE(e);
                b = Explain(e.get(), x.data(), c.n, cls);
            }
            for (int i = 0; i < c.n; i++) {
                EXPECT_EQ(a.r[i].cls, b.r[i].cls) << i;
                EXPECT_NEAR(a.r[i].score, b.r[i].score, 1e-5 * std::max(1.0f, std::fabs(a.r[i].score)))
                    << i;
                EXPECT_EQ(a.r[i].samples, b.r[i].samples) << i;
                EXPECT_LT(RelErr(a.raw.data() + i * 64, b.raw.data() + i * 64, 64), 1e-5) << i;
                EXPECT_LT(RelErr(a.map.data() + i * 1024, b.map.data() + i * 1024, 1024), 1e-4) << i;
                // a map made of samples: not the clean pass's (or an empty) one
                EXPECT_GT(*std::max_element(b.raw.begin() + i * 64, b.raw.begin() + (i + 1) * 64),
                          0.0f) << i;
            }
        }
    }
}

// Adaptive sample counts (samples_tol): an image that stops after n samples has the map of a
// fixed run with samples = n, whatever the other images of its group do, for A, B and C; a
// tolerance every pair of rounds meets stops every image after three rounds (two
// consecutive steps within it), one none meets
// runs all S samples (with a short last round); options that fix the sample ids by S
// (integrated-gradcam's grid) turn it off.
TEST_F(MethodsResNet, AdaptiveSampleCountsEqualFixedRunsOfThatCount)
{
    const int n = 7;
    for (auto comb : {EGC_COMBINE_A, EGC_COMBINE_B, EGC_COMBINE_C}) {
        SCOPED_TRACE(std::string("combine ") + egc_combine_name(comb));
        auto o = Opts(EGC_METHOD_EXPECTED_GRADCAM);
        o.combine = comb;
        o.score = EGC_SCORE_SOFTMAX;
        o.baselines = EGC_BASELINES_UNIFORM;
        o.uniform_count = 3;
        o.samples = 16;
        o.samples_round = 4;
        o.batch = 5; // two groups of images; rounds span several chunks
        auto fixed = [&](int S, const float *img, int m) {
            auto f = o;
            f.samples = S;
            f.samples_tol = 0.0f;
            auto e = Make(model.get(), f);
            EXPECT_TRUE(e);
            return e ? Explain(e.get(), img, m) : Maps();
        };
        // every pair of unit maps is within 2: three rounds (12 samples)
        o.samples_tol = 2.5f;
        auto e = Make(model.get(), o);
        ASSERT_TRUE(e);
        EXPECT_EQ(egc_explainer_options(e.get())->samples_tol, 2.5f);
        Maps a = Explain(e.get(), x.data(), n), a8 = fixed(12, x.data(), n);
        for (int i = 0; i < n; i++) {
            EXPECT_EQ(a.r[i].samples, 12) << i;
            EXPECT_EQ(a8.r[i].samples, 12) << i;
            EXPECT_LT(RelErr(a8.raw.data() + i * 64, a.raw.data() + i * 64, 64), 1e-5) << i;
            EXPECT_LT(RelErr(a8.map.data() + i * 1024, a.map.data() + i * 1024, 1024), 1e-4) << i;
            EXPECT_EQ(a.r[i].cls, a8.r[i].cls) << i;
        }
        // never met: all 10 samples (rounds of 4, 4, 2)
        o.samples = 10;
        o.samples_tol = 1e-30f;
        e = Make(model.get(), o);
        ASSERT_TRUE(e);
        Maps b = Explain(e.get(), x.data(), n), b10 = fixed(10, x.data(), n);
        for (int i = 0; i < n; i++) {
            EXPECT_EQ(b.r[i].samples, 10) << i;
            EXPECT_LT(RelErr(b10.raw.data() + i * 64, b.raw.data() + i * 64, 64), 1e-5) << i;
        }
        // in between: images stop at different counts; each equals its own fixed run alone
        o.samples = 24;
        o.samples_round = 2;
        o.samples_tol = 0.2f;
        e = Make(model.get(), o);
        ASSERT_TRUE(e);
        Maps c = Explain(e.get(), x.data(), n);
        int lo = 1 << 30, hi = 0;
        for (int i = 0; i < n; i++) {
            int k = c.r[i].samples;
            EXPECT_TRUE(k >= 6 && k <= 24 && k % 2 == 0) << i << ": " << k;
            lo = std::min(lo, k);
            hi = std::max(hi, k);
            Maps f = fixed(k, x.data() + (size_t)i * 3072, 1);
            EXPECT_LT(RelErr(f.raw.data(), c.raw.data() + i * 64, 64), 1e-5) << i << ": " << k;
        }
        printf("  combine %s, tol 0.2, rounds of 2: %d..%d samples\n", egc_combine_name(comb), lo, hi);
        EXPECT_LT(lo, hi); // the images do not all stop together
    }
    // Grad-CAM draws no samples; a grid (integrated-gradcam) keeps fixed counts
    auto g = Make(model.get(), Opts(EGC_METHOD_GRADCAM));
    ASSERT_TRUE(g);
    EXPECT_EQ(Explain(g.get(), x.data(), 1).r[0].samples, 0);
    auto o = Opts(EGC_METHOD_INTEGRATED_GRADCAM);
    o.samples_tol = 0.1f;
    auto ig = Make(model.get(), o);
    ASSERT_TRUE(ig);
    EXPECT_EQ(egc_explainer_options(ig.get())->samples_tol, 0.0f);
    EXPECT_EQ(Explain(ig.get(), x.data(), 1).r[0].samples, 8);
    o.samples_tol = -1.0f;
    egc_explainer *bad = nullptr;
    EXPECT_EQ(egc_explainer_create(model.get(), "cpu", &o, &bad), EGC_E_ARG);
    EXPECT_NE(std::string(egc_last_error()).find("samples_tol"), std::string::npos);
}

TEST_F(MethodsResNet, SeedAndBaselinesChangeTheSampledMap)
{
    auto o = Opts(EGC_METHOD_EXPECTED_GRADCAM);
    o.score = EGC_SCORE_SOFTMAX;
    o.combine = EGC_COMBINE_B;
    auto a = Make(model.get(), o);
    o.seed = 99;
    auto b = Make(model.get(), o);
    o.seed = 1234;
    auto c = Make(model.get(), o);
    ASSERT_TRUE(a && b && c);
    Maps ma = Explain(a.get(), x.data(), 2), mb = Explain(b.get(), x.data(), 2), mc = Explain(c.get(), x.data(), 2);
    EXPECT_GT(RelErr(ma.raw.data(), mb.raw.data(), 64), 1e-4);
    EXPECT_EQ(RelErr(ma.raw.data(), mc.raw.data(), 128), 0.0);  // same seed: same bits
}

std::string TempPath(const std::string &name)
{
    const char *t = getenv("TMPDIR");
    return std::string(t && *t ? t : "/tmp") + "/egc_methods_" + std::to_string(getpid()) + "_" +
           name;
}

TEST_F(MethodsResNet, SamplePlanParsingAndUse)
{
    auto write = [](const std::string &p, const std::string &text) {
        std::ofstream f(p);
        f << text;
    };
    std::string p = TempPath("plan.csv");
    auto o = Opts(EGC_METHOD_EXPECTED_GRADCAM);
    o.plan_file = p.c_str();
    o.baselines = EGC_BASELINES_UNIFORM;
    o.uniform_count = 2;
    o.score = EGC_SCORE_SOFTMAX;
    o.combine = EGC_COMBINE_A;
    egc_explainer *e = nullptr;
    struct {
        const char *text, *what;
    } bad[] = {
        {"base,alpha,noise_seed\n0,0.5,0\n", "header"},
        {"baseline,alpha,noise_seed\n0,0.5\n", "3 fields"},
        {"baseline,alpha,noise_seed\n-1,0.5,0\n", "baseline"},
        {"baseline,alpha,noise_seed\n0,abc,0\n", "alpha"},
        {"baseline,alpha,noise_seed\n0,0.5,-3\n", "noise_seed"},
        {"baseline,alpha,noise_seed\n", "no sample rows"},
        {"baseline,alpha,noise_seed\n2,0.5,0\n", "baseline set has 2"},
    };
    for (const auto &b : bad) {
        write(p, b.text);
        EXPECT_NE(egc_explainer_create(model.get(), "cpu", &o, &e), EGC_OK) << b.what;
        EXPECT_NE(std::string(egc_last_error()).find(b.what), std::string::npos)
            << egc_last_error();
        EXPECT_EQ(e, nullptr);
    }
    // A plan of one row with alpha 1 gives z = x (up to rounding): Grad-CAM with softmax.
    o.noise = 0.0f;
    write(p, "# one sample\nbaseline, alpha, noise_seed\r\n1,1.0,5\n\n");
    auto ep = Make(model.get(), o);
    ASSERT_TRUE(ep);
    EXPECT_EQ(egc_explainer_samples(ep.get()), 1);
    auto og = Opts(EGC_METHOD_GRADCAM);
    og.score = EGC_SCORE_SOFTMAX;
    auto g = Make(model.get(), og);
    Maps mp = Explain(ep.get(), x.data(), 2), mg = Explain(g.get(), x.data(), 2);
    for (int i = 0; i < 2; i++)
        EXPECT_LT(RelErr(mg.raw.data() + i * 64, mp.raw.data() + i * 64, 64), 1e-4);
    unlink(p.c_str());
}

// --alpha stratified is the plan of its own alphas: one image explained with stratified
// alphas (black baseline, no noise) gives the maps, bit for bit, of a sample plan holding
// (s + u_s) / S for that image's draws u_s; and it differs from the uniform alphas' map.
TEST_F(MethodsResNet, StratifiedAlphasAreThePlanOfThoseAlphas)
{
    auto o = Opts(EGC_METHOD_EXPECTED_GRADCAM);
    o.alpha = EGC_ALPHA_STRATIFIED;
    auto e = Make(model.get(), o);
    ASSERT_TRUE(e);
    EXPECT_STREQ(egc_alpha_name(egc_explainer_options(e.get())->alpha), "stratified");
    const size_t chw = x.size() / 7;
    Maps ms = Explain(e.get(), x.data(), 1);
    uint64_t id = egc_image_id(x.data(), chw);
    float sig = 0.0f;
    egc_sample_spec sp;
    memset(&sp, 0, sizeof sp);
    sp.seed = o.seed;
    sp.ids = &id;
    sp.sigma = &sig;
    sp.S = o.samples;
    sp.R = 1;
    sp.alpha_mode = 2;
    std::string text = "baseline,alpha,noise_seed\n";
    for (int s = 0; s < o.samples; s++) {
        char row[64];
        snprintf(row, sizeof row, "0,%.9g,0\n", (double)egc_sample_row(&sp, s).alpha);
        text += row;
    }
    std::string p = TempPath("strat_plan.csv");
    {
        std::ofstream f(p);
        f << text;
    }
    auto op = Opts(EGC_METHOD_EXPECTED_GRADCAM);
    op.plan_file = p.c_str();
    auto ep = Make(model.get(), op);
    ASSERT_TRUE(ep);
    Maps mp = Explain(ep.get(), x.data(), 1);
    unlink(p.c_str());
    ASSERT_EQ(ms.raw.size(), mp.raw.size());
    for (size_t k = 0; k < ms.raw.size(); k++) ASSERT_EQ(ms.raw[k], mp.raw[k]) << k;
    auto ou = Opts(EGC_METHOD_EXPECTED_GRADCAM);
    auto eu = Make(model.get(), ou);
    ASSERT_TRUE(eu);
    Maps mu = Explain(eu.get(), x.data(), 1);
    EXPECT_GT(RelErr(mu.raw.data(), ms.raw.data(), mu.hw), 1e-6);
    // with adaptive counts it would not be the same draws: the explainer keeps fixed counts
    o.samples_tol = 0.05f;
    auto ea = Make(model.get(), o);
    ASSERT_TRUE(ea);
    EXPECT_EQ(egc_explainer_options(ea.get())->samples_tol, 0.0f);
}

// The method defaults (explain.h): expected-gradcam resolves to the study's choice (combine B,
// softmax, rho 0), every other method to combine A, logit, rho 0.15; explicit values stay.
TEST_F(MethodsResNet, MethodDefaultsResolve)
{
    egc_explain_options d;
    egc_explain_options_default(&d);
    EXPECT_EQ(d.score, EGC_SCORE_DEFAULT);
    EXPECT_EQ(d.combine, EGC_COMBINE_DEFAULT);
    EXPECT_EQ(d.noise, EGC_NOISE_DEFAULT);
    auto e = Make(model.get(), Opts(EGC_METHOD_EXPECTED_GRADCAM));
    ASSERT_TRUE(e);
    const egc_explain_options *r = egc_explainer_options(e.get());
    EXPECT_EQ(r->combine, EGC_COMBINE_B);
    EXPECT_EQ(r->score, EGC_SCORE_SOFTMAX);
    EXPECT_EQ(r->noise, 0.0f);
    for (egc_method m : {EGC_METHOD_GRADCAM, EGC_METHOD_SMOOTH_GRADCAM,
                         EGC_METHOD_EXPECTED_GRADCAMPP}) {
        auto g = Make(model.get(), Opts(m));
        ASSERT_TRUE(g);
        r = egc_explainer_options(g.get());
        EXPECT_EQ(r->combine, EGC_COMBINE_A) << egc_method_name(m);
        EXPECT_EQ(r->score, EGC_SCORE_LOGIT) << egc_method_name(m);
        EXPECT_EQ(r->noise, 0.15f) << egc_method_name(m);
    }
    auto o = Opts(EGC_METHOD_EXPECTED_GRADCAM);
    o.combine = EGC_COMBINE_C;
    o.score = EGC_SCORE_LOGIT;
    o.noise = 0.2f;
    auto x2 = Make(model.get(), o);
    ASSERT_TRUE(x2);
    r = egc_explainer_options(x2.get());
    EXPECT_EQ(r->combine, EGC_COMBINE_C);
    EXPECT_EQ(r->score, EGC_SCORE_LOGIT);
    EXPECT_EQ(r->noise, 0.2f);
    EXPECT_STREQ(egc_score_name(EGC_SCORE_DEFAULT), "default");
}

TEST_F(MethodsResNet, BadOptionsAreRefused)
{
    egc_explainer *e = nullptr;
    auto o = Opts(EGC_METHOD_EXPECTED_GRADCAM);
    o.samples = 0;
    EXPECT_EQ(egc_explainer_create(model.get(), "cpu", &o, &e), EGC_E_ARG);
    o = Opts(EGC_METHOD_EXPECTED_GRADCAM);
    o.noise = -0.5f;
    EXPECT_EQ(egc_explainer_create(model.get(), "cpu", &o, &e), EGC_E_ARG);
    o = Opts(EGC_METHOD_GRADCAM);
    o.layer = "no_such_layer";
    EXPECT_NE(egc_explainer_create(model.get(), "cpu", &o, &e), EGC_OK);
    o = Opts(EGC_METHOD_EXPECTED_GRADCAM);
    o.baselines = EGC_BASELINES_FILE;
    o.baseline_file = "/nonexistent/refs.npy";
    EXPECT_NE(egc_explainer_create(model.get(), "cpu", &o, &e), EGC_OK);
    EXPECT_NE(std::string(egc_last_error()).find("refs.npy"), std::string::npos);
    EXPECT_EQ(e, nullptr);
}

// ---------------------------------------------------------------- goldens (PyTorch)

bool ReadNpy(const std::string &path, egc_tensor *t)
{
    egc_status st = egc_npy_read(path.c_str(), t);
    EXPECT_EQ(st, EGC_OK) << egc_last_error();
    return st == EGC_OK;
}

// One golden case per line of cases.txt (written by tools/make_cam_golden.py):
//   model input method layer score combine baselines rho plan refs classes output
struct GoldenCase {
    std::string model, input, method, layer, score, combine, baselines, plan, refs, out;
    float rho = 0;
    std::vector<int> classes;
};

std::vector<GoldenCase> ReadCases()
{
    std::vector<GoldenCase> v;
    std::ifstream f(kGolden + "cases.txt");
    std::string line;
    while (std::getline(f, line)) {
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ss(line);
        GoldenCase c;
        std::string cls;
        ss >> c.model >> c.input >> c.method >> c.layer >> c.score >> c.combine >> c.baselines >>
            c.rho >> c.plan >> c.refs >> cls >> c.out;
        std::istringstream cs(cls);
        for (std::string t; std::getline(cs, t, ',');) c.classes.push_back(std::stoi(t));
        if (!ss.fail()) v.push_back(c);
    }
    return v;
}

TEST(MethodsGolden, MatchesPyTorch)
{
    std::vector<GoldenCase> cases = ReadCases();
    ASSERT_GE(cases.size(), 20u) << "run tools/make_cam_golden.py";
    std::string last_model;
    ModelPtr model;
    for (const auto &c : cases) {
        SCOPED_TRACE(c.model + " " + c.method + " " + c.score + " " + c.combine + " " + c.out);
        if (c.model != last_model) {
            model = LoadModel(c.model);
            last_model = c.model;
        }
        ASSERT_TRUE(model);
        egc_tensor x, want;
        ASSERT_TRUE(ReadNpy(kGolden + c.input, &x));
        ASSERT_TRUE(ReadNpy(kGolden + c.out, &want));
        int n = (int)x.shape.d[0];
        ASSERT_EQ((int)c.classes.size(), n);
        egc_explain_options o;
        egc_explain_options_default(&o);
        ASSERT_EQ(egc_method_parse(c.method.c_str(), &o.method), EGC_OK);
        o.preset = c.model.find("cifar") != std::string::npos ? EGC_PRESET_CIFAR : EGC_PRESET_TF;
        o.score = c.score == "softmax" ? EGC_SCORE_SOFTMAX : EGC_SCORE_LOGIT;
        o.combine = c.combine == "B" ? EGC_COMBINE_B : c.combine == "C" ? EGC_COMBINE_C
                                                                          : EGC_COMBINE_A;
        std::string plan = kGolden + c.plan, refs = kGolden + c.refs;
        if (c.plan != "-") o.plan_file = plan.c_str();
        if (c.baselines == "file") {
            o.baselines = EGC_BASELINES_FILE;
            o.baseline_file = refs.c_str();
        } else if (c.baselines == "blur") {
            o.baselines = EGC_BASELINES_BLUR;
        } else if (c.baselines == "black") {
            o.baselines = EGC_BASELINES_BLACK;
        } else if (c.baselines == "self") {
            o.baselines = EGC_BASELINES_SELF;
        }
        o.noise = c.rho;
        o.layer = c.layer.c_str();
        o.batch = 5;
        auto e = Make(model.get(), o);
        ASSERT_TRUE(e);
        Maps m = Explain(e.get(), x.data, n, c.classes.data());
        ASSERT_EQ(egc_shape_numel(&want.shape), (int64_t)n * m.hw);
        for (int i = 0; i < n; i++) {
            EXPECT_EQ(m.r[i].cls, c.classes[i]);
            const float *w = want.data + (size_t)i * m.hw;
            float mx = *std::max_element(w, w + m.hw);
            EXPECT_GT(mx, 0.0f) << "golden map " << i << " is all zero: a weak case";
            EXPECT_LT(RelErr(w, m.raw.data() + (size_t)i * m.hw, m.hw), 1e-4) << "image " << i;
        }
        egc_tensor_free(&x);
        egc_tensor_free(&want);
    }
}

}  // namespace
