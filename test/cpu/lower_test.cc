// lower_test.cc: lowering of raw ONNX models to egcam's graph (csrc/model/lower.c), load-time
// folding (fold.c) and shape inference (infer.c). The small models in test/data/lower come
// from tools/gen_lower_cases.py, which also stores reference outputs computed with torch /
// numpy; lowered graphs are run here node by node with the CPU reference ops and compared
// with them. The shared real models (EGC_SHARED_DIR/models) are lowered too.
#include <gtest/gtest.h>


#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "cpu/cpu_ops.h"
#include "egcam/image.h"
#include "egcam/model.h"
#include "model/lower.h"
#include "model/onnx.h"
}

namespace {

std::string data_path(const std::string &name)
{
    return std::string(EGC_SOURCE_DIR) + "/test/data/lower/" + name;
}

// A lowered model that cleans up after itself.
struct Lowered {
    egc_graph g{};
    egc_status st = EGC_E_INTERNAL;
    std::string err;
    Lowered() { g.input = g.output = -1; }
    ~Lowered() { egc_graph_clear(&g); }
};

void lower_file(const std::string &path, Lowered *L, std::vector<const char *> names = {},
                const std::vector<egc_onnx_tensor> &consts = {})
{
    egc_onnx_model *m = nullptr;
    egc_status st = egc_onnx_load(path.c_str(), &m);
    ASSERT_EQ(st, EGC_OK) << egc_last_error();
    L->st = egc_lower(m, "case.onnx", names.data(), consts.data(), (int)consts.size(), &L->g);
    if (L->st != EGC_OK) L->err = egc_last_error();
    egc_onnx_free(m);
}

int find_node(const egc_graph &g, const char *name)
{
    for (int i = 0; i < g.n_nodes; i++)
        if (strcmp(g.nodes[i].name, name) == 0) return i;
    return -1;
}

int count_op(const egc_graph &g, egc_op op)
{
    int c = 0;
    for (int i = 0; i < g.n_nodes; i++) c += g.nodes[i].op == op;
    return c;
}

std::vector<int64_t> dims(const egc_shape &s) { return std::vector<int64_t>(s.d, s.d + s.ndim); }

// Structural invariants every lowered graph must keep: inputs defined before use,
// producers consistent, constants with data, shapes equal to a replay of egc_graph_infer.
void check_graph(const egc_graph &g)
{
    ASSERT_GE(g.input, 0);
    ASSERT_GE(g.output, 0);
    std::vector<int> ready(g.n_values, 0);
    for (int v = 0; v < g.n_values; v++) {
        const egc_value &x = g.values[v];
        if (x.is_const) {
            ready[v] = 1;
            EXPECT_TRUE(x.is_float ? x.f32 != nullptr : x.i64 != nullptr) << x.name;
            EXPECT_EQ(x.producer, -1) << x.name;
        }
    }
    ready[g.input] = 1;
    for (int i = 0; i < g.n_nodes; i++) {
        const egc_node &n = g.nodes[i];
        for (int k = 0; k < n.n_in; k++)
            if (n.in[k] >= 0) EXPECT_TRUE(ready[n.in[k]]) << n.name << " input " << k;
        EXPECT_EQ(g.values[n.out].producer, i) << n.name;
        EXPECT_FALSE(g.values[n.out].is_const) << n.name;
        ready[n.out] = 1;
    }
    EXPECT_TRUE(ready[g.output]);
    std::vector<egc_shape> s(g.n_values);
    ASSERT_EQ(egc_graph_infer(&g, 1 > g.declared_batch ? 1 : g.declared_batch, s.data()), EGC_OK)
        << egc_last_error();
    for (int i = 0; i < g.n_nodes; i++)
        EXPECT_TRUE(egc_shape_equal(&s[g.nodes[i].out], &g.values[g.nodes[i].out].shape))
            << g.nodes[i].name;
}

// Runs the graph with the CPU reference ops at the given batch; x holds the input.
std::vector<float> run(const egc_graph &g, int64_t batch, const std::vector<float> &x,
                       egc_shape *out_shape = nullptr)
{
    std::vector<egc_shape> s(g.n_values);
    EXPECT_EQ(egc_graph_infer(&g, batch, s.data()), EGC_OK) << egc_last_error();
    std::vector<std::vector<float>> buf(g.n_values);
    buf[g.input] = x;
    EXPECT_EQ((int64_t)x.size(), egc_shape_numel(&s[g.input]));
    for (int i = 0; i < g.n_nodes; i++) {
        const egc_node &n = g.nodes[i];
        std::vector<egc_view> in(n.n_in);
        for (int k = 0; k < n.n_in; k++) {
            int v = n.in[k];
            if (v < 0) {
                in[k].ptr = nullptr;
                continue;
            }
            in[k].shape = s[v];
            in[k].ptr = g.values[v].is_const ? g.values[v].f32 : buf[v].data();
        }
        buf[n.out].assign((size_t)egc_shape_numel(&s[n.out]), 0.0f);
        egc_view o{buf[n.out].data(), s[n.out]};
        EXPECT_EQ(egc_cpu_forward(&g, &n, in.data(), &o), EGC_OK) << egc_last_error();
    }
    if (out_shape) *out_shape = s[g.output];
    return buf[g.output];
}

struct Npy {
    egc_tensor t{};
    ~Npy() { egc_tensor_free(&t); }
    std::vector<float> vec() const
    {
        return std::vector<float>(t.data, t.data + egc_shape_numel(&t.shape));
    }
};

void read_npy(const std::string &name, Npy *n)
{
    ASSERT_EQ(egc_npy_read(data_path(name).c_str(), &n->t), EGC_OK) << egc_last_error();
}

void expect_close(const std::vector<float> &got, const std::vector<float> &want, double tol,
                  const char *what)
{
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < got.size(); i++)
        ASSERT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << what << " element " << i;
}

// One-hot seeds [n, classes] at each row's largest logit.
std::vector<float> top1_seed(const std::vector<float> &logits, int n, int classes)
{
    std::vector<float> seed((size_t)n * classes, 0.0f);
    for (int i = 0; i < n; i++) {
        const float *l = logits.data() + (size_t)i * classes;
        seed[(size_t)i * classes + (size_t)(std::max_element(l, l + classes) - l)] = 1.0f;
    }
    return seed;
}

// Lowers NAME.onnx and compares its output for NAME_in.npy with NAME_out.npy.
void check_reference(const std::string &name, double tol = 1e-5)
{
    Lowered L;
    lower_file(data_path(name + ".onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    check_graph(L.g);
    Npy in, want;
    read_npy(name + "_in.npy", &in);
    read_npy(name + "_out.npy", &want);
    egc_shape os;
    std::vector<float> got = run(L.g, in.t.shape.d[0], in.vec(), &os);
    EXPECT_EQ(dims(os), dims(want.t.shape)) << name;
    expect_close(got, want.vec(), tol, name.c_str());
}

// ---------------------------------------------------------------- auto_pad

TEST(LowerAutoPad, SameUpperSameLowerValid)
{
    struct Case {
        const char *file;
        int conv[4], pool[4];  // pads top, left, bottom, right
        std::vector<int64_t> out;
    };
    // Input [1,2,7,6]. Conv kernel 4x3 stride 2x1: ceil(7/2) = 4 rows need 3 pad rows, 6
    // columns need 2 pad columns. MaxPool 2x3 stride 1x2 on [4,6]: 1 pad row, 1 pad column.
    // SAME_UPPER puts the odd pad at the end, SAME_LOWER at the beginning.
    const Case cases[] = {
        {"autopad_same_upper", {1, 1, 2, 1}, {0, 0, 1, 1}, {1, 3, 4, 3}},
        {"autopad_same_lower", {2, 1, 1, 1}, {1, 1, 0, 0}, {1, 3, 4, 3}},
        {"autopad_valid", {0, 0, 0, 0}, {0, 0, 0, 0}, {1, 3, 1, 1}},
    };
    for (const Case &c : cases) {
        SCOPED_TRACE(c.file);
        Lowered L;
        lower_file(data_path(std::string(c.file) + ".onnx"), &L);
        ASSERT_EQ(L.st, EGC_OK) << L.err;
        ASSERT_EQ(L.g.n_nodes, 2);
        const egc_conv_params &cp = L.g.nodes[find_node(L.g, "conv")].p.conv;
        const egc_pool_params &pp = L.g.nodes[find_node(L.g, "pool")].p.pool;
        EXPECT_EQ(std::vector<int>({cp.pt, cp.pl, cp.pb, cp.pr}),
                  std::vector<int>(c.conv, c.conv + 4));
        EXPECT_EQ(std::vector<int>({pp.pt, pp.pl, pp.pb, pp.pr}),
                  std::vector<int>(c.pool, c.pool + 4));
        EXPECT_EQ(cp.sh, 2);
        EXPECT_EQ(cp.kh, 4);
        EXPECT_EQ(cp.kw, 3);
        EXPECT_EQ(pp.kh, 2);
        EXPECT_EQ(pp.sw, 2);
        EXPECT_EQ(dims(L.g.values[L.g.output].shape), c.out);
        check_reference(c.file);
    }
}

// ---------------------------------------------------------------- BatchNorm folding

TEST(LowerBatchNorm, FoldsIntoSoleConvAndKeepsSharedOne)
{
    Lowered L;
    lower_file(data_path("bn_fold.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    check_graph(L.g);
    // conv1 absorbed bn1; conv2 has two users (bn2 and add), so bn2 stays.
    EXPECT_EQ(L.g.n_nodes, 5);
    EXPECT_EQ(count_op(L.g, EGC_OP_BATCHNORM), 1);
    EXPECT_EQ(find_node(L.g, "bn1"), -1);
    int bn2 = find_node(L.g, "bn2"), c1 = find_node(L.g, "conv1");
    ASSERT_GE(bn2, 0);
    ASSERT_GE(c1, 0);
    EXPECT_FLOAT_EQ(L.g.nodes[bn2].p.bn.eps, 1e-5f);
    const egc_node &conv = L.g.nodes[c1];
    EXPECT_STREQ(L.g.values[conv.out].name, "n1");  // the conv now writes the BN's output
    ASSERT_EQ(conv.n_in, 3);
    const egc_value &w = L.g.values[conv.in[1]], &b = L.g.values[conv.in[2]];
    ASSERT_TRUE(w.is_const && w.is_float && b.is_const && b.is_float);
    Npy ew, eb;
    read_npy("bn_fold_w.npy", &ew);
    read_npy("bn_fold_b.npy", &eb);
    EXPECT_EQ(dims(w.shape), dims(ew.t.shape));
    expect_close(std::vector<float>(w.f32, w.f32 + egc_shape_numel(&w.shape)), ew.vec(), 1e-6,
                 "folded weights");
    expect_close(std::vector<float>(b.f32, b.f32 + egc_shape_numel(&b.shape)), eb.vec(), 1e-6,
                 "folded bias");
    // The original initializer is untouched (another Conv could share it).
    bool found_w1 = false;
    for (int v = 0; v < L.g.n_values; v++)
        if (!strcmp(L.g.values[v].name, "w1")) found_w1 = L.g.values[v].f32 != w.f32;
    EXPECT_TRUE(found_w1);
    check_reference("bn_fold", 1e-4);
}

// ---------------------------------------------------------------- shape subgraphs

TEST(LowerShapeSubgraph, FoldsPadsAndFollowsBatch)
{
    Lowered L;
    lower_file(data_path("shape_subgraph.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    check_graph(L.g);
    EXPECT_EQ(L.g.declared_batch, -1);
    EXPECT_EQ(L.g.opset, 13);
    // Only Slice, Slice, Pad, Relu, Reshape run; the rest was folded at load time.
    EXPECT_EQ(L.g.n_nodes, 5);
    EXPECT_EQ(count_op(L.g, EGC_OP_SLICE), 2);
    EXPECT_EQ(count_op(L.g, EGC_OP_PAD), 1);
    EXPECT_EQ(count_op(L.g, EGC_OP_RESHAPE), 1);
    for (int i = 0; i < L.g.n_nodes; i++) {
        const egc_node &n = L.g.nodes[i];
        if (n.op == EGC_OP_PAD) {
            // F.pad(..., (0,0,0,0,2,2)): two zero channels before and after.
            EXPECT_EQ(n.p.pad.n, 4);
            EXPECT_EQ(std::vector<int64_t>(n.p.pad.pads, n.p.pad.pads + 8),
                      std::vector<int64_t>({0, 2, 0, 0, 0, 2, 0, 0}));
            EXPECT_EQ(n.p.pad.mode, EGC_PAD_CONSTANT);
        }
    }
    EXPECT_EQ(dims(L.g.values[L.g.output].shape), std::vector<int64_t>({1, 72}));
    std::vector<egc_shape> s(L.g.n_values);
    ASSERT_EQ(egc_graph_infer(&L.g, 7, s.data()), EGC_OK) << egc_last_error();
    EXPECT_EQ(dims(s[L.g.output]), std::vector<int64_t>({7, 72}));
    check_reference("shape_subgraph");
    // At batch 3 (three copies of the input) every row equals the reference row.
    Npy in, want;
    read_npy("shape_subgraph_in.npy", &in);
    read_npy("shape_subgraph_out.npy", &want);
    std::vector<float> x1 = in.vec(), w1 = want.vec(), x3, w3;
    for (int r = 0; r < 3; r++) {
        x3.insert(x3.end(), x1.begin(), x1.end());
        w3.insert(w3.end(), w1.begin(), w1.end());
    }
    egc_shape os;
    std::vector<float> got = run(L.g, 3, x3, &os);
    EXPECT_EQ(dims(os), std::vector<int64_t>({3, 72}));
    expect_close(got, w3, 1e-6, "batch 3");
}

TEST(LowerShapeSubgraph, ChainOfFoldedOps)
{
    Lowered L;
    lower_file(data_path("fold_ops.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    ASSERT_EQ(L.g.n_nodes, 2);
    EXPECT_EQ(L.g.nodes[0].op, EGC_OP_RESHAPE);
    EXPECT_EQ(L.g.nodes[1].op, EGC_OP_ADD);
    EXPECT_EQ(L.g.nodes[0].p.reshape.n, 2);
    EXPECT_EQ(L.g.nodes[0].p.reshape.dims[0], 2);
    EXPECT_EQ(L.g.nodes[0].p.reshape.dims[1], -1);
    const egc_value &k = L.g.values[L.g.nodes[1].in[1]];
    EXPECT_TRUE(k.is_const && k.is_float);
    EXPECT_EQ(dims(k.shape), std::vector<int64_t>({2, 6}));
    check_reference("fold_ops");
}

TEST(LowerShapeSubgraph, RuntimeOpsOnConstantsAreFolded)
{
    Lowered L;
    lower_file(data_path("fold_runtime.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    ASSERT_EQ(L.g.n_nodes, 1);  // Gemm and Clip ran at load time
    EXPECT_EQ(L.g.nodes[0].op, EGC_OP_ADD);
    EXPECT_TRUE(L.g.values[L.g.nodes[0].in[1]].is_const);
    check_reference("fold_runtime");
}

// ---------------------------------------------------------------- removal, order

TEST(LowerRemoval, DropoutAndIdentityBecomeAliases)
{
    Lowered L;
    lower_file(data_path("dropout_identity.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    check_graph(L.g);
    ASSERT_EQ(L.g.n_nodes, 2);
    EXPECT_EQ(L.g.nodes[0].op, EGC_OP_CONV);
    EXPECT_EQ(L.g.nodes[1].op, EGC_OP_RELU);
    EXPECT_EQ(L.g.nodes[0].in[0], L.g.input);
    EXPECT_EQ(L.g.nodes[1].in[0], L.g.nodes[0].out);
    EXPECT_EQ(L.g.nodes[1].out, L.g.output);
}

// Dropout in training mode with a ratio of 0 (torch's export of attention dropout p = 0)
// keeps every element: the input itself. Another ratio in training mode is refused.
TEST(LowerRemoval, TrainingModeDropoutOfRatioZeroIsTheInput)
{
    Lowered L;
    lower_file(data_path("dropout_training_zero.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    ASSERT_EQ(L.g.n_nodes, 1);
    EXPECT_EQ(L.g.nodes[0].op, EGC_OP_RELU);
    EXPECT_EQ(L.g.nodes[0].in[0], L.g.input);
    Lowered t;
    lower_file(data_path("dropout_training.onnx"), &t);
    EXPECT_EQ(t.st, EGC_E_UNSUPPORTED);
    EXPECT_NE(t.err.find("training_mode other than false is not supported (inference only) "
                         "unless the ratio is 0"), std::string::npos) << t.err;
}

TEST(LowerRemoval, UsedDropoutMaskIsAnError)
{
    Lowered L;
    lower_file(data_path("dropout_mask.onnx"), &L);
    EXPECT_EQ(L.st, EGC_E_UNSUPPORTED);
    EXPECT_NE(L.err.find("node 'cast' (Cast)"), std::string::npos) << L.err;
    EXPECT_NE(L.err.find("'mask'"), std::string::npos) << L.err;
    EXPECT_NE(L.err.find("node 'drop' (Dropout)"), std::string::npos) << L.err;
}

TEST(LowerOrder, UnsortedFileIsSorted)
{
    Lowered L;
    lower_file(data_path("unsorted.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    check_graph(L.g);
    ASSERT_EQ(L.g.n_nodes, 2);
    EXPECT_STREQ(L.g.nodes[0].name, "conv");
    EXPECT_STREQ(L.g.nodes[1].name, "relu");
}

TEST(LowerOrder, CycleIsReported)
{
    Lowered L;
    lower_file(data_path("cycle.onnx"), &L);
    EXPECT_EQ(L.st, EGC_E_FORMAT);
    EXPECT_NE(L.err.find("cycle"), std::string::npos) << L.err;
    for (const char *n : {"'n1'", "'n2'", "'n3'"})
        EXPECT_NE(L.err.find(n), std::string::npos) << n << " in " << L.err;
    EXPECT_EQ(L.err.find("'n4'"), std::string::npos) << L.err;  // downstream, not on the cycle
    EXPECT_EQ(L.g.n_nodes, 0);
    EXPECT_EQ(L.g.values, nullptr);
}

// ---------------------------------------------------------------- errors

TEST(LowerErrors, UnsupportedOperatorAndAttribute)
{
    Lowered a;
    lower_file(data_path("unsupported_op.onnx"), &a);
    EXPECT_EQ(a.st, EGC_E_UNSUPPORTED);
    EXPECT_EQ(a.err.rfind("case.onnx: node 'weird' (LpNormalization): operator LpNormalization is "
                          "not supported", 0), 0u) << a.err;
    Lowered b;
    lower_file(data_path("unsupported_attr.onnx"), &b);
    EXPECT_EQ(b.st, EGC_E_UNSUPPORTED);
    EXPECT_NE(b.err.find("node 'conv3' (Conv): attribute auto_pad='FOO' is not supported"),
              std::string::npos) << b.err;
}

// The first refusal names, besides its own reason, every operator of the model egcam does not
// know, with its node count: one look says what a model lacks.
TEST(LowerErrors, EveryUnknownOperatorIsNamed)
{
    Lowered a;
    lower_file(data_path("unknown_ops.onnx"), &a);
    EXPECT_EQ(a.st, EGC_E_UNSUPPORTED);
    EXPECT_EQ(a.err.rfind("case.onnx: node 'chanmax' (ReduceMax): ReduceMax is supported over "
                          "two axes other than the batch of a 4-D tensor, or one of a 2-D, 3-D or "
                          "4-D tensor only (here 3 axes of a 4-D tensor); the model also has "
                          "operators egcam does not run: LpNormalization (1 node) [", 0), 0u)
        << a.err;
    Lowered b;
    lower_file(data_path("unsupported_op.onnx"), &b);
    EXPECT_NE(b.err.find("operator LpNormalization is not supported (the operators of this model "
                         "that egcam does not run: LpNormalization (1 node))"), std::string::npos)
        << b.err;
    EXPECT_EQ(b.err.find("also has"), std::string::npos) << b.err;  // said once
}

// Folding is bounded in work and size: a product of two 2048 x 2048 constants, or a Range of
// 2^25 integers, is refused before it is computed, with the reason (a file of a few hundred
// bytes must not take minutes or gigabytes to load).
TEST(LowerErrors, FoldingIsBounded)
{
    Lowered a;
    lower_file(data_path("fold_too_costly.onnx"), &a);
    EXPECT_EQ(a.st, EGC_E_UNSUPPORTED);
    EXPECT_NE(a.err.find("node 'costly' (MatMul): evaluating this operator on constants at load "
                         "time would take more than"), std::string::npos) << a.err;
    Lowered b;
    lower_file(data_path("fold_too_large.onnx"), &b);
    EXPECT_EQ(b.st, EGC_E_UNSUPPORTED);
    EXPECT_NE(b.err.find("node 'huge' (Range): folded constant of shape [33554432] is too large"),
              std::string::npos) << b.err;
    // Each of three 2^25-element constants fits the per-tensor cap; together they pass the
    // budget of a file whose own weights are a few numbers.
    Lowered c;
    lower_file(data_path("fold_budget.onnx"), &c);
    EXPECT_EQ(c.st, EGC_E_UNSUPPORTED);
    EXPECT_NE(c.err.find("node 'big3' (ConstantOfShape): folded constant of shape [33554432] would "
                         "bring the constants folded at load time past their budget (4 "
                         "elements left of 67108864 plus 5 per weight of the file)"),
              std::string::npos) << c.err;
}

TEST(LowerErrors, RuntimeWeightsMustBeConstant)
{
    Lowered L;
    lower_file(data_path("runtime_weight.onnx"), &L);
    EXPECT_EQ(L.st, EGC_E_UNSUPPORTED);
    EXPECT_NE(L.err.find("node 'conv' (Conv): input 1 'wr' (weights W) must be a constant"),
              std::string::npos) << L.err;
}

TEST(LowerErrors, InputsMustBeOneOrBound)
{
    Lowered a;
    lower_file(data_path("two_inputs.onnx"), &a);
    EXPECT_EQ(a.st, EGC_E_UNSUPPORTED);
    EXPECT_NE(a.err.find("2 runtime inputs ('x', 'w')"), std::string::npos) << a.err;

    // Binding w makes it a constant weight.
    std::vector<float> wdata(2 * 9);
    for (size_t i = 0; i < wdata.size(); i++) wdata[i] = (float)i - 8.0f;
    egc_onnx_tensor w{};
    int64_t wd[4] = {2, 1, 3, 3};
    w.shape = egc_shape_make(4, wd);
    w.numel = 18;
    w.is_float = 1;
    w.orig_dtype = EGC_DT_FLOAT;
    w.f32 = wdata.data();
    Lowered b;
    lower_file(data_path("two_inputs.onnx"), &b, {"w"}, {w});
    ASSERT_EQ(b.st, EGC_OK) << b.err;
    ASSERT_EQ(b.g.n_nodes, 1);
    const egc_value &wv = b.g.values[b.g.nodes[0].in[1]];
    EXPECT_TRUE(wv.is_const);
    EXPECT_NE(wv.f32, wdata.data());  // copied, owned by the graph
    EXPECT_EQ(wv.f32[17], 9.0f);
    EXPECT_EQ(dims(b.g.values[b.g.output].shape), std::vector<int64_t>({1, 2, 3, 3}));

    Lowered c;
    lower_file(data_path("two_inputs.onnx"), &c, {"nope"}, {w});
    EXPECT_EQ(c.st, EGC_E_ARG);
    EXPECT_NE(c.err.find("'nope' is not a graph input"), std::string::npos) << c.err;
}

// ---------------------------------------------------------------- parameters

TEST(LowerParams, LegacyOpset9Attributes)
{
    Lowered L;
    lower_file(data_path("legacy_opset9.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    ASSERT_EQ(L.g.n_nodes, 4);
    EXPECT_EQ(L.g.declared_batch, 2);
    const egc_pad_params &pp = L.g.nodes[0].p.pad;
    EXPECT_EQ(pp.mode, EGC_PAD_REFLECT);
    EXPECT_EQ(std::vector<int64_t>(pp.pads, pp.pads + 8),
              std::vector<int64_t>({0, 0, 1, 2, 0, 0, 2, 1}));
    const egc_slice_params &sp = L.g.nodes[1].p.slice;
    ASSERT_EQ(sp.n, 2);
    EXPECT_EQ(sp.axes[0], 2);
    EXPECT_EQ(sp.starts[1], -4);
    EXPECT_EQ(sp.steps[1], 1);
    EXPECT_FLOAT_EQ(L.g.nodes[2].p.clip.lo, -0.5f);
    EXPECT_FLOAT_EQ(L.g.nodes[2].p.clip.hi, 0.75f);
    EXPECT_EQ(L.g.nodes[3].p.axis.axis, 1);
    EXPECT_EQ(L.g.nodes[3].p.axis.legacy, 1);
    check_reference("legacy_opset9");
}

TEST(LowerParams, GemmClipSoftmaxOpset13)
{
    Lowered L;
    lower_file(data_path("misc_opset13.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    ASSERT_EQ(L.g.n_nodes, 5);
    EXPECT_EQ(L.g.nodes[1].p.reshape.flatten_axis, 1);
    const egc_gemm_params &gp = L.g.nodes[2].p.gemm;
    EXPECT_FLOAT_EQ(gp.alpha, 0.5f);
    EXPECT_FLOAT_EQ(gp.beta, 2.0f);
    EXPECT_EQ(gp.trans_a, 0);
    EXPECT_EQ(gp.trans_b, 1);
    EXPECT_EQ(L.g.nodes[3].n_in, 1);  // min/max moved into params
    EXPECT_FLOAT_EQ(L.g.nodes[3].p.clip.lo, -1.0f);
    EXPECT_TRUE(std::isinf(L.g.nodes[3].p.clip.hi));
    EXPECT_EQ(L.g.nodes[4].p.axis.legacy, 0);
    check_reference("misc_opset13");
}

// ---------------------------------------------------------------- composite lowerings

int value_named(const egc_graph &g, const char *name)
{
    for (int v = 0; v < g.n_values; v++)
        if (g.values[v].name && strcmp(g.values[v].name, name) == 0) return v;
    return -1;
}

// HardSwish, HardSigmoid and ReduceMean become runtime nodes the backends have: Mul, Add and
// Clip; GlobalAveragePool (and a Flatten without keepdims). The ONNX outputs keep their names
// (a target layer is named as in the file), and the results are the reference's.
TEST(LowerComposite, HardSwishHardSigmoidReduceMean)
{
    Lowered L;
    lower_file(data_path("composite_opset14.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    check_graph(L.g);
    EXPECT_EQ(count_op(L.g, EGC_OP_CLIP), 2);
    EXPECT_EQ(count_op(L.g, EGC_OP_GAP), 1);
    int hs = value_named(L.g, "hs"), hg = value_named(L.g, "hg"), r = value_named(L.g, "r");
    ASSERT_GE(hs, 0);
    ASSERT_GE(hg, 0);
    ASSERT_GE(r, 0);
    EXPECT_EQ(L.g.nodes[L.g.values[hs].producer].op, EGC_OP_MUL);  // x * hardsigmoid(x)
    const egc_node &clip = L.g.nodes[L.g.values[hg].producer];
    ASSERT_EQ(clip.op, EGC_OP_CLIP);
    EXPECT_EQ(clip.p.clip.lo, 0.0f);
    EXPECT_EQ(clip.p.clip.hi, 1.0f);
    const egc_node &add = L.g.nodes[L.g.values[clip.in[0]].producer];
    ASSERT_EQ(add.op, EGC_OP_ADD);
    ASSERT_TRUE(L.g.values[add.in[1]].is_const);
    EXPECT_FLOAT_EQ(L.g.values[add.in[1]].f32[0], 0.4f);  // beta
    const egc_node &mul = L.g.nodes[L.g.values[add.in[0]].producer];
    ASSERT_EQ(mul.op, EGC_OP_MUL);
    EXPECT_FLOAT_EQ(L.g.values[mul.in[1]].f32[0], 0.3f);  // alpha
    const egc_node &flat = L.g.nodes[L.g.values[r].producer];
    EXPECT_EQ(flat.op, EGC_OP_RESHAPE);
    EXPECT_EQ(flat.p.reshape.flatten_axis, 1);
    EXPECT_EQ(L.g.nodes[L.g.values[flat.in[0]].producer].op, EGC_OP_GAP);
    EXPECT_EQ(dims(L.g.values[r].shape), (std::vector<int64_t>{1, 4}));
    check_reference("composite_opset14");
}

// LeakyRelu and PRelu: a x + (1 - a) Relu(x) with a scalar alpha or a slope per channel.
TEST(LowerComposite, LeakyReluAndPRelu)
{
    Lowered L;
    lower_file(data_path("leaky_prelu.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    check_graph(L.g);
    EXPECT_EQ(count_op(L.g, EGC_OP_RELU), 2);
    int lr = value_named(L.g, "lr"), pr = value_named(L.g, "pr");
    ASSERT_GE(lr, 0);
    ASSERT_GE(pr, 0);
    EXPECT_EQ(L.g.nodes[L.g.values[lr].producer].op, EGC_OP_ADD);
    const egc_node &add = L.g.nodes[L.g.values[pr].producer];
    ASSERT_EQ(add.op, EGC_OP_ADD);
    const egc_node &pos = L.g.nodes[L.g.values[add.in[1]].producer];
    ASSERT_EQ(pos.op, EGC_OP_MUL);
    const egc_value &oms = L.g.values[pos.in[1]]; // 1 - slope, per channel
    ASSERT_TRUE(oms.is_const);
    EXPECT_EQ(dims(oms.shape), (std::vector<int64_t>{4, 1, 1}));
    EXPECT_EQ(std::vector<float>(oms.f32, oms.f32 + 4), (std::vector<float>{0.75f, 1.5f, 1.0f, -1.0f}));
    check_reference("leaky_prelu");
}

// GlobalMaxPool and ReduceMax over the spatial axes: a MaxPool whose window is the whole
// 6 x 7 input (then a Flatten for keepdims=0).
TEST(LowerComposite, GlobalMaxPoolAndReduceMax)
{
    Lowered L;
    lower_file(data_path("global_max.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    check_graph(L.g);
    EXPECT_EQ(count_op(L.g, EGC_OP_MAXPOOL), 2);
    for (int i = 0; i < L.g.n_nodes; i++)
        if (L.g.nodes[i].op == EGC_OP_MAXPOOL) {
            const egc_pool_params &pp = L.g.nodes[i].p.pool;
            EXPECT_EQ(pp.kh, 6);
            EXPECT_EQ(pp.kw, 7);
            EXPECT_EQ(pp.sh + pp.sw + pp.pt + pp.pl + pp.pb + pp.pr, 2);
        }
    int f2 = value_named(L.g, "f2");
    ASSERT_GE(f2, 0);
    EXPECT_EQ(L.g.nodes[L.g.values[f2].producer].op, EGC_OP_RESHAPE);
    EXPECT_EQ(dims(L.g.values[f2].shape), (std::vector<int64_t>{1, 4}));
    check_reference("global_max");
}

// Squeeze and Unsqueeze of values computed at run time: Reshapes that copy the batch axis.
TEST(LowerComposite, SqueezeAndUnsqueezeAreReshapes)
{
    Lowered L;
    lower_file(data_path("squeeze_unsqueeze.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    check_graph(L.g);
    for (const char *v : {"u1", "u2", "s"}) {
        int id = value_named(L.g, v);
        ASSERT_GE(id, 0) << v;
        const egc_node &r = L.g.nodes[L.g.values[id].producer];
        EXPECT_EQ(r.op, EGC_OP_RESHAPE) << v;
        EXPECT_EQ(r.p.reshape.dims[0], 0) << v; // the batch copied
    }
    EXPECT_EQ(dims(L.g.values[value_named(L.g, "u2")].shape), (std::vector<int64_t>{1, 4, 1, 1}));
    check_reference("squeeze_unsqueeze");
}

TEST(LowerComposite, ReduceMeanAxesInputAndRefusedAxes)
{
    check_reference("reduce_mean_opset18");
    // over the channels: Transpose to channels last, the 1/C MatMul, a Reshape to [N,1,H,W]
    check_reference("reduce_mean_channels");
    Lowered C;
    lower_file(data_path("reduce_mean_channels.onnx"), &C);
    ASSERT_EQ(C.st, EGC_OK) << C.err;
    EXPECT_EQ(count_op(C.g, EGC_OP_TRANSPOSE), 1);
    EXPECT_EQ(count_op(C.g, EGC_OP_MATMUL), 1);
    EXPECT_EQ(C.g.nodes[C.g.values[C.g.output].producer].op, EGC_OP_RESHAPE);
    // over two axes other than the last two (a channels-last global pool): moved last by a
    // Transpose, pooled, then reshaped (keepdims) or flattened
    check_reference("reduce_mean_two_axes");
    Lowered T;
    lower_file(data_path("reduce_mean_two_axes.onnx"), &T);
    ASSERT_EQ(T.st, EGC_OK) << T.err;
    EXPECT_EQ(count_op(T.g, EGC_OP_TRANSPOSE), 2);
    EXPECT_EQ(count_op(T.g, EGC_OP_GAP), 1);
    EXPECT_EQ(count_op(T.g, EGC_OP_MAXPOOL), 1);
    // over three axes (merged by a Reshape, no Transpose), over axes 1 and 3 (a Transpose
    // puts them last, then the Reshape), a sum of squares over 3 and 1
    check_reference("reduce_mean_three_axes");
    Lowered L;
    lower_file(data_path("reduce_mean_three_axes.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    EXPECT_EQ(count_op(L.g, EGC_OP_TRANSPOSE), 2);
    EXPECT_EQ(count_op(L.g, EGC_OP_MATMUL), 3);
    EXPECT_EQ(count_op(L.g, EGC_OP_GAP), 0);
    // over the batch axis too: refused with the reason
    Lowered B;
    lower_file(data_path("reduce_mean_batch.onnx"), &B);
    EXPECT_EQ(B.st, EGC_E_UNSUPPORTED);
    EXPECT_NE(B.err.find("node 'batchmean' (ReduceMean): ReduceMean is supported over axes other "
                         "than the batch only (here 2 axes of a 4-D tensor)"), std::string::npos)
        << B.err;
}

// A small ConvNeXt (torchvision's layout: channels-last LayerNorms between Transposes, a
// GELU MLP, layer scale): as exported with opset 13 (ReduceMean, Pow, Sqrt, Erf) and with
// opset 17 (LayerNormalization), it lowers to runtime nodes only (the means are MatMuls with
// 1/C, Pow 2 a Mul) and gives PyTorch's logits.
TEST(LowerComposite, ConvNeXtLayerNormAndGelu)
{
    for (const char *name : {"convnext_block", "convnext_block_opset17"}) {
        Lowered L;
        lower_file(data_path(std::string(name) + ".onnx"), &L);
        ASSERT_EQ(L.st, EGC_OK) << L.err;
        check_graph(L.g);
        EXPECT_EQ(count_op(L.g, EGC_OP_SQRT), 3) << name; // three LayerNorms
        EXPECT_EQ(count_op(L.g, EGC_OP_ERF), 1) << name;  // one GELU
        EXPECT_EQ(count_op(L.g, EGC_OP_MATMUL), 3 * 2 + 2) << name; // 2 means each, 2 Linears
        for (int i = 0; i < L.g.n_nodes; i++) {
            const egc_node &n = L.g.nodes[i];
            if (n.op != EGC_OP_MATMUL || !L.g.values[n.in[1]].is_const) continue;
            const egc_value &w = L.g.values[n.in[1]];
            if (w.shape.ndim == 2 && w.shape.d[1] == 1) // a mean: [C,1] of 1/C
                for (int64_t k = 0; k < w.shape.d[0]; k++)
                    EXPECT_EQ(w.f32[k], (float)(1.0 / (double)w.shape.d[0])) << name;
        }
        check_reference(name, 2e-5);
    }
}

// The CAM layers of the small ConvNeXt: `auto` and the module path "blk" both name the block's
// output (the residual Add, [N,8,6,6]); the channels-last values inside the block are
// candidates read through their transpose ([1,C,6,6]) and can be named, but `auto` stays on
// the channels-first output after them. The gradient there, back through the head's pooling,
// channels-last LayerNorm and Linear, is PyTorch's.
TEST(LowerComposite, ConvNeXtCamLayerAndGradient)
{
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("convnext_block.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    int autol = -1, blk = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &autol), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_model_find_layer(m, "blk", &blk), EGC_OK) << egc_last_error();
    EXPECT_EQ(autol, blk);
    egc_layer_info li;
    ASSERT_EQ(egc_model_layer(m, blk, &li), EGC_OK);
    EXPECT_STREQ(li.op, "Add");
    EXPECT_EQ(dims(li.shape), (std::vector<int64_t>{1, 8, 6, 6}));
    EXPECT_EQ(egc_model_layer_channels_last(m, blk), 0);
    int nhwc = 0;
    for (int i = 0; i < egc_model_num_layers(m); i++) {
        ASSERT_EQ(egc_model_layer(m, i, &li), EGC_OK);
        if (li.shape.ndim != 4 || li.shape.d[1] != 6 || li.shape.d[2] != 6) continue;
        // [1,6,6,C]: inside the block, between the Transposes
        nhwc++;
        EXPECT_TRUE(li.is_candidate) << li.name;
        EXPECT_EQ(egc_model_layer_channels_last(m, i), 1) << li.name;
        egc_shape cs;
        ASSERT_EQ(egc_model_layer_cam_shape(m, i, &cs), EGC_OK) << egc_last_error();
        EXPECT_EQ(dims(cs), (std::vector<int64_t>{1, li.shape.d[3], 6, 6})) << li.name;
        int k = -1;
        EXPECT_EQ(egc_model_find_layer(m, li.name, &k), EGC_OK) << egc_last_error();
        EXPECT_EQ(k, i);
    }
    EXPECT_GE(nhwc, 10); // LayerNorm, Linear, GELU and Linear parts
    Npy in, want;
    read_npy("convnext_block_in.npy", &in);
    read_npy("convnext_block_grad.npy", &want);
    const int n = (int)in.t.shape.d[0], classes = egc_model_num_classes(m);
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(m, "cpu", n, blk, &s), EGC_OK) << egc_last_error();
    std::vector<float> logits((size_t)n * classes), seed((size_t)n * classes, 0.0f);
    std::vector<float> g(want.vec().size());
    ASSERT_EQ(egc_session_forward(s, in.vec().data(), n, logits.data()), EGC_OK) << egc_last_error();
    seed = top1_seed(logits, n, classes);
    ASSERT_EQ(egc_session_backward(s, seed.data(), n, g.data(), nullptr), EGC_OK) << egc_last_error();
    expect_close(g, want.vec(), 1e-5, "convnext_block gradient at blk");
    egc_session_destroy(s);
    egc_model_destroy(m);
}

// A small vision transformer as torchvision builds one, exported with a symbolic batch. Its
// attention reshapes to [tokens, batch x heads, ...] with sizes folded at batch 1; egcam gives
// those values a leading batch axis (egc_graph_batch_first), so a batch of 3 runs in one pass,
// each image as the file computes one: logits, and the gradient at the patch Conv, as
// PyTorch's for 3 images. Its class token (a constant Concat) is a Pad and an Add.
TEST(LowerComposite, VisionTransformerRunsBatched)
{
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("vit_tiny.onnx").c_str(), &m), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_model_one_image_per_pass(m), 0);
    int patch = -1;
    ASSERT_EQ(egc_model_find_layer(m, "patch", &patch), EGC_OK) << egc_last_error();
    int moved = 0, pads = 0;
    for (int i = 0; i < egc_model_num_layers(m); i++) {
        egc_layer_info li;
        ASSERT_EQ(egc_model_layer(m, i, &li), EGC_OK);
        pads += !strcmp(li.op, "Pad");
        // the attention's values, [1, tokens, 1, ...] or [1, heads, tokens, ...] for one
        // image, are not CAM candidates however 4-D they look
        if (li.shape.ndim == 4 && li.shape.d[1] == 10) {
            moved++;
            EXPECT_FALSE(li.is_candidate) << li.name;
        }
    }
    EXPECT_GE(moved, 5);
    EXPECT_EQ(pads, 1);
    Npy in, out, want;
    read_npy("vit_tiny_in.npy", &in);
    read_npy("vit_tiny_out.npy", &out);
    read_npy("vit_tiny_grad.npy", &want);
    const int n = (int)in.t.shape.d[0], classes = egc_model_num_classes(m);
    ASSERT_EQ(n, 3);
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(m, "cpu", n, patch, &s), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_session_chunk(s), 3);
    std::vector<float> logits((size_t)n * classes), seed((size_t)n * classes, 0.0f);
    std::vector<float> g(want.vec().size());
    ASSERT_EQ(egc_session_forward(s, in.vec().data(), n, logits.data()), EGC_OK) << egc_last_error();
    expect_close(logits, out.vec(), 1e-5, "vit_tiny logits");
    seed = top1_seed(logits, n, classes);
    ASSERT_EQ(egc_session_backward(s, seed.data(), n, g.data(), nullptr), EGC_OK) << egc_last_error();
    expect_close(g, want.vec(), 1e-5, "vit_tiny gradient at patch");
    // rows apart: the first image alone gives its own logits
    std::vector<float> one((size_t)classes);
    ASSERT_EQ(egc_session_forward(s, in.vec().data(), 1, one.data()), EGC_OK) << egc_last_error();
    const std::vector<float> all = out.vec();
    expect_close(one, std::vector<float>(all.begin(), all.begin() + classes), 1e-5,
                 "vit_tiny logits of image 0 alone");
    egc_session_destroy(s);
    egc_model_destroy(m);
    ASSERT_EQ(egc_model_load(data_path("convnext_block.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    EXPECT_EQ(egc_model_one_image_per_pass(m), 0);
    egc_model_destroy(m);
}

// A model exported at batch 1 that convolves along its batch axis (its channels moved there,
// each convolved as an image of its own) cannot be given a leading batch axis: it runs one
// image per pass (a batch of 3 is three passes), each image exactly as the file computes one.
TEST(LowerComposite, BatchAxisConvolutionRunsOneImagePerPass)
{
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("batch_conv.onnx").c_str(), &m), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_model_one_image_per_pass(m), 1);
    Npy in, out;
    read_npy("batch_conv_in.npy", &in);
    read_npy("batch_conv_out.npy", &out);
    const int n = (int)in.t.shape.d[0], classes = egc_model_num_classes(m);
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(m, "cpu", n, -1, &s), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_session_chunk(s), 1);
    char desc[4096];
    egc_session_describe(s, desc, sizeof desc);
    EXPECT_NE(std::string(desc).find("batch 3 run one image per pass"), std::string::npos) << desc;
    std::vector<float> logits((size_t)n * classes);
    ASSERT_EQ(egc_session_forward(s, in.vec().data(), n, logits.data()), EGC_OK) << egc_last_error();
    expect_close(logits, out.vec(), 1e-5, "batch_conv logits");
    egc_session_destroy(s);
    egc_model_destroy(m);
}

// A CPU session of m at layer `layer` (a token or channels-last layer) on NAME_in.npy: the
// logits are NAME_out.npy's, and the activation and gradient of the top-1 logits at the layer,
// read as an image, are NAME_WHAT_act.npy's and NAME_WHAT_grad.npy's (PyTorch's with
// pytorch-grad-cam's reshape_transform), within 1e-5. The session's target shape and rows per
// pass into *ts and *chunk.
void check_view_layer(egc_model *m, int layer, const std::string &name, const std::string &what,
                      egc_shape *ts, int *chunk)
{
    Npy in, out, want_a, want_g;
    read_npy(name + "_in.npy", &in);
    read_npy(name + "_out.npy", &out);
    read_npy(name + "_" + what + "_act.npy", &want_a);
    read_npy(name + "_" + what + "_grad.npy", &want_g);
    const int n = (int)in.t.shape.d[0], classes = egc_model_num_classes(m);
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(m, "cpu", n, layer, &s), EGC_OK) << egc_last_error();
    *ts = egc_session_target_shape(s);
    *chunk = egc_session_chunk(s);
    std::vector<float> logits((size_t)n * classes);
    std::vector<float> g(want_g.vec().size()), a(want_a.vec().size());
    ASSERT_EQ(egc_session_forward(s, in.vec().data(), n, logits.data()), EGC_OK) << egc_last_error();
    expect_close(logits, out.vec(), 1e-5, (name + " logits through the view").c_str());
    std::vector<float> seed = top1_seed(logits, n, classes);
    ASSERT_EQ(egc_session_backward(s, seed.data(), n, g.data(), a.data()), EGC_OK)
        << egc_last_error();
    expect_close(a, want_a.vec(), 1e-5, (name + " " + what + " activation").c_str());
    expect_close(g, want_g.vec(), 1e-5, (name + " " + what + " gradient").c_str());
    egc_session_destroy(s);
}

// The vision transformer's token layers are CAM candidates read as images: `auto` is the
// input of the last attention (the block's first LayerNorm, as pytorch-grad-cam's users
// target it), and a session there gives the activation and gradient of its patch tokens as
// [N,C,3,3], as PyTorch's with reshape_transform, with the logits unchanged.
TEST(LowerComposite, VisionTransformerTokenLayerIsReadAsAnImage)
{
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("vit_tiny.onnx").c_str(), &m), EGC_OK) << egc_last_error();
    int autol = -1, ln1 = -1, patch = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &autol), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_model_find_layer(m, "layer.ln_1", &ln1), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_model_find_layer(m, "patch", &patch), EGC_OK) << egc_last_error();
    EXPECT_EQ(autol, ln1);
    int prefix = -1, gh = -1, gw = -1;
    ASSERT_EQ(egc_model_layer_tokens(m, ln1, &prefix, &gh, &gw), 1);
    EXPECT_EQ(prefix, 1);
    EXPECT_EQ(gh, 3);
    EXPECT_EQ(gw, 3);
    EXPECT_EQ(egc_model_layer_tokens(m, patch, nullptr, nullptr, nullptr), 0);
    egc_layer_info li;
    ASSERT_EQ(egc_model_layer(m, ln1, &li), EGC_OK);
    EXPECT_TRUE(li.is_candidate);
    EXPECT_EQ(dims(li.shape), (std::vector<int64_t>{1, 10, 8}));
    egc_shape cs;
    ASSERT_EQ(egc_model_layer_cam_shape(m, ln1, &cs), EGC_OK);
    EXPECT_EQ(dims(cs), (std::vector<int64_t>{1, 8, 3, 3}));
    egc_shape ts{};
    int chunk = 0;
    check_view_layer(m, ln1, "vit_tiny", "tokens", &ts, &chunk);
    EXPECT_EQ(dims(ts), (std::vector<int64_t>{1, 8, 3, 3}));
    egc_model_destroy(m);
}

// A DeiT-style transformer with timm's attention ([3, batch, heads, tokens, dims] split with
// unbind: Split and Squeeze on axis 0, which for a batch-1 export is the image's own) and two
// prefix tokens (class and distillation): it runs in whole batches, `auto` is the last
// block's norm1, read as a 3x3 image of its patch tokens, and its logits, activation and
// gradient there are PyTorch's for 3 images.
TEST(LowerComposite, DeitStyleTransformerWithSplitAttention)
{
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("deit_tiny.onnx").c_str(), &m), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_model_one_image_per_pass(m), 0);
    int autol = -1, norm1 = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &autol), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_model_find_layer(m, "blocks.1.norm1", &norm1), EGC_OK) << egc_last_error();
    EXPECT_EQ(autol, norm1);
    int prefix = -1, gh = -1, gw = -1;
    ASSERT_EQ(egc_model_layer_tokens(m, norm1, &prefix, &gh, &gw), 1);
    EXPECT_EQ(prefix, 2);
    EXPECT_EQ(gh, 3);
    EXPECT_EQ(gw, 3);
    for (int i = 0; i < egc_model_num_layers(m); i++) {
        egc_layer_info li;
        ASSERT_EQ(egc_model_layer(m, i, &li), EGC_OK);
        // queries, keys, values and scores ([1, heads, tokens, ...]) are no CAM layers
        if (li.shape.ndim == 4 && li.shape.d[1] == 2) EXPECT_FALSE(li.is_candidate) << li.name;
    }
    egc_shape ts{};
    int chunk = 0;
    check_view_layer(m, norm1, "deit_tiny", "tokens", &ts, &chunk);
    EXPECT_EQ(chunk, 3); // the 3 images in one pass
    egc_model_destroy(m);
}

// A session with whole_target reads the target layer itself, not the CAM's view: at the
// DeiT-style model's last norm1, [N,11,8] with the class and distillation tokens, whose
// activation and gradient are PyTorch's. egc_model_layer_bypassed says where a residual
// connection goes around a layer (norm1 inside a block, the ConvNeXt block's depthwise Conv)
// and where every path passes it (block outputs, Swin's final norm).
TEST(LowerComposite, WholeTargetAndBypassedLayers)
{
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("deit_tiny.onnx").c_str(), &m), EGC_OK) << egc_last_error();
    int norm1 = -1, block = -1;
    ASSERT_EQ(egc_model_find_layer(m, "blocks.1.norm1", &norm1), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_model_find_layer(m, "blocks.1", &block), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_model_layer_bypassed(m, norm1), 1);
    EXPECT_EQ(egc_model_layer_bypassed(m, block), 0);
    EXPECT_EQ(egc_model_layer_bypassed(m, egc_model_num_layers(m)), -1);
    Npy in, want_a, want_g;
    read_npy("deit_tiny_in.npy", &in);
    read_npy("deit_tiny_layer_act.npy", &want_a);
    read_npy("deit_tiny_layer_grad.npy", &want_g);
    const int n = (int)in.t.shape.d[0], classes = egc_model_num_classes(m);
    egc_session_options so;
    egc_session_options_default(&so);
    so.whole_target = 1;
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create_ex(m, "cpu", n, norm1, &so, &s), EGC_OK) << egc_last_error();
    const egc_shape ts = egc_session_target_shape(s);
    EXPECT_EQ(dims(ts), (std::vector<int64_t>{1, 11, 8}));
    std::vector<float> logits((size_t)n * classes), g(want_g.vec().size()), a(g.size());
    ASSERT_EQ(egc_session_forward(s, in.vec().data(), n, logits.data()), EGC_OK) << egc_last_error();
    std::vector<float> seed = top1_seed(logits, n, classes);
    ASSERT_EQ(egc_session_backward(s, seed.data(), n, g.data(), a.data()), EGC_OK)
        << egc_last_error();
    expect_close(a, want_a.vec(), 1e-5, "deit_tiny norm1, whole layer");
    expect_close(g, want_g.vec(), 1e-5, "deit_tiny norm1 gradient, whole layer");
    egc_session_destroy(s);
    egc_model_destroy(m);

    ASSERT_EQ(egc_model_load(data_path("convnext_block.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    int blk = -1, dw = -1;
    ASSERT_EQ(egc_model_find_layer(m, "blk", &blk), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_model_find_layer(m, "blk.dw", &dw), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_model_layer_bypassed(m, blk), 0);
    EXPECT_EQ(egc_model_layer_bypassed(m, dw), 1);
    egc_model_destroy(m);
    ASSERT_EQ(egc_model_load(data_path("swin_tiny.onnx").c_str(), &m), EGC_OK) << egc_last_error();
    int norm = -1;
    ASSERT_EQ(egc_model_find_layer(m, "norm", &norm), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_model_layer_bypassed(m, norm), 0);
    egc_model_destroy(m);
}

// Models whose input is channels last, [N,H,W,3] (Keras, TensorFlow and TFLite exports): egcam's
// input is [N,3,H,W]; a Transpose at the start makes the file's tensor (keras_nhwc rescales it
// before its own Transpose back), or nothing where the file transposes back at once
// (nhwc_direct: no Transpose left). Logits, and the activation and gradient at relu2, are
// PyTorch's for the same images given channels last.
TEST(LowerComposite, ChannelsLastInputIsTransposedAtLoad)
{
    check_reference("keras_nhwc");
    check_reference("nhwc_direct");
    for (const char *name : {"keras_nhwc", "nhwc_direct"}) {
        SCOPED_TRACE(name);
        Lowered L;
        lower_file(data_path(std::string(name) + ".onnx"), &L);
        ASSERT_EQ(L.st, EGC_OK) << L.err;
        EXPECT_EQ(L.g.input_channels_last, 1);
        EXPECT_EQ(dims(L.g.values[L.g.input].shape), (std::vector<int64_t>{1, 3, 8, 8}));
        EXPECT_EQ(count_op(L.g, EGC_OP_TRANSPOSE), std::string(name) == "keras_nhwc" ? 2 : 0);
    }
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("keras_nhwc.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    EXPECT_EQ(egc_model_input_channels_last(m), 1);
    int c = 0, h = 0, w = 0, relu2 = -1, autol = -1;
    egc_model_input_chw(m, &c, &h, &w);
    EXPECT_EQ(c, 3);
    EXPECT_EQ(h, 8);
    EXPECT_EQ(w, 8);
    ASSERT_EQ(egc_model_find_layer(m, "relu2", &relu2), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_model_find_layer(m, "auto", &autol), EGC_OK) << egc_last_error();
    EXPECT_EQ(autol, relu2);
    egc_shape ts{};
    int chunk = 0;
    check_view_layer(m, relu2, "keras_nhwc", "relu2", &ts, &chunk);
    EXPECT_EQ(dims(ts), (std::vector<int64_t>{1, 6, 8, 8}));
    egc_model_destroy(m);
    // keras_head: channels last again before its pool (ReduceMean over axes 1 and 2)
    check_reference("keras_head");
    ASSERT_EQ(egc_model_load(data_path("keras_head.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    ASSERT_EQ(egc_model_find_layer(m, "relu2", &relu2), EGC_OK) << egc_last_error();
    check_view_layer(m, relu2, "keras_head", "relu2", &ts, &chunk);
    egc_model_destroy(m);
    // an input of 3 channels first stays as it is
    Lowered F;
    lower_file(data_path("inception_concat.onnx"), &F);
    ASSERT_EQ(F.st, EGC_OK) << F.err;
    EXPECT_EQ(F.g.input_channels_last, 0);
}

// A model whose output is a Softmax over the classes (Keras' classifiers end so): egcam leaves
// it out and its sessions give the logits (PyTorch's, before the Softmax); a model without one
// keeps its output.
TEST(LowerComposite, FinalSoftmaxIsLeftOut)
{
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("keras_softmax.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    EXPECT_EQ(egc_model_output_softmax_removed(m), 1);
    EXPECT_EQ(egc_model_num_classes(m), 4);
    EXPECT_EQ(egc_model_one_image_per_pass(m), 0); // the removed node's output is made by nothing
    for (int i = 0; i < egc_model_num_layers(m); i++) {
        egc_layer_info li;
        ASSERT_EQ(egc_model_layer(m, i, &li), EGC_OK);
        EXPECT_STRNE(li.op, "Softmax") << li.name;
    }
    Npy in, want;
    read_npy("keras_softmax_in.npy", &in);
    read_npy("keras_softmax_logits.npy", &want);
    const int n = (int)in.t.shape.d[0];
    int layer = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &layer), EGC_OK);
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(m, "cpu", n, layer, &s), EGC_OK) << egc_last_error();
    std::vector<float> logits((size_t)n * 4);
    ASSERT_EQ(egc_session_forward(s, in.vec().data(), n, logits.data()), EGC_OK);
    expect_close(logits, want.vec(), 1e-5, "keras_softmax logits");
    egc_session_destroy(s);
    egc_model_destroy(m);
    ASSERT_EQ(egc_model_load(data_path("keras_head.onnx").c_str(), &m), EGC_OK);
    EXPECT_EQ(egc_model_output_softmax_removed(m), 0);
    egc_model_destroy(m);
}

// A model that ends in a LogSoftmax (PyTorch's MNIST example, trained with NLLLoss): lowered as
// a Softmax and a Log, it gives PyTorch's log-probabilities; loaded as a model, both are left
// out, its sessions give the logits before them, and it runs whole batches.
TEST(LowerComposite, FinalLogSoftmaxIsLeftOut)
{
    check_reference("mnist_logsoftmax", 1e-5);
    Lowered L;
    lower_file(data_path("mnist_logsoftmax.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    EXPECT_EQ(count_op(L.g, EGC_OP_SOFTMAX), 1);
    EXPECT_EQ(count_op(L.g, EGC_OP_LOG), 1);
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("mnist_logsoftmax.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    EXPECT_EQ(egc_model_output_softmax_removed(m), 2);
    EXPECT_EQ(egc_model_num_classes(m), 10);
    EXPECT_EQ(egc_model_one_image_per_pass(m), 0);
    for (int i = 0; i < egc_model_num_layers(m); i++) {
        egc_layer_info li;
        ASSERT_EQ(egc_model_layer(m, i, &li), EGC_OK);
        EXPECT_STRNE(li.op, "Softmax") << li.name;
        EXPECT_STRNE(li.op, "Log") << li.name;
    }
    Npy in, want;
    read_npy("mnist_logsoftmax_in.npy", &in);
    read_npy("mnist_logsoftmax_logits.npy", &want);
    const int n = (int)in.t.shape.d[0];
    int layer = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &layer), EGC_OK);
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(m, "cpu", n, layer, &s), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_session_chunk(s), n);
    std::vector<float> logits((size_t)n * 10);
    ASSERT_EQ(egc_session_forward(s, in.vec().data(), n, logits.data()), EGC_OK);
    expect_close(logits, want.vec(), 1e-5, "mnist_logsoftmax logits");
    egc_session_destroy(s);
    egc_model_destroy(m);
}

// Resize in PyTorch's F.interpolate modes (bilinear down and up, bicubic with align_corners,
// nearest by factors that are not whole): each is a MatMul along W and one along H between
// two Transposes, with ONNX's interpolation matrices; the export gives PyTorch's logits, and
// the activation and gradient at relu1, whose head runs backward through three Resizes.
// (ONNX's own Resize cases, every mode and coordinate transformation, are in the conformance
// test.)
TEST(LowerComposite, ResizeModes)
{
    check_reference("resize_modes", 1e-5);
    Lowered L;
    lower_file(data_path("resize_modes.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    EXPECT_EQ(count_op(L.g, EGC_OP_MATMUL), 8);
    EXPECT_EQ(count_op(L.g, EGC_OP_TRANSPOSE), 8);
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("resize_modes.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    EXPECT_EQ(egc_model_one_image_per_pass(m), 0);
    int relu1 = -1;
    ASSERT_EQ(egc_model_find_layer(m, "relu1", &relu1), EGC_OK) << egc_last_error();
    egc_shape ts{};
    int chunk = 0;
    check_view_layer(m, relu1, "resize_modes", "relu1", &ts, &chunk);
    egc_model_destroy(m);
}

// A model exported with dynamic H and W axes loads at the size given (its Resize sizes, made
// from the activation's Shape, fold for that size) and gives PyTorch's logits at 20x20 and at
// 24x16; without a size the error says how to give one; a file whose size is fixed loads only
// at that size; half a size, or a negative one, is refused.
TEST(LowerComposite, DynamicImageSize)
{
    const std::string path = data_path("dynamic_hw.onnx");
    egc_model *m = nullptr;
    EXPECT_EQ(egc_model_load(path.c_str(), &m), EGC_E_ARG);
    EXPECT_NE(std::string(egc_last_error()).find("dim 2 is symbolic or empty; egcam needs fixed "
                                                 "sizes after the batch dim (give the image size "
                                                 "the model runs at: --input-size HxW"),
              std::string::npos) << egc_last_error();
    const int sizes[2][2] = {{20, 20}, {24, 16}};
    const char *stems[2] = {"dynamic_hw", "dynamic_hw_b"};
    for (int k = 0; k < 2; k++) {
        ASSERT_EQ(egc_model_load_sized(path.c_str(), sizes[k][0], sizes[k][1], &m), EGC_OK)
            << egc_last_error();
        int c, h, w;
        egc_model_input_chw(m, &c, &h, &w);
        EXPECT_EQ(h, sizes[k][0]);
        EXPECT_EQ(w, sizes[k][1]);
        Npy in, want;
        read_npy(std::string(stems[k]) + "_in.npy", &in);
        read_npy(std::string(stems[k]) + "_out.npy", &want);
        const int n = (int)in.t.shape.d[0];
        int layer = -1;
        ASSERT_EQ(egc_model_find_layer(m, "relu1", &layer), EGC_OK);
        egc_session *s = nullptr;
        ASSERT_EQ(egc_session_create(m, "cpu", n, layer, &s), EGC_OK) << egc_last_error();
        std::vector<float> logits((size_t)n * 4);
        ASSERT_EQ(egc_session_forward(s, in.vec().data(), n, logits.data()), EGC_OK);
        expect_close(logits, want.vec(), 1e-5, stems[k]);
        egc_session_destroy(s);
        egc_model_destroy(m);
        m = nullptr;
    }
    const std::string fixed = data_path("resize_modes.onnx"); // [N,3,12,12]
    ASSERT_EQ(egc_model_load_sized(fixed.c_str(), 12, 12, &m), EGC_OK) << egc_last_error();
    egc_model_destroy(m);
    m = nullptr;
    EXPECT_EQ(egc_model_load_sized(fixed.c_str(), 12, 10, &m), EGC_E_ARG);
    EXPECT_NE(std::string(egc_last_error()).find("its width is fixed at 12, not the 10 given"),
              std::string::npos) << egc_last_error();
    EXPECT_EQ(m, nullptr);
    EXPECT_EQ(egc_model_load_sized(path.c_str(), 0, 16, &m), EGC_E_ARG);
    EXPECT_EQ(egc_model_load_sized(path.c_str(), -4, -4, &m), EGC_E_ARG);
    EXPECT_EQ(m, nullptr);
}

// Quantized models. PyTorch's export of a quantization-aware model (QuantizeLinear and
// DequantizeLinear pairs on the input, on per-channel and per-tensor int8 weights, on uint8
// activations) gives PyTorch's logits, and at relu1 its activation and gradient (the head runs
// backward through the pairs, straight through where not clamped, as PyTorch's fake
// quantization); a model as ONNX Runtime's quantizer writes it (int8 weights and int32 biases
// stored quantized, per channel) gives the float64 reference. A QuantizeLinear's integers read
// by another operator, a DequantizeLinear with other parameters, and scales per channel on an
// activation are refused with the reason.
TEST(LowerComposite, QuantizedModels)
{
    check_reference("qdq_cnn", 1e-5);
    check_reference("qdq_ort", 1e-5);
    Lowered L;
    lower_file(data_path("qdq_cnn.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    EXPECT_EQ(count_op(L.g, EGC_OP_FAKE_QUANT), 3); // the input and two activations
    Lowered O;
    lower_file(data_path("qdq_ort.onnx"), &O);
    ASSERT_EQ(O.st, EGC_OK) << O.err;
    EXPECT_EQ(count_op(O.g, EGC_OP_FAKE_QUANT), 2);
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("qdq_cnn.onnx").c_str(), &m), EGC_OK) << egc_last_error();
    int relu1 = -1, autol = -1;
    ASSERT_EQ(egc_model_find_layer(m, "relu1", &relu1), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_model_find_layer(m, "auto", &autol), EGC_OK);
    egc_layer_info li;
    ASSERT_EQ(egc_model_layer(m, autol, &li), EGC_OK);
    EXPECT_STREQ(li.op, "Relu"); // the activation, not its quantized copy
    EXPECT_EQ(egc_model_quantized_pairs(m, -1), 3);
    EXPECT_EQ(egc_model_quantized_pairs(m, egc_model_num_layers(m) - 1), 0);
    EXPECT_EQ(egc_model_quantized_pairs(nullptr, -1), 0);
    egc_shape ts{};
    int chunk = 0;
    check_view_layer(m, relu1, "qdq_cnn", "relu1", &ts, &chunk);
    egc_model_destroy(m);
    const struct {
        const char *file, *msg;
    } bad[] = {
        {"qdq_int_op.onnx", "node 'int_relu' (Relu): reads 'q', the quantized (integer) output of "
                            "QuantizeLinear node 'quant'"},
        {"qdq_rescale.onnx", "node 'dequant' (DequantizeLinear): its scale and zero point (0.2, "
                             "0) differ from those of QuantizeLinear node 'quant'"},
        {"qdq_axis.onnx", "node 'quant' (QuantizeLinear): on a value computed at run time, a "
                          "scale per tensor (one constant float) is supported; 's' is more than "
                          "one value"},
        {"qdq_int_output.onnx", "graph output 'y' is the quantized (integer) output of "
                                "QuantizeLinear node 'quant_out'"},
    };
    for (const auto &b : bad) {
        Lowered B;
        lower_file(data_path(b.file), &B);
        EXPECT_EQ(B.st, EGC_E_UNSUPPORTED) << b.file;
        EXPECT_NE(B.err.find(b.msg), std::string::npos) << B.err;
    }
    // ONNX Runtime's layout: no Relus (the uint8 pair with zero point 0 is the activation, and
    // `auto`), an int8 DequantizeLinear without a zero point, a quantized final Softmax left
    // out (its input the logits); the pairs are named by their DequantizeLinear's output
    ASSERT_EQ(egc_model_load(data_path("qdq_ort_head.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    EXPECT_EQ(egc_model_output_softmax_removed(m), 1);
    EXPECT_EQ(egc_model_one_image_per_pass(m), 0);
    ASSERT_EQ(egc_model_find_layer(m, "auto", &autol), EGC_OK);
    ASSERT_EQ(egc_model_layer(m, autol, &li), EGC_OK);
    EXPECT_STREQ(li.name, "dd");
    EXPECT_STREQ(li.op, "QuantizeDequantize");
    int cd = -1;
    EXPECT_EQ(egc_model_find_layer(m, "cd", &cd), EGC_OK) << egc_last_error();
    Npy in, want;
    read_npy("qdq_ort_head_in.npy", &in);
    read_npy("qdq_ort_head_logits.npy", &want);
    const int n = (int)in.t.shape.d[0];
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(m, "cpu", n, autol, &s), EGC_OK) << egc_last_error();
    std::vector<float> logits((size_t)n * 3);
    ASSERT_EQ(egc_session_forward(s, in.vec().data(), n, logits.data()), EGC_OK);
    expect_close(logits, want.vec(), 1e-5, "qdq_ort_head logits");
    egc_session_destroy(s);
    egc_model_destroy(m);
}

// Every form of Resize egcam takes (the three modes, the six coordinate transformations, the
// four nearest roundings, cubic with A = -0.75 and with -0.5 and exclude_outside; factors 0.6,
// 1.4 and 2.5 as scales and as sizes; 504 nodes on inputs of 4x5 and 7x2) against ONNX's
// reference implementation in float64 (tools/gen_lower_cases.py, resize_reference).
TEST(LowerComposite, ResizeGridAgainstOnnxReference)
{
    check_reference("resize_grid_a", 1e-5);
    check_reference("resize_grid_b", 1e-5);
}

// Scale factors that are not whole (F.interpolate(scale_factor=1.4), then 0.7): the output
// sizes are floor(in x scale) in float32 (10 x 1.4f gives 14, not the 13 of the product in
// double), and an ELU whose input is exactly 0 over a padded border takes PyTorch's gradient
// there (alpha, its x <= 0 branch): PyTorch's logits, and its activation and gradient at the
// Conv, whose head runs backward through the ELU and a Resize.
TEST(LowerComposite, ResizeByFractionsAndEluAtZero)
{
    check_reference("resize_fraction", 1e-5);
    Lowered L;
    lower_file(data_path("resize_fraction.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    const int r = value_named(L.g, "/Resize_output_0");
    ASSERT_GE(r, 0);
    EXPECT_EQ(dims(L.g.values[r].shape), (std::vector<int64_t>{1, 3, 14, 14}));
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("resize_fraction.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    int conv = -1;
    ASSERT_EQ(egc_model_find_layer(m, "conv", &conv), EGC_OK) << egc_last_error();
    egc_shape ts{};
    int chunk = 0;
    check_view_layer(m, conv, "resize_fraction", "conv", &ts, &chunk);
    egc_model_destroy(m);
}

// An ELU of +inf is +inf, of -inf is -alpha, of NaN NaN (the minimum as a Clip, not as
// x - relu(x), which is inf - inf there).
TEST(LowerComposite, EluAtInfinity)
{
    Lowered E;
    lower_file(data_path("elu_inf.onnx"), &E);
    ASSERT_EQ(E.st, EGC_OK) << E.err;
    const std::vector<float> x = {INFINITY, -INFINITY, 2.0f, -1.0f, 0.0f, NAN};
    egc_shape os;
    std::vector<float> y = run(E.g, 1, x, &os);
    ASSERT_EQ(y.size(), 6u);
    EXPECT_TRUE(std::isinf(y[0]) && y[0] > 0) << y[0];
    EXPECT_FLOAT_EQ(y[1], -0.5f);
    EXPECT_FLOAT_EQ(y[2], 2.0f);
    EXPECT_NEAR(y[3], 0.5 * (std::exp(-1.0) - 1.0), 1e-7);
    EXPECT_EQ(y[4], 0.0f);
    EXPECT_TRUE(std::isnan(y[5]));
}

// The exponential units: PyTorch's export of ELU, Mish (Softplus, Tanh, Mul), CELU, SELU,
// Softplus and Softsign (Abs, Add, Div) gives PyTorch's logits, and the activation and
// gradient at the ELU, whose head runs backward through all of them; the Mish operator of
// opset 18, Softsign, Exp and Log give the float64 reference (Softplus at +-30 included).
TEST(LowerComposite, ExponentialUnits)
{
    check_reference("exp_units", 1e-5);
    check_reference("mish_opset18", 1e-5);
    Lowered L;
    lower_file(data_path("exp_units.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    EXPECT_EQ(count_op(L.g, EGC_OP_EXP), 3);      // ELU, CELU, SELU
    EXPECT_EQ(count_op(L.g, EGC_OP_SOFTPLUS), 2); // Mish, Softplus
    Lowered M;
    lower_file(data_path("mish_opset18.onnx"), &M);
    ASSERT_EQ(M.st, EGC_OK) << M.err;
    EXPECT_EQ(count_op(M.g, EGC_OP_SOFTPLUS), 1);
    EXPECT_EQ(count_op(M.g, EGC_OP_EXP), 1);
    EXPECT_EQ(count_op(M.g, EGC_OP_LOG), 1);
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("exp_units.onnx").c_str(), &m), EGC_OK) << egc_last_error();
    int act1 = -1;
    ASSERT_EQ(egc_model_find_layer(m, "act1", &act1), EGC_OK) << egc_last_error();
    egc_shape ts{};
    int chunk = 0;
    check_view_layer(m, act1, "exp_units", "act1", &ts, &chunk);
    egc_model_destroy(m);
}

// GroupNorm and InstanceNorm: PyTorch's export (GroupNorm as Reshape, InstanceNormalization,
// Reshape, Mul, Add; InstanceNorm2d as InstanceNormalization) gives PyTorch's logits, and the
// activation and gradient at relu1, whose head runs backward through the InstanceNormalization;
// GroupNormalization with scale and bias per group (opset 18) and per channel (21) gives the
// float64 reference; a LayerNorm over [C,H,W] (LayerNormalization over the last three axes)
// PyTorch's logits. Only runtime nodes egcam has (Reshape, MatMul, Sub, Mul, Sqrt, Div, Add).
TEST(LowerComposite, GroupAndInstanceNormalization)
{
    check_reference("group_norm", 1e-5);
    check_reference("group_norm_opset18", 1e-5);
    check_reference("group_norm_opset21", 1e-5);
    check_reference("layer_norm_chw", 1e-5); // LayerNormalization over the last three axes
    Lowered L;
    lower_file(data_path("group_norm.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    EXPECT_EQ(count_op(L.g, EGC_OP_SQRT), 2);
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("group_norm.onnx").c_str(), &m), EGC_OK) << egc_last_error();
    int relu1 = -1;
    ASSERT_EQ(egc_model_find_layer(m, "relu1", &relu1), EGC_OK) << egc_last_error();
    egc_shape ts{};
    int chunk = 0;
    check_view_layer(m, relu1, "group_norm", "relu1", &ts, &chunk);
    EXPECT_EQ(dims(ts), (std::vector<int64_t>{1, 6, 6, 6}));
    egc_model_destroy(m);
}

// A model of gray images: three shared CIFAR-10 images made gray by egcam (the preset's
// geometry, Pillow's convert("L"), MNIST's mean and std as a preset of your own) are the
// tensors PIL and torchvision make, bit for bit, and the model's logits PyTorch's.
TEST(LowerComposite, GrayModelAndGrayImages)
{
    check_reference("gray_cnn");
    Npy in;
    read_npy("gray_cnn_in.npy", &in);
    ASSERT_EQ(dims(in.t.shape), (std::vector<int64_t>{3, 1, 28, 28}));
    egc_preset p;
    ASSERT_EQ(egc_preset_parse("cifar:mean=0.1307:std=0.3081", &p), EGC_OK) << egc_last_error();
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "/data/cifar10-test/cat/%04d.jpg", k);
        egc_image img{0, 0, nullptr};
        ASSERT_EQ(egc_image_load((std::string(EGC_SHARED_DIR) + name).c_str(), &img), EGC_OK)
            << egc_last_error();
        std::vector<float> x(28 * 28);
        egc_status st = egc_preprocess_channels(&img, p, 1, 28, 28, x.data());
        egc_image_free(&img);
        ASSERT_EQ(st, EGC_OK) << egc_last_error();
        EXPECT_EQ(memcmp(x.data(), in.vec().data() + (size_t)k * 28 * 28, x.size() * sizeof(float)),
                  0) << name;
    }
    egc_image img{0, 0, nullptr};
    ASSERT_EQ(egc_image_load((std::string(EGC_SHARED_DIR) + "/data/photos/cat.bmp").c_str(), &img),
              EGC_OK);
    std::vector<float> x2(2 * 28 * 28);
    EXPECT_EQ(egc_preprocess_channels(&img, p, 2, 28, 28, x2.data()), EGC_E_UNSUPPORTED);
    egc_image_free(&img);
}

// CBAM's spatial attention: the maximum over the channels (ReduceMax over axis 1: a MaxPool
// whose window is that axis, between Transposes) and the mean over them give PyTorch's logits,
// and the activation and gradient at relu1, whose head runs backward through the maximum.
TEST(LowerComposite, MaximumOverOneAxis)
{
    check_reference("cbam", 1e-5);
    Lowered L;
    lower_file(data_path("cbam.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    EXPECT_EQ(count_op(L.g, EGC_OP_MAXPOOL), 1);
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("cbam.onnx").c_str(), &m), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_model_one_image_per_pass(m), 0);
    int relu1 = -1;
    ASSERT_EQ(egc_model_find_layer(m, "relu1", &relu1), EGC_OK) << egc_last_error();
    egc_shape ts{};
    int chunk = 0;
    check_view_layer(m, relu1, "cbam", "relu1", &ts, &chunk);
    EXPECT_EQ(chunk, 3);
    egc_model_destroy(m);
}

// An HRNet-style fusion: a nearest-neighbour Resize by 2 (PyTorch's nn.Upsample: asymmetric,
// floor) as a Reshape, a Mul with ones and a Reshape gives PyTorch's logits, and the
// activation and gradient at the half-resolution branch, whose gradient sums each block.
TEST(LowerComposite, NearestUpsampling)
{
    check_reference("upsample_fuse", 1e-5);
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("upsample_fuse.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    EXPECT_EQ(egc_model_one_image_per_pass(m), 0);
    int low = -1;
    ASSERT_EQ(egc_model_find_layer(m, "low", &low), EGC_OK) << egc_last_error();
    egc_shape ts{};
    int chunk = 0;
    check_view_layer(m, low, "upsample_fuse", "low", &ts, &chunk);
    EXPECT_EQ(dims(ts), (std::vector<int64_t>{1, 4, 4, 4}));
    EXPECT_EQ(chunk, 3);
    egc_model_destroy(m);
    Lowered r;
    lower_file(data_path("resize_policy.onnx"), &r);
    EXPECT_EQ(r.st, EGC_E_UNSUPPORTED);
    EXPECT_NE(r.err.find("node 'resize' (Resize): keep_aspect_ratio_policy='not_larger' is not "
                         "supported (only 'stretch')"), std::string::npos) << r.err;
}

// An Inception-style module: `auto` is its Concat, which every path from the input passes
// (pytorch-grad-cam's users target Inception modules so), not the last branch's Relu, which the
// other branch goes around (a CAM there would see 4 of the 8 channels).
TEST(LowerComposite, AutoIsTheInceptionModulesConcat)
{
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("inception_concat.onnx").c_str(), &m), EGC_OK)
        << egc_last_error();
    int autol = -1, mix = -1, r3 = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &autol), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_model_find_layer(m, "mix", &mix), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_model_find_layer(m, "r3", &r3), EGC_OK) << egc_last_error();
    EXPECT_EQ(autol, mix);
    egc_layer_info li;
    ASSERT_EQ(egc_model_layer(m, autol, &li), EGC_OK);
    EXPECT_STREQ(li.op, "Concat");
    EXPECT_EQ(dims(li.shape), (std::vector<int64_t>{1, 8, 6, 6}));
    EXPECT_EQ(egc_model_layer_bypassed(m, autol), 0);
    EXPECT_EQ(egc_model_layer_bypassed(m, r3), 1);
    egc_model_destroy(m);
}

// egc_session_forward_offset: the logits with an offset added to the target activation. On a
// linear head (GlobalAveragePool and Gemm after the Inception module's Concat) the change of
// each logit is the gradient's dot product with the offset; a zero offset gives the plain
// forward's logits; too many rows or no target layer is EGC_E_ARG. The same for the model
// exported with a fixed batch of 2, whose target shape per row is still [1,8,6,6].
class LowerOffset : public testing::TestWithParam<const char *> {};

TEST_P(LowerOffset, ForwardWithAnOffsetAtTheTarget)
{
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path(GetParam()).c_str(), &m), EGC_OK) << egc_last_error();
    int mix = -1;
    ASSERT_EQ(egc_model_find_layer(m, "mix", &mix), EGC_OK) << egc_last_error();
    const int n = 2, classes = egc_model_num_classes(m), per = 3 * 6 * 6, khw = 8 * 6 * 6;
    std::vector<float> x((size_t)n * per), d((size_t)n * khw), zero(d.size(), 0.0f);
    for (size_t j = 0; j < x.size(); j++) x[j] = (float)std::sin(0.37 * (double)j);
    for (size_t j = 0; j < d.size(); j++) d[j] = (float)(0.01 * std::cos(0.91 * (double)j));
    egc_session *s = nullptr;
    ASSERT_EQ(egc_session_create(m, "cpu", n, mix, &s), EGC_OK) << egc_last_error();
    const egc_shape ts = egc_session_target_shape(s);
    EXPECT_EQ(dims(ts), (std::vector<int64_t>{1, 8, 6, 6}));
    std::vector<float> l0((size_t)n * classes), l1(l0.size()), lz(l0.size());
    ASSERT_EQ(egc_session_forward(s, x.data(), n, l0.data()), EGC_OK) << egc_last_error();
    for (int c = 0; c < classes; c++) {
        std::vector<float> seed((size_t)n * classes, 0.0f), g(d.size());
        for (int i = 0; i < n; i++) seed[(size_t)i * classes + c] = 1.0f;
        ASSERT_EQ(egc_session_forward(s, x.data(), n, l0.data()), EGC_OK) << egc_last_error();
        ASSERT_EQ(egc_session_backward(s, seed.data(), n, g.data(), nullptr), EGC_OK)
            << egc_last_error();
        ASSERT_EQ(egc_session_forward_offset(s, x.data(), n, d.data(), l1.data()), EGC_OK)
            << egc_last_error();
        for (int i = 0; i < n; i++) {
            double dot = 0.0;
            for (int j = 0; j < khw; j++)
                dot += (double)g[(size_t)i * khw + j] * d[(size_t)i * khw + j];
            EXPECT_NEAR(l1[(size_t)i * classes + c] - l0[(size_t)i * classes + c], dot, 1e-6)
                << "image " << i << " class " << c;
        }
    }
    ASSERT_EQ(egc_session_forward_offset(s, x.data(), n, zero.data(), lz.data()), EGC_OK)
        << egc_last_error();
    EXPECT_EQ(lz, l0);
    EXPECT_EQ(egc_session_forward_offset(s, x.data(), n + 1, d.data(), l1.data()), EGC_E_ARG);
    egc_session_destroy(s);
    ASSERT_EQ(egc_session_create(m, "cpu", n, -1, &s), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_session_forward_offset(s, x.data(), n, d.data(), l1.data()), EGC_E_ARG);
    EXPECT_NE(std::string(egc_last_error()).find("without a target layer"), std::string::npos);
    egc_session_destroy(s);
    egc_model_destroy(m);
}

INSTANTIATE_TEST_SUITE_P(, LowerOffset,
                         testing::Values("inception_concat.onnx", "inception_concat_b2.onnx"));

// torchvision's Swin transformer (a small one: shifted 4x4 windows, channels-last stage): its
// channels-last layers are CAM candidates read through their transpose. `auto` is the final
// norm ([N,8,8,8] channels last), as pytorch-grad-cam's users target it; the module path of
// the first block names its output. At both, the activation and gradient of 3 images in one
// pass are PyTorch's, transposed to [N,C,H,W], and the logits are unchanged.
TEST(LowerComposite, SwinTransformerChannelsLastLayers)
{
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("swin_tiny.onnx").c_str(), &m), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_model_one_image_per_pass(m), 0);
    int autol = -1, norm = -1, block0 = -1;
    ASSERT_EQ(egc_model_find_layer(m, "auto", &autol), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_model_find_layer(m, "norm", &norm), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_model_find_layer(m, "features.1.0", &block0), EGC_OK) << egc_last_error();
    EXPECT_EQ(autol, norm);
    for (int layer : {norm, block0}) {
        egc_layer_info li;
        ASSERT_EQ(egc_model_layer(m, layer, &li), EGC_OK);
        EXPECT_TRUE(li.is_candidate) << li.name;
        EXPECT_EQ(egc_model_layer_channels_last(m, layer), 1) << li.name;
        EXPECT_EQ(egc_model_layer_tokens(m, layer, nullptr, nullptr, nullptr), 0) << li.name;
        EXPECT_EQ(dims(li.shape), (std::vector<int64_t>{1, 8, 8, 8})) << li.name;
    }
    egc_shape ts{};
    int chunk = 0;
    check_view_layer(m, norm, "swin_tiny", "norm", &ts, &chunk);
    EXPECT_EQ(dims(ts), (std::vector<int64_t>{1, 8, 8, 8}));
    EXPECT_EQ(chunk, 3);
    check_view_layer(m, block0, "swin_tiny", "block0", &ts, &chunk);
    egc_model_destroy(m);
}

// Gelu (opset 20; exact form: 0.5 x (1 + erf(x / sqrt 2))) and Pow with the exponents of
// exported norms (2: a Mul, 0.5: Sqrt, 1: the input itself, integer or float); any other
// exponent on a run-time value is refused with the reason.
TEST(LowerComposite, GeluAndPowExponents)
{
    check_reference("gelu_opset20");
    check_reference("pow_exponents");
    Lowered L;
    lower_file(data_path("pow_exponents.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    EXPECT_EQ(count_op(L.g, EGC_OP_SQRT), 1);
    int q = value_named(L.g, "q");
    ASSERT_GE(q, 0);
    const egc_node &sq = L.g.nodes[L.g.values[q].producer];
    EXPECT_EQ(sq.op, EGC_OP_MUL);
    EXPECT_EQ(sq.in[0], sq.in[1]);
    Lowered c;
    lower_file(data_path("pow_fraction.onnx"), &c);
    EXPECT_EQ(c.st, EGC_E_UNSUPPORTED);
    EXPECT_NE(c.err.find("node 'pow' (Pow): an exponent of 2.5 on a value computed at run time "
                         "is not supported (the integers 1 to 8 and 0.5 are)"), std::string::npos)
        << c.err;
}

// Tanh (2 sigmoid(2x) - 1) and the tanh GELU: PyTorch's export (x ** 3 as Muls, Tanh) gives
// PyTorch's logits, and the activation and gradient at the first GELU, whose head runs
// backward through a Tanh; Gelu(approximate="tanh") of opset 20 and Pow 3 (two Muls) give
// the float64 reference.
TEST(LowerComposite, TanhAndTanhGelu)
{
    check_reference("tanh_gelu", 1e-5);
    check_reference("gelu_tanh_opset20", 1e-5);
    Lowered L;
    lower_file(data_path("gelu_tanh_opset20.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    EXPECT_EQ(count_op(L.g, EGC_OP_SIGMOID), 1);
    const egc_node &cube = L.g.nodes[L.g.values[value_named(L.g, "c")].producer];
    EXPECT_EQ(cube.op, EGC_OP_MUL);
    egc_model *m = nullptr;
    ASSERT_EQ(egc_model_load(data_path("tanh_gelu.onnx").c_str(), &m), EGC_OK) << egc_last_error();
    int act1 = -1;
    ASSERT_EQ(egc_model_find_layer(m, "act1", &act1), EGC_OK) << egc_last_error();
    egc_shape ts{};
    int chunk = 0;
    check_view_layer(m, act1, "tanh_gelu", "act1", &ts, &chunk);
    egc_model_destroy(m);
}

// Gather with constant indices on a run-time value, along an axis other than the batch: a
// scalar index drops the axis (a class token x[:, 0]: one Slice and a Reshape), an uneven
// list is a Concat of one-element Slices, an even 2-D list one strided Slice and a Reshape.
// Gather on the batch axis is refused with the reason.
TEST(LowerComposite, GatherOnRuntimeValues)
{
    check_reference("gather_runtime");
    Lowered L;
    lower_file(data_path("gather_runtime.onnx"), &L);
    ASSERT_EQ(L.st, EGC_OK) << L.err;
    EXPECT_EQ(count_op(L.g, EGC_OP_CONCAT), 2); /* the uneven list's, and the model's own */
    EXPECT_EQ(count_op(L.g, EGC_OP_SLICE), 5);  /* 1 + 3 + 1 */
    int tok = value_named(L.g, "tok"), g2 = value_named(L.g, "g2");
    ASSERT_GE(tok, 0);
    ASSERT_GE(g2, 0);
    EXPECT_EQ(dims(L.g.values[tok].shape), (std::vector<int64_t>{1, 6}));
    EXPECT_EQ(dims(L.g.values[g2].shape), (std::vector<int64_t>{1, 4, 2, 2}));
    Lowered b;
    lower_file(data_path("gather_batch_axis.onnx"), &b);
    EXPECT_EQ(b.st, EGC_E_UNSUPPORTED);
    EXPECT_NE(b.err.find("node 'rows' (Gather): Gather on the batch axis (axis 0) of a value "
                         "computed at run time is not supported"), std::string::npos) << b.err;
}

// ---------------------------------------------------------------- folding unit tests

// Hand-built nodes and tensors for egc_fold_node.
struct T {
    egc_onnx_tensor t{};
    std::vector<float> f;
    std::vector<int64_t> i;
    T(std::vector<int64_t> shape, std::vector<int64_t> v)
        : i(std::move(v))
    {
        t.shape = egc_shape_make((int)shape.size(), shape.data());
        t.numel = egc_shape_numel(&t.shape);
        t.i64 = i.data();
    }
    T(std::vector<int64_t> shape, std::vector<float> v)
        : f(std::move(v))
    {
        t.shape = egc_shape_make((int)shape.size(), shape.data());
        t.numel = egc_shape_numel(&t.shape);
        t.is_float = 1;
        t.f32 = f.data();
    }
};

struct Node {
    egc_onnx_node n{};
    std::vector<egc_onnx_attr> attrs;
    std::vector<std::vector<int64_t>> ints;
    Node(const char *op) { n.op_type = (char *)op, n.name = (char *)"nd", n.domain = (char *)""; }
    Node &i(const char *name, int64_t v)
    {
        egc_onnx_attr a{};
        a.name = (char *)name;
        a.type = EGC_ATTR_INT;
        a.i = v;
        attrs.push_back(a);
        return *this;
    }
    Node &s(const char *name, const char *v)
    {
        egc_onnx_attr a{};
        a.name = (char *)name;
        a.type = EGC_ATTR_STRING;
        a.s = (char *)v;
        attrs.push_back(a);
        return *this;
    }
    Node &is(const char *name, std::vector<int64_t> v)
    {
        ints.push_back(std::move(v));
        egc_onnx_attr a{};
        a.name = (char *)name;
        a.type = EGC_ATTR_INTS;
        attrs.push_back(a);
        return *this;
    }
    egc_onnx_node *get()
    {
        for (size_t k = 0, j = 0; k < attrs.size(); k++)
            if (attrs[k].type == EGC_ATTR_INTS) {
                attrs[k].ints = ints[j].data();
                attrs[k].n = (int)ints[j++].size();
            }
        n.attrs = attrs.data();
        n.n_attrs = (int)attrs.size();
        return &n;
    }
};

struct Folded {
    egc_onnx_tensor t{};
    egc_status st = EGC_E_INTERNAL;
    int handled = -1;
    ~Folded() { egc_fold_free(&t); }
    std::vector<int64_t> iv() const { return std::vector<int64_t>(t.i64, t.i64 + t.numel); }
    std::vector<float> fv() const { return std::vector<float>(t.f32, t.f32 + t.numel); }
};

void fold(Node &node, std::vector<const egc_onnx_tensor *> in, Folded *out, int64_t opset = 13)
{
    out->st = egc_fold_node(node.get(), opset, in.data(), (int)in.size(), &out->t, &out->handled);
}

TEST(LowerFold, GatherRangeWhereEqual)
{
    T data({2, 3}, std::vector<int64_t>{10, 11, 12, 20, 21, 22}),
        idx({2}, std::vector<int64_t>{-1, 0});
    Node g("Gather");
    g.i("axis", 1);
    Folded a;
    fold(g, {&data.t, &idx.t}, &a);
    ASSERT_EQ(a.st, EGC_OK) << egc_last_error();
    EXPECT_EQ(a.handled, 1);
    EXPECT_EQ(dims(a.t.shape), std::vector<int64_t>({2, 2}));
    EXPECT_EQ(a.iv(), std::vector<int64_t>({12, 10, 22, 20}));
    T bad({1}, std::vector<int64_t>{3});
    Folded e;
    fold(g, {&data.t, &bad.t}, &e);
    EXPECT_EQ(e.st, EGC_E_FORMAT);
    EXPECT_NE(std::string(egc_last_error()).find("index 3 out of range"), std::string::npos);

    T s({}, std::vector<int64_t>{7}), l({}, std::vector<int64_t>{-2}),
        d({}, std::vector<int64_t>{-3});
    Node r("Range");
    Folded rr;
    fold(r, {&s.t, &l.t, &d.t}, &rr);
    ASSERT_EQ(rr.st, EGC_OK);
    EXPECT_EQ(rr.iv(), std::vector<int64_t>({7, 4, 1}));  // numpy.arange(7, -2, -3)
    T fs({}, std::vector<float>{0.5f}), fl({}, std::vector<float>{2.0f}),
        fd({}, std::vector<float>{0.5f});
    Folded rf;
    fold(r, {&fs.t, &fl.t, &fd.t}, &rf);
    ASSERT_EQ(rf.st, EGC_OK);
    EXPECT_EQ(rf.fv(), std::vector<float>({0.5f, 1.0f, 1.5f}));

    T x({3}, std::vector<int64_t>{1, 2, 3}), two({}, std::vector<int64_t>{2});
    Node eq("Equal");
    Folded q;
    fold(eq, {&x.t, &two.t}, &q);
    ASSERT_EQ(q.st, EGC_OK);
    EXPECT_EQ(q.iv(), std::vector<int64_t>({0, 1, 0}));
    T cond({2, 1}, std::vector<int64_t>{1, 0}), yy({}, std::vector<int64_t>{-5});
    Node wh("Where");
    Folded w;
    fold(wh, {&cond.t, &x.t, &yy.t}, &w);
    ASSERT_EQ(w.st, EGC_OK);
    EXPECT_EQ(dims(w.t.shape), std::vector<int64_t>({2, 3}));
    EXPECT_EQ(w.iv(), std::vector<int64_t>({1, 2, 3, -5, -5, -5}));
}

// ScatterND on constants (the attention masks of Swin transformers are built so): updates at
// index tuples, later over earlier, negative indices from the end; an index out of range and
// a reduction are refused.
TEST(LowerFold, ScatterND)
{
    T data({3, 2}, std::vector<float>{1, 2, 3, 4, 5, 6}), idx({2, 1}, std::vector<int64_t>{-1, 0}),
        upd({2, 2}, std::vector<float>{10, 20, 30, 40});
    Node sc("ScatterND");
    Folded a;
    fold(sc, {&data.t, &idx.t, &upd.t}, &a);
    ASSERT_EQ(a.st, EGC_OK) << egc_last_error();
    EXPECT_EQ(a.handled, 1);
    EXPECT_EQ(dims(a.t.shape), std::vector<int64_t>({3, 2}));
    EXPECT_EQ(a.fv(), std::vector<float>({30, 40, 3, 4, 10, 20}));
    T el({2, 2}, std::vector<int64_t>{1, 1, 1, 1}), ev({2}, std::vector<float>{7, 8});
    Folded b;
    fold(sc, {&data.t, &el.t, &ev.t}, &b);
    ASSERT_EQ(b.st, EGC_OK) << egc_last_error();
    EXPECT_EQ(b.fv(), std::vector<float>({1, 2, 3, 8, 5, 6})); // the later update wins
    T bad({1, 1}, std::vector<int64_t>{3}), bu({1, 2}, std::vector<float>{0, 0});
    Folded e;
    fold(sc, {&data.t, &bad.t, &bu.t}, &e);
    EXPECT_EQ(e.st, EGC_E_FORMAT);
    EXPECT_NE(std::string(egc_last_error()).find("index 3 out of range"), std::string::npos);
    Node add("ScatterND");
    add.s("reduction", "add");
    Folded r;
    fold(add, {&data.t, &idx.t, &upd.t}, &r);
    EXPECT_EQ(r.st, EGC_E_UNSUPPORTED);
}

TEST(LowerFold, SliceLikeTheExportersWriteIt)
{
    // Reversal with the extreme ends torch writes: x[::-1] of a [3,2] int tensor.
    T x({3, 2}, std::vector<int64_t>{1, 2, 3, 4, 5, 6});
    T st({1}, std::vector<int64_t>{-1}), en({1}, std::vector<int64_t>{INT64_MIN + 1}),
        ax({1}, std::vector<int64_t>{0}), sp({1}, std::vector<int64_t>{-1});
    Node s("Slice");
    Folded a;
    fold(s, {&x.t, &st.t, &en.t, &ax.t, &sp.t}, &a);
    ASSERT_EQ(a.st, EGC_OK) << egc_last_error();
    EXPECT_EQ(a.iv(), std::vector<int64_t>({5, 6, 3, 4, 1, 2}));
    // x[:, 1:INT64_MAX] with the opset-9 attributes.
    Node s9("Slice");
    s9.is("starts", {1}).is("ends", {INT64_MAX}).is("axes", {1});
    Folded b;
    fold(s9, {&x.t}, &b, 9);
    ASSERT_EQ(b.st, EGC_OK) << egc_last_error();
    EXPECT_EQ(b.iv(), std::vector<int64_t>({2, 4, 6}));
    EXPECT_EQ(dims(b.t.shape), std::vector<int64_t>({3, 1}));
}

TEST(LowerFold, ShapeOpsCastAndErrors)
{
    T x({2, 1, 3}, std::vector<float>{1.5f, -2.5f, 3.0f, 0.0f, 7.9f, -0.4f});
    Node sq("Squeeze");
    sq.is("axes", {1});
    Folded a;
    fold(sq, {&x.t}, &a, 11);
    ASSERT_EQ(a.st, EGC_OK);
    EXPECT_EQ(dims(a.t.shape), std::vector<int64_t>({2, 3}));
    T axes({2}, std::vector<int64_t>{0, -1});
    Node us("Unsqueeze");
    Folded b;
    fold(us, {&x.t, &axes.t}, &b, 13);
    ASSERT_EQ(b.st, EGC_OK);
    EXPECT_EQ(dims(b.t.shape), std::vector<int64_t>({1, 2, 1, 3, 1}));
    Node cast("Cast");
    cast.i("to", EGC_DT_INT64);
    Folded c;
    fold(cast, {&x.t}, &c);
    ASSERT_EQ(c.st, EGC_OK);
    EXPECT_EQ(c.iv(), std::vector<int64_t>({1, -2, 3, 0, 7, 0}));  // truncation toward zero
    Node cb("Cast");
    cb.i("to", EGC_DT_BOOL);
    Folded c2;
    fold(cb, {&x.t}, &c2);
    EXPECT_EQ(c2.iv(), std::vector<int64_t>({1, 1, 1, 0, 1, 1}));
    Node cs("Cast");
    cs.i("to", 8);  // STRING
    Folded c3;
    fold(cs, {&x.t}, &c3);
    EXPECT_EQ(c3.st, EGC_E_UNSUPPORTED);
    EXPECT_NE(
        std::string(egc_last_error()).find("node 'nd' (Cast): attribute to=8 is not supported"),
        std::string::npos)
        << egc_last_error();

    T shp({2}, std::vector<int64_t>{2, 3});
    Node cos("ConstantOfShape");
    Folded d;
    fold(cos, {&shp.t}, &d);
    ASSERT_EQ(d.st, EGC_OK);
    EXPECT_TRUE(d.t.is_float);
    EXPECT_EQ(d.fv(), std::vector<float>(6, 0.0f));
    T big({3}, std::vector<int64_t>{1 << 20, 1 << 20, 1 << 20});
    Folded e;
    fold(cos, {&big.t}, &e);
    EXPECT_EQ(e.st, EGC_E_UNSUPPORTED);  // refuses absurd sizes instead of allocating

    T row({1, 3}, std::vector<int64_t>{1, 2, 3}), tgt({2}, std::vector<int64_t>{2, 1});
    Node ex("Expand");
    Folded f;
    fold(ex, {&row.t, &tgt.t}, &f);
    ASSERT_EQ(f.st, EGC_OK);
    EXPECT_EQ(f.iv(), std::vector<int64_t>({1, 2, 3, 1, 2, 3}));

    T num({2}, std::vector<int64_t>{7, -7}), den({2}, std::vector<int64_t>{2, 0});
    Node dv("Div");
    Folded g;
    fold(dv, {&num.t, &den.t}, &g);
    EXPECT_EQ(g.st, EGC_E_FORMAT);
    T den2({2}, std::vector<int64_t>{2, 2});
    Folded h;
    fold(dv, {&num.t, &den2.t}, &h);
    ASSERT_EQ(h.st, EGC_OK);
    EXPECT_EQ(h.iv(), std::vector<int64_t>({3, -3}));

    Node cc("Concat");
    cc.i("axis", 0);
    Folded k;
    fold(cc, {&num.t, &x.t}, &k);
    EXPECT_NE(k.st, EGC_OK);

    Node other("Conv");
    Folded o;
    fold(other, {&x.t}, &o);
    EXPECT_EQ(o.st, EGC_OK);
    EXPECT_EQ(o.handled, 0);
    EXPECT_EQ(o.t.f32, nullptr);
}

TEST(LowerFold, TransposeAndReshape)
{
    T x({2, 3}, std::vector<int64_t>{0, 1, 2, 3, 4, 5});
    Node tr("Transpose");
    Folded a;
    fold(tr, {&x.t}, &a);
    ASSERT_EQ(a.st, EGC_OK);
    EXPECT_EQ(dims(a.t.shape), std::vector<int64_t>({3, 2}));
    EXPECT_EQ(a.iv(), std::vector<int64_t>({0, 3, 1, 4, 2, 5}));
    T tgt({2}, std::vector<int64_t>{-1, 2}), tgt0({2}, std::vector<int64_t>{0, -1});
    Node rs("Reshape");
    Folded b;
    fold(rs, {&x.t, &tgt.t}, &b);
    ASSERT_EQ(b.st, EGC_OK);
    EXPECT_EQ(dims(b.t.shape), std::vector<int64_t>({3, 2}));
    Folded c;
    fold(rs, {&x.t, &tgt0.t}, &c);
    ASSERT_EQ(c.st, EGC_OK);
    EXPECT_EQ(dims(c.t.shape), std::vector<int64_t>({2, 3}));
    T bad({2}, std::vector<int64_t>{4, -1});
    Folded d;
    fold(rs, {&x.t, &bad.t}, &d);
    EXPECT_EQ(d.st, EGC_E_SHAPE);
}

// ---------------------------------------------------------------- shape inference

TEST(LowerInfer, ReshapeBatchRuleAndErrors)
{
    egc_graph g{};
    g.declared_batch = -1;
    egc_node n{};
    n.name = (char *)"view";
    n.op = EGC_OP_RESHAPE;
    n.n_in = 1;
    n.p.reshape.n = 2;
    n.p.reshape.dims[0] = 1;  // the declared (symbolic -> 1) batch, as exported
    n.p.reshape.dims[1] = -1;
    n.p.reshape.flatten_axis = -1;
    int64_t d7[4] = {7, 64, 1, 1};
    egc_shape x = egc_shape_make(4, d7), out;
    const egc_shape *in[1] = {&x};
    ASSERT_EQ(egc_node_infer(&g, &n, in, 7, &out), EGC_OK) << egc_last_error();
    EXPECT_EQ(dims(out), std::vector<int64_t>({7, 64}));
    // A first dim that is not the batch (2 != 1) is taken literally.
    n.p.reshape.dims[0] = 2;
    ASSERT_EQ(egc_node_infer(&g, &n, in, 7, &out), EGC_OK);
    EXPECT_EQ(dims(out), std::vector<int64_t>({2, 224}));
    // Declared batch 4: a literal 4 follows the run's batch.
    g.declared_batch = 4;
    n.p.reshape.dims[0] = 4;
    n.p.reshape.dims[1] = 64;
    ASSERT_EQ(egc_node_infer(&g, &n, in, 7, &out), EGC_OK);
    EXPECT_EQ(dims(out), std::vector<int64_t>({7, 64}));
    n.p.reshape.dims[1] = 65;
    EXPECT_EQ(egc_node_infer(&g, &n, in, 7, &out), EGC_E_SHAPE);
    EXPECT_NE(std::string(egc_last_error()).find("node 'view' (Reshape): input [7,64,1,1]"),
              std::string::npos) << egc_last_error();

    // Conv: the message names the node and both shapes.
    egc_node c{};
    c.name = (char *)"c1";
    c.op = EGC_OP_CONV;
    c.n_in = 2;
    c.p.conv = {3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    int64_t xd[4] = {1, 4, 8, 8}, wd[4] = {8, 3, 3, 3};
    egc_shape xs = egc_shape_make(4, xd), ws = egc_shape_make(4, wd);
    const egc_shape *cin[2] = {&xs, &ws};
    EXPECT_EQ(egc_node_infer(&g, &c, cin, 1, &out), EGC_E_SHAPE);
    EXPECT_NE(std::string(egc_last_error()).find("node 'c1' (Conv): input [1,4,8,8] does not fit "
                                                 "weights [8,3,3,3]"),
              std::string::npos) << egc_last_error();
    wd[1] = 4;
    ws = egc_shape_make(4, wd);
    ASSERT_EQ(egc_node_infer(&g, &c, cin, 1, &out), EGC_OK);
    EXPECT_EQ(dims(out), std::vector<int64_t>({1, 8, 8, 8}));

    // Pooling in ceil mode: the last window must start inside the input (PyTorch's rule).
    egc_node p{};
    p.name = (char *)"pool";
    p.op = EGC_OP_MAXPOOL;
    p.n_in = 1;
    p.p.pool = {2, 2, 2, 2, 1, 1, 0, 0, 1, 1, 1, 0};
    int64_t pd[4] = {1, 1, 5, 5};
    egc_shape ps = egc_shape_make(4, pd);
    const egc_shape *pin[1] = {&ps};
    ASSERT_EQ(egc_node_infer(&g, &p, pin, 1, &out), EGC_OK);
    EXPECT_EQ(dims(out), std::vector<int64_t>({1, 1, 3, 3}));  // ceil((5+1-2)/2)+1 = 3
    p.p.pool.pt = p.p.pool.pl = 0;
    p.p.pool.pb = p.p.pool.pr = 1;
    pd[2] = pd[3] = 4;
    ps = egc_shape_make(4, pd);
    ASSERT_EQ(egc_node_infer(&g, &p, pin, 1, &out), EGC_OK);
    // ceil((4+1-2)/2)+1 = 3, but window 3 would start at 4 (in the end padding): 2.
    EXPECT_EQ(dims(out), std::vector<int64_t>({1, 1, 2, 2}));
}

// ---------------------------------------------------------------- the shared models

TEST(LowerShared, AllFourModels)
{
    struct M {
        const char *file;
        int nodes;              // runtime nodes (see the op counts below)
        int64_t classes;
    };
    // Runtime nodes from the ops of each file: MobileNet v1: 28 Conv + 27 Clip + GAP + Flatten;
    // v2: 53 Conv + 35 Clip + 10 Add + GAP + Flatten; ResNet-20: 19 Conv + 19 Relu + 9 Add
    // + 4 Slice (two per option-A shortcut) + 3 Pad + AveragePool + Flatten + Gemm;
    // ResNet-56: 55 + 55 + 27 + 4 + 3 + 1 + 1 + 1. Everything else is folded.
    const M models[] = {
        {"mobilenet_v1_025_128_imagenet.onnx", 57, 1000},
        {"mobilenet_v2_imagenet.onnx", 100, 1000},
        {"resnet20_cifar10.onnx", 57, 10},
        {"resnet56_cifar10.onnx", 147, 10},
    };
    for (const M &mm : models) {
        SCOPED_TRACE(mm.file);
        std::string path = std::string(EGC_SHARED_DIR) + "/models/" + mm.file;
        FILE *f = fopen(path.c_str(), "rb");
        if (!f) {
            ADD_FAILURE() << "missing shared model " << path;
            continue;
        }
        fclose(f);
        Lowered L;
        lower_file(path, &L);
        ASSERT_EQ(L.st, EGC_OK) << L.err;
        check_graph(L.g);
        EXPECT_EQ(L.g.n_nodes, mm.nodes);
        EXPECT_EQ(L.g.declared_batch, -1);
        EXPECT_EQ(L.g.opset, 13);
        for (int i = 0; i < L.g.n_nodes; i++) {
            egc_op op = L.g.nodes[i].op;
            EXPECT_TRUE(op == EGC_OP_CONV || op == EGC_OP_CLIP || op == EGC_OP_RELU ||
                        op == EGC_OP_ADD || op == EGC_OP_GAP || op == EGC_OP_AVGPOOL ||
                        op == EGC_OP_RESHAPE || op == EGC_OP_GEMM || op == EGC_OP_SLICE ||
                        op == EGC_OP_PAD)
                << L.g.nodes[i].name << " " << egc_op_name(op);
            for (int k = 0; k < L.g.nodes[i].n_in; k++) {
                int v = L.g.nodes[i].in[k];
                if (v >= 0 && L.g.values[v].is_const)
                    EXPECT_TRUE(L.g.values[v].is_float) << L.g.nodes[i].name;
            }
        }
        EXPECT_EQ(dims(L.g.values[L.g.output].shape), std::vector<int64_t>({1, mm.classes}));
        std::vector<egc_shape> s(L.g.n_values);
        ASSERT_EQ(egc_graph_infer(&L.g, 7, s.data()), EGC_OK) << egc_last_error();
        EXPECT_EQ(dims(s[L.g.output]), std::vector<int64_t>({7, mm.classes}));
        if (mm.classes == 10) {
            // The option-A shortcuts pad planes/4 zero channels on each side: 8 then 16.
            std::vector<std::vector<int64_t>> pads;
            for (int i = 0; i < L.g.n_nodes; i++)
                if (L.g.nodes[i].op == EGC_OP_PAD)
                    pads.emplace_back(L.g.nodes[i].p.pad.pads, L.g.nodes[i].p.pad.pads + 8);
            ASSERT_EQ(pads.size(), 3u);
            EXPECT_EQ(pads[0], std::vector<int64_t>({0, 8, 0, 0, 0, 8, 0, 0}));
            EXPECT_EQ(pads[1], std::vector<int64_t>({0, 16, 0, 0, 0, 16, 0, 0}));
            EXPECT_EQ(pads[2], std::vector<int64_t>(8, 0));
        }
    }
}

}  // namespace
