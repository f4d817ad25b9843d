// parity_ops_test.cc: the CUDA backend against the CPU reference (egc_cpu_forward /
// egc_cpu_backward), op by op. Each case builds a one-node graph, runs it with random
// inputs on odd shapes at batch 1 and batch 64 through the CUDA backend's vtable (alloc,
// upload, plan_prepare, op_forward, op_backward, download) and through the CPU reference,
// and compares every element with |cuda - cpu| <= atol + rtol * |cpu|, reporting the worst
// element (index and both values). Backward runs into gradient buffers pre-filled with random
// values, so accumulation (din += ...) is checked too. Convolutions and GEMMs are compared
// in strict fp32 (TF32 off) with tight tolerances and once more with TF32 allowed (looser).
// Every test is skipped, with the reason, where no CUDA device or driver is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "backend/backend.h"
#include "cpu/cpu_ops.h"
#include "cuda/cuda_backend.h"
}

namespace {

struct Tol {
    double atol, rtol;
};

// One input of a one-node case.
struct In {
    std::vector<int64_t> dims;
    bool grad = true;          // ask for its gradient in the backward
    float lo = -1.0f, hi = 1.0f;
    bool quantize = false;     // round to multiples of 0.5 (ties for MaxPool)
    bool absent = false;       // omitted optional input (id -1)
};

struct Case {
    std::string name;
    egc_op op;
    egc_op_params p{};
    std::vector<In> ins;
    std::vector<int64_t> out;
    Tol fwd{1e-5, 1e-5}, bwd{1e-5, 1e-5};
    bool tf32 = false;
    bool backward = true;
    bool mixed = false;        // prepare a mixed-precision plan (plan_prepare_ex), forward only
};

egc_shape shape_of(const std::vector<int64_t> &d)
{
    return egc_shape_make((int)d.size(), d.data());
}

int64_t count(const std::vector<int64_t> &d)
{
    int64_t n = 1;
    for (int64_t x : d) n *= x;
    return n;
}

std::vector<float> random_data(std::mt19937 &r, int64_t n, float lo, float hi, bool quantize)
{
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v((size_t)n);
    for (auto &x : v) {
        x = u(r);
        if (quantize) x = std::round(x * 2.0f) / 2.0f;
    }
    return v;
}

// Worst element of got vs ref under tol; success when every element is within.
testing::AssertionResult close(const char *what, const std::vector<float> &ref,
                               const std::vector<float> &got, Tol tol)
{
    if (ref.size() != got.size())
        return testing::AssertionFailure() << what << ": size " << got.size() << " vs " << ref.size();
    double worst = -1.0;
    size_t at = 0;
    bool bad = false;
    for (size_t i = 0; i < ref.size(); i++) {
        double r = ref[i], g = got[i];
        double excess;
        if (std::isnan(r) || std::isnan(g))
            excess = std::isnan(r) && std::isnan(g) ? -1.0 : INFINITY;
        else if (r == g)
            excess = -1.0;
        else
            excess = std::fabs(g - r) - (tol.atol + tol.rtol * std::fabs(r));
        if (excess > worst || i == 0) {
            worst = excess;
            at = i;
        }
        if (excess > 0) bad = true;
    }
    if (!bad) return testing::AssertionSuccess();
    char buf[256];
    snprintf(buf, sizeof buf,
             "%s: worst element %zu of %zu: cuda %.9g, cpu %.9g (|diff| %.3g > atol %.1g + rtol %.1g "
             "* |cpu|)",
             what, at, ref.size(), (double)got[at], (double)ref[at],
             std::fabs((double)got[at] - (double)ref[at]), tol.atol, tol.rtol);
    return testing::AssertionFailure() << buf;
}

class CudaParity : public testing::Test {
protected:
    static egc_backend *be_;
    static std::string skip_;

    static void SetUpTestSuite()
    {
        if (be_ || !skip_.empty()) return;
        egc_status st = egc_cuda_backend_create(0, &be_);
        if (st != EGC_OK) {
            skip_ = std::string("no usable CUDA device: ") + egc_last_error();
            be_ = nullptr;
        }
    }
    static void TearDownTestSuite()
    {
        egc_backend_destroy(be_);
        be_ = nullptr;
    }
    void SetUp() override
    {
        if (!be_) GTEST_SKIP() << skip_;
    }

    // Device copy of host data (freed at the end of the test).
    float *dev(const std::vector<float> &h)
    {
        void *p = nullptr;
        size_t bytes = h.size() * sizeof(float);
        EXPECT_EQ(be_->alloc(be_, bytes ? bytes : 4, &p), EGC_OK) << egc_last_error();
        if (bytes) EXPECT_EQ(be_->upload(be_, p, h.data(), bytes), EGC_OK) << egc_last_error();
        allocs_.push_back(p);
        return (float *)p;
    }
    std::vector<float> host(const float *p, size_t n)
    {
        std::vector<float> h(n);
        if (n)
            EXPECT_EQ(be_->download(be_, h.data(), p, n * sizeof(float)), EGC_OK)
                << egc_last_error();
        return h;
    }
    void TearDown() override
    {
        if (be_)
            for (void *p : allocs_) be_->free(be_, p);
        allocs_.clear();
    }

    // Runs one case at one batch size (the batch replaces dim 0 of every input marked by
    // batch_dims and of the output).
    void run(const Case &c, unsigned seed)
    {
        SCOPED_TRACE(c.name);
        std::mt19937 r(seed);
        size_t ni = c.ins.size();
        // graph: values 0..ni-1 are the inputs, ni the output
        std::vector<egc_value> values(ni + 1);
        std::vector<egc_shape> shapes(ni + 1);
        std::vector<std::vector<float>> hin(ni);
        for (size_t i = 0; i < ni; i++) {
            memset(&values[i], 0, sizeof values[i]);
            values[i].name = (char *)"in";
            values[i].shape = shape_of(c.ins[i].dims);
            values[i].is_const = !c.ins[i].grad;
            values[i].is_float = 1;
            values[i].producer = -1;
            shapes[i] = values[i].shape;
            if (!c.ins[i].absent)
                hin[i] = random_data(r, count(c.ins[i].dims), c.ins[i].lo, c.ins[i].hi,
                                     c.ins[i].quantize);
            if (!c.ins[i].grad && !c.ins[i].absent) values[i].f32 = hin[i].data();
        }
        memset(&values[ni], 0, sizeof values[ni]);
        values[ni].name = (char *)"out";
        values[ni].shape = shape_of(c.out);
        values[ni].producer = 0;
        shapes[ni] = values[ni].shape;
        egc_node node;
        memset(&node, 0, sizeof node);
        node.op = c.op;
        node.name = (char *)c.name.c_str();
        node.n_in = (int)ni;
        for (size_t i = 0; i < ni; i++) node.in[i] = c.ins[i].absent ? -1 : (int)i;
        node.out = (int)ni;
        node.p = c.p;
        egc_graph g;
        memset(&g, 0, sizeof g);
        g.values = values.data();
        g.n_values = (int)ni + 1;
        g.nodes = &node;
        g.n_nodes = 1;
        g.input = 0;
        g.output = (int)ni;
        g.declared_batch = -1;
        g.opset = 17;

        int64_t nout = count(c.out);
        // ---- CPU reference ----
        std::vector<egc_view> cin(ni), din_cpu(ni), cin_d(ni), din_dev(ni);
        for (size_t i = 0; i < ni; i++) {
            cin[i].ptr = c.ins[i].absent ? nullptr : hin[i].data();
            cin[i].shape = shapes[i];
        }
        std::vector<float> yref((size_t)nout);
        egc_view cout_v{yref.data(), shapes[ni]};
        ASSERT_EQ(egc_cpu_forward(&g, &node, cin.data(), &cout_v), EGC_OK) << egc_last_error();

        // ---- CUDA ----
        ASSERT_EQ(egc_cuda_set_tf32(be_, c.tf32 ? 1 : 0), EGC_OK);
        for (size_t i = 0; i < ni; i++) {
            cin_d[i].ptr = c.ins[i].absent ? nullptr : dev(hin[i]);
            cin_d[i].shape = shapes[i];
        }
        float *ydev = dev(std::vector<float>((size_t)nout, NAN));
        egc_view dout_v{ydev, shapes[ni]};
        void *state = nullptr;
        if (c.mixed) {
            // one-node graph: input and output are kept fp32 NCHW, so a mixed Conv converts
            // its input to fp16 NHWC, convolves in fp16 and converts its output back
            std::vector<unsigned char> is_head(1, 0), keep(ni + 1, 0), inplace(1, 0);
            keep[0] = keep[ni] = 1;
            egc_plan_info info;
            memset(&info, 0, sizeof info);
            info.precision = EGC_PREC_MIXED;
            info.target = -1;
            info.is_head = is_head.data();
            info.keep = keep.data();
            info.inplace = inplace.data();
            ASSERT_NE(be_->plan_prepare_ex, nullptr);
            ASSERT_EQ(be_->plan_prepare_ex(be_, &g, shapes.data(), &info, &state), EGC_OK)
                << egc_last_error();
            EXPECT_EQ(inplace[0], 0);
        } else {
            ASSERT_EQ(be_->plan_prepare(be_, &g, shapes.data(), &state), EGC_OK) << egc_last_error();
        }
        struct Release {
            egc_backend *be;
            void *s;
            ~Release() { be->plan_release(be, s); }
        } release{be_, state};
        ASSERT_EQ(be_->op_forward(be_, state, &g, &node, cin_d.data(), &dout_v), EGC_OK)
            << egc_last_error();
        ASSERT_EQ(be_->sync(be_), EGC_OK) << egc_last_error();
        std::vector<float> y = host(ydev, (size_t)nout);
        EXPECT_TRUE(close("forward", yref, y, c.fwd));
        if (c.mixed && be_->plan_describe) {
            char desc[2048];
            be_->plan_describe(be_, state, desc, sizeof desc);
            printf("%s", desc);
            // symmetric pads run in fp16, asymmetric ones stay fp32
            const egc_conv_params &cp = c.p.conv;
            bool sym = cp.pt == cp.pb && cp.pl == cp.pr;
            EXPECT_EQ(std::string(desc).find("fp16 NHWC -> fp32 NCHW") != std::string::npos, sym)
                << desc;
        }
        if (!c.backward || c.mixed) return;

        // ---- backward: random dout, random pre-filled gradients ----
        std::vector<float> dy = random_data(r, nout, -1.0f, 1.0f, false);
        std::vector<std::vector<float>> dref(ni);
        std::vector<float *> ddev(ni, nullptr);
        for (size_t i = 0; i < ni; i++) {
            din_cpu[i].ptr = nullptr;
            din_cpu[i].shape = shapes[i];
            din_dev[i] = din_cpu[i];
            if (!c.ins[i].grad || c.ins[i].absent) continue;
            dref[i] = random_data(r, count(c.ins[i].dims), -1.0f, 1.0f, false);
            ddev[i] = dev(dref[i]);
            din_cpu[i].ptr = dref[i].data();
            din_dev[i].ptr = ddev[i];
        }
        egc_view gy_cpu{dy.data(), shapes[ni]};
        ASSERT_EQ(egc_cpu_backward(&g, &node, cin.data(), &cout_v, &gy_cpu, din_cpu.data()), EGC_OK)
            << egc_last_error();
        float *dydev = dev(dy);
        egc_view gy_dev{dydev, shapes[ni]};
        ASSERT_EQ(be_->op_backward(be_, state, &g, &node, cin_d.data(), &dout_v, &gy_dev,
                                   din_dev.data()),
                  EGC_OK)
            << egc_last_error();
        ASSERT_EQ(be_->sync(be_), EGC_OK) << egc_last_error();
        for (size_t i = 0; i < ni; i++) {
            if (!ddev[i]) continue;
            std::string what = "backward d(input " + std::to_string(i) + ")";
            EXPECT_TRUE(close(what.c_str(), dref[i], host(ddev[i], dref[i].size()), c.bwd));
        }
    }

    // Runs the case built by make(batch) at batch 1 and batch 64.
    template <class F> void both_batches(F make)
    {
        unsigned seed = 7;
        for (int64_t b : {1, 64}) {
            SCOPED_TRACE("batch " + std::to_string(b));
            run(make(b), seed++);
            if (HasFatalFailure()) return;
        }
    }

    std::vector<void *> allocs_;
};

egc_backend *CudaParity::be_ = nullptr;
std::string CudaParity::skip_;

// ---------------------------------------------------------------- helpers for cases

int64_t conv_out(int64_t in, int k, int s, int d, int p0, int p1)
{
    return (in + p0 + p1 - (int64_t)d * (k - 1) - 1) / s + 1;
}

Case conv_case(const char *name, int64_t B, int64_t C, int64_t H, int64_t W, int64_t M, int k,
               int s, int d, int pt, int pl, int pb, int pr, int group, bool bias, bool tf32)
{
    Case c;
    c.name = name;
    c.op = EGC_OP_CONV;
    egc_conv_params &p = c.p.conv;
    p.kh = p.kw = k;
    p.sh = p.sw = s;
    p.dh = p.dw = d;
    p.pt = pt;
    p.pl = pl;
    p.pb = pb;
    p.pr = pr;
    p.group = group;
    In x;
    x.dims = {B, C, H, W};
    In w;
    w.dims = {M, C / group, k, k};
    w.grad = false;
    w.lo = -0.5f;
    w.hi = 0.5f;
    c.ins = {x, w};
    if (bias) {
        In b;
        b.dims = {M};
        b.grad = false;
        c.ins.push_back(b);
    }
    c.out = {B, M, conv_out(H, k, s, d, pt, pb), conv_out(W, k, s, d, pl, pr)};
    c.tf32 = tf32;
    if (tf32) {
        c.fwd = c.bwd = Tol{2e-2, 5e-3};
    } else {
        c.fwd = c.bwd = Tol{1e-4, 1e-4};
    }
    return c;
}

Case pool_case(const char *name, egc_op op, int64_t B, int64_t C, int64_t H, int64_t W, int k,
               int s, int d, int pt, int pl, int pb, int pr, int ceil_mode, int include_pad)
{
    Case c;
    c.name = name;
    c.op = op;
    egc_pool_params &p = c.p.pool;
    p.kh = p.kw = k;
    p.sh = p.sw = s;
    p.dh = p.dw = d;
    p.pt = pt;
    p.pl = pl;
    p.pb = pb;
    p.pr = pr;
    p.ceil_mode = ceil_mode;
    p.count_include_pad = include_pad;
    In x;
    x.dims = {B, C, H, W};
    x.quantize = op == EGC_OP_MAXPOOL; // many ties: the first maximum must win
    c.ins = {x};
    auto osz = [&](int64_t in, int p0, int p1) {
        int64_t e = in + p0 + p1 - ((int64_t)d * (k - 1) + 1);
        int64_t o = (ceil_mode ? (e + s - 1) / s : e / s) + 1;
        if (ceil_mode && (o - 1) * s >= in + p0) o--; // last window must start inside
        return o;
    };
    c.out = {B, C, osz(H, pt, pb), osz(W, pl, pr)};
    c.fwd = op == EGC_OP_MAXPOOL ? Tol{0, 0} : Tol{1e-6, 1e-5};
    c.bwd = Tol{1e-6, 1e-5};
    return c;
}

Case binary_case(const char *name, egc_op op, std::vector<int64_t> a, std::vector<int64_t> b,
                 std::vector<int64_t> out)
{
    Case c;
    c.name = name;
    c.op = op;
    In ia, ib;
    ia.dims = a;
    ib.dims = b;
    if (op == EGC_OP_DIV) {
        ib.lo = 0.5f;
        ib.hi = 1.5f;
    }
    c.ins = {ia, ib};
    c.out = out;
    c.fwd = Tol{0, 1e-6};
    c.bwd = Tol{1e-5, 1e-5}; // broadcast sums run in another order
    return c;
}

// ---------------------------------------------------------------- Conv

TEST_F(CudaParity, ConvSymmetricPadBias)
{
    both_batches([](int64_t b) { return conv_case("conv3x3", b, 5, 13, 11, 7, 3, 1, 1, 1, 1, 1, 1, 1, true, false); });
}

TEST_F(CudaParity, ConvAsymmetricPadStride2)
{
    // MobileNet-style [0,0,1,1] pads: explicit padding into the workspace
    both_batches([](int64_t b) { return conv_case("conv_asym", b, 6, 15, 14, 8, 3, 2, 1, 0, 0, 1, 1, 1, true, false); });
}

TEST_F(CudaParity, ConvAsymmetricPadMixed)
{
    both_batches([](int64_t b) { return conv_case("conv_asym2", b, 3, 9, 12, 5, 5, 2, 1, 2, 1, 1, 3, 1, false, false); });
}

TEST_F(CudaParity, ConvDepthwiseStride2)
{
    both_batches([](int64_t b) { return conv_case("conv_dw", b, 12, 17, 13, 12, 3, 2, 1, 1, 1, 1, 1, 12, true, false); });
}

TEST_F(CudaParity, ConvDepthwiseAsymmetric)
{
    both_batches([](int64_t b) { return conv_case("conv_dw_asym", b, 8, 16, 16, 8, 3, 2, 1, 0, 0, 1, 1, 8, true, false); });
}

TEST_F(CudaParity, ConvGroupedDilated)
{
    both_batches([](int64_t b) { return conv_case("conv_g2_d2", b, 6, 14, 13, 10, 3, 1, 2, 2, 2, 2, 2, 2, true, false); });
}

TEST_F(CudaParity, ConvPointwiseNoBias)
{
    both_batches([](int64_t b) { return conv_case("conv1x1", b, 9, 7, 5, 11, 1, 1, 1, 0, 0, 0, 0, 1, false, false); });
}

TEST_F(CudaParity, ConvTf32)
{
    both_batches([](int64_t b) { return conv_case("conv_tf32", b, 16, 11, 9, 24, 3, 1, 1, 1, 1, 1, 1, 1, true, true); });
}

TEST_F(CudaParity, ConvAsymmetricTf32)
{
    both_batches([](int64_t b) { return conv_case("conv_asym_tf32", b, 8, 15, 15, 16, 3, 2, 1, 0, 0, 1, 1, 1, true, true); });
}

// ---------------------------------------------------------------- Gemm / MatMul

Case gemm_case(const char *name, int64_t M, int64_t N, int64_t K, int ta, int tb,
               std::vector<int64_t> cdims, bool has_c, float alpha, float beta, bool tf32)
{
    Case c;
    c.name = name;
    c.op = EGC_OP_GEMM;
    c.p.gemm.alpha = alpha;
    c.p.gemm.beta = beta;
    c.p.gemm.trans_a = ta;
    c.p.gemm.trans_b = tb;
    In a, b, cc;
    a.dims = ta ? std::vector<int64_t>{K, M} : std::vector<int64_t>{M, K};
    b.dims = tb ? std::vector<int64_t>{N, K} : std::vector<int64_t>{K, N};
    c.ins = {a, b};
    if (has_c) {
        cc.dims = cdims;
        c.ins.push_back(cc);
    }
    c.out = {M, N};
    c.tf32 = tf32;
    c.fwd = c.bwd = tf32 ? Tol{2e-2, 5e-3} : Tol{1e-4, 1e-4};
    return c;
}

TEST_F(CudaParity, GemmTransBBiasRow)
{
    both_batches([](int64_t b) { return gemm_case("gemm_tb", b, 37, 129, 0, 1, {37}, true, 1.0f, 1.0f, false); });
}

TEST_F(CudaParity, GemmTransABAlphaBeta)
{
    both_batches([](int64_t b) { return gemm_case("gemm_ta_tb", b, 19, 45, 1, 1, {b, 19}, true, 0.7f, -1.3f, false); });
}

TEST_F(CudaParity, GemmNoTransColumnC)
{
    both_batches([](int64_t b) { return gemm_case("gemm_col_c", b, 23, 31, 0, 0, {b, 1}, true, 1.5f, 0.5f, false); });
}

TEST_F(CudaParity, GemmTransAScalarC)
{
    both_batches([](int64_t b) { return gemm_case("gemm_ta_scalar", b, 17, 40, 1, 0, {}, true, 1.0f, 2.0f, false); });
}

TEST_F(CudaParity, GemmNoC)
{
    both_batches([](int64_t b) { return gemm_case("gemm_noc", b, 10, 300, 0, 1, {}, false, 1.0f, 1.0f, false); });
}

TEST_F(CudaParity, GemmTf32)
{
    both_batches([](int64_t b) { return gemm_case("gemm_tf32", b, 100, 64, 0, 1, {100}, true, 1.0f, 1.0f, true); });
}

Case matmul_case(const char *name, std::vector<int64_t> a, std::vector<int64_t> b,
                 std::vector<int64_t> out)
{
    Case c;
    c.name = name;
    c.op = EGC_OP_MATMUL;
    In ia, ib;
    ia.dims = a;
    ib.dims = b;
    c.ins = {ia, ib};
    c.out = out;
    c.fwd = c.bwd = Tol{1e-4, 1e-4};
    return c;
}

TEST_F(CudaParity, MatMulSharedB)
{
    both_batches([](int64_t b) { return matmul_case("mm_shared_b", {b, 7, 13}, {13, 9}, {b, 7, 9}); });
}

TEST_F(CudaParity, MatMulBatched)
{
    both_batches([](int64_t b) { return matmul_case("mm_batched", {b, 3, 5, 6}, {b, 3, 6, 4}, {b, 3, 5, 4}); });
}

TEST_F(CudaParity, MatMulSharedA)
{
    both_batches([](int64_t b) { return matmul_case("mm_shared_a", {5, 6}, {b, 6, 11}, {b, 5, 11}); });
}

TEST_F(CudaParity, MatMulCrossBroadcast)
{
    both_batches([](int64_t b) { return matmul_case("mm_cross", {b, 1, 4, 3}, {1, 5, 3, 2}, {b, 5, 4, 2}); });
}

TEST_F(CudaParity, MatMulVectorOperands)
{
    both_batches([](int64_t b) { return matmul_case("mm_vec_b", {b, 7, 13}, {13}, {b, 7}); });
    both_batches([](int64_t b) { return matmul_case("mm_vec_a", {13}, {b, 13, 6}, {b, 6}); });
}

// ---------------------------------------------------------------- element-wise

Case unary_case(const char *name, egc_op op, std::vector<int64_t> dims)
{
    Case c;
    c.name = name;
    c.op = op;
    In x;
    x.dims = dims;
    x.lo = -3.0f;
    x.hi = 3.0f;
    c.ins = {x};
    c.out = dims;
    c.fwd = op == EGC_OP_SIGMOID ? Tol{1e-6, 1e-5} : Tol{0, 0};
    c.bwd = op == EGC_OP_SIGMOID ? Tol{1e-6, 1e-5} : Tol{0, 0};
    return c;
}

TEST_F(CudaParity, Relu)
{
    both_batches([](int64_t b) { return unary_case("relu", EGC_OP_RELU, {b, 5, 7, 9}); });
}

TEST_F(CudaParity, ClipRelu6AndHalfOpen)
{
    both_batches([](int64_t b) {
        Case c = unary_case("clip", EGC_OP_CLIP, {b, 3, 11, 13});
        c.ins[0].lo = -8.0f;
        c.ins[0].hi = 8.0f;
        c.ins[0].quantize = true; // values exactly at the bounds: inclusive gradient
        c.p.clip.lo = 0.0f;
        c.p.clip.hi = 6.0f;
        return c;
    });
    both_batches([](int64_t b) {
        Case c = unary_case("clip_hi_only", EGC_OP_CLIP, {b, 17});
        c.p.clip.lo = -INFINITY;
        c.p.clip.hi = 0.5f;
        return c;
    });
}

TEST_F(CudaParity, Sigmoid)
{
    both_batches([](int64_t b) {
        Case c = unary_case("sigmoid", EGC_OP_SIGMOID, {b, 4, 9, 5});
        c.ins[0].lo = -20.0f;
        c.ins[0].hi = 20.0f;
        return c;
    });
}

// Sqrt over [0.05, 9] (its backward reads the forward output) and Erf over [-4, 4], both
// saturated ends included (its backward reads the input).
TEST_F(CudaParity, SqrtAndErf)
{
    both_batches([](int64_t b) {
        Case c = unary_case("sqrt", EGC_OP_SQRT, {b, 3, 7, 5});
        c.ins[0].lo = 0.05f;
        c.ins[0].hi = 9.0f;
        c.fwd = Tol{1e-6, 1e-6};
        c.bwd = Tol{1e-6, 1e-5};
        return c;
    });
    both_batches([](int64_t b) {
        Case c = unary_case("erf", EGC_OP_ERF, {b, 5, 3, 11});
        c.ins[0].lo = -4.0f;
        c.ins[0].hi = 4.0f;
        c.fwd = Tol{1e-6, 1e-5};
        c.bwd = Tol{1e-6, 1e-5};
        return c;
    });
}

// Exp over [-8, 3] (its backward reads the forward output), Log over [0.05, 20] (its
// backward reads the input) and Softplus over [-30, 30], both of its formula's branches (its
// backward reads the input; the CPU test covers +-200, +-inf and NaN).
TEST_F(CudaParity, ExpLogAndSoftplus)
{
    both_batches([](int64_t b) {
        Case c = unary_case("exp", EGC_OP_EXP, {b, 3, 7, 5});
        c.ins[0].lo = -8.0f;
        c.ins[0].hi = 3.0f;
        c.fwd = Tol{1e-6, 1e-5};
        c.bwd = Tol{1e-6, 1e-5};
        return c;
    });
    both_batches([](int64_t b) {
        Case c = unary_case("log", EGC_OP_LOG, {b, 5, 3, 11});
        c.ins[0].lo = 0.05f;
        c.ins[0].hi = 20.0f;
        c.fwd = Tol{1e-6, 1e-5};
        c.bwd = Tol{1e-6, 1e-5};
        return c;
    });
    both_batches([](int64_t b) {
        Case c = unary_case("softplus", EGC_OP_SOFTPLUS, {b, 4, 9, 5});
        c.ins[0].lo = -30.0f;
        c.ins[0].hi = 30.0f;
        c.fwd = Tol{1e-6, 1e-5};
        c.bwd = Tol{1e-6, 1e-5};
        return c;
    });
}

// A QuantizeLinear / DequantizeLinear pair: values on the grid and half-way between two
// points of it (inputs that are multiples of 0.5 with a scale of 1: ties to even), both ends
// clamped (uint8 with zero point 3), and int8 on random values: the same division and
// rounding as the CPU's, so the same bits, and the same straight-through gradient.
TEST_F(CudaParity, QuantizeDequantize)
{
    both_batches([](int64_t b) {
        Case c = unary_case("fake_quant_u8", EGC_OP_FAKE_QUANT, {b, 3, 7, 5});
        c.ins[0].lo = -6.0f;
        c.ins[0].hi = 260.0f;
        c.ins[0].quantize = true;
        c.p.fq = {1.0f, 3.0f, 0.0f, 255.0f};
        return c;
    });
    both_batches([](int64_t b) {
        Case c = unary_case("fake_quant_s8", EGC_OP_FAKE_QUANT, {b, 4, 9});
        c.ins[0].lo = -8.0f;
        c.ins[0].hi = 8.0f;
        c.p.fq = {0.05f, -4.0f, -128.0f, 127.0f};
        return c;
    });
}

TEST_F(CudaParity, AddSameShapeAndChannelBias)
{
    both_batches([](int64_t b) { return binary_case("add_same", EGC_OP_ADD, {b, 3, 5, 7}, {b, 3, 5, 7}, {b, 3, 5, 7}); });
    both_batches([](int64_t b) { return binary_case("add_chan", EGC_OP_ADD, {b, 6, 9, 11}, {6, 1, 1}, {b, 6, 9, 11}); });
}

TEST_F(CudaParity, SubBothBroadcast)
{
    both_batches([](int64_t b) { return binary_case("sub_both", EGC_OP_SUB, {b, 1, 9, 7}, {1, 5, 1, 7}, {b, 5, 9, 7}); });
}

TEST_F(CudaParity, MulSqueezeExcite)
{
    both_batches([](int64_t b) { return binary_case("mul_se", EGC_OP_MUL, {b, 24, 15, 17}, {b, 24, 1, 1}, {b, 24, 15, 17}); });
    both_batches([](int64_t b) { return binary_case("mul_scalar", EGC_OP_MUL, {}, {b, 4, 3}, {b, 4, 3}); });
}

TEST_F(CudaParity, DivBroadcast)
{
    both_batches([](int64_t b) { return binary_case("div_last", EGC_OP_DIV, {b, 7, 5}, {5}, {b, 7, 5}); });
    both_batches([](int64_t b) { return binary_case("div_first", EGC_OP_DIV, {1, 7, 1}, {b, 1, 9}, {b, 7, 9}); });
}

TEST_F(CudaParity, BatchNorm)
{
    both_batches([](int64_t b) {
        Case c;
        c.name = "bn4d";
        c.op = EGC_OP_BATCHNORM;
        c.p.bn.eps = 1e-5f;
        In x, sc, bi, mu, var;
        x.dims = {b, 7, 6, 5};
        sc.dims = bi.dims = mu.dims = var.dims = {7};
        sc.grad = bi.grad = mu.grad = var.grad = false;
        var.lo = 0.1f;
        var.hi = 2.0f;
        c.ins = {x, sc, bi, mu, var};
        c.out = x.dims;
        c.fwd = Tol{1e-6, 1e-5};
        c.bwd = Tol{1e-6, 1e-5};
        return c;
    });
    both_batches([](int64_t b) {
        Case c;
        c.name = "bn2d";
        c.op = EGC_OP_BATCHNORM;
        c.p.bn.eps = 1e-3f;
        In x, sc, bi, mu, var;
        x.dims = {b, 19};
        sc.dims = bi.dims = mu.dims = var.dims = {19};
        sc.grad = bi.grad = mu.grad = var.grad = false;
        var.lo = 0.1f;
        c.ins = {x, sc, bi, mu, var};
        c.out = x.dims;
        c.fwd = Tol{1e-6, 1e-5};
        c.bwd = Tol{1e-6, 1e-5};
        return c;
    });
}

// ---------------------------------------------------------------- pooling

TEST_F(CudaParity, MaxPool3x3Stride2Ties)
{
    both_batches([](int64_t b) { return pool_case("maxpool", EGC_OP_MAXPOOL, b, 3, 13, 11, 3, 2, 1, 1, 1, 1, 1, 0, 0); });
}

TEST_F(CudaParity, MaxPoolCeilDilatedAsym)
{
    both_batches([](int64_t b) { return pool_case("maxpool_ceil", EGC_OP_MAXPOOL, b, 4, 12, 10, 2, 2, 1, 0, 0, 1, 0, 1, 0); });
    both_batches([](int64_t b) { return pool_case("maxpool_dil", EGC_OP_MAXPOOL, b, 2, 15, 14, 3, 1, 2, 2, 1, 2, 1, 0, 0); });
}

TEST_F(CudaParity, AvgPoolIncludeAndExcludePad)
{
    both_batches([](int64_t b) { return pool_case("avg_excl", EGC_OP_AVGPOOL, b, 3, 13, 11, 3, 2, 1, 1, 1, 1, 1, 0, 0); });
    both_batches([](int64_t b) { return pool_case("avg_incl", EGC_OP_AVGPOOL, b, 3, 13, 11, 3, 2, 1, 1, 1, 1, 1, 0, 1); });
}

TEST_F(CudaParity, AvgPoolCeilMode)
{
    both_batches([](int64_t b) { return pool_case("avg_ceil_incl", EGC_OP_AVGPOOL, b, 2, 10, 9, 3, 2, 1, 1, 0, 1, 0, 1, 1); });
    both_batches([](int64_t b) { return pool_case("avg_ceil_excl", EGC_OP_AVGPOOL, b, 2, 10, 9, 2, 2, 1, 0, 0, 0, 0, 1, 0); });
}

TEST_F(CudaParity, GlobalAveragePool)
{
    both_batches([](int64_t b) {
        Case c;
        c.name = "gap";
        c.op = EGC_OP_GAP;
        In x;
        x.dims = {b, 13, 7, 9};
        c.ins = {x};
        c.out = {b, 13, 1, 1};
        c.fwd = Tol{1e-6, 1e-5};
        c.bwd = Tol{1e-7, 1e-6};
        return c;
    });
    both_batches([](int64_t b) {
        Case c;
        c.name = "gap_large";
        c.op = EGC_OP_GAP;
        In x;
        x.dims = {b, 3, 57, 61};
        c.ins = {x};
        c.out = {b, 3, 1, 1};
        c.fwd = Tol{1e-6, 1e-5};
        c.bwd = Tol{1e-7, 1e-6};
        return c;
    });
}

// ---------------------------------------------------------------- shape ops

TEST_F(CudaParity, ReshapeFlatten)
{
    both_batches([](int64_t b) {
        Case c;
        c.name = "flatten";
        c.op = EGC_OP_RESHAPE;
        c.p.reshape.flatten_axis = 1;
        In x;
        x.dims = {b, 5, 3, 7};
        c.ins = {x};
        c.out = {b, 105};
        c.fwd = c.bwd = Tol{0, 0};
        return c;
    });
}

TEST_F(CudaParity, ConcatAxes)
{
    both_batches([](int64_t b) {
        Case c;
        c.name = "concat_c";
        c.op = EGC_OP_CONCAT;
        c.p.axis.axis = 1;
        In x0, x1, x2;
        x0.dims = {b, 3, 5, 7};
        x1.dims = {b, 1, 5, 7};
        x2.dims = {b, 6, 5, 7};
        x1.grad = false; // a NULL gradient in the middle
        c.ins = {x0, x1, x2};
        c.out = {b, 10, 5, 7};
        c.fwd = c.bwd = Tol{0, 0};
        return c;
    });
    both_batches([](int64_t b) {
        Case c;
        c.name = "concat_last";
        c.op = EGC_OP_CONCAT;
        c.p.axis.axis = -1;
        In x0, x1;
        x0.dims = {b, 4, 3};
        x1.dims = {b, 4, 5};
        c.ins = {x0, x1};
        c.out = {b, 4, 8};
        c.fwd = c.bwd = Tol{0, 0};
        return c;
    });
}

TEST_F(CudaParity, SliceStepsAndNegative)
{
    both_batches([](int64_t b) {
        Case c;
        c.name = "slice";
        c.op = EGC_OP_SLICE;
        egc_slice_params &p = c.p.slice;
        p.n = 3;
        p.axes[0] = 1; p.starts[0] = 1; p.ends[0] = 100; p.steps[0] = 2;
        p.axes[1] = -1; p.starts[1] = -2; p.ends[1] = -100; p.steps[1] = -3;
        p.axes[2] = 2; p.starts[2] = 0; p.ends[2] = -1; p.steps[2] = 1;
        In x;
        x.dims = {b, 9, 6, 11};
        c.ins = {x};
        egc_shape xs = shape_of(x.dims), os;
        int64_t st[EGC_MAX_DIMS], sp[EGC_MAX_DIMS];
        egc_slice_resolve(&p, &xs, st, sp, &os);
        c.out.assign(os.d, os.d + os.ndim);
        c.fwd = c.bwd = Tol{0, 0};
        return c;
    });
}

TEST_F(CudaParity, PadModes)
{
    for (int mode : {EGC_PAD_CONSTANT, EGC_PAD_REFLECT, EGC_PAD_EDGE}) {
        both_batches([mode](int64_t b) {
            Case c;
            c.name = "pad_mode_" + std::to_string(mode);
            c.op = EGC_OP_PAD;
            egc_pad_params &p = c.p.pad;
            p.mode = mode;
            p.value = 0.25f;
            p.n = 4;
            int64_t begin[4] = {0, 1, 2, -1}, end[4] = {0, 0, 3, 2};
            for (int k = 0; k < 4; k++) {
                p.pads[k] = begin[k];
                p.pads[4 + k] = end[k];
            }
            In x;
            x.dims = {b, 3, 7, 6};
            c.ins = {x};
            c.out = {b, 4, 12, 7};
            c.fwd = Tol{0, 0};
            c.bwd = Tol{1e-6, 1e-6}; // reflect/edge borders sum several terms
            return c;
        });
    }
}

TEST_F(CudaParity, Softmax)
{
    both_batches([](int64_t b) {
        Case c;
        c.name = "softmax_last";
        c.op = EGC_OP_SOFTMAX;
        c.p.axis.axis = -1;
        In x;
        x.dims = {b, 1000};
        x.lo = -10.0f;
        x.hi = 10.0f;
        c.ins = {x};
        c.out = x.dims;
        c.fwd = Tol{1e-7, 1e-5};
        c.bwd = Tol{1e-7, 1e-5};
        return c;
    });
    both_batches([](int64_t b) {
        Case c;
        c.name = "softmax_channel";
        c.op = EGC_OP_SOFTMAX;
        c.p.axis.axis = 1;
        In x;
        x.dims = {b, 5, 3, 7};
        c.ins = {x};
        c.out = x.dims;
        c.fwd = Tol{1e-7, 1e-5};
        c.bwd = Tol{1e-7, 1e-5};
        return c;
    });
    both_batches([](int64_t b) {
        Case c;
        c.name = "softmax_legacy";
        c.op = EGC_OP_SOFTMAX;
        c.p.axis.axis = 1;
        c.p.axis.legacy = 1;
        In x;
        x.dims = {b, 5, 3, 7};
        c.ins = {x};
        c.out = x.dims;
        c.fwd = Tol{1e-7, 1e-5};
        c.bwd = Tol{1e-7, 1e-5};
        return c;
    });
}

TEST_F(CudaParity, Transpose)
{
    both_batches([](int64_t b) {
        Case c;
        c.name = "transpose_nhwc";
        c.op = EGC_OP_TRANSPOSE;
        c.p.transpose.n = 4;
        int perm[4] = {0, 2, 3, 1};
        memcpy(c.p.transpose.perm, perm, sizeof perm);
        In x;
        x.dims = {b, 5, 3, 7};
        c.ins = {x};
        c.out = {b, 3, 7, 5};
        c.fwd = c.bwd = Tol{0, 0};
        return c;
    });
    both_batches([](int64_t b) {
        Case c;
        c.name = "transpose_default";
        c.op = EGC_OP_TRANSPOSE;
        c.p.transpose.n = 0; // reverse
        In x;
        x.dims = {b, 4, 3};
        c.ins = {x};
        c.out = {3, 4, b};
        c.fwd = c.bwd = Tol{0, 0};
        return c;
    });
}

// ---------------------------------------------------------------- backend behaviour

TEST_F(CudaParity, MemoryFillAccumulateRoundTrip)
{
    const int64_t n = 100003; // not a multiple of any block size
    std::vector<float> a((size_t)n), b((size_t)n);
    for (int64_t i = 0; i < n; i++) {
        a[(size_t)i] = (float)i * 0.5f;
        b[(size_t)i] = 1.0f - (float)i;
    }
    float *da = dev(a), *db = dev(b);
    ASSERT_EQ(be_->accumulate(be_, da, db, n), EGC_OK) << egc_last_error();
    std::vector<float> got = host(da, (size_t)n);
    for (int64_t i = 0; i < n; i += 9973) EXPECT_EQ(got[(size_t)i], a[(size_t)i] + b[(size_t)i]);
    EXPECT_EQ(got[(size_t)n - 1], a[(size_t)n - 1] + b[(size_t)n - 1]);
    ASSERT_EQ(be_->fill(be_, db, -2.5f, n - 1), EGC_OK) << egc_last_error();
    got = host(db, (size_t)n);
    EXPECT_EQ(got[0], -2.5f);
    EXPECT_EQ(got[(size_t)n - 2], -2.5f);
    EXPECT_EQ(got[(size_t)n - 1], b[(size_t)n - 1]); // the tail beyond n-1 is untouched
}

TEST_F(CudaParity, AllocTooLargeIsNomem)
{
    void *p = nullptr;
    egc_status st = be_->alloc(be_, (size_t)1 << 52, &p); // 4 PiB
    EXPECT_EQ(st, EGC_E_NOMEM);
    EXPECT_EQ(p, nullptr);
    EXPECT_NE(std::string(egc_last_error()).find("4503599627370496 bytes"), std::string::npos)
        << egc_last_error();
    // the backend still works afterwards
    float *d = dev(std::vector<float>(5, 1.0f));
    EXPECT_EQ(be_->fill(be_, d, 3.0f, 5), EGC_OK) << egc_last_error();
    EXPECT_EQ(host(d, 5)[4], 3.0f);
}

// Mixed precision: fp16 NHWC data, fp32 accumulation. Inputs in [-1,1] and weights in
// [-0.5,0.5] are rounded to fp16 (relative 2^-11) and so is the output: the error grows like
// sqrt(C*k*k) * 2^-11 of the terms plus 2^-11 of |y|.
Case mixed_conv(Case c)
{
    c.mixed = true;
    c.backward = false;
    c.fwd = Tol{2e-2, 5e-3};
    return c;
}

TEST_F(CudaParity, ConvMixedSymmetricPadBias)
{
    both_batches([](int64_t b) {
        return mixed_conv(conv_case("conv3x3_mixed", b, 5, 13, 11, 7, 3, 1, 1, 1, 1, 1, 1, 1, true, false));
    });
}

TEST_F(CudaParity, ConvMixedChannels16Stride2NoBias)
{
    both_batches([](int64_t b) {
        return mixed_conv(conv_case("conv_mixed16", b, 16, 17, 9, 32, 3, 2, 1, 1, 1, 1, 1, 1, false, false));
    });
}

TEST_F(CudaParity, ConvMixedDepthwise)
{
    both_batches([](int64_t b) {
        return mixed_conv(conv_case("conv_mixed_dw", b, 8, 12, 12, 8, 3, 2, 1, 1, 1, 1, 1, 8, true, false));
    });
}

TEST_F(CudaParity, ConvMixedPointwiseRgb)
{
    both_batches([](int64_t b) {
        return mixed_conv(conv_case("conv_mixed_rgb", b, 3, 10, 10, 24, 1, 1, 1, 0, 0, 0, 0, 1, true, false));
    });
}

TEST_F(CudaParity, ConvMixedAsymmetricPadStaysFp32)
{
    both_batches([](int64_t b) {
        Case c = conv_case("conv_mixed_asym", b, 6, 15, 14, 8, 3, 2, 1, 0, 0, 1, 1, 1, true, false);
        c.mixed = true; // asymmetric pads have no fp16 path: the node stays strict fp32
        return c;
    });
}

TEST_F(CudaParity, ConvRunWithOtherShapeThanPlanFails)
{
    Case c = conv_case("conv_plan", 2, 3, 8, 8, 4, 3, 1, 1, 1, 1, 1, 1, 1, false, false);
    std::vector<egc_value> values(3);
    memset(values.data(), 0, values.size() * sizeof(egc_value));
    std::vector<egc_shape> shapes = {shape_of(c.ins[0].dims), shape_of(c.ins[1].dims),
                                     shape_of(c.out)};
    for (int i = 0; i < 3; i++) {
        values[(size_t)i].shape = shapes[(size_t)i];
        values[(size_t)i].producer = i == 2 ? 0 : -1;
    }
    egc_node node;
    memset(&node, 0, sizeof node);
    node.op = EGC_OP_CONV;
    node.name = (char *)"conv_plan";
    node.n_in = 2;
    node.in[0] = 0;
    node.in[1] = 1;
    node.out = 2;
    node.p = c.p;
    egc_graph g;
    memset(&g, 0, sizeof g);
    g.values = values.data();
    g.n_values = 3;
    g.nodes = &node;
    g.n_nodes = 1;
    g.output = 2;
    void *state = nullptr;
    ASSERT_EQ(be_->plan_prepare(be_, &g, shapes.data(), &state), EGC_OK) << egc_last_error();
    // run at batch 1 with a plan for batch 2
    float *x = dev(std::vector<float>(3 * 64, 1.0f));
    float *w = dev(std::vector<float>(4 * 3 * 9, 1.0f));
    float *y = dev(std::vector<float>(4 * 64, 0.0f));
    egc_view in[2] = {{x, shape_of({1, 3, 8, 8})}, {w, shapes[1]}};
    egc_view out = {y, shape_of({1, 4, 8, 8})};
    EXPECT_EQ(be_->op_forward(be_, state, &g, &node, in, &out), EGC_E_SHAPE);
    EXPECT_NE(std::string(egc_last_error()).find("conv_plan"), std::string::npos) << egc_last_error();
    // without a plan
    EXPECT_EQ(be_->op_forward(be_, nullptr, &g, &node, in, &out), EGC_E_INTERNAL);
    be_->plan_release(be_, state);
    be_->plan_release(be_, nullptr); // no-op
}

TEST_F(CudaParity, RegistryAndDeviceList)
{
    egc_backend *b = nullptr;
    ASSERT_EQ(egc_backend_create("cuda", &b), EGC_OK) << egc_last_error();
    EXPECT_STREQ(b->name, "cuda:0");
    EXPECT_NE(b->device_name[0], '\0');
    egc_backend_destroy(b);
    EXPECT_EQ(egc_backend_create("cuda:4095", &b), EGC_E_DEVICE);
    EXPECT_EQ(b, nullptr);
    EXPECT_NE(std::string(egc_last_error()).find("cuda:4095"), std::string::npos) << egc_last_error();
    char buf[4096];
    ASSERT_EQ(egc_cuda_device_list(buf, sizeof buf), EGC_OK) << egc_last_error();
    EXPECT_EQ(std::string(buf).rfind("cuda:0  ", 0), 0u) << buf;
    char tiny[8];
    ASSERT_EQ(egc_cuda_device_list(tiny, sizeof tiny), EGC_OK) << egc_last_error();
    EXPECT_EQ(strlen(tiny), sizeof tiny - 1); // truncated, still terminated
    egc_backend *cpu = nullptr;
    ASSERT_EQ(egc_backend_create("cpu", &cpu), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_cuda_set_tf32(cpu, 1), EGC_E_ARG);
    egc_backend_destroy(cpu);
}

} // namespace
