// golden_model_test.cc: the four shared models against PyTorch (tools/make_golden.py and
// tools/accuracy_ref.py, an independent ONNX->torch interpreter in float64). Our own
// decoding + preprocessing + executor must give the same logits and the same target-layer
// gradient of the top-1 logit (within 1e-4 relative to the range), and the same top-1
// class on the whole evaluation sets as PyTorch on the same preprocessing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

extern "C" {
#include "egcam/image.h"
#include "egcam/model.h"
}

namespace {

const std::string kShared = EGC_SHARED_DIR;
const std::string kGolden = std::string(EGC_SOURCE_DIR) + "/test/golden/models/";

std::string slurp(const std::string &p)
{
    std::ifstream f(p);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

// The strings of a JSON array named key (flat arrays of strings or numbers only).
std::vector<std::string> json_array(const std::string &js, const std::string &key)
{
    std::vector<std::string> out;
    size_t k = js.find("\"" + key + "\"");
    if (k == std::string::npos) return out;
    size_t a = js.find('[', k), b = js.find(']', a);
    std::string body = js.substr(a + 1, b - a - 1);
    std::regex item("\"([^\"]*)\"|(-?[0-9.eE+-]+)");
    for (auto it = std::sregex_iterator(body.begin(), body.end(), item); it != std::sregex_iterator(); ++it)
        out.push_back((*it)[1].matched ? (*it)[1].str() : (*it)[2].str());
    return out;
}

std::string json_string(const std::string &js, const std::string &key)
{
    std::smatch m;
    std::regex re("\"" + key + "\"\\s*:\\s*\"([^\"]*)\"");
    return std::regex_search(js, m, re) ? m[1].str() : "";
}

struct Npy {
    egc_tensor t{};
    ~Npy() { egc_tensor_free(&t); }
};

void load_npy(const std::string &p, Npy *n)
{
    ASSERT_EQ(egc_npy_read(p.c_str(), &n->t), EGC_OK) << egc_last_error();
}

class Golden : public ::testing::TestWithParam<const char *> {};

TEST_P(Golden, LogitsAndTargetGradientMatchPyTorch)
{
    const std::string name = GetParam(), dir = kGolden + name + "/";
    std::string js = slurp(dir + "inputs.json");
    ASSERT_FALSE(js.empty()) << "missing " << dir << "inputs.json";
    std::vector<std::string> images = json_array(js, "images");
    std::vector<std::string> sums = json_array(js, "input_sum");
    std::string preset_name = json_string(js, "preset"), target = json_string(js, "target_layer");
    ASSERT_FALSE(images.empty());
    Npy logits, grad, act;
    load_npy(dir + "logits.npy", &logits);
    load_npy(dir + "grad.npy", &grad);
    load_npy(dir + "act.npy", &act);
    const int n = (int)images.size();
    ASSERT_EQ(logits.t.shape.d[0], n);

    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load((kShared + "/models/" + name + ".onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    int c, h, w;
    egc_model_input_chw(m, &c, &h, &w);
    const int classes = egc_model_num_classes(m);
    egc_preset preset;
    ASSERT_EQ(egc_preset_parse(preset_name.c_str(), &preset), EGC_OK);
    std::vector<float> x((size_t)n * 3 * h * w);
    for (int i = 0; i < n; i++) {
        egc_image img{};
        ASSERT_EQ(egc_image_load((kShared + "/" + images[i]).c_str(), &img), EGC_OK) << egc_last_error();
        ASSERT_EQ(egc_preprocess(&img, preset, w, h, x.data() + (size_t)i * 3 * h * w), EGC_OK);
        egc_image_free(&img);
        double s = 0;
        for (size_t k = 0; k < (size_t)3 * h * w; k++) s += x[(size_t)i * 3 * h * w + k];
        // The same pixels as PIL: the input sums agree to float rounding.
        EXPECT_NEAR(s, std::stod(sums[i]), 1e-6 * 3 * h * w) << images[i];
    }
    int layer = -1;
    ASSERT_EQ(egc_model_find_layer(m, target.c_str(), &layer), EGC_OK) << egc_last_error();
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(m, "cpu", n, layer, &s), EGC_OK) << egc_last_error();
    std::vector<float> out((size_t)n * classes);
    ASSERT_EQ(egc_session_forward(s, x.data(), n, out.data()), EGC_OK) << egc_last_error();

    std::vector<float> seed((size_t)n * classes, 0.0f);
    for (int i = 0; i < n; i++) {
        const float *ref = logits.t.data + (size_t)i * classes;
        float lo = *std::min_element(ref, ref + classes), hi = *std::max_element(ref, ref + classes);
        double worst = 0;
        for (int k = 0; k < classes; k++)
            worst = std::max(worst, (double)std::fabs(out[(size_t)i * classes + k] - ref[k]));
        EXPECT_LE(worst, 1e-4 * (hi - lo)) << images[i] << ": logits differ by " << worst
                                           << " for a range of " << (hi - lo);
        int top = (int)(std::max_element(ref, ref + classes) - ref);
        seed[(size_t)i * classes + top] = 1.0f;
    }
    const size_t per = (size_t)(egc_shape_numel(&grad.t.shape) / n);
    std::vector<float> g((size_t)n * per), a((size_t)n * per);
    ASSERT_EQ(egc_session_backward(s, seed.data(), n, g.data(), a.data()), EGC_OK) << egc_last_error();
    for (int i = 0; i < n; i++) {
        const float *rg = grad.t.data + (size_t)i * per, *ra = act.t.data + (size_t)i * per;
        double grange = 0, arange = 0, gw = 0, aw = 0;
        for (size_t k = 0; k < per; k++) {
            grange = std::max(grange, (double)std::fabs(rg[k]));
            arange = std::max(arange, (double)std::fabs(ra[k]));
            gw = std::max(gw, (double)std::fabs(g[(size_t)i * per + k] - rg[k]));
            aw = std::max(aw, (double)std::fabs(a[(size_t)i * per + k] - ra[k]));
        }
        EXPECT_LE(gw, 1e-4 * grange) << images[i] << ": target gradient differs by " << gw
                                     << " (max |grad| " << grange << ")";
        EXPECT_LE(aw, 1e-4 * arange) << images[i] << ": target activation differs by " << aw;
    }
    egc_session_destroy(s);
    egc_model_destroy(m);
}

INSTANTIATE_TEST_SUITE_P(SharedModels, Golden,
                         ::testing::Values("mobilenet_v1_025_128_imagenet", "mobilenet_v2_imagenet",
                                           "resnet20_cifar10", "resnet56_cifar10"));

// Top-1 on the whole evaluation set equals PyTorch's image by image (accuracy.json).
class Accuracy : public ::testing::TestWithParam<const char *> {};

TEST_P(Accuracy, Top1MatchesPyTorchImageByImage)
{
    const std::string name = GetParam();
    std::string js = slurp(kGolden + "accuracy.json");
    ASSERT_FALSE(js.empty());
    size_t at = js.find("\"" + name + "\"");
    ASSERT_NE(at, std::string::npos);
    std::string sect = js.substr(at);
    std::vector<std::string> files = json_array(sect, "files"), labels = json_array(sect, "labels"),
                             pred = json_array(sect, "predicted"), margin = json_array(sect, "margin");
    std::string preset_name = json_string(sect, "preset");
    ASSERT_EQ(files.size(), pred.size());
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load((kShared + "/models/" + name + ".onnx").c_str(), &m), EGC_OK);
    int c, h, w;
    egc_model_input_chw(m, &c, &h, &w);
    const int classes = egc_model_num_classes(m), B = 25;
    egc_preset preset;
    ASSERT_EQ(egc_preset_parse(preset_name.c_str(), &preset), EGC_OK);
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(m, "cpu", B, -1, &s), EGC_OK) << egc_last_error();
    std::vector<float> x((size_t)B * 3 * h * w), out((size_t)B * classes);
    int ours = 0, theirs = 0, differ = 0;
    for (size_t i0 = 0; i0 < files.size(); i0 += B) {
        int nb = (int)std::min<size_t>(B, files.size() - i0);
        for (int k = 0; k < nb; k++) {
            egc_image img{};
            ASSERT_EQ(egc_image_load((kShared + "/" + files[i0 + k]).c_str(), &img), EGC_OK);
            ASSERT_EQ(egc_preprocess(&img, preset, w, h, x.data() + (size_t)k * 3 * h * w), EGC_OK);
            egc_image_free(&img);
        }
        ASSERT_EQ(egc_session_forward(s, x.data(), nb, out.data()), EGC_OK) << egc_last_error();
        for (int k = 0; k < nb; k++) {
            const float *l = out.data() + (size_t)k * classes;
            int p = (int)(std::max_element(l, l + classes) - l);
            size_t i = i0 + k;
            ours += p == std::stoi(labels[i]);
            theirs += std::stoi(pred[i]) == std::stoi(labels[i]);
            if (p != std::stoi(pred[i])) {
                differ++;
                // Only a near-tie (top-2 margin below 1e-3 of a logit) may flip.
                EXPECT_LT(std::stod(margin[i]), 1e-3) << files[i] << ": ours " << p << ", PyTorch " << pred[i];
            }
        }
    }
    RecordProperty("top1_egcam", ours);
    RecordProperty("top1_pytorch", theirs);
    std::printf("%s: top-1 %d/%zu (egcam) vs %d/%zu (PyTorch), %d predictions differ\n", name.c_str(),
                ours, files.size(), theirs, files.size(), differ);
    EXPECT_EQ(ours, theirs);
    egc_session_destroy(s);
    egc_model_destroy(m);
}

INSTANTIATE_TEST_SUITE_P(SharedModels, Accuracy,
                         ::testing::Values("mobilenet_v1_025_128_imagenet", "mobilenet_v2_imagenet",
                                           "resnet20_cifar10", "resnet56_cifar10"));

}  // namespace

namespace {

// The CPU's fusion (EGC_CPU_FUSE): Conv+Relu/Clip and Conv+Add(+Relu/Clip). On the shared
// models (ResNet's Relus and residual blocks, MobileNet's Relu6 Clips and linear
// bottlenecks), logits and the target-layer gradient are the same bit for bit with and
// without it, and with it the activations and Adds run in place (shared buffers).
class CpuFusion : public ::testing::TestWithParam<const char *> {};

TEST_P(CpuFusion, SameBitsWithAndWithout)
{
    const std::string path = kShared + "/models/" + GetParam();
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(path.c_str(), &m), EGC_OK) << egc_last_error();
    int c, h, w;
    egc_model_input_chw(m, &c, &h, &w);
    const int batch = 3, classes = egc_model_num_classes(m);
    std::vector<float> x((size_t)batch * c * h * w);
    for (size_t i = 0; i < x.size(); i++) x[i] = (float)((int)(i * 7919 % 2001) - 1000) * 1e-3f;
    std::vector<float> logits[2], grad[2];
    std::string desc[2];
    int layer = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &layer), EGC_OK) << egc_last_error();
    for (int fuse = 0; fuse < 2; fuse++) {
        setenv("EGC_CPU_FUSE", fuse ? "1" : "0", 1);
        egc_session *s = nullptr;
        ASSERT_EQ(egc_session_create(m, "cpu", batch, layer, &s), EGC_OK) << egc_last_error();
        egc_shape ts = egc_session_target_shape(s);
        logits[fuse].assign((size_t)batch * classes, 0.0f);
        grad[fuse].assign((size_t)egc_shape_numel(&ts) * batch, 0.0f);
        ASSERT_EQ(egc_session_forward(s, x.data(), batch, logits[fuse].data()), EGC_OK)
            << egc_last_error();
        std::vector<float> seed((size_t)batch * classes, 0.0f);
        for (int b = 0; b < batch; b++) seed[(size_t)b * classes + (size_t)(b % classes)] = 1.0f;
        ASSERT_EQ(egc_session_backward(s, seed.data(), batch, grad[fuse].data(), nullptr), EGC_OK)
            << egc_last_error();
        std::vector<char> d(1 << 16);
        egc_session_describe(s, d.data(), d.size());
        desc[fuse] = d.data();
        egc_session_destroy(s);
    }
    unsetenv("EGC_CPU_FUSE");
    egc_model_destroy(m);
    ASSERT_EQ(logits[0].size(), logits[1].size());
    for (size_t i = 0; i < logits[0].size(); i++) ASSERT_EQ(logits[0][i], logits[1][i]) << i;
    for (size_t i = 0; i < grad[0].size(); i++) ASSERT_EQ(grad[0][i], grad[1][i]) << i;
    std::smatch m0, m1;
    std::regex re("([0-9]+) shared buffers?");
    ASSERT_TRUE(std::regex_search(desc[0], m0, re)) << desc[0];
    ASSERT_TRUE(std::regex_search(desc[1], m1, re)) << desc[1];
    EXPECT_GT(std::stoi(m1[1].str()), std::stoi(m0[1].str())) << desc[1];
    // the residual Adds (ResNet's conv + Add + Relu, MobileNetV2's linear conv + Add) are
    // among the fused steps, and nothing is fused without it
    std::smatch r1;
    ASSERT_TRUE(std::regex_search(desc[1], r1, std::regex("([0-9]+) Conv\\+Add"))) << desc[1];
    EXPECT_GT(std::stoi(r1[1].str()), 0) << desc[1];
    EXPECT_EQ(desc[0].find("cpu plan"), std::string::npos) << desc[0];
}

INSTANTIATE_TEST_SUITE_P(, CpuFusion,
                         ::testing::Values("resnet20_cifar10.onnx", "mobilenet_v2_imagenet.onnx"),
                         [](const ::testing::TestParamInfo<const char *> &info) {
                             std::string s = info.param;
                             s = s.substr(0, s.find('.'));
                             for (auto &ch : s)
                                 if (!isalnum((unsigned char)ch)) ch = '_';
                             return s;
                         });

} // namespace
