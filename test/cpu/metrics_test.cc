// metrics_test.cc: the evaluation metrics, boxes and class maps.
//
// Covers: the golden values of tools/metrics_ref.py (PyTorch/numpy, METRICS.md implemented
// independently) on ResNet-20 for deletion/insertion curves and AUCs, patch and Gaussian
// infidelity, Gini sparseness, entropy complexity, pointing game (strict and with a
// tolerance), energy pointing game, relevance rank accuracy, the 2x2 grid and its quadrant
// shares, YOLO boxes rasterised under the tf and torchvision presets (all within 1e-4);
// independence of the results from the evaluator's batch size; hand-checkable cases (a map
// equal to the object mask hits the pointing game with energy and rank accuracy 1; a constant
// map has Gini 0; an oracle ranking beats a random ranking at deletion; the trapezoid AUC; ties ranked by pixel index); sensitivity with r = 0 is 0 and
// is reproducible; the VOC reader on a hand-made file; YOLO, VOC and class map errors; the
// shipped COCO -> ImageNet class map; the localisation class rule.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "egcam/explain.h"
#include "egcam/image.h"
#include "egcam/metrics.h"
#include "egcam/model.h"

namespace {

const std::string kModels = std::string(EGC_SHARED_DIR) + "/models/";
const std::string kData = std::string(EGC_SHARED_DIR) + "/data/";
const std::string kGolden = std::string(EGC_SOURCE_DIR) + "/test/golden/metrics/";
const std::string kTestData = std::string(EGC_SOURCE_DIR) + "/test/data/metrics/";

bool exists(const std::string &p) { return access(p.c_str(), R_OK) == 0; }

std::vector<float> npy(const std::string &name, std::vector<int64_t> *shape = nullptr)
{
    egc_tensor t;
    std::string p = kGolden + name + ".npy";
    EXPECT_EQ(egc_npy_read(p.c_str(), &t), EGC_OK) << p << ": " << egc_last_error();
    size_t n = 1;
    if (shape) shape->clear();
    for (int i = 0; i < t.shape.ndim; i++) {
        n *= (size_t)t.shape.d[i];
        if (shape) shape->push_back(t.shape.d[i]);
    }
    std::vector<float> v(t.data, t.data + n);
    egc_tensor_free(&t);
    return v;
}

void expect_close(float got, float want, double tol, const std::string &what)
{
    EXPECT_LE(std::fabs((double)got - (double)want), tol * std::max(1.0, std::fabs((double)want)))
        << what << ": got " << got << ", want " << want;
}

struct Model {
    egc_model *m = nullptr;
    ~Model() { egc_model_destroy(m); }
};

struct Eval {
    egc_evaluator *e = nullptr;
    ~Eval() { egc_evaluator_destroy(e); }
};

#define NEED_SHARED()                                                                   \
    do {                                                                                \
        if (!exists(kModels + "resnet20_cifar10.onnx") || !exists(kGolden + "x.npy"))   \
            GTEST_SKIP() << "shared models or metric goldens not found";                \
    } while (0)

class MetricsGolden : public ::testing::Test {
protected:
    void SetUp() override
    {
        NEED_SHARED();
        ASSERT_EQ(egc_model_load((kModels + "resnet20_cifar10.onnx").c_str(), &model.m), EGC_OK)
            << egc_last_error();
        std::vector<int64_t> s;
        x = npy("x", &s);
        ASSERT_EQ(s.size(), 4u);
        n = (int)s[0];
        H = (int)s[2];
        W = (int)s[3];
        maps = npy("maps");
        ASSERT_EQ(egc_evaluator_create(model.m, "cpu", 7, &ev.e), EGC_OK) << egc_last_error();
    }
    Model model;
    Eval ev;
    std::vector<float> x, maps;
    int n = 0, H = 0, W = 0;
};

TEST_F(MetricsGolden, DeletionInsertionCurves)
{
    const int step = 16, T = egc_curve_steps(H * W, step);
    ASSERT_EQ(T, 64);
    for (int kind = 0; kind < 2; kind++) {
        std::string k = kind ? "insertion" : "deletion";
        std::vector<float> auc(n), cur((size_t)n * (T + 1));
        ASSERT_EQ(egc_metric_curve(ev.e, kind ? EGC_CURVE_INSERTION : EGC_CURVE_DELETION, x.data(),
                                   maps.data(), n, nullptr, step, auc.data(), cur.data()),
                  EGC_OK)
            << egc_last_error();
        auto want_auc = npy(k + "_auc"), want_cur = npy(k + "_curves");
        ASSERT_EQ(want_cur.size(), cur.size());
        for (int i = 0; i < n; i++) expect_close(auc[i], want_auc[i], 1e-4, k + " AUC");
        for (size_t j = 0; j < cur.size(); j++)
            expect_close(cur[j], want_cur[j], 1e-4, k + " curve point " + std::to_string(j));
    }
    // The top-1 classes the metric used are those of the reference.
    auto cls = npy("classes");
    std::vector<float> logits((size_t)n * 10);
    ASSERT_EQ(egc_evaluator_logits(ev.e, x.data(), n, logits.data()), EGC_OK);
    for (int i = 0; i < n; i++)
        EXPECT_EQ(std::max_element(&logits[i * 10], &logits[i * 10 + 10]) - &logits[i * 10],
                  (int)cls[i]);
}

TEST_F(MetricsGolden, ResultsDoNotDependOnBatch)
{
    Eval big;
    ASSERT_EQ(egc_evaluator_create(model.m, "cpu", 200, &big.e), EGC_OK);
    std::vector<float> a(n), b(n);
    ASSERT_EQ(egc_metric_curve(ev.e, EGC_CURVE_DELETION, x.data(), maps.data(), n, nullptr, 64,
                               a.data(), nullptr), EGC_OK);
    ASSERT_EQ(egc_metric_curve(big.e, EGC_CURVE_DELETION, x.data(), maps.data(), n, nullptr, 64,
                               b.data(), nullptr), EGC_OK);
    for (int i = 0; i < n; i++) EXPECT_NEAR(a[i], b[i], 1e-6);
    // One image alone gives what it gives in the batch.
    float one;
    ASSERT_EQ(egc_metric_curve(big.e, EGC_CURVE_DELETION, x.data() + 3 * H * W * 2,
                               maps.data() + H * W * 2, 1, nullptr, 64, &one, nullptr), EGC_OK);
    EXPECT_NEAR(one, a[2], 1e-6);
    EXPECT_GT(egc_evaluator_rows(big.e), 0);
}

TEST_F(MetricsGolden, InfidelityPatchProtocol)
{
    egc_infidelity_options o;
    egc_infidelity_options_default(EGC_PRESET_CIFAR, &o);
    EXPECT_NEAR(o.black[0], -0.485f / 0.229f, 1e-5);
    EXPECT_NEAR(o.black[2], -0.406f / 0.225f, 1e-5);
    for (int p : {4, 5}) {
        o.patch = p;
        std::vector<float> got(n);
        ASSERT_EQ(egc_metric_infidelity(ev.e, x.data(), maps.data(), n, nullptr, &o, got.data()),
                  EGC_OK)
            << egc_last_error();
        auto want = npy("infid_p" + std::to_string(p));
        for (int i = 0; i < n; i++) expect_close(got[i], want[i], 1e-4, "infidelity p" + std::to_string(p));
    }
    EXPECT_EQ(egc_infidelity_patches(32, 32, 5), 49);
    o.patch = 0;
    std::vector<float> got(n);
    EXPECT_EQ(egc_metric_infidelity(ev.e, x.data(), maps.data(), n, nullptr, &o, got.data()),
              EGC_E_ARG);
}

TEST_F(MetricsGolden, InfidelityGaussianOptimalScaling)
{
    egc_infidelity_options o;
    egc_infidelity_options_default(EGC_PRESET_CIFAR, &o);
    o.samples = 8;
    o.sigma = 0.1f;
    o.seed = 7;
    std::vector<float> got(n), beta(n);
    ASSERT_EQ(egc_metric_infidelity_gaussian(ev.e, x.data(), maps.data(), n, nullptr, &o,
                                             got.data(), beta.data()),
              EGC_OK)
        << egc_last_error();
    auto want = npy("infid_gauss"), wb = npy("infid_beta");
    for (int i = 0; i < n; i++) {
        expect_close(got[i], want[i], 1e-4, "gaussian infidelity");
        expect_close(beta[i], wb[i], 1e-4, "beta");
    }
    // Optimal scaling: no other beta does better, so the scaled error is at most the
    // unscaled one of a zero map (df^2 mean) ... checked through a scaled map: Phi * 3 gives
    // the same infidelity and a third of beta.
    std::vector<float> m3(maps);
    for (auto &v : m3) v *= 3.0f;
    std::vector<float> got3(n), beta3(n);
    ASSERT_EQ(egc_metric_infidelity_gaussian(ev.e, x.data(), m3.data(), n, nullptr, &o,
                                             got3.data(), beta3.data()), EGC_OK);
    for (int i = 0; i < n; i++) {
        expect_close(got3[i], got[i], 1e-4, "scale invariance");
        expect_close(beta3[i] * 3.0f, beta[i], 1e-4, "beta scaling");
    }
}

TEST_F(MetricsGolden, ComplexityAndLocalisation)
{
    auto gini = npy("gini"), ent = npy("entropy"), masksf = npy("masks");
    auto pg = npy("pointing"), pgt = npy("pointing_tol3"), en = npy("energy"), rk = npy("rank");
    int hw = H * W;
    for (int i = 0; i < n; i++) {
        const float *m = maps.data() + (size_t)i * hw;
        float g;
        ASSERT_EQ(egc_sparseness(m, hw, &g), EGC_OK);
        expect_close(g, gini[i], 1e-4, "gini");
        expect_close(egc_complexity(m, hw), ent[i], 1e-4, "entropy");
        std::vector<uint8_t> mask(hw);
        for (int j = 0; j < hw; j++) mask[j] = masksf[(size_t)i * hw + j] > 0.5f;
        int hit = -1;
        ASSERT_EQ(egc_pointing_game(m, mask.data(), H, W, 0, &hit), EGC_OK);
        EXPECT_EQ(hit, (int)pg[i]) << "image " << i;
        ASSERT_EQ(egc_pointing_game(m, mask.data(), H, W, 3, &hit), EGC_OK);
        EXPECT_EQ(hit, (int)pgt[i]) << "image " << i;
        expect_close(egc_energy_pointing(m, mask.data(), hw), en[i], 1e-4, "energy");
        float r;
        ASSERT_EQ(egc_relevance_rank(m, mask.data(), hw, &r), EGC_OK);
        expect_close(r, rk[i], 1e-4, "rank accuracy");
    }
    // The cases hold hits, a miss, and a miss that the tolerance turns into a hit.
    int hits = 0, tol_only = 0, misses = 0;
    for (int i = 0; i < n; i++) {
        hits += pg[i] > 0.5f;
        tol_only += pg[i] < 0.5f && pgt[i] > 0.5f;
        misses += pgt[i] < 0.5f;
    }
    EXPECT_GT(hits, 0);
    EXPECT_GT(tol_only, 0);
    EXPECT_GT(misses, 0);
}

TEST_F(MetricsGolden, GridComposeAndShares)
{
    ASSERT_EQ(n, 4);
    std::vector<float> g((size_t)3 * H * W);
    ASSERT_EQ(egc_grid_compose(x.data(), 3, H, W, g.data()), EGC_OK);
    auto want = npy("grid");
    for (size_t j = 0; j < g.size(); j++) ASSERT_NEAR(g[j], want[j], 1e-5) << "value " << j;
    // For even sizes a quadrant is the mean of 2x2 blocks.
    EXPECT_NEAR(g[0], (x[0] + x[1] + x[W] + x[W + 1]) / 4, 1e-6);
    auto share = npy("grid_share");
    for (int q = 0; q < 4; q++)
        expect_close(egc_grid_share(maps.data() + (size_t)q * H * W, H, W, q), share[q], 1e-4,
                     "grid share");
}

TEST(MetricsBoxes, YoloMasksUnderPresets)
{
    if (!exists(kGolden + "boxes_500x375.txt")) GTEST_SKIP() << "metric goldens not found";
    egc_boxes b;
    ASSERT_EQ(egc_boxes_read_yolo((kGolden + "boxes_500x375.txt").c_str(), 500, 375, &b), EGC_OK)
        << egc_last_error();
    ASSERT_EQ(b.n, 3);
    EXPECT_EQ(b.v[0].cls, 16);
    EXPECT_NEAR(b.v[0].x0, 150.0f, 1e-3);
    EXPECT_NEAR(b.v[0].y1, 300.0f, 1e-3);
    for (const char *p : {"tf", "torchvision"}) {
        egc_preset pr;
        ASSERT_EQ(egc_preset_parse(p, &pr), EGC_OK);
        std::vector<uint8_t> mask(112 * 112);
        int count = 0;
        ASSERT_EQ(egc_boxes_mask(&b, nullptr, pr, 112, 112, mask.data(), &count), EGC_OK);
        auto want = npy(std::string("mask_") + p);
        int diff = 0, wc = 0;
        for (int j = 0; j < 112 * 112; j++) {
            diff += (mask[j] != 0) != (want[j] > 0.5f);
            wc += want[j] > 0.5f;
        }
        EXPECT_EQ(diff, 0) << p;
        EXPECT_EQ(count, wc) << p;
        EXPECT_GT(count, 250) << p;
    }
    // keep selects boxes: only the first.
    uint8_t keep[3] = {1, 0, 0};
    std::vector<uint8_t> m1(224 * 224);
    int c1 = 0;
    ASSERT_EQ(egc_boxes_mask(&b, keep, EGC_PRESET_TF, 224, 224, m1.data(), &c1), EGC_OK);
    EXPECT_GT(c1, 0);
    egc_boxes_free(&b);
}

TEST(MetricsBoxes, YoloErrorsNameTheLine)
{
    std::string p = testing::TempDir() + "bad_yolo.txt";
    {
        std::ofstream f(p);
        f << "# comment\n0 0.5 0.5 0.2 0.2\n3 0.5 oops 0.1 0.1\n";
    }
    egc_boxes b;
    EXPECT_EQ(egc_boxes_read_yolo(p.c_str(), 100, 100, &b), EGC_E_FORMAT);
    EXPECT_NE(std::string(egc_last_error()).find(":3:"), std::string::npos) << egc_last_error();
    EXPECT_EQ(b.n, 0);
    {
        std::ofstream f(p);
        f << "-1 0.5 0.5 0.2 0.2\n";
    }
    EXPECT_EQ(egc_boxes_read_yolo(p.c_str(), 100, 100, &b), EGC_E_FORMAT);
    EXPECT_EQ(egc_boxes_read_yolo((p + ".missing").c_str(), 100, 100, &b), EGC_E_IO);
    unlink(p.c_str());
}

TEST(MetricsBoxes, VocReader)
{
    egc_boxes b;
    ASSERT_EQ(egc_boxes_read_voc((kTestData + "voc_sample.xml").c_str(), &b), EGC_OK)
        << egc_last_error();
    EXPECT_EQ(b.img_w, 200);
    EXPECT_EQ(b.img_h, 100);
    ASSERT_EQ(b.n, 2);
    EXPECT_STREQ(b.v[0].name, "dog");
    EXPECT_EQ(b.v[0].cls, -1);
    EXPECT_FLOAT_EQ(b.v[0].x0, 10.0f);  // 1-based inclusive -> [xmin-1, xmax)
    EXPECT_FLOAT_EQ(b.v[0].y0, 20.0f);
    EXPECT_FLOAT_EQ(b.v[0].x1, 60.0f);
    EXPECT_FLOAT_EQ(b.v[0].y1, 80.0f);
    EXPECT_STREQ(b.v[1].name, "cat & friend");
    EXPECT_FLOAT_EQ(b.v[1].x0, 100.5f);
    // The cifar preset at the image's own size is the identity: the dog box covers exactly
    // columns 10..59 and rows 20..79.
    std::vector<uint8_t> mask(200 * 100);
    int count = 0;
    uint8_t keep[2] = {1, 0};
    ASSERT_EQ(egc_boxes_mask(&b, keep, EGC_PRESET_CIFAR, 200, 100, mask.data(), &count), EGC_OK);
    EXPECT_EQ(count, 50 * 60);
    EXPECT_EQ(mask[20 * 200 + 10], 1);
    EXPECT_EQ(mask[19 * 200 + 10], 0);
    EXPECT_EQ(mask[79 * 200 + 59], 1);
    EXPECT_EQ(mask[79 * 200 + 60], 0);
    egc_boxes_free(&b);

    // Broken files: no bndbox, no size, not VOC, truncated.
    std::string p = testing::TempDir() + "bad_voc.xml";
    const char *bad[] = {
        "<annotation><size><width>10</width><height>10</height></size><object><name>a</name>"
        "</object></annotation>",
        "<annotation><object><name>a</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2</xmax>"
        "<ymax>2</ymax></bndbox></object></annotation>",
        "<html></html>",
        "<annotation><size><width>10</width><height>10</height></size><object><name>a</name>"
        "<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>2",
        "<annotation><size><width>10</width><height>10</height></size><object><name>a</name>"
        "<bndbox><xmin>5</xmin><ymin>1</ymin><xmax>2</xmax><ymax>2</ymax></bndbox></object>"
        "</annotation>"};
    for (const char *s : bad) {
        {
            std::ofstream f(p);
            f << s;
        }
        EXPECT_EQ(egc_boxes_read_voc(p.c_str(), &b), EGC_E_FORMAT) << s;
        EXPECT_NE(std::string(egc_last_error()).find("bad_voc.xml"), std::string::npos);
    }
    unlink(p.c_str());
}

TEST(MetricsClassMap, CocoToImagenet)
{
    std::string yaml = kData + "coco128/classes.yaml";
    std::string cmf = std::string(EGC_SOURCE_DIR) + "/data/coco_to_imagenet.txt";
    std::string labels = kModels + "imagenet_classes.txt";
    if (!exists(yaml) || !exists(labels)) GTEST_SKIP() << "shared data not found";
    char **names = nullptr;
    int nn = 0;
    ASSERT_EQ(egc_class_names_read(yaml.c_str(), &names, &nn), EGC_OK) << egc_last_error();
    ASSERT_EQ(nn, 80);
    EXPECT_STREQ(names[16], "dog");
    EXPECT_STREQ(names[77], "teddy bear");
    egc_class_map cm;
    ASSERT_EQ(egc_class_map_read(cmf.c_str(), names, nn, 1000, &cm), EGC_OK) << egc_last_error();
    std::vector<std::string> lab;
    {
        std::ifstream f(labels);
        std::string l;
        while (std::getline(f, l)) lab.push_back(l);
    }
    ASSERT_EQ(lab.size(), 1000u);
    int dog = egc_class_map_find(&cm, 16, nullptr);
    ASSERT_GE(dog, 0);
    EXPECT_EQ(cm.nidx[dog], 118);
    EXPECT_EQ(cm.idx[dog][0], 151);
    EXPECT_EQ(cm.idx[dog][117], 268);
    // Every mapped index names the class (spot checks of the words).
    struct {
        const char *coco, *word;
    } checks[] = {{"cat", "cat"},       {"zebra", "zebra"},   {"pizza", "pizza"},
                  {"banana", "banana"}, {"teddy bear", "teddy"}, {"orange", "orange"},
                  {"broccoli", "broccoli"}, {"hot dog", "hot"}, {"bear", "bear"},
                  {"elephant", ""},   {"traffic light", "traffic light"}, {"laptop", ""}};
    for (const auto &c : checks) {
        int e = egc_class_map_find(&cm, -1, c.coco);
        ASSERT_GE(e, 0) << c.coco;
        EXPECT_GE(cm.key_id[e], 0) << c.coco;
        for (int j = 0; j < cm.nidx[e]; j++)
            EXPECT_NE(lab[cm.idx[e][j]].find(c.word), std::string::npos)
                << c.coco << " -> " << cm.idx[e][j] << " " << lab[cm.idx[e][j]];
    }
    int ele = egc_class_map_find(&cm, 20, nullptr);
    ASSERT_GE(ele, 0);
    for (int j = 0; j < cm.nidx[ele]; j++) {
        const std::string &l = lab[cm.idx[ele][j]];
        EXPECT_TRUE(l.find("elephant") != std::string::npos || l == "tusker") << l;
    }
    EXPECT_LT(egc_class_map_find(&cm, 0, "person"), 0);  // person has no ImageNet class
    egc_class_map_free(&cm);
    egc_class_names_free(names, nn);
}

TEST(MetricsClassMap, Errors)
{
    std::string p = testing::TempDir() + "cm.txt";
    char *nm[] = {(char *)"dog", (char *)"hot dog"};
    struct {
        const char *text, *msg;
    } cases[] = {{"dog -> 5\nhot dog 7\n", ":2:"},
                 {"dog -> 5, 1000\n", "out of range"},
                 {"wolf -> 5\n", "not a class name"},
                 {"dog -> 5\ndog -> 6\n", "twice"},
                 {"dog -> 9-3\n", "range"},
                 {"dog -> x\n", "not an index"}};
    egc_class_map cm;
    for (const auto &c : cases) {
        {
            std::ofstream f(p);
            f << c.text;
        }
        EXPECT_EQ(egc_class_map_read(p.c_str(), nm, 2, 1000, &cm), EGC_E_FORMAT) << c.text;
        EXPECT_NE(std::string(egc_last_error()).find(c.msg), std::string::npos)
            << c.text << " -> " << egc_last_error();
    }
    {
        std::ofstream f(p);
        f << "# header\n\nhot dog -> 934 # the food\n0 -> 3-5,7\n";
    }
    ASSERT_EQ(egc_class_map_read(p.c_str(), nm, 2, 1000, &cm), EGC_OK) << egc_last_error();
    ASSERT_EQ(cm.n, 2);
    EXPECT_EQ(cm.key_id[0], 1);
    EXPECT_STREQ(cm.key[0], "hot dog");
    EXPECT_EQ(cm.key_id[1], 0);
    EXPECT_EQ(cm.nidx[1], 4);
    EXPECT_EQ(cm.idx[1][3], 7);
    egc_class_map_free(&cm);
    unlink(p.c_str());
}

TEST(MetricsLocalisation, TargetClassRule)
{
    char *nm[] = {(char *)"cat", (char *)"dog", (char *)"person"};
    std::string p = testing::TempDir() + "cm_rule.txt";
    {
        std::ofstream f(p);
        f << "cat -> 1, 2\ndog -> 3-4\n";
    }
    egc_class_map cm;
    ASSERT_EQ(egc_class_map_read(p.c_str(), nm, 3, 6, &cm), EGC_OK) << egc_last_error();
    egc_box bx[3] = {};
    bx[0].cls = 0;  // cat
    bx[1].cls = 2;  // person: unmapped
    bx[2].cls = 1;  // dog
    egc_boxes b = {bx, 3, 100, 100};
    uint8_t keep[3];
    int cls;
    // Top-1 (class 4) is a dog class: explained, and only the dog box kept.
    float l1[6] = {0, 1, 2, 0, 5, 9};
    l1[5] = 0;
    ASSERT_EQ(egc_localisation_target(&cm, &b, l1, 6, &cls, keep), EGC_OK);
    EXPECT_EQ(cls, 4);
    EXPECT_EQ(keep[0], 0);
    EXPECT_EQ(keep[1], 0);
    EXPECT_EQ(keep[2], 1);
    // Top-1 (class 5) is not mapped: the best-scoring mapped class (2, a cat class) wins.
    float l2[6] = {0, 1, 3, 2, -1, 9};
    ASSERT_EQ(egc_localisation_target(&cm, &b, l2, 6, &cls, keep), EGC_OK);
    EXPECT_EQ(cls, 2);
    EXPECT_EQ(keep[0], 1);
    EXPECT_EQ(keep[2], 0);
    // Only a person box: nothing to explain.
    egc_boxes only = {bx + 1, 1, 100, 100};
    ASSERT_EQ(egc_localisation_target(&cm, &only, l2, 6, &cls, keep), EGC_OK);
    EXPECT_EQ(cls, -1);
    egc_class_map_free(&cm);
    unlink(p.c_str());
}

// ---------------------------------------------------------------- hand-checkable cases

TEST(MetricsUnit, MaskMapHitsThePointingGame)
{
    const int H = 20, W = 30;
    std::vector<uint8_t> mask(H * W, 0);
    std::vector<float> map(H * W, 0.0f);
    for (int y = 5; y < 12; y++)
        for (int x = 8; x < 20; x++) {
            mask[y * W + x] = 1;
            map[y * W + x] = 1.0f;
        }
    int hit = 0;
    ASSERT_EQ(egc_pointing_game(map.data(), mask.data(), H, W, 0, &hit), EGC_OK);
    EXPECT_EQ(hit, 1);
    EXPECT_FLOAT_EQ(egc_energy_pointing(map.data(), mask.data(), H * W), 1.0f);
    float r = 0;
    ASSERT_EQ(egc_relevance_rank(map.data(), mask.data(), H * W, &r), EGC_OK);
    EXPECT_FLOAT_EQ(r, 1.0f);
    // The complement misses; with a tolerance that reaches the box it hits.
    std::vector<float> far(H * W, 0.0f);
    far[5 * W + 23] = 1.0f;  // 4 columns right of the box's last column (19)
    ASSERT_EQ(egc_pointing_game(far.data(), mask.data(), H, W, 0, &hit), EGC_OK);
    EXPECT_EQ(hit, 0);
    ASSERT_EQ(egc_pointing_game(far.data(), mask.data(), H, W, 3.9f, &hit), EGC_OK);
    EXPECT_EQ(hit, 0);
    ASSERT_EQ(egc_pointing_game(far.data(), mask.data(), H, W, 4.0f, &hit), EGC_OK);
    EXPECT_EQ(hit, 1);
    std::vector<uint8_t> empty(H * W, 0);
    EXPECT_EQ(egc_pointing_game(map.data(), empty.data(), H, W, 0, &hit), EGC_E_ARG);
    EXPECT_EQ(egc_relevance_rank(map.data(), empty.data(), H * W, &r), EGC_E_ARG);
}

TEST(MetricsUnit, ComplexityHandCases)
{
    std::vector<float> c(100, 0.37f), one(100, 0.0f);
    one[42] = 1.0f;
    float g = 1;
    ASSERT_EQ(egc_sparseness(c.data(), 100, &g), EGC_OK);
    EXPECT_NEAR(g, 0.0f, 1e-6);
    ASSERT_EQ(egc_sparseness(one.data(), 100, &g), EGC_OK);
    EXPECT_NEAR(g, 0.99f, 1e-4);  // (n-1)/n for a one-hot map
    EXPECT_NEAR(egc_complexity(c.data(), 100), std::log(100.0), 1e-5);
    EXPECT_NEAR(egc_complexity(one.data(), 100), 0.0, 1e-6);
    std::vector<float> z(10, 0.0f);
    EXPECT_EQ(egc_complexity(z.data(), 10), 0.0f);
}

TEST(MetricsUnit, AucAndSteps)
{
    float s[] = {1.0f, 0.5f, 0.0f};
    EXPECT_DOUBLE_EQ(egc_curve_auc(s, 3), 0.5);
    float t[] = {0.2f, 0.2f, 0.8f, 1.0f};
    EXPECT_NEAR(egc_curve_auc(t, 4), (0.1 + 0.2 + 0.8 + 0.5) / 3.0, 1e-7);
    EXPECT_EQ(egc_curve_steps(224 * 224, 224), 224);
    EXPECT_EQ(egc_curve_steps(1024, 100), 11);
    EXPECT_EQ(egc_curve_steps(1024, 0), 0);
}

TEST(MetricsUnit, TiesRankByPixelIndex)
{
    // Four equal top values: the first two by index are the top-2.
    float map[8] = {0.1f, 0.9f, 0.2f, 0.9f, 0.9f, 0.0f, 0.9f, 0.3f};
    uint8_t m1[8] = {0, 1, 0, 1, 0, 0, 0, 0}, m2[8] = {0, 0, 0, 0, 1, 0, 1, 0};
    float r;
    ASSERT_EQ(egc_relevance_rank(map, m1, 8, &r), EGC_OK);
    EXPECT_FLOAT_EQ(r, 1.0f);
    ASSERT_EQ(egc_relevance_rank(map, m2, 8, &r), EGC_OK);
    EXPECT_FLOAT_EQ(r, 0.0f);
    EXPECT_EQ(egc_map_argmax(map, 8), 1);
}

TEST(MetricsUnit, OracleRankingBeatsRandom)
{
    // Each image keeps only a 16x16 central window of a CIFAR picture; the rest is already
    // the deletion substrate 0. The oracle ranks the window first (it is all the evidence);
    // a random ranking mostly deletes pixels that are already 0, so the class probability
    // falls later and its deletion AUC is larger.
    if (!exists(kModels + "resnet20_cifar10.onnx") || !exists(kGolden + "x.npy"))
        GTEST_SKIP() << "shared models or metric goldens not found";
    Model model;
    ASSERT_EQ(egc_model_load((kModels + "resnet20_cifar10.onnx").c_str(), &model.m), EGC_OK);
    Eval ev;
    ASSERT_EQ(egc_evaluator_create(model.m, "cpu", 64, &ev.e), EGC_OK);
    auto x = npy("x");
    const int n = 4, H = 32, W = 32, hw = H * W, chw = 3 * hw;
    std::vector<float> oracle((size_t)n * hw, 0.0f), random((size_t)n * hw);
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> U(0, 1);
    for (int i = 0; i < n; i++)
        for (int p = 0; p < hw; p++) {
            int y = p / W, xx = p % W;
            bool in = y >= 8 && y < 24 && xx >= 8 && xx < 24;
            if (!in)
                for (int c = 0; c < 3; c++) x[(size_t)i * chw + (size_t)c * hw + p] = 0.0f;
            oracle[(size_t)i * hw + p] = in ? 1.0f : 0.0f;
            random[(size_t)i * hw + p] = U(rng);
        }
    std::vector<float> ao(n), ar(n);
    ASSERT_EQ(egc_metric_curve(ev.e, EGC_CURVE_DELETION, x.data(), oracle.data(), n, nullptr, 32,
                               ao.data(), nullptr), EGC_OK);
    ASSERT_EQ(egc_metric_curve(ev.e, EGC_CURVE_DELETION, x.data(), random.data(), n, nullptr, 32,
                               ar.data(), nullptr), EGC_OK);
    double mo = 0, mr = 0;
    for (int i = 0; i < n; i++) {
        mo += ao[i] / n;
        mr += ar[i] / n;
    }
    EXPECT_LT(mo, mr - 0.05) << "oracle " << mo << ", random " << mr;
}

TEST(MetricsUnit, SensitivityZeroRadiusAndReproducible)
{
    if (!exists(kModels + "resnet20_cifar10.onnx") || !exists(kGolden + "x.npy"))
        GTEST_SKIP() << "shared models or metric goldens not found";
    Model model;
    ASSERT_EQ(egc_model_load((kModels + "resnet20_cifar10.onnx").c_str(), &model.m), EGC_OK);
    egc_explain_options o;
    egc_explain_options_default(&o);
    o.preset = EGC_PRESET_CIFAR;
    o.batch = 5;
    egc_explainer *e = nullptr;
    ASSERT_EQ(egc_explainer_create(model.m, "cpu", &o, &e), EGC_OK) << egc_last_error();
    auto x = npy("x");
    const int n = 4, hw = 32 * 32;
    std::vector<float> maps((size_t)n * hw);
    std::vector<egc_cam_result> res(n);
    for (int i = 0; i < n; i++) {
        res[i].raw = nullptr;
        res[i].map = maps.data() + (size_t)i * hw;
    }
    ASSERT_EQ(egc_explainer_run(e, x.data(), n, nullptr, res.data()), EGC_OK);
    std::vector<int> cls(n);
    for (int i = 0; i < n; i++) cls[i] = res[i].cls;
    egc_sensitivity_options so;
    egc_sensitivity_options_default(&so);
    EXPECT_FLOAT_EQ(so.radius, 0.2f);
    EXPECT_EQ(so.samples, 200);
    so.samples = 3;
    so.radius = 0;
    std::vector<egc_sensitivity_result> r0(n), r1(n), r2(n);
    ASSERT_EQ(egc_metric_sensitivity(e, x.data(), maps.data(), cls.data(), n, &so, r0.data()),
              EGC_OK) << egc_last_error();
    for (int i = 0; i < n; i++) {
        EXPECT_EQ(r0[i].kept, 3);
        EXPECT_EQ(r0[i].excluded, 0);
        EXPECT_NEAR(r0[i].max_sens, 0.0f, 1e-6);
        EXPECT_NEAR(r0[i].avg_sens, 0.0f, 1e-6);
    }
    so.radius = 0.3f;
    ASSERT_EQ(egc_metric_sensitivity(e, x.data(), maps.data(), cls.data(), n, &so, r1.data()),
              EGC_OK);
    ASSERT_EQ(egc_metric_sensitivity(e, x.data(), maps.data(), cls.data(), n, &so, r2.data()),
              EGC_OK);
    int positive = 0;
    for (int i = 0; i < n; i++) {
        EXPECT_EQ(r1[i].kept + r1[i].excluded, 3);
        EXPECT_EQ(r1[i].kept, r2[i].kept);
        if (r1[i].kept) {
            EXPECT_EQ(r1[i].max_sens, r2[i].max_sens);
            EXPECT_GE(r1[i].max_sens, r1[i].avg_sens);
            positive += r1[i].avg_sens > 0;
        } else {
            EXPECT_TRUE(std::isnan(r1[i].max_sens));
        }
    }
    EXPECT_GT(positive, 0);
    egc_explainer_destroy(e);
}

// A sampled method explains each perturbation with fresh sample ids of x's stream: at r = 0
// the perturbed map of perturbation k is exactly the map drawn with ids (k+1)S.., so the
// sensitivity equals the distance computed by hand through egc_explainer_run_keyed, and it
// is not zero (the old keying by the perturbed input's own id gave zero at r = 0).
TEST(MetricsUnit, SensitivityOfSampledMethodUsesFreshSamplesOfTheSameStream)
{
    if (!exists(kModels + "resnet20_cifar10.onnx") || !exists(kGolden + "x.npy"))
        GTEST_SKIP() << "shared models or metric goldens not found";
    Model model;
    ASSERT_EQ(egc_model_load((kModels + "resnet20_cifar10.onnx").c_str(), &model.m), EGC_OK);
    egc_explain_options o;
    egc_explain_options_default(&o);
    o.preset = EGC_PRESET_CIFAR;
    o.method = EGC_METHOD_EXPECTED_GRADCAM;
    o.combine = EGC_COMBINE_B;
    o.score = EGC_SCORE_SOFTMAX; // the logit gradient of a GAP+linear head is constant
    o.samples = 3;
    o.batch = 4;
    egc_explainer *e = nullptr;
    ASSERT_EQ(egc_explainer_create(model.m, "cpu", &o, &e), EGC_OK) << egc_last_error();
    auto x = npy("x");
    const int n = 2, hw = 32 * 32, K = 2;
    std::vector<float> maps((size_t)n * hw), pm((size_t)n * hw);
    std::vector<egc_cam_result> res(n), pr(n);
    for (int i = 0; i < n; i++) {
        res[i].raw = pr[i].raw = nullptr;
        res[i].map = maps.data() + (size_t)i * hw;
        pr[i].map = pm.data() + (size_t)i * hw;
    }
    ASSERT_EQ(egc_explainer_run(e, x.data(), n, nullptr, res.data()), EGC_OK);
    std::vector<int> cls(n);
    for (int i = 0; i < n; i++) cls[i] = res[i].cls;
    // sample0 = 0 under the hash is the plain run, bit for bit
    std::vector<uint64_t> ids(n);
    for (int i = 0; i < n; i++) ids[i] = res[i].image_id;
    std::vector<uint32_t> s0(n, 0);
    ASSERT_EQ(egc_explainer_run_keyed(e, x.data(), n, nullptr, ids.data(), s0.data(), pr.data()),
              EGC_OK);
    EXPECT_EQ(memcmp(maps.data(), pm.data(), maps.size() * sizeof(float)), 0);
    // by hand: distances of the maps drawn with ids (k+1)S.. (k = 0, 1)
    std::vector<double> want_max(n, 0), want_avg(n, 0);
    for (int k = 0; k < K; k++) {
        for (int i = 0; i < n; i++) s0[i] = (uint32_t)((k + 1) * 3);
        ASSERT_EQ(egc_explainer_run_keyed(e, x.data(), n, nullptr, ids.data(), s0.data(),
                                          pr.data()), EGC_OK);
        for (int i = 0; i < n; i++) {
            double d = 0, nm = 0;
            for (int j = 0; j < hw; j++) {
                double a = maps[(size_t)i * hw + j], b = pm[(size_t)i * hw + j];
                d += (a - b) * (a - b);
                nm += a * a;
            }
            double sens = std::sqrt(d) / std::sqrt(nm);
            want_max[i] = std::max(want_max[i], sens);
            want_avg[i] += sens / K;
        }
    }
    egc_sensitivity_options so;
    egc_sensitivity_options_default(&so);
    so.samples = K;
    so.radius = 0;
    std::vector<egc_sensitivity_result> r(n);
    ASSERT_EQ(egc_metric_sensitivity(e, x.data(), maps.data(), cls.data(), n, &so, r.data()),
              EGC_OK) << egc_last_error();
    for (int i = 0; i < n; i++) {
        EXPECT_EQ(r[i].kept, K);
        EXPECT_GT(r[i].avg_sens, 1e-4f) << "fresh samples must change a 3-sample map";
        EXPECT_NEAR(r[i].max_sens, want_max[i], 1e-6);
        EXPECT_NEAR(r[i].avg_sens, want_avg[i], 1e-6);
    }
    egc_explainer_destroy(e);
}

}  // namespace
