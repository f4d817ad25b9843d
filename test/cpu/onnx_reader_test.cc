// onnx_reader_test.cc: the protobuf decoder (pb.c) and the ONNX reader (onnx.c).
//
// Covers: the four shared models (counts and values checked against the Python onnx
// package), ONNX's own TensorProto test files, hand-built models for every data type,
// attribute kind, external data and error path, truncation at many prefixes (top-level and
// inside the graph) and random byte flips.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "model/onnx.h"
#include "model/pb.h"

namespace {

const std::string kModels = std::string(EGC_SHARED_DIR) + "/models/";

std::vector<uint8_t> ReadAll(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

bool Exists(const std::string &path)
{
    struct stat st;
    return stat(path.c_str(), &st) == 0;
}

// A minimal protobuf writer for building test messages by hand.
struct Pb {
    std::string b;
    Pb &varint(uint64_t v)
    {
        while (v >= 0x80) {
            b.push_back(static_cast<char>((v & 0x7f) | 0x80));
            v >>= 7;
        }
        b.push_back(static_cast<char>(v));
        return *this;
    }
    Pb &tag(uint32_t num, int wire) { return varint((uint64_t(num) << 3) | uint64_t(wire)); }
    Pb &i(uint32_t num, int64_t v) { return tag(num, 0).varint(uint64_t(v)); }
    Pb &fixed32(uint32_t num, uint32_t v)
    {
        tag(num, 5);
        for (int k = 0; k < 4; k++) b.push_back(static_cast<char>(v >> (8 * k)));
        return *this;
    }
    Pb &fixed64(uint32_t num, uint64_t v)
    {
        tag(num, 1);
        for (int k = 0; k < 8; k++) b.push_back(static_cast<char>(v >> (8 * k)));
        return *this;
    }
    Pb &f(uint32_t num, float v)
    {
        uint32_t u;
        std::memcpy(&u, &v, 4);
        return fixed32(num, u);
    }
    Pb &d(uint32_t num, double v)
    {
        uint64_t u;
        std::memcpy(&u, &v, 8);
        return fixed64(num, u);
    }
    Pb &s(uint32_t num, const std::string &v)
    {
        tag(num, 2).varint(v.size());
        b += v;
        return *this;
    }
    Pb &m(uint32_t num, const Pb &v) { return s(num, v.b); }
    Pb &packed_i(uint32_t num, const std::vector<int64_t> &v)
    {
        Pb p;
        for (int64_t x : v) p.varint(uint64_t(x));
        return s(num, p.b);
    }
    Pb &packed_f(uint32_t num, const std::vector<float> &v)
    {
        std::string p;
        for (float x : v) {
            uint32_t u;
            std::memcpy(&u, &x, 4);
            for (int k = 0; k < 4; k++) p.push_back(static_cast<char>(u >> (8 * k)));
        }
        return s(num, p);
    }
    Pb &unknown()  // one unknown field of each wire type: must be skipped
    {
        return i(1999, 5).fixed64(2000, 7).fixed32(2001, 9).s(2002, "junk");
    }
};

std::string LeFloats(const std::vector<float> &v)
{
    std::string p;
    for (float x : v) {
        uint32_t u;
        std::memcpy(&u, &x, 4);
        for (int k = 0; k < 4; k++) p.push_back(static_cast<char>(u >> (8 * k)));
    }
    return p;
}

Pb Tensor(const std::string &name, int dtype, const std::vector<int64_t> &dims)
{
    Pb t;
    for (int64_t d : dims) t.i(1, d);  // unpacked, as ONNX writes dims
    t.i(2, dtype).s(8, name);
    return t;
}

Pb ValueInfo(const std::string &name, int elem, const std::vector<std::string> &dims)
{
    Pb shape;
    for (const auto &d : dims) {
        Pb dim;
        if (!d.empty() && (d[0] >= '0' && d[0] <= '9')) dim.i(1, std::stoll(d));
        else if (!d.empty()) dim.s(2, d);
        shape.m(1, dim);
    }
    Pb tt;
    tt.i(1, elem).m(2, shape);
    Pb type;
    type.m(1, tt);
    Pb vi;
    vi.s(1, name).m(2, type);
    return vi;
}

// A ModelProto around graph with one opset import.
std::string Model(const Pb &graph, int64_t opset = 13)
{
    Pb op;
    op.s(1, "").i(2, opset);
    Pb m;
    m.i(1, 8).s(2, "handmade").m(7, graph).m(8, op);
    return m.b;
}

struct Parsed {
    egc_onnx_model *m = nullptr;
    egc_status st = EGC_OK;
    std::string err;
    ~Parsed() { egc_onnx_free(m); }
};

// Parses from an exactly sized heap copy so that a sanitizer sees any over-read.
void Parse(const std::string &bytes, Parsed *p, const char *base_dir = nullptr,
           const char *what = "test.onnx")
{
    std::vector<uint8_t> buf(bytes.begin(), bytes.end());
    p->st = egc_onnx_parse(buf.empty() ? nullptr : buf.data(), buf.size(), what, base_dir, &p->m);
    p->err = egc_last_error();
    if (p->st != EGC_OK) EXPECT_EQ(p->m, nullptr);
}

bool Contains(const std::string &s, const std::string &sub) { return s.find(sub) != std::string::npos; }

// ---- the shared models ----

struct ModelFacts {
    const char *file;
    int64_t ir_version;
    const char *producer;
    int n_nodes, n_inits;
    std::map<std::string, int> ops;
    const char *first_name, *last_name, *last_op;
    int64_t in_hw;
    int n_classes;
    const char *init0_name;
    std::vector<int64_t> init0_dims;
    float init0_first[3];
    double init0_sum;
};

// Expected values obtained with the Python onnx package (1.12):
//   m = onnx.load(f); g = m.graph
//   m.ir_version, m.opset_import, m.producer_name, len(g.node), len(g.initializer),
//   collections.Counter(n.op_type for n in g.node), g.node[0].name, g.node[-1].name,
//   g.input[0].type.tensor_type.shape, a = numpy_helper.to_array(g.initializer[0]):
//   a.flatten()[:3], a.sum().
const ModelFacts kFacts[] = {
    {"mobilenet_v1_025_128_imagenet.onnx", 8, "tflite-dequant", 57, 110,
     {{"Conv", 28}, {"Clip", 27}, {"GlobalAveragePool", 1}, {"Flatten", 1}},
     "Conv_0", "Flatten_56", "Flatten", 128, 1000, "t31_w", {8, 3, 3, 3},
     {0.026645999401807785f, 0.017764000222086906f, 0.026645999401807785f}, -1.882983922958374},
    {"mobilenet_v2_imagenet.onnx", 8, "tflite-dequant", 100, 176,
     {{"Conv", 53}, {"Clip", 35}, {"Add", 10}, {"GlobalAveragePool", 1}, {"Flatten", 1}},
     "Conv_0", "Flatten_99", "Flatten", 224, 1000, "t56_w", {32, 3, 3, 3},
     {-0.509535014629364f, -0.7133489847183228f, -0.20381399989128113f}, -16.508934020996094},
    {"resnet20_cifar10.onnx", 7, "pytorch", 104, 40,
     {{"Conv", 19}, {"Relu", 19}, {"Add", 9}, {"Constant", 33}, {"Slice", 6},
      {"ConstantOfShape", 2}, {"Concat", 2}, {"Reshape", 4}, {"Transpose", 2}, {"Cast", 2},
      {"Pad", 3}, {"AveragePool", 1}, {"Flatten", 1}, {"Gemm", 1}},
     "/conv1/Conv", "/linear/Gemm", "Gemm", 32, 10, "linear.weight", {10, 64},
     {-1.0598125457763672f, 0.5688578486442566f, -0.025252094492316246f}, -0.04562735557556152},
    {"resnet56_cifar10.onnx", 7, "pytorch", 194, 112,
     {{"Conv", 55}, {"Relu", 55}, {"Add", 27}, {"Constant", 33}, {"Slice", 6},
      {"ConstantOfShape", 2}, {"Concat", 2}, {"Reshape", 4}, {"Transpose", 2}, {"Cast", 2},
      {"Pad", 3}, {"AveragePool", 1}, {"Flatten", 1}, {"Gemm", 1}},
     "/conv1/Conv", "/linear/Gemm", "Gemm", 32, 10, "linear.weight", {10, 64},
     {-0.36128365993499756f, -0.23057882487773895f, 0.386455774307251f}, -0.008036136627197266},
};

TEST(OnnxReader, SharedModelsMatchPythonOnnx)
{
    for (const ModelFacts &fx : kFacts) {
        SCOPED_TRACE(fx.file);
        std::string path = kModels + fx.file;
        egc_onnx_model *m = nullptr;
        ASSERT_EQ(egc_onnx_load(path.c_str(), &m), EGC_OK) << egc_last_error();
        EXPECT_EQ(m->ir_version, fx.ir_version);
        EXPECT_EQ(m->opset, 13);
        EXPECT_STREQ(m->producer, fx.producer);
        EXPECT_EQ(m->n_nodes, fx.n_nodes);
        EXPECT_EQ(m->n_inits, fx.n_inits);
        std::map<std::string, int> ops;
        for (int i = 0; i < m->n_nodes; i++) {
            ops[m->nodes[i].op_type]++;
            EXPECT_STREQ(m->nodes[i].domain, "");
            EXPECT_GT(m->nodes[i].n_outputs, 0);
        }
        EXPECT_EQ(ops, fx.ops);
        EXPECT_STREQ(m->nodes[0].name, fx.first_name);
        EXPECT_STREQ(m->nodes[0].op_type, "Conv");
        EXPECT_STREQ(m->nodes[0].inputs[0], "input");
        EXPECT_STREQ(m->nodes[m->n_nodes - 1].name, fx.last_name);
        EXPECT_STREQ(m->nodes[m->n_nodes - 1].op_type, fx.last_op);
        EXPECT_STREQ(m->nodes[m->n_nodes - 1].outputs[0], "logits");

        ASSERT_EQ(m->n_inputs, 1);
        EXPECT_STREQ(m->inputs[0].name, "input");
        EXPECT_EQ(m->inputs[0].elem_type, EGC_DT_FLOAT);
        ASSERT_TRUE(m->inputs[0].has_shape);
        ASSERT_EQ(m->inputs[0].shape.ndim, 4);
        EXPECT_EQ(m->inputs[0].shape.d[0], -1);  // dim_param "N"
        EXPECT_EQ(m->inputs[0].shape.d[1], 3);
        EXPECT_EQ(m->inputs[0].shape.d[2], fx.in_hw);
        EXPECT_EQ(m->inputs[0].shape.d[3], fx.in_hw);
        ASSERT_EQ(m->n_outputs, 1);
        EXPECT_STREQ(m->outputs[0].name, "logits");
        ASSERT_EQ(m->outputs[0].shape.ndim, 2);
        EXPECT_EQ(m->outputs[0].shape.d[1], fx.n_classes);

        const egc_onnx_tensor &t = m->inits[0];
        EXPECT_STREQ(t.name, fx.init0_name);
        EXPECT_EQ(t.orig_dtype, EGC_DT_FLOAT);
        ASSERT_TRUE(t.is_float);
        ASSERT_NE(t.f32, nullptr);
        EXPECT_EQ(t.i64, nullptr);
        ASSERT_EQ(t.shape.ndim, int(fx.init0_dims.size()));
        int64_t numel = 1;
        for (size_t k = 0; k < fx.init0_dims.size(); k++) {
            EXPECT_EQ(t.shape.d[k], fx.init0_dims[k]);
            numel *= fx.init0_dims[k];
        }
        ASSERT_EQ(t.numel, numel);
        for (int k = 0; k < 3; k++) EXPECT_FLOAT_EQ(t.f32[k], fx.init0_first[k]);
        double sum = 0;
        for (int64_t k = 0; k < t.numel; k++) sum += t.f32[k];
        EXPECT_NEAR(sum, fx.init0_sum, 1e-4 + 1e-5 * std::fabs(fx.init0_sum));
        for (int i = 0; i < m->n_inits; i++) {
            EXPECT_TRUE(m->inits[i].is_float);
            EXPECT_EQ(m->inits[i].numel, egc_shape_numel(&m->inits[i].shape));
        }
        egc_onnx_free(m);
    }
}

TEST(OnnxReader, SharedModelAttributes)
{
    // Values from onnx.helper.get_attribute_value on the same nodes.
    egc_onnx_model *m = nullptr;
    ASSERT_EQ(egc_onnx_load((kModels + "mobilenet_v1_025_128_imagenet.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    const egc_onnx_attr *a = egc_onnx_node_attr(&m->nodes[0], "pads");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->type, EGC_ATTR_INTS);
    ASSERT_EQ(a->n, 4);
    EXPECT_EQ(a->ints[0], 0);
    EXPECT_EQ(a->ints[1], 0);
    EXPECT_EQ(a->ints[2], 1);
    EXPECT_EQ(a->ints[3], 1);
    a = egc_onnx_node_attr(&m->nodes[0], "strides");
    ASSERT_NE(a, nullptr);
    ASSERT_EQ(a->n, 2);
    EXPECT_EQ(a->ints[0], 2);
    a = egc_onnx_node_attr(&m->nodes[2], "group");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->type, EGC_ATTR_INT);
    EXPECT_EQ(a->i, 8);
    EXPECT_EQ(egc_onnx_node_attr(&m->nodes[0], "dilations"), nullptr);
    EXPECT_STREQ(m->nodes[1].name, "Clip_1");
    egc_onnx_free(m);

    // resnet20: Constant nodes carry INT64 tensors, e.g. node 22 = [INT64_MAX] and node 31 =
    // [0, 0, 0, 0, 8, 8], node 38 = [-INT64_MAX].
    ASSERT_EQ(egc_onnx_load((kModels + "resnet20_cifar10.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    struct {
        int node;
        std::vector<int64_t> v;
    } consts[] = {{22, {INT64_MAX}}, {31, {0, 0, 0, 0, 8, 8}}, {38, {-INT64_MAX}}, {20, {2}}};
    for (const auto &c : consts) {
        const egc_onnx_node &n = m->nodes[c.node];
        EXPECT_STREQ(n.op_type, "Constant");
        a = egc_onnx_node_attr(&n, "value");
        ASSERT_NE(a, nullptr);
        ASSERT_EQ(a->type, EGC_ATTR_TENSOR);
        ASSERT_NE(a->t, nullptr);
        EXPECT_EQ(a->t->orig_dtype, EGC_DT_INT64);
        EXPECT_FALSE(a->t->is_float);
        ASSERT_EQ(a->t->numel, int64_t(c.v.size()));
        for (size_t k = 0; k < c.v.size(); k++) EXPECT_EQ(a->t->i64[k], c.v[k]);
    }
    EXPECT_STREQ(m->nodes[24].op_type, "Slice");
    EXPECT_EQ(m->nodes[24].n_inputs, 5);
    EXPECT_STREQ(m->nodes[24].name, "/layer2/layer2.0/Slice");
    egc_onnx_free(m);
}

// ---- truncation and corruption of real files ----

TEST(OnnxReader, TruncatedPrefixesFailCleanly)
{
    for (const char *file : {"resnet20_cifar10.onnx", "mobilenet_v1_025_128_imagenet.onnx"}) {
        std::vector<uint8_t> full = ReadAll(kModels + file);
        ASSERT_GT(full.size(), 100000u);
        std::vector<size_t> cuts;
        for (size_t k = 0; k < 3000; k++) cuts.push_back(k);
        for (size_t k = 0; k < 600; k++) cuts.push_back(3000 + k * (full.size() - 3001) / 600);
        for (size_t k = 1; k < 200; k++) cuts.push_back(full.size() - k);
        for (size_t cut : cuts) {
            std::vector<uint8_t> buf(full.begin(), full.begin() + cut);
            egc_onnx_model *m = nullptr;
            egc_status st = egc_onnx_parse(buf.data(), cut, file, nullptr, &m);
            ASSERT_EQ(st, EGC_E_FORMAT) << "cut " << cut;
            ASSERT_EQ(m, nullptr);
            std::string err = egc_last_error();
            ASSERT_TRUE(Contains(err, "truncated")) << "cut " << cut << ": " << err;
            ASSERT_TRUE(Contains(err, std::string(file) + ": ")) << err;
            if (cut > 0) ASSERT_TRUE(Contains(err, "at byte ")) << err;
        }
    }
}

// Locates the payload of ModelProto.graph with the decoder itself.
bool FindGraph(const std::vector<uint8_t> &buf, size_t *off, size_t *len)
{
    egc_pb_ctx ctx;
    egc_pb c = egc_pb_begin(&ctx, buf.data(), buf.size(), "x", "ModelProto");
    egc_pb_field f;
    int more = 1;
    while (egc_pb_next(&c, &f, &more) == EGC_OK && more) {
        if (f.num == 7 && f.wire == EGC_PB_LEN) {
            *off = f.off;
            *len = f.len;
            return true;
        }
    }
    return false;
}

TEST(OnnxReader, TruncatedGraphInsideValidModel)
{
    // Cut the graph message itself (re-wrapped with a correct length) so that the cut falls
    // inside nodes, attributes, tensors and value infos at every level.
    std::vector<uint8_t> full = ReadAll(kModels + "resnet20_cifar10.onnx");
    size_t goff = 0, glen = 0;
    ASSERT_TRUE(FindGraph(full, &goff, &glen));
    std::string graph(full.begin() + long(goff), full.begin() + long(goff + glen));
    int failed = 0, truncated = 0, in_graph = 0;
    for (int k = 0; k < 1500; k++) {
        size_t cut = k < 1000 ? size_t(k) * 37 % glen : size_t(k - 1000) * (glen / 500);
        Pb g;
        g.b = graph.substr(0, cut);
        Parsed p;
        Parse(Model(g), &p);
        if (p.st == EGC_OK) continue;  // the cut fell between two fields
        failed++;
        ASSERT_EQ(p.st, EGC_E_FORMAT) << p.err;
        truncated += Contains(p.err, "truncated");
        in_graph += Contains(p.err, "in ModelProto.graph");
        ASSERT_TRUE(Contains(p.err, "test.onnx: ")) << p.err;
    }
    EXPECT_GT(failed, 1000);
    EXPECT_GT(truncated, failed / 2);
    EXPECT_GT(in_graph, failed / 2);

    // Now cut single nodes (again re-wrapped): the cut is then found inside the node, in
    // its attributes and their tensors. Only the nodes are kept (no initializers) to keep
    // each parse small.
    egc_pb_ctx ctx;
    std::vector<uint8_t> gbuf(graph.begin(), graph.end());
    egc_pb c = egc_pb_begin(&ctx, gbuf.data(), gbuf.size(), "g", "GraphProto");
    egc_pb_field f;
    int more = 1, node = 0, in_node = 0, node_failed = 0;
    size_t nodes_end = 0;
    while (egc_pb_next(&c, &f, &more) == EGC_OK && more && f.num == 1) nodes_end = c.pos;
    graph.resize(nodes_end);
    gbuf.assign(graph.begin(), graph.end());
    c = egc_pb_begin(&ctx, gbuf.data(), gbuf.size(), "g", "GraphProto");
    while (egc_pb_next(&c, &f, &more) == EGC_OK && more && node < 40) {
        node++;
        for (size_t cut = 0; cut < f.len; cut++) {
            Pb g;
            g.b = graph.substr(0, f.tag_off);
            g.s(1, graph.substr(f.off, cut));
            g.b += graph.substr(f.off + f.len);
            Parsed p;
            Parse(Model(g), &p);
            if (p.st == EGC_OK) continue;
            node_failed++;
            ASSERT_EQ(p.st, EGC_E_FORMAT) << p.err;
            in_node += Contains(p.err, "in ModelProto.graph.node[" + std::to_string(node - 1) + "]");
        }
    }
    EXPECT_EQ(node, 40);
    EXPECT_GT(node_failed, 500);
    EXPECT_GT(in_node, node_failed / 2);
}

uint64_t XorShift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

TEST(OnnxReader, RandomByteFlipsNeverCrash)
{
    std::vector<uint8_t> full = ReadAll(kModels + "resnet20_cifar10.onnx");
    ASSERT_GT(full.size(), 100000u);
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int ok = 0, bad = 0;
    std::vector<uint8_t> buf(full.size());
    for (int iter = 0; iter < 3000; iter++) {
        std::memcpy(buf.data(), full.data(), full.size());
        int flips = 1 + int(XorShift(&seed) % 4);
        for (int k = 0; k < flips; k++) {
            // Half of the flips land in the first 40 KB (the nodes), half anywhere.
            size_t range = (XorShift(&seed) & 1) ? std::min<size_t>(40000, full.size()) : full.size();
            size_t pos = size_t(XorShift(&seed) % range);
            buf[pos] ^= uint8_t(1 + XorShift(&seed) % 255);
        }
        egc_onnx_model *m = nullptr;
        egc_status st = egc_onnx_parse(buf.data(), buf.size(), "flip.onnx", nullptr, &m);
        if (st == EGC_OK) {
            ok++;
            for (int i = 0; i < m->n_nodes; i++) ASSERT_NE(m->nodes[i].op_type, nullptr);
            egc_onnx_free(m);
        } else {
            bad++;
            ASSERT_EQ(m, nullptr);
            ASSERT_TRUE(st == EGC_E_FORMAT || st == EGC_E_UNSUPPORTED) << egc_last_error();
            ASSERT_TRUE(Contains(egc_last_error(), "flip.onnx: ")) << egc_last_error();
        }
    }
    EXPECT_GT(bad, 100);
    EXPECT_GT(ok, 100);
}

// ---- ONNX's TensorProto test files ----

struct PbFile {
    egc_onnx_tensor t{};
    ~PbFile() { egc_onnx_tensor_clear(&t); }
};

egc_status LoadPb(const std::string &rel, PbFile *out)
{
    std::vector<uint8_t> b = ReadAll(std::string(EGC_ONNX_TESTDATA) + "/node/" + rel);
    return egc_onnx_parse_tensor(b.data(), b.size(), rel.c_str(), &out->t);
}

TEST(OnnxReader, OnnxTestDataTensors)
{
    if (!Exists(std::string(EGC_ONNX_TESTDATA) + "/node/test_relu"))
        GTEST_SKIP() << "ONNX test data not installed at " << EGC_ONNX_TESTDATA;
    // Expected values from onnx.numpy_helper.to_array on the same files.
    {
        PbFile p;
        ASSERT_EQ(LoadPb("test_relu/test_data_set_0/input_0.pb", &p), EGC_OK) << egc_last_error();
        EXPECT_STREQ(p.t.name, "x");
        EXPECT_EQ(p.t.orig_dtype, EGC_DT_FLOAT);
        ASSERT_EQ(p.t.shape.ndim, 3);
        EXPECT_EQ(p.t.shape.d[0], 3);
        EXPECT_EQ(p.t.shape.d[1], 4);
        EXPECT_EQ(p.t.shape.d[2], 5);
        ASSERT_EQ(p.t.numel, 60);
        EXPECT_FLOAT_EQ(p.t.f32[0], 1.764052391052246f);
        EXPECT_FLOAT_EQ(p.t.f32[1], 0.40015721321105957f);
        EXPECT_FLOAT_EQ(p.t.f32[5], -0.9772778749465942f);
        EXPECT_FLOAT_EQ(p.t.f32[59], -0.3627411723136902f);
        double sum = 0;
        for (int i = 0; i < 60; i++) sum += p.t.f32[i];
        EXPECT_NEAR(sum, 4.600037792697549, 1e-5);
    }
    {
        PbFile p;
        ASSERT_EQ(LoadPb("test_cast_FLOAT_to_FLOAT16/test_data_set_0/output_0.pb", &p), EGC_OK)
            << egc_last_error();
        EXPECT_EQ(p.t.orig_dtype, EGC_DT_FLOAT16);
        ASSERT_TRUE(p.t.is_float);
        ASSERT_EQ(p.t.numel, 12);
        EXPECT_EQ(p.t.f32[0], 0.548828125f);  // fp16 values are exact in fp32
        EXPECT_EQ(p.t.f32[1], 0.71533203125f);
        EXPECT_EQ(p.t.f32[2], 0.6025390625f);
        EXPECT_EQ(p.t.f32[11], 0.52880859375f);
    }
    {
        PbFile p;
        ASSERT_EQ(LoadPb("test_cast_FLOAT_to_DOUBLE/test_data_set_0/output_0.pb", &p), EGC_OK)
            << egc_last_error();
        EXPECT_EQ(p.t.orig_dtype, EGC_DT_DOUBLE);
        ASSERT_EQ(p.t.numel, 12);
        EXPECT_FLOAT_EQ(p.t.f32[0], 0.5680445432662964f);
        EXPECT_FLOAT_EQ(p.t.f32[11], 0.7805292010307312f);
    }
    {
        PbFile p;
        ASSERT_EQ(LoadPb("test_and2d/test_data_set_0/input_0.pb", &p), EGC_OK) << egc_last_error();
        EXPECT_EQ(p.t.orig_dtype, EGC_DT_BOOL);
        ASSERT_FALSE(p.t.is_float);
        ASSERT_EQ(p.t.numel, 12);
        const int64_t want[12] = {1, 1, 1, 1, 1, 0, 1, 0, 0, 1, 1, 1};
        for (int i = 0; i < 12; i++) EXPECT_EQ(p.t.i64[i], want[i]) << i;
    }
    {
        PbFile p;
        ASSERT_EQ(LoadPb("test_gather_0/test_data_set_0/input_1.pb", &p), EGC_OK) << egc_last_error();
        EXPECT_STREQ(p.t.name, "indices");
        EXPECT_EQ(p.t.orig_dtype, EGC_DT_INT64);
        ASSERT_EQ(p.t.numel, 3);
        EXPECT_EQ(p.t.i64[0], 0);
        EXPECT_EQ(p.t.i64[1], 1);
        EXPECT_EQ(p.t.i64[2], 3);
    }
}

// ---- hand-built tensors: every data type, typed and raw ----

struct OneTensor {
    egc_onnx_tensor t{};
    egc_status st;
    std::string err;
    explicit OneTensor(const Pb &pb)
    {
        std::vector<uint8_t> b(pb.b.begin(), pb.b.end());
        st = egc_onnx_parse_tensor(b.empty() ? nullptr : b.data(), b.size(), "t.pb", &t);
        err = egc_last_error();
    }
    ~OneTensor() { egc_onnx_tensor_clear(&t); }
};

TEST(OnnxReader, TypedDataFields)
{
    {  // float_data, packed and unpacked mixed
        Pb t = Tensor("w", EGC_DT_FLOAT, {2, 2});
        t.packed_f(4, {1.5f, -2.0f}).f(4, 3.25f).f(4, 1e-3f).unknown();
        OneTensor o(t);
        ASSERT_EQ(o.st, EGC_OK) << o.err;
        ASSERT_EQ(o.t.numel, 4);
        EXPECT_EQ(o.t.f32[0], 1.5f);
        EXPECT_EQ(o.t.f32[1], -2.0f);
        EXPECT_EQ(o.t.f32[2], 3.25f);
        EXPECT_EQ(o.t.f32[3], 1e-3f);
    }
    {  // int64_data with negative values (10-byte varints), packed dims
        Pb t;
        t.packed_i(1, {3}).i(2, EGC_DT_INT64).packed_i(7, {-1, INT64_MIN, INT64_MAX});
        OneTensor o(t);
        ASSERT_EQ(o.st, EGC_OK) << o.err;
        EXPECT_STREQ(o.t.name, "");
        ASSERT_EQ(o.t.numel, 3);
        EXPECT_EQ(o.t.i64[0], -1);
        EXPECT_EQ(o.t.i64[1], INT64_MIN);
        EXPECT_EQ(o.t.i64[2], INT64_MAX);
    }
    {  // int32_data for INT32, INT8, UINT8, BOOL
        struct {
            int dt;
            std::vector<int64_t> in, want;
        } cases[] = {{EGC_DT_INT32, {-5, 7, INT32_MIN}, {-5, 7, INT32_MIN}},
                     {EGC_DT_INT8, {-128, 127, -1}, {-128, 127, -1}},
                     {EGC_DT_UINT8, {0, 255, 17}, {0, 255, 17}},
                     {EGC_DT_BOOL, {0, 1, 1}, {0, 1, 1}}};
        for (const auto &c : cases) {
            Pb t = Tensor("q", c.dt, {3});
            t.packed_i(5, c.in);
            OneTensor o(t);
            ASSERT_EQ(o.st, EGC_OK) << o.err;
            ASSERT_FALSE(o.t.is_float);
            EXPECT_EQ(o.t.orig_dtype, c.dt);
            for (int k = 0; k < 3; k++) EXPECT_EQ(o.t.i64[k], c.want[k]) << c.dt << " " << k;
        }
    }
    {  // FLOAT16 bits in int32_data: 1, -2, smallest subnormal, largest subnormal, inf, NaN, -0
        Pb t = Tensor("h", EGC_DT_FLOAT16, {7});
        t.packed_i(5, {0x3C00, 0xC000, 0x0001, 0x03FF, 0x7C00, 0x7E00, 0x8000});
        OneTensor o(t);
        ASSERT_EQ(o.st, EGC_OK) << o.err;
        ASSERT_TRUE(o.t.is_float);
        EXPECT_EQ(o.t.f32[0], 1.0f);
        EXPECT_EQ(o.t.f32[1], -2.0f);
        EXPECT_EQ(o.t.f32[2], std::ldexp(1.0f, -24));
        EXPECT_EQ(o.t.f32[3], 1023.0f * std::ldexp(1.0f, -24));
        EXPECT_TRUE(std::isinf(o.t.f32[4]) && o.t.f32[4] > 0);
        EXPECT_TRUE(std::isnan(o.t.f32[5]));
        EXPECT_EQ(o.t.f32[6], 0.0f);
        EXPECT_TRUE(std::signbit(o.t.f32[6]));
    }
    {  // double_data
        Pb t = Tensor("d", EGC_DT_DOUBLE, {2});
        t.d(10, 0.1).d(10, -1e300);
        OneTensor o(t);
        ASSERT_EQ(o.st, EGC_OK) << o.err;
        EXPECT_EQ(o.t.f32[0], 0.1f);
        EXPECT_TRUE(std::isinf(o.t.f32[1]));
    }
    {  // raw_data: FLOAT16 (65504 = max half), BFLOAT16, INT8, INT32 little-endian
        Pb t = Tensor("r", EGC_DT_FLOAT16, {2});
        t.s(9, std::string("\xff\x7b\x00\x3c", 4));
        OneTensor o(t);
        ASSERT_EQ(o.st, EGC_OK) << o.err;
        EXPECT_EQ(o.t.f32[0], 65504.0f);
        EXPECT_EQ(o.t.f32[1], 1.0f);

        Pb b = Tensor("bf", 16, {1});
        b.s(9, std::string("\xc0\x3f", 2));  // 0x3fc0 -> 1.5
        OneTensor ob(b);
        ASSERT_EQ(ob.st, EGC_OK) << ob.err;
        EXPECT_EQ(ob.t.f32[0], 1.5f);

        Pb i8 = Tensor("i8", EGC_DT_INT8, {2});
        i8.s(9, std::string("\x80\x7f", 2));
        OneTensor oi8(i8);
        ASSERT_EQ(oi8.st, EGC_OK) << oi8.err;
        EXPECT_EQ(oi8.t.i64[0], -128);
        EXPECT_EQ(oi8.t.i64[1], 127);

        Pb i32 = Tensor("i32", EGC_DT_INT32, {1});
        i32.s(9, std::string("\xfe\xff\xff\xff", 4));
        OneTensor oi32(i32);
        ASSERT_EQ(oi32.st, EGC_OK) << oi32.err;
        EXPECT_EQ(oi32.t.i64[0], -2);
    }
    {  // scalar (no dims) and empty (a zero dim)
        Pb s = Tensor("s", EGC_DT_FLOAT, {});
        s.s(9, LeFloats({4.0f}));
        OneTensor os(s);
        ASSERT_EQ(os.st, EGC_OK) << os.err;
        EXPECT_EQ(os.t.shape.ndim, 0);
        ASSERT_EQ(os.t.numel, 1);
        EXPECT_EQ(os.t.f32[0], 4.0f);

        Pb e = Tensor("e", EGC_DT_FLOAT, {3, 0});
        OneTensor oe(e);
        ASSERT_EQ(oe.st, EGC_OK) << oe.err;
        EXPECT_EQ(oe.t.numel, 0);
        EXPECT_EQ(oe.t.f32, nullptr);
        EXPECT_EQ(oe.t.i64, nullptr);
    }
}

TEST(OnnxReader, TensorErrorsNameTheTensor)
{
    struct {
        Pb t;
        egc_status want;
        const char *sub;
    } cases[] = {
        {Tensor("w", EGC_DT_FLOAT, {2, 3}).s(9, LeFloats({1, 2, 3, 4, 5})), EGC_E_FORMAT,
         "tensor 'w': raw_data has 20 bytes, dims [2,3] of FLOAT need 24"},
        {Tensor("b", EGC_DT_FLOAT, {4}).packed_f(4, {1, 2, 3}), EGC_E_FORMAT,
         "tensor 'b': float_data has 3 values"},
        {Tensor("n", EGC_DT_FLOAT, {5}), EGC_E_FORMAT, "tensor 'n': float_data has 0 values"},
        {Tensor("big", EGC_DT_FLOAT, {int64_t(1) << 40, int64_t(1) << 40}), EGC_E_FORMAT,
         "tensor 'big': element count overflows"},
        {Tensor("huge", EGC_DT_FLOAT, {int64_t(1) << 40, 1 << 20}).s(9, "abcd"), EGC_E_FORMAT,
         "tensor 'huge'"},
        {Tensor("neg", EGC_DT_FLOAT, {2, -3}), EGC_E_FORMAT, "tensor 'neg' has negative dim -3"},
        {Tensor("nine", EGC_DT_FLOAT, {1, 1, 1, 1, 1, 1, 1, 1, 1}), EGC_E_UNSUPPORTED,
         "tensor 'nine' has 9 dims"},
        {Tensor("str", 8, {1}), EGC_E_UNSUPPORTED, "tensor 'str' has data type 8 (STRING)"},
        {Tensor("seg", EGC_DT_FLOAT, {1}).s(3, "").packed_f(4, {1}), EGC_E_UNSUPPORTED,
         "tensor 'seg' is split into segments"},
        {Tensor("wt", EGC_DT_FLOAT, {1}).i(9, 3), EGC_E_FORMAT, "wrong wire type"},
        {Tensor("ext", EGC_DT_FLOAT, {1}).i(14, 1), EGC_E_UNSUPPORTED, "tensor 'ext' keeps its data"},
    };
    for (auto &c : cases) {
        OneTensor o(c.t);
        EXPECT_EQ(o.st, c.want) << o.err;
        EXPECT_TRUE(Contains(o.err, c.sub)) << o.err;
        EXPECT_TRUE(Contains(o.err, "t.pb: ")) << o.err;
        EXPECT_TRUE(Contains(o.err, "in TensorProto")) << o.err;
        EXPECT_EQ(o.t.name, nullptr);  // cleared on failure
        EXPECT_EQ(o.t.f32, nullptr);
    }
}

// ---- hand-built models: structure, attributes, names, value infos ----

Pb Node(const std::string &op, const std::vector<std::string> &in, const std::vector<std::string> &out,
        const std::string &name = "")
{
    Pb n;
    for (const auto &s : in) n.s(1, s);
    for (const auto &s : out) n.s(2, s);
    if (!name.empty()) n.s(3, name);
    n.s(4, op);
    return n;
}

TEST(OnnxReader, HandBuiltModel)
{
    Pb attrs_node = Node("Custom", {"x", "", "w"}, {"y"});
    {
        Pb a;
        a.s(1, "alpha").f(2, 0.25f).i(20, EGC_ATTR_FLOAT);
        attrs_node.m(5, a);
    }
    {
        Pb a;
        a.s(1, "axis").i(3, -2).i(20, EGC_ATTR_INT).unknown();
        attrs_node.m(5, a);
    }
    {
        Pb a;
        a.s(1, "mode").s(4, "reflect").i(20, EGC_ATTR_STRING);
        attrs_node.m(5, a);
    }
    {
        Pb a;
        a.s(1, "scales").packed_f(7, {1.0f, 2.0f}).f(7, 3.0f).i(20, EGC_ATTR_FLOATS);
        attrs_node.m(5, a);
    }
    {
        Pb a;  // unpacked, as ONNX writes repeated int64
        a.s(1, "perm").i(8, 0).i(8, 3).i(8, 1).i(8, 2).i(20, EGC_ATTR_INTS);
        attrs_node.m(5, a);
    }
    {
        Pb a;
        a.s(1, "names").s(9, "a").s(9, "bc").i(20, EGC_ATTR_STRINGS);
        attrs_node.m(5, a);
    }
    {
        Pb a;
        Pb t = Tensor("", EGC_DT_INT64, {2});
        t.packed_i(7, {7, -7});
        a.s(1, "value").m(5, t).i(20, EGC_ATTR_TENSOR);
        attrs_node.m(5, a);
    }
    {
        Pb a;  // a subgraph: skipped (its garbage content is never decoded)
        a.s(1, "body").s(6, std::string("\xff\xff\xff", 3)).i(20, EGC_ATTR_GRAPH);
        attrs_node.m(5, a);
    }
    {
        Pb a;  // no type field (old files): inferred from the field that is set
        a.s(1, "legacy").i(8, 4).i(8, 5);
        attrs_node.m(5, a);
    }
    attrs_node.s(7, "com.example").unknown();

    Pb g;
    g.m(1, Node("Relu", {"in"}, {"x"}));
    g.m(1, attrs_node);
    g.m(1, Node("Relu", {"y"}, {"out"}, "final_relu"));
    g.m(1, Node("Relu", {"out"}, {"out2"}));
    g.s(2, "graph-name");
    {
        Pb w = Tensor("w", EGC_DT_FLOAT, {2});
        w.s(9, LeFloats({0.5f, -0.5f}));
        g.m(5, w);
    }
    g.m(11, ValueInfo("in", EGC_DT_FLOAT, {"batch", "3", "", "8"}));
    {
        Pb vi;
        vi.s(1, "w");  // no type at all
        g.m(11, vi);
    }
    g.m(12, ValueInfo("out2", EGC_DT_FLOAT, {"1", "10"}));
    g.m(13, ValueInfo("x", EGC_DT_FLOAT, {"1"}));  // value_info: ignored
    g.unknown();

    Pb op1, op2, op3;
    op1.s(1, "com.microsoft").i(2, 1);
    op2.s(1, "ai.onnx").i(2, 17);
    op3.s(1, "ai.onnx.ml").i(2, 3);
    Pb m;
    m.i(1, 9).s(2, "hand").unknown().m(7, g).m(8, op1);
    const size_t min_ok = m.b.size();  // shorter prefixes lack the graph or the opsets
    m.m(8, op2).m(8, op3);

    Parsed p;
    Parse(m.b, &p);
    ASSERT_EQ(p.st, EGC_OK) << p.err;
    egc_onnx_model *md = p.m;
    EXPECT_EQ(md->ir_version, 9);
    EXPECT_EQ(md->opset, 17);
    EXPECT_STREQ(md->producer, "hand");
    ASSERT_EQ(md->n_nodes, 4);
    EXPECT_STREQ(md->nodes[0].name, "Relu_0");
    EXPECT_STREQ(md->nodes[1].name, "Custom_1");
    EXPECT_STREQ(md->nodes[2].name, "final_relu");
    EXPECT_STREQ(md->nodes[3].name, "Relu_3");
    EXPECT_STREQ(md->nodes[0].domain, "");

    const egc_onnx_node &n = md->nodes[1];
    EXPECT_STREQ(n.domain, "com.example");
    ASSERT_EQ(n.n_inputs, 3);
    EXPECT_STREQ(n.inputs[1], "");
    EXPECT_STREQ(n.inputs[2], "w");
    ASSERT_EQ(n.n_attrs, 9);
    const egc_onnx_attr *a = egc_onnx_node_attr(&n, "alpha");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->type, EGC_ATTR_FLOAT);
    EXPECT_EQ(a->f, 0.25f);
    a = egc_onnx_node_attr(&n, "axis");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->i, -2);
    a = egc_onnx_node_attr(&n, "mode");
    ASSERT_NE(a, nullptr);
    EXPECT_STREQ(a->s, "reflect");
    a = egc_onnx_node_attr(&n, "scales");
    ASSERT_NE(a, nullptr);
    ASSERT_EQ(a->n, 3);
    EXPECT_EQ(a->floats[2], 3.0f);
    a = egc_onnx_node_attr(&n, "perm");
    ASSERT_NE(a, nullptr);
    ASSERT_EQ(a->n, 4);
    EXPECT_EQ(a->ints[1], 3);
    EXPECT_EQ(a->ints[3], 2);
    a = egc_onnx_node_attr(&n, "names");
    ASSERT_NE(a, nullptr);
    ASSERT_EQ(a->type, EGC_ATTR_STRINGS);
    ASSERT_EQ(a->n, 2);
    EXPECT_STREQ(a->strings[1], "bc");
    a = egc_onnx_node_attr(&n, "value");
    ASSERT_NE(a, nullptr);
    ASSERT_NE(a->t, nullptr);
    EXPECT_EQ(a->t->i64[1], -7);
    a = egc_onnx_node_attr(&n, "body");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->type, EGC_ATTR_GRAPH);
    a = egc_onnx_node_attr(&n, "legacy");
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->type, EGC_ATTR_INTS);
    ASSERT_EQ(a->n, 2);
    EXPECT_EQ(a->ints[1], 5);

    ASSERT_EQ(md->n_inits, 1);
    EXPECT_EQ(md->inits[0].f32[1], -0.5f);
    ASSERT_EQ(md->n_inputs, 2);
    EXPECT_STREQ(md->inputs[0].name, "in");
    EXPECT_EQ(md->inputs[0].elem_type, EGC_DT_FLOAT);
    ASSERT_TRUE(md->inputs[0].has_shape);
    ASSERT_EQ(md->inputs[0].shape.ndim, 4);
    EXPECT_EQ(md->inputs[0].shape.d[0], -1);
    EXPECT_EQ(md->inputs[0].shape.d[1], 3);
    EXPECT_EQ(md->inputs[0].shape.d[2], -1);
    EXPECT_EQ(md->inputs[0].shape.d[3], 8);
    EXPECT_STREQ(md->inputs[1].name, "w");
    EXPECT_FALSE(md->inputs[1].has_shape);
    ASSERT_EQ(md->n_outputs, 1);
    EXPECT_EQ(md->outputs[0].shape.d[1], 10);

    // Every prefix of this small model fails cleanly or parses; every single-byte change
    // too (all of its bytes are structure).
    for (size_t cut = 0; cut < m.b.size(); cut++) {
        Parsed q;
        Parse(m.b.substr(0, cut), &q);
        if (q.st == EGC_OK && cut >= min_ok) continue;  // cut between two opset_imports
        ASSERT_EQ(q.st, EGC_E_FORMAT) << cut;
        ASSERT_TRUE(Contains(q.err, "truncated")) << q.err;
    }
    uint64_t seed = 12345;
    for (int iter = 0; iter < 4000; iter++) {
        std::string b = m.b;
        b[XorShift(&seed) % b.size()] ^= char(1 + XorShift(&seed) % 255);
        Parsed q;
        Parse(b, &q);
        ASSERT_TRUE(q.st == EGC_OK || q.st == EGC_E_FORMAT || q.st == EGC_E_UNSUPPORTED) << q.err;
    }
}

TEST(OnnxReader, ErrorsNameOffsetAndFieldPath)
{
    // node[1].attribute[0] holds a string field whose length runs past the attribute.
    Pb bad_attr;
    bad_attr.s(1, "k").tag(4, EGC_PB_LEN).varint(50).b += "xy";
    Pb n1 = Node("Relu", {"a"}, {"b"});
    n1.m(5, bad_attr);
    Pb g;
    g.m(1, Node("Relu", {"x"}, {"a"})).m(1, n1);
    std::string bytes = Model(g);
    Parsed p;
    Parse(bytes, &p, nullptr, "mobilenet.onnx");
    ASSERT_EQ(p.st, EGC_E_FORMAT);
    // The offset of the bad length byte (0x32 = 50, right after the 0x22 tag of field 4).
    size_t at = bytes.find(std::string("\x22\x32xy", 4));
    ASSERT_NE(at, std::string::npos);
    std::string want = "mobilenet.onnx: truncated at byte " + std::to_string(at + 1) +
                       " in ModelProto.graph.node[1].attribute[0]";
    EXPECT_TRUE(Contains(p.err, want)) << p.err << "\nwanted: " << want;

    // A tensor data mismatch inside an initializer names the path and the tensor.
    Pb g2;
    g2.m(5, Tensor("ok", EGC_DT_FLOAT, {1}).s(9, LeFloats({1})));
    g2.m(5, Tensor("conv.weight", EGC_DT_FLOAT, {3}).s(9, LeFloats({1})));
    Parsed p2;
    Parse(Model(g2), &p2);
    EXPECT_EQ(p2.st, EGC_E_FORMAT);
    EXPECT_TRUE(Contains(p2.err, "in ModelProto.graph.initializer[1]: tensor 'conv.weight'")) << p2.err;

    // Wrong wire type for a known field.
    Pb g3;
    g3.i(1, 5);
    Parsed p3;
    Parse(Model(g3), &p3);
    EXPECT_EQ(p3.st, EGC_E_FORMAT);
    EXPECT_TRUE(Contains(p3.err, "wrong wire type")) << p3.err;
    EXPECT_TRUE(Contains(p3.err, "in ModelProto.graph")) << p3.err;

    struct {
        std::string bytes;
        const char *sub;
    } cases[] = {
        {"", "empty file"},
        {std::string("\x08\x07", 2), "no graph"},
        {[] {
             Pb m;
             m.m(7, Pb());
             return m.b;
         }(),
         "no opset_import"},
        {std::string("\x00\x01", 2), "invalid field number"},
        {std::string("\x0b\x01", 2), "wire type 3"},
        {std::string("\x0e\x01", 2), "invalid wire type"},
        {std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12), "malformed varint"},
        {std::string("\x08\xff\xff", 3), "truncated"},
        {std::string("\x3a\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10), "truncated"},
        {[] {
             Pb n = Node("", {"x"}, {"y"});
             Pb g;
             g.m(1, n);
             return Model(g);
         }(),
         "no op_type"},
        {[] {
             Pb a;
             a.i(3, 1).i(20, EGC_ATTR_INT);
             Pb n = Node("Relu", {"x"}, {"y"});
             n.m(5, a);
             Pb g;
             g.m(1, n);
             return Model(g);
         }(),
         "bad attribute at byte"},
        {[] {
             Pb a;
             a.s(1, "value").i(20, EGC_ATTR_TENSOR);
             Pb n = Node("Constant", {}, {"y"});
             n.m(5, a);
             Pb g;
             g.m(1, n);
             return Model(g);
         }(),
         "has type TENSOR but no tensor"},
        {[] {
             Pb g;
             g.m(11, ValueInfo("x", 1, {"1", "1", "1", "1", "1", "1", "1", "1", "1"}));
             return Model(g);
         }(),
         "more than 8 dims"},
        {[] {  // packed ints that end inside a varint
             Pb a;
             a.s(1, "p").s(8, std::string("\x01\x80", 2)).i(20, EGC_ATTR_INTS);
             Pb n = Node("Relu", {"x"}, {"y"});
             n.m(5, a);
             Pb g;
             g.m(1, n);
             return Model(g);
         }(),
         "packed ints ends inside a varint"},
        {[] {  // packed floats of 5 bytes
             Pb a;
             a.s(1, "p").s(7, "abcde").i(20, EGC_ATTR_FLOATS);
             Pb n = Node("Relu", {"x"}, {"y"});
             n.m(5, a);
             Pb g;
             g.m(1, n);
             return Model(g);
         }(),
         "not a multiple of 4"},
    };
    for (auto &c : cases) {
        Parsed q;
        Parse(c.bytes, &q);
        EXPECT_NE(q.st, EGC_OK) << c.sub;
        EXPECT_TRUE(Contains(q.err, c.sub)) << q.err << "\nwanted: " << c.sub;
        EXPECT_TRUE(Contains(q.err, "test.onnx")) << q.err;
    }

    egc_onnx_model *m = nullptr;
    EXPECT_EQ(egc_onnx_load("no/such/model.onnx", &m), EGC_E_IO);
    EXPECT_EQ(m, nullptr);
    EXPECT_TRUE(Contains(egc_last_error(), "no/such/model.onnx")) << egc_last_error();
    egc_onnx_free(nullptr);
}

TEST(OnnxReaderPb, NestingDepthIsBounded)
{
    // 40 nested length-delimited fields; descending must stop at EGC_PB_MAX_DEPTH.
    std::string inner = "\x08\x01";
    for (int k = 0; k < 40; k++) {
        Pb p;
        p.s(1, inner);
        inner = p.b;
    }
    std::vector<uint8_t> buf(inner.begin(), inner.end());
    egc_pb_ctx ctx;
    egc_pb c = egc_pb_begin(&ctx, buf.data(), buf.size(), "deep.pb", "Root");
    int depth = 0;
    egc_status st = EGC_OK;
    for (;;) {
        egc_pb_field f;
        int more = 0;
        ASSERT_EQ(egc_pb_next(&c, &f, &more), EGC_OK) << egc_last_error();
        ASSERT_TRUE(more);
        if (f.wire != EGC_PB_LEN) break;
        egc_pb sub;
        st = egc_pb_sub(&c, &f, &sub);
        if (st != EGC_OK) break;
        c = sub;
        depth++;
    }
    EXPECT_EQ(st, EGC_E_FORMAT);
    EXPECT_EQ(depth, EGC_PB_MAX_DEPTH);
    EXPECT_TRUE(Contains(egc_last_error(), "nesting too deep")) << egc_last_error();
}

TEST(OnnxReaderPb, PathAndScalars)
{
    Pb p;
    p.i(1, -3).f(2, 2.5f).packed_i(3, {1, 300, -1}).i(3, 9).d(4, 0.5).s(5, std::string("a\0b", 3));
    std::vector<uint8_t> buf(p.b.begin(), p.b.end());
    egc_pb_ctx ctx;
    egc_pb c = egc_pb_begin(&ctx, buf.data(), buf.size(), "s.pb", "Msg");
    egc_pb_i64vec iv = {};
    egc_pb_f64vec dv = {};
    int64_t i = 0;
    float fl = 0;
    char *str = nullptr;
    egc_pb_field f;
    int more;
    while (egc_pb_next(&c, &f, &more) == EGC_OK && more) {
        switch (f.num) {
        case 1: ASSERT_EQ(egc_pb_int64(&c, &f, "i", &i), EGC_OK); break;
        case 2: ASSERT_EQ(egc_pb_float(&c, &f, "f", &fl), EGC_OK); break;
        case 3: ASSERT_EQ(egc_pb_rep_int64(&c, &f, "r", &iv), EGC_OK); break;
        case 4: ASSERT_EQ(egc_pb_rep_double(&c, &f, "d", &dv), EGC_OK); break;
        case 5: ASSERT_EQ(egc_pb_string(&c, &f, "s", &str), EGC_OK); break;
        }
    }
    EXPECT_EQ(i, -3);
    EXPECT_EQ(fl, 2.5f);
    ASSERT_EQ(iv.n, 4u);
    EXPECT_EQ(iv.v[1], 300);
    EXPECT_EQ(iv.v[2], -1);
    EXPECT_EQ(iv.v[3], 9);
    ASSERT_EQ(dv.n, 1u);
    EXPECT_EQ(dv.v[0], 0.5);
    ASSERT_NE(str, nullptr);
    EXPECT_EQ(std::memcmp(str, "a\0b\0", 4), 0);
    free(str);
    egc_pb_i64vec_free(&iv);
    egc_pb_f64vec_free(&dv);

    size_t mark = egc_pb_path_push(&ctx, ".node[%d]", 3);
    EXPECT_STREQ(ctx.path, "Msg.node[3]");
    egc_pb_path_pop(&ctx, mark);
    EXPECT_STREQ(ctx.path, "Msg");
    for (int k = 0; k < 200; k++) (void)egc_pb_path_push(&ctx, ".segment%d", k);
    EXPECT_LT(std::strlen(ctx.path), size_t(EGC_PB_PATH_MAX));
    EXPECT_TRUE(Contains(ctx.path, "..."));
    egc_pb_path_pop(&ctx, mark);
    EXPECT_STREQ(ctx.path, "Msg");
}

// ---- external data ----

struct TempDir {
    std::string path;
    TempDir()
    {
        const char *base = std::getenv("TMPDIR");
        std::string tmpl = std::string(base && *base ? base : "/tmp") + "/egc_onnx_XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (mkdtemp(buf.data())) path = buf.data();
    }
    ~TempDir()
    {
        for (const char *f : {"weights.bin", "model.onnx", "short.bin"}) std::remove((path + "/" + f).c_str());
        rmdir((path + "/sub").c_str());
        rmdir(path.c_str());
    }
    void Write(const std::string &name, const std::string &bytes) const
    {
        std::ofstream f(path + "/" + name, std::ios::binary);
        f.write(bytes.data(), std::streamsize(bytes.size()));
    }
};

Pb ExtTensor(const std::string &name, const std::vector<int64_t> &dims,
             const std::vector<std::pair<std::string, std::string>> &kv)
{
    Pb t = Tensor(name, EGC_DT_FLOAT, dims);
    for (const auto &e : kv) {
        Pb entry;
        entry.s(1, e.first).s(2, e.second);
        t.m(13, entry);
    }
    t.i(14, 1);
    return t;
}

std::string ExtModel(const Pb &t)
{
    Pb g;
    g.m(1, Node("Relu", {"w"}, {"y"}));
    g.m(5, t);
    return Model(g);
}

TEST(OnnxReader, ExternalData)
{
    TempDir dir;
    ASSERT_FALSE(dir.path.empty());
    // 2 floats of padding, then the 4 floats of the tensor, then 1 more.
    dir.Write("weights.bin", LeFloats({9, 9, 1.0f, -2.0f, 3.5f, 0.125f, 9}));
    dir.Write("short.bin", LeFloats({1}));

    std::string good = ExtModel(ExtTensor("w", {2, 2}, {{"location", "weights.bin"}, {"offset", "8"}, {"length", "16"}}));
    dir.Write("model.onnx", good);
    {
        egc_onnx_model *m = nullptr;
        ASSERT_EQ(egc_onnx_load((dir.path + "/model.onnx").c_str(), &m), EGC_OK) << egc_last_error();
        ASSERT_EQ(m->n_inits, 1);
        const egc_onnx_tensor &t = m->inits[0];
        ASSERT_EQ(t.numel, 4);
        EXPECT_EQ(t.f32[0], 1.0f);
        EXPECT_EQ(t.f32[1], -2.0f);
        EXPECT_EQ(t.f32[2], 3.5f);
        EXPECT_EQ(t.f32[3], 0.125f);
        egc_onnx_free(m);
    }
    {  // no length: the tensor's size is read from the offset
        Parsed p;
        Parse(ExtModel(ExtTensor("w", {1}, {{"location", "weights.bin"}, {"offset", "12"}})), &p,
              dir.path.c_str());
        ASSERT_EQ(p.st, EGC_OK) << p.err;
        EXPECT_EQ(p.m->inits[0].f32[0], -2.0f);
    }
    struct {
        Pb t;
        const char *base;
        egc_status want;
        const char *sub;
    } cases[] = {
        {ExtTensor("w", {2}, {{"location", "../weights.bin"}}), "dir", EGC_E_FORMAT,
         "location '../weights.bin' must be a relative path"},
        {ExtTensor("w", {2}, {{"location", "sub/../../x"}}), "dir", EGC_E_FORMAT, "without '..'"},
        {ExtTensor("w", {2}, {{"location", "/etc/passwd"}}), "dir", EGC_E_FORMAT, "relative path"},
        {ExtTensor("w", {2}, {{"location", "missing.bin"}}), "dir", EGC_E_IO,
         "tensor 'w': cannot open external data file"},
        {ExtTensor("w", {2}, {{"location", "short.bin"}}), "dir", EGC_E_FORMAT,
         "external file short.bin has 4 bytes"},
        {ExtTensor("w", {2}, {{"location", "weights.bin"}, {"length", "12"}}), "dir", EGC_E_FORMAT,
         "external length 12, dims and type need 8 bytes"},
        {ExtTensor("w", {2}, {{"location", "weights.bin"}, {"offset", "-4"}}), "dir", EGC_E_FORMAT,
         "offset '-4' is not a non-negative integer"},
        {ExtTensor("w", {2}, {{"location", "weights.bin"}, {"offset", "99999999999999999999"}}), "dir",
         EGC_E_FORMAT, "not a non-negative integer"},
        {ExtTensor("w", {2}, {{"location", "weights.bin"}, {"offset", "100"}}), "dir", EGC_E_FORMAT,
         "offset 100 + 8 needed"},
        {ExtTensor("w", {2}, {}), "dir", EGC_E_FORMAT, "tensor 'w' has no 'location'"},
        {ExtTensor("w", {2}, {{"location", "weights.bin"}}), nullptr, EGC_E_UNSUPPORTED,
         "no folder was given"},
    };
    for (auto &c : cases) {
        Parsed p;
        Parse(ExtModel(c.t), &p, c.base ? dir.path.c_str() : nullptr);
        EXPECT_EQ(p.st, c.want) << p.err;
        EXPECT_TRUE(Contains(p.err, c.sub)) << p.err << "\nwanted: " << c.sub;
        EXPECT_TRUE(Contains(p.err, "test.onnx")) << p.err;
    }
}

}  // namespace
