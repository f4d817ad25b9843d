// cpu_ops_test.cc: the CPU reference ops (csrc/cpu). Every op's forward is compared with a
// naive independent implementation here or with small cases worked out by hand (or with
// PyTorch/numpy, noted where so); every op's activation backward is compared with central
// finite differences of L = sum(r * f(x)) for a random r, on odd sizes, strides, dilations,
// asymmetric pads and broadcasting. The backward is always run into gradient buffers
// pre-filled with random values, so accumulation (din += ...) is checked too. The last
// tests run ops through the backend vtable of egc_cpu_backend_create and check errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iterator>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

extern "C" {
#include "backend/backend.h"
#include "cpu/cpu_ops.h"
}

namespace {

struct Tensor {
    egc_shape s{};
    std::vector<float> v;
};

egc_shape S(std::initializer_list<int64_t> d)
{
    std::vector<int64_t> v(d);
    return egc_shape_make((int)v.size(), v.data());
}

std::mt19937 &rng()
{
    static std::mt19937 r(1234);
    return r;
}

Tensor rnd(egc_shape s, float lo = -1.0f, float hi = 1.0f)
{
    Tensor t;
    t.s = s;
    t.v.resize((size_t)egc_shape_numel(&s));
    std::uniform_real_distribution<float> u(lo, hi);
    for (auto &x : t.v) x = u(rng());
    return t;
}

Tensor zeros(egc_shape s)
{
    Tensor t;
    t.s = s;
    t.v.assign((size_t)egc_shape_numel(&s), 0.0f);
    return t;
}

Tensor seq(egc_shape s, float start = 1.0f)
{
    Tensor t = zeros(s);
    for (size_t i = 0; i < t.v.size(); i++) t.v[i] = start + (float)i;
    return t;
}

// Distinct values with gaps of at least 0.05 in random order (no near-ties for max pooling).
Tensor distinct(egc_shape s)
{
    Tensor t = zeros(s);
    for (size_t i = 0; i < t.v.size(); i++) t.v[i] = 0.05f * (float)i - 0.025f * (float)t.v.size();
    std::shuffle(t.v.begin(), t.v.end(), rng());
    return t;
}

egc_graph &graph()
{
    static egc_graph g = [] {
        egc_graph x;
        memset(&x, 0, sizeof x);
        x.opset = 13;
        return x;
    }();
    return g;
}

egc_node node(egc_op op, int n_in)
{
    egc_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.name = const_cast<char *>("test_node");
    n.n_in = n_in;
    for (int i = 0; i < n_in; i++) n.in[i] = i;
    n.out = n_in;
    return n;
}

egc_conv_params conv_p(int kh, int kw, int s, int d, int pt, int pl, int pb, int pr, int group)
{
    egc_conv_params p{};
    p.kh = kh, p.kw = kw, p.sh = p.sw = s, p.dh = p.dw = d;
    p.pt = pt, p.pl = pl, p.pb = pb, p.pr = pr, p.group = group;
    return p;
}

egc_pool_params pool_p(int k, int s, int d, int pt, int pl, int pb, int pr, int ceil, int incl)
{
    egc_pool_params p{};
    p.kh = p.kw = k, p.sh = p.sw = s, p.dh = p.dw = d;
    p.pt = pt, p.pl = pl, p.pb = pb, p.pr = pr, p.ceil_mode = ceil, p.count_include_pad = incl;
    return p;
}

// ins: nullptr entries are omitted optional inputs.
std::vector<egc_view> views(std::vector<Tensor *> ins)
{
    std::vector<egc_view> v(ins.size());
    for (size_t i = 0; i < ins.size(); i++) {
        v[i].ptr = ins[i] ? ins[i]->v.data() : nullptr;
        if (ins[i]) v[i].shape = ins[i]->s;
    }
    return v;
}

Tensor forward(const egc_node &n, std::vector<Tensor *> ins, egc_shape out_shape)
{
    Tensor y = zeros(out_shape);
    std::fill(y.v.begin(), y.v.end(), NAN); // every element must be written
    auto in = views(ins);
    egc_view out{y.v.data(), y.s};
    egc_status st = egc_cpu_forward(&graph(), &n, in.data(), &out);
    EXPECT_EQ(st, EGC_OK) << egc_last_error();
    return y;
}

// The CPU backward of n for inputs ins, output y and output gradient dy, accumulated into
// grads (nullptr entries: no gradient wanted).
void backward(const egc_node &n, std::vector<Tensor *> ins, Tensor &y, Tensor &dy,
              std::vector<Tensor *> grads)
{
    auto in = views(ins), din = views(grads);
    egc_view out{y.v.data(), y.s}, dout{dy.v.data(), dy.s};
    ASSERT_EQ(egc_cpu_backward(&graph(), &n, in.data(), &out, &dout, din.data()), EGC_OK)
        << egc_last_error();
}

double loss(const egc_node &n, std::vector<Tensor *> ins, egc_shape os, const Tensor &r)
{
    Tensor y = forward(n, ins, os);
    double L = 0.0;
    for (size_t k = 0; k < y.v.size(); k++) L += (double)r.v[k] * y.v[k];
    return L;
}

// Checks din[i] (for every i in wrt) against central differences, all gradients requested
// in one backward call into pre-filled buffers. At most max_probe elements per input are
// probed (chosen at random) to keep large cases fast.
void check_grad(const egc_node &n, std::vector<Tensor> ins_v, egc_shape os, std::vector<int> wrt,
                float eps = 1e-2f, float rtol = 1e-2f, float atol = 2e-3f, int max_probe = 80)
{
    std::vector<Tensor *> ins;
    for (auto &t : ins_v) ins.push_back(t.v.empty() && t.s.ndim == 0 ? nullptr : &t);
    Tensor y = forward(n, ins, os);
    Tensor r = rnd(os);
    std::vector<Tensor> pre(ins.size()), got(ins.size());
    std::vector<egc_view> din(ins.size());
    for (size_t i = 0; i < ins.size(); i++) din[i].ptr = nullptr;
    for (int i : wrt) {
        pre[i] = rnd(ins[i]->s, -3.0f, 3.0f);
        got[i] = pre[i];
        din[i].ptr = got[i].v.data();
        din[i].shape = got[i].s;
    }
    auto in = views(ins);
    egc_view out{y.v.data(), y.s}, dout{r.v.data(), r.s};
    ASSERT_EQ(egc_cpu_backward(&graph(), &n, in.data(), &out, &dout, din.data()), EGC_OK)
        << egc_last_error();
    for (int i : wrt) {
        Tensor &x = *ins[i];
        size_t cnt = x.v.size();
        std::vector<size_t> idx(cnt);
        for (size_t k = 0; k < cnt; k++) idx[k] = k;
        if ((int)cnt > max_probe) {
            std::shuffle(idx.begin(), idx.end(), rng());
            idx.resize((size_t)max_probe);
        }
        for (size_t k : idx) {
            float keep = x.v[k];
            x.v[k] = keep + eps;
            double lp = loss(n, ins, os, r);
            x.v[k] = keep - eps;
            double lm = loss(n, ins, os, r);
            x.v[k] = keep;
            double num = (lp - lm) / (2.0 * eps);
            double ana = (double)got[i].v[k] - pre[i].v[k];
            ASSERT_NEAR(ana, num, atol + rtol * std::max(std::fabs(num), std::fabs(ana)))
                << egc_op_name(n.op) << " input " << i << " element " << k;
        }
    }
}

// For ops linear in input 0 (others fixed): the backward must be the exact adjoint of the
// forward, <r, f(x)> == <f^T(r), x>, to float rounding. Much tighter than finite differences.
void check_adjoint(const egc_node &n, std::vector<Tensor> ins_v, egc_shape os)
{
    std::vector<Tensor *> ins;
    for (auto &t : ins_v) ins.push_back(&t);
    Tensor y = forward(n, ins, os);
    Tensor r = rnd(os), g = zeros(ins[0]->s);
    std::vector<egc_view> din(ins.size());
    for (auto &d : din) d.ptr = nullptr;
    din[0] = {g.v.data(), g.s};
    auto in = views(ins);
    egc_view out{y.v.data(), y.s}, dout{r.v.data(), r.s};
    ASSERT_EQ(egc_cpu_backward(&graph(), &n, in.data(), &out, &dout, din.data()), EGC_OK)
        << egc_last_error();
    double lhs = 0, rhs = 0, scale = 0;
    for (size_t k = 0; k < y.v.size(); k++) {
        lhs += (double)r.v[k] * y.v[k];
        scale += std::fabs((double)r.v[k] * y.v[k]);
    }
    for (size_t k = 0; k < g.v.size(); k++) rhs += (double)g.v[k] * ins[0]->v[k];
    EXPECT_NEAR(lhs, rhs, 1e-5 * scale + 1e-6) << egc_op_name(n.op);
}

void expect_close(const Tensor &got, const std::vector<double> &want, double tol = 1e-4)
{
    ASSERT_EQ(got.v.size(), want.size());
    for (size_t k = 0; k < want.size(); k++)
        ASSERT_NEAR(got.v[k], want[k], tol * std::max(1.0, std::fabs(want[k]))) << "element " << k;
}

// ---- naive references ----

std::vector<double> naive_conv(const Tensor &x, const Tensor &w, const Tensor *b,
                               const egc_conv_params &p, egc_shape os)
{
    int64_t N = x.s.d[0], C = x.s.d[1], H = x.s.d[2], W = x.s.d[3];
    int64_t M = w.s.d[0], Cg = w.s.d[1], kh = w.s.d[2], kw = w.s.d[3];
    int64_t OH = os.d[2], OW = os.d[3], Mg = M / p.group;
    (void)C;
    std::vector<double> y((size_t)(N * M * OH * OW));
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    double s = b ? b->v[(size_t)m] : 0.0;
                    int64_t g = m / Mg;
                    for (int64_t c = 0; c < Cg; c++)
                        for (int64_t i = 0; i < kh; i++)
                            for (int64_t j = 0; j < kw; j++) {
                                int64_t h = oh * p.sh - p.pt + i * p.dh;
                                int64_t ww = ow * p.sw - p.pl + j * p.dw;
                                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                                s += (double)w.v[(size_t)(((m * Cg + c) * kh + i) * kw + j)] *
                                     x.v[(size_t)(((n * x.s.d[1] + g * Cg + c) * H + h) * W + ww)];
                            }
                    y[(size_t)(((n * M + m) * OH + oh) * OW + ow)] = s;
                }
    return y;
}

int64_t conv_out(int64_t in, int k, int s, int d, int p0, int p1)
{
    return (in + p0 + p1 - d * (k - 1) - 1) / s + 1;
}

// Element index of a broadcast operand for output multi-index o.
size_t bidx(const egc_shape &in, const egc_shape &out, const std::vector<int64_t> &o)
{
    size_t k = 0;
    for (int i = 0; i < in.ndim; i++) {
        int64_t oi = o[(size_t)(out.ndim - in.ndim + i)];
        k = k * (size_t)in.d[i] + (size_t)(in.d[i] == 1 ? 0 : oi);
    }
    return k;
}

std::vector<int64_t> unravel(int64_t flat, const egc_shape &s)
{
    std::vector<int64_t> o((size_t)s.ndim);
    for (int i = s.ndim - 1; i >= 0; i--) {
        o[(size_t)i] = flat % s.d[i];
        flat /= s.d[i];
    }
    return o;
}

std::vector<double> naive_maxpool(const Tensor &x, const egc_pool_params &p, egc_shape os);

// ===================== Conv =====================

struct ConvCase {
    int64_t N, C, H, W, M;
    egc_conv_params p;
    bool bias;
};

void run_conv_case(const ConvCase &c)
{
    egc_node n = node(EGC_OP_CONV, c.bias ? 3 : 2);
    n.p.conv = c.p;
    Tensor x = rnd(S({c.N, c.C, c.H, c.W}));
    Tensor w = rnd(S({c.M, c.C / c.p.group, c.p.kh, c.p.kw}));
    Tensor b = rnd(S({c.M}));
    egc_shape os = S({c.N, c.M, conv_out(c.H, c.p.kh, c.p.sh, c.p.dh, c.p.pt, c.p.pb),
                      conv_out(c.W, c.p.kw, c.p.sw, c.p.dw, c.p.pl, c.p.pr)});
    std::vector<Tensor *> ins = {&x, &w};
    if (c.bias) ins.push_back(&b);
    Tensor y = forward(n, ins, os);
    expect_close(y, naive_conv(x, w, c.bias ? &b : nullptr, c.p, os), 1e-4);
    std::vector<Tensor> iv = {x, w};
    if (c.bias) iv.push_back(b);
    check_grad(n, iv, os, {0});
    egc_node lin = n;
    lin.n_in = 2;
    check_adjoint(lin, {x, w}, os);
}

TEST(CpuOpsConv, GroupsStrideDilationAsymmetricPads)
{
    // group 2, stride 2, dilation 2, pads top/left/bottom/right = 1/0/2/1, 3x2 kernel
    ConvCase c{2, 4, 9, 7, 6, conv_p(3, 2, 2, 2, 1, 0, 2, 1, 2), true};
    run_conv_case(c);
}

TEST(CpuOpsConv, Dense3x3Pad1)
{
    run_conv_case({3, 3, 7, 6, 5, conv_p(3, 3, 1, 1, 1, 1, 1, 1, 1), true});
}

TEST(CpuOpsConv, DenseStride2TfSamePads)
{
    // TF "SAME" with stride 2 on an even input: pad only bottom/right.
    run_conv_case({2, 3, 8, 8, 4, conv_p(3, 3, 2, 1, 0, 0, 1, 1, 1), false});
}

TEST(CpuOpsConv, Pointwise)
{
    run_conv_case({3, 5, 4, 3, 7, conv_p(1, 1, 1, 1, 0, 0, 0, 0, 1), true});
}

TEST(CpuOpsConv, PointwiseStrided)
{
    run_conv_case({2, 5, 5, 5, 3, conv_p(1, 1, 2, 1, 0, 0, 0, 0, 1), false});
}

TEST(CpuOpsConv, DepthwiseAsymmetricPads)
{
    run_conv_case({2, 5, 9, 8, 5, conv_p(3, 3, 2, 1, 0, 1, 1, 0, 5), true});
}

TEST(CpuOpsConv, DepthwiseMultiplierDilation)
{
    // group = C = 3, two output channels per input channel, dilation 2
    run_conv_case({2, 3, 7, 9, 6, conv_p(3, 3, 1, 2, 2, 2, 2, 2, 3), true});
}

// The depthwise fast paths (3x3: interior, border rows with the input rows that exist,
// border columns; 5x5 and 7x7: interior rows and columns) sum each output in one fixed order:
// bias, then the taps inside x row by row. They must equal that float sum bit for bit, on
// planes smaller and larger than the kernel, strides 1 and 2, symmetric and TF "SAME" pads.
TEST(CpuOpsConv, DepthwiseFastPathsBitExact)
{
    struct G {
        int64_t H, W;
        int s, pt, pl, pb, pr;
    };
    const G geoms3[] = {{1, 9, 1, 1, 1, 1, 1}, {2, 5, 1, 1, 1, 1, 1}, {3, 3, 1, 1, 1, 1, 1},
                        {7, 7, 1, 1, 1, 1, 1}, {14, 13, 2, 1, 1, 1, 1}, {8, 8, 2, 0, 0, 1, 1},
                        {7, 11, 2, 1, 1, 1, 1}, {2, 2, 2, 0, 0, 1, 1}};
    const G geoms5[] = {{1, 9, 1, 2, 2, 2, 2}, {5, 5, 1, 2, 2, 2, 2}, {12, 17, 1, 2, 2, 2, 2},
                        {14, 15, 2, 1, 1, 2, 2}, {9, 9, 2, 2, 2, 2, 2}, {5, 20, 1, 0, 0, 0, 0}};
    const G geoms7[] = {{7, 7, 1, 3, 3, 3, 3}, {14, 13, 1, 3, 3, 3, 3}, {4, 30, 1, 3, 3, 3, 3},
                        {16, 16, 2, 3, 3, 3, 3}, {9, 12, 2, 2, 2, 3, 3}, {8, 8, 1, 0, 0, 0, 0}};
    for (int K : {3, 5, 7}) {
        const G *gs = K == 3 ? geoms3 : K == 5 ? geoms5 : geoms7;
        const size_t ng = K == 3 ? std::size(geoms3) : K == 5 ? std::size(geoms5) : std::size(geoms7);
        for (size_t gi = 0; gi < ng; gi++) {
            const G &gm = gs[gi];
            SCOPED_TRACE("K " + std::to_string(K) + " H " + std::to_string(gm.H) + " W " +
                         std::to_string(gm.W) + " stride " + std::to_string(gm.s));
            const int64_t N = 2, C = 3;
            egc_conv_params p = conv_p(K, K, gm.s, 1, gm.pt, gm.pl, gm.pb, gm.pr, (int)C);
            egc_node n = node(EGC_OP_CONV, 3);
            n.p.conv = p;
            Tensor x = rnd(S({N, C, gm.H, gm.W})), w = rnd(S({C, 1, K, K})), b = rnd(S({C}));
            int64_t OH = conv_out(gm.H, K, gm.s, 1, gm.pt, gm.pb),
                    OW = conv_out(gm.W, K, gm.s, 1, gm.pl, gm.pr);
            ASSERT_GT(OH, 0);
            ASSERT_GT(OW, 0);
            egc_shape os = S({N, C, OH, OW});
            Tensor y = forward(n, {&x, &w, &b}, os);
            for (int64_t im = 0; im < N; im++)
                for (int64_t c = 0; c < C; c++)
                    for (int64_t oh = 0; oh < OH; oh++)
                        for (int64_t ow = 0; ow < OW; ow++) {
                            float acc = b.v[(size_t)c];
                            for (int64_t i = 0; i < K; i++) {
                                int64_t h = oh * gm.s - gm.pt + i;
                                if (h < 0 || h >= gm.H) continue;
                                for (int64_t j = 0; j < K; j++) {
                                    int64_t cc = ow * gm.s - gm.pl + j;
                                    if (cc < 0 || cc >= gm.W) continue;
                                    acc += w.v[(size_t)(c * K * K + i * K + j)] *
                                           x.v[(size_t)(((im * C + c) * gm.H + h) * gm.W + cc)];
                                }
                            }
                            size_t k = (size_t)(((im * C + c) * OH + oh) * OW + ow);
                            ASSERT_EQ(y.v[k], acc) << "image " << im << " channel " << c
                                                   << " at (" << oh << ", " << ow << ")";
                        }
        }
    }
}

TEST(CpuOpsConv, BatchLargerThanThreads)
{
    // Many images: the batch is split into parallel chunks.
    run_conv_case({7, 3, 6, 5, 4, conv_p(3, 3, 1, 1, 1, 1, 1, 1, 1), true});
}

TEST(CpuOpsConv, ColumnBlocksSingleImage)
{
    // One image with a few hundred output positions: the work is split into blocks of
    // output columns that end mid-row (whatever the thread count).
    run_conv_case({1, 3, 17, 19, 4, conv_p(3, 3, 1, 1, 1, 1, 1, 1, 1), true});
    run_conv_case({1, 2, 29, 27, 3, conv_p(3, 3, 2, 2, 2, 1, 0, 2, 1), true});
    run_conv_case({1, 6, 13, 14, 5, conv_p(1, 1, 1, 1, 0, 0, 0, 0, 1), true});
}

TEST(CpuOpsConv, LargerConvsAndPoolsRunInParallel)
{
    // Enough work per call to be split across threads (when there are several).
    run_conv_case({2, 8, 40, 37, 8, conv_p(3, 3, 1, 1, 1, 1, 1, 1, 8), true});
    run_conv_case({2, 8, 40, 37, 16, conv_p(3, 3, 1, 1, 1, 1, 1, 1, 1), true});
    run_conv_case({2, 16, 40, 41, 24, conv_p(1, 1, 1, 1, 0, 0, 0, 0, 1), false});
    egc_node n = node(EGC_OP_MAXPOOL, 1);
    n.p.pool = pool_p(3, 2, 1, 1, 1, 1, 1, 0, 0);
    Tensor x = distinct(S({2, 16, 40, 40}));
    egc_shape os = S({2, 16, 20, 20});
    expect_close(forward(n, {&x}, os), naive_maxpool(x, n.p.pool, os));
    check_grad(n, {x}, os, {0});
    n.op = EGC_OP_AVGPOOL;
    check_adjoint(n, {x}, os);
}

TEST(CpuOpsConv, ColumnMatrixCappedForManyChannels)
{
    // 512 channels x 3x3 = 4608 column rows over 961 positions: more than the per-thread
    // column budget, so forward and backward both walk several column blocks.
    ConvCase c{1, 512, 31, 31, 4, conv_p(3, 3, 1, 1, 1, 1, 1, 1, 1), true};
    egc_node n = node(EGC_OP_CONV, 3);
    n.p.conv = c.p;
    Tensor x = rnd(S({1, 512, 31, 31})), w = rnd(S({4, 512, 3, 3})), b = rnd(S({4}));
    egc_shape os = S({1, 4, 31, 31});
    expect_close(forward(n, {&x, &w, &b}, os), naive_conv(x, w, &b, c.p, os), 1e-4);
    egc_node lin = n;
    lin.n_in = 2;
    check_adjoint(lin, {x, w}, os);
}

TEST(CpuOpsConv, HandComputed)
{
    // X = 1..9 in a 3x3 image, all-ones 2x2 kernel, bias 0.5: each output is the sum of a
    // 2x2 window plus 0.5: 1+2+4+5, 2+3+5+6, 4+5+7+8, 5+6+8+9.
    egc_node n = node(EGC_OP_CONV, 3);
    n.p.conv = conv_p(2, 2, 1, 1, 0, 0, 0, 0, 1);
    Tensor x = seq(S({1, 1, 3, 3})), w = zeros(S({1, 1, 2, 2})), b = zeros(S({1}));
    std::fill(w.v.begin(), w.v.end(), 1.0f);
    b.v[0] = 0.5f;
    expect_close(forward(n, {&x, &w, &b}, S({1, 1, 2, 2})), {12.5, 16.5, 24.5, 28.5});
}

// ===================== Gemm / MatMul =====================

void run_gemm(int ta, int tb, float alpha, float beta, egc_shape cs, bool with_c)
{
    const int64_t M = 3, K = 5, N = 4;
    egc_node n = node(EGC_OP_GEMM, with_c ? 3 : 2);
    n.p.gemm.alpha = alpha;
    n.p.gemm.beta = beta;
    n.p.gemm.trans_a = ta;
    n.p.gemm.trans_b = tb;
    Tensor a = rnd(ta ? S({K, M}) : S({M, K})), b = rnd(tb ? S({N, K}) : S({K, N})), c = rnd(cs);
    std::vector<Tensor *> ins = {&a, &b};
    if (with_c) ins.push_back(&c);
    Tensor y = forward(n, ins, S({M, N}));
    std::vector<double> want((size_t)(M * N));
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double s = 0;
            for (int64_t k = 0; k < K; k++)
                s += (double)a.v[(size_t)(ta ? k * M + i : i * K + k)] *
                     b.v[(size_t)(tb ? j * K + k : k * N + j)];
            double cv = 0;
            if (with_c) {
                std::vector<int64_t> o = {i, j};
                egc_shape ys = S({M, N});
                cv = c.v[bidx(cs, ys, o)];
            }
            want[(size_t)(i * N + j)] = alpha * s + beta * cv;
        }
    expect_close(y, want);
    std::vector<Tensor> iv = {a, b};
    std::vector<int> wrt = {0, 1};
    if (with_c) {
        iv.push_back(c);
        wrt.push_back(2);
    }
    check_grad(n, iv, S({M, N}), wrt);
}

TEST(CpuOpsGemm, AllTransposesAndCBroadcasts)
{
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            SCOPED_TRACE("transA " + std::to_string(ta) + " transB " + std::to_string(tb));
            run_gemm(ta, tb, 1.5f, 0.75f, S({4}), true);
            run_gemm(ta, tb, 0.5f, 2.0f, S({3, 1}), true);
            run_gemm(ta, tb, 1.0f, 1.0f, S({3, 4}), true);
        }
    run_gemm(0, 1, 1.0f, -1.0f, S({}), true);
    run_gemm(0, 1, 1.0f, 1.0f, S({1, 4}), true);
    run_gemm(1, 0, 2.0f, 1.0f, S({}), false);
}

void run_matmul(egc_shape as, egc_shape bs, egc_shape os)
{
    egc_node n = node(EGC_OP_MATMUL, 2);
    Tensor a = rnd(as), b = rnd(bs);
    Tensor y = forward(n, {&a, &b}, os);
    // Independent reference: promote 1-D operands, broadcast batch dims, then drop.
    egc_shape a2 = as, b2 = bs;
    if (as.ndim == 1) a2 = S({1, as.d[0]});
    if (bs.ndim == 1) b2 = S({bs.d[0], 1});
    int64_t M = a2.d[a2.ndim - 2], K = a2.d[a2.ndim - 1], N = b2.d[b2.ndim - 1];
    int nb = std::max(a2.ndim, b2.ndim) - 2;
    egc_shape batch{};
    batch.ndim = nb;
    for (int i = 0; i < nb; i++) {
        int ia = a2.ndim - 2 - nb + i, ib = b2.ndim - 2 - nb + i;
        int64_t da = ia >= 0 ? a2.d[ia] : 1, db = ib >= 0 ? b2.d[ib] : 1;
        batch.d[i] = std::max(da, db);
    }
    egc_shape abatch{}, bbatch{};
    abatch.ndim = a2.ndim - 2;
    bbatch.ndim = b2.ndim - 2;
    for (int i = 0; i < abatch.ndim; i++) abatch.d[i] = a2.d[i];
    for (int i = 0; i < bbatch.ndim; i++) bbatch.d[i] = b2.d[i];
    std::vector<double> want;
    for (int64_t bi = 0; bi < egc_shape_numel(&batch); bi++) {
        auto o = unravel(bi, batch);
        size_t ab = bidx(abatch, batch, o), bb = bidx(bbatch, batch, o);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++)
                    s += (double)a.v[ab * (size_t)(M * K) + (size_t)(i * K + k)] *
                         b.v[bb * (size_t)(K * N) + (size_t)(k * N + j)];
                want.push_back(s);
            }
    }
    expect_close(y, want);
    check_grad(n, {a, b}, os, {0, 1});
}

TEST(CpuOpsMatMul, NumpySemantics)
{
    run_matmul(S({3, 4}), S({4, 5}), S({3, 5}));
    run_matmul(S({2, 1, 3, 4}), S({3, 4, 5}), S({2, 3, 3, 5})); // broadcast both ways
    run_matmul(S({5, 3, 4}), S({4, 2}), S({5, 3, 2}));          // shared B
    run_matmul(S({4}), S({2, 4, 3}), S({2, 3}));                // 1-D A
    run_matmul(S({2, 3, 4}), S({4}), S({2, 3}));                // 1-D B
    run_matmul(S({4}), S({4}), S({}));                          // dot product
}

// ===================== unary =====================

TEST(CpuOpsUnary, ReluForwardBackward)
{
    egc_node n = node(EGC_OP_RELU, 1);
    Tensor x = rnd(S({2, 3, 5}));
    for (auto &v : x.v) v = std::fabs(v) < 0.05f ? v + 0.1f : v; // away from the kink
    Tensor y = forward(n, {&x}, x.s);
    for (size_t k = 0; k < x.v.size(); k++) ASSERT_EQ(y.v[k], x.v[k] > 0 ? x.v[k] : 0.0f);
    check_grad(n, {x}, x.s, {0});
    // derivative 0 at exactly 0
    Tensor z = zeros(S({1})), g = zeros(S({1})), dy = zeros(S({1}));
    dy.v[0] = 1.0f;
    egc_view in{z.v.data(), z.s}, out{z.v.data(), z.s}, dout{dy.v.data(), dy.s},
        din{g.v.data(), g.s};
    ASSERT_EQ(egc_cpu_backward(&graph(), &n, &in, &out, &dout, &din), EGC_OK);
    EXPECT_EQ(g.v[0], 0.0f);
}

TEST(CpuOpsUnary, ClipForwardBackwardAndBoundaries)
{
    egc_node n = node(EGC_OP_CLIP, 1);
    n.p.clip.lo = -0.3f;
    n.p.clip.hi = 0.4f;
    Tensor x = rnd(S({3, 7}));
    for (auto &v : x.v)
        if (std::fabs(v + 0.3f) < 0.05f || std::fabs(v - 0.4f) < 0.05f) v += 0.11f;
    Tensor y = forward(n, {&x}, x.s);
    for (size_t k = 0; k < x.v.size(); k++)
        ASSERT_EQ(y.v[k], std::min(std::max(x.v[k], -0.3f), 0.4f));
    check_grad(n, {x}, x.s, {0});
    // At the bounds exactly the gradient passes (lo <= x <= hi), as torch.clamp's backward.
    Tensor b = zeros(S({4})), g = zeros(S({4})), dy = zeros(S({4}));
    b.v = {-0.3f, 0.4f, -0.31f, 0.41f};
    dy.v = {1.0f, 1.0f, 1.0f, 1.0f};
    Tensor yb = forward(n, {&b}, b.s);
    egc_view in{b.v.data(), b.s}, out{yb.v.data(), yb.s}, dout{dy.v.data(), dy.s},
        din{g.v.data(), g.s};
    ASSERT_EQ(egc_cpu_backward(&graph(), &n, &in, &out, &dout, &din), EGC_OK);
    EXPECT_EQ(g.v, (std::vector<float>{1.0f, 1.0f, 0.0f, 0.0f}));
    // Unbounded side: +inf
    n.p.clip.hi = INFINITY;
    Tensor yi = forward(n, {&b}, b.s);
    EXPECT_EQ(yi.v[3], 0.41f);
}

TEST(CpuOpsUnary, Sigmoid)
{
    egc_node n = node(EGC_OP_SIGMOID, 1);
    Tensor x = rnd(S({4, 5}), -6.0f, 6.0f);
    x.v[0] = -100.0f; // must not overflow
    x.v[1] = 100.0f;
    Tensor y = forward(n, {&x}, x.s);
    std::vector<double> want;
    for (float v : x.v) want.push_back(1.0 / (1.0 + std::exp(-(double)v)));
    expect_close(y, want, 1e-6);
    check_grad(n, {x}, x.s, {0});
    // The exponential is a polynomial: relative error under 4e-7 over the whole range where
    // the result is a normal float, 0 below -87, NaN kept, the infinities saturated.
    Tensor w = zeros(S({200001}));
    for (size_t k = 0; k < w.v.size(); k++) w.v[k] = -90.0f + 180.0f * (float)k / 200000.0f;
    Tensor yw = forward(n, {&w}, w.s);
    double worst = 0;
    for (size_t k = 0; k < w.v.size(); k++) {
        const double exact = 1.0 / (1.0 + std::exp(-(double)w.v[k]));
        if (w.v[k] < -87.0f) {
            ASSERT_LE(yw.v[k], 1.7e-38f) << w.v[k];
            continue;
        }
        worst = std::max(worst, std::fabs(yw.v[k] - exact) / exact);
    }
    EXPECT_LT(worst, 4e-7);
    Tensor sp = zeros(S({3}));
    sp.v = {NAN, INFINITY, -INFINITY};
    Tensor ys = forward(n, {&sp}, sp.s);
    EXPECT_TRUE(std::isnan(ys.v[0]));
    EXPECT_EQ(ys.v[1], 1.0f);
    EXPECT_EQ(ys.v[2], 0.0f);
}

// Sqrt over [0.2, 4] (the derivative 0.5 / y; at 0 it is infinite, as torch.sqrt's) and Erf
// over [-3, 3] (the derivative 2 / sqrt(pi) exp(-x^2)), against libm in double precision and
// central differences.
TEST(CpuOpsUnary, SqrtAndErf)
{
    egc_node sq = node(EGC_OP_SQRT, 1);
    Tensor x = rnd(S({3, 4, 5}), 0.2f, 4.0f);
    Tensor y = forward(sq, {&x}, x.s);
    std::vector<double> want;
    for (float v : x.v) want.push_back(std::sqrt((double)v));
    expect_close(y, want, 1e-7);
    check_grad(sq, {x}, x.s, {0});
    Tensor z = zeros(S({1})), g = zeros(S({1})), dy = zeros(S({1}));
    dy.v[0] = 1.0f;
    egc_view in{z.v.data(), z.s}, out{z.v.data(), z.s}, dout{dy.v.data(), dy.s},
        din{g.v.data(), g.s};
    ASSERT_EQ(egc_cpu_backward(&graph(), &sq, &in, &out, &dout, &din), EGC_OK);
    EXPECT_TRUE(std::isinf(g.v[0]) && g.v[0] > 0);

    egc_node er = node(EGC_OP_ERF, 1);
    Tensor e = rnd(S({2, 3, 7}), -3.0f, 3.0f);
    e.v[0] = 0.0f;
    e.v[1] = -12.0f; // saturated: -1, derivative 0
    Tensor ye = forward(er, {&e}, e.s);
    want.clear();
    for (float v : e.v) want.push_back(std::erf((double)v));
    expect_close(ye, want, 1e-6);
    check_grad(er, {e}, e.s, {0});
    // the vectorized erf and Gaussian on 200,001 points of [-6, 6]: within 5e-7 of double's
    // (absolute, and relative away from 0; the Gaussian of the float square x*x); the ends
    // and NaN
    Tensor d = zeros(S({200005})), dd = zeros(d.s), gd = zeros(d.s);
    for (int k = 0; k <= 200000; k++) d.v[(size_t)k] = -6.0f + 12.0f * (float)k / 200000.0f;
    d.v[200001] = INFINITY;
    d.v[200002] = -INFINITY;
    d.v[200003] = NAN;
    d.v[200004] = 1e-30f;
    for (auto &v : dd.v) v = 1.0f;
    Tensor yd = forward(er, {&d}, d.s);
    backward(er, {&d}, yd, dd, {&gd});
    for (int k = 0; k <= 200000; k++) {
        const double x = d.v[(size_t)k], w = std::erf(x);
        const float sq = d.v[(size_t)k] * d.v[(size_t)k]; // the float square both round
        const double gw = 1.1283791670955126 * std::exp(-(double)sq);
        ASSERT_NEAR(yd.v[(size_t)k], w, 5e-7 * std::max(1e-3, std::fabs(w))) << x;
        ASSERT_NEAR(gd.v[(size_t)k], gw, 5e-7 * std::max(1e-30, gw) + 1e-37) << x;
    }
    EXPECT_EQ(yd.v[200001], 1.0f);
    EXPECT_EQ(yd.v[200002], -1.0f);
    EXPECT_TRUE(std::isnan(yd.v[200003]));
    EXPECT_TRUE(std::isnan(gd.v[200003]));
    EXPECT_EQ(gd.v[200001], 0.0f);
    EXPECT_NEAR(yd.v[200004], 1.1283791670955126e-30, 1e-36);
}

// Exp over [-8, 3] (its backward reads the forward output), Log over [0.05, 20] (the
// derivative 1 / x; at 0 it is infinite, as torch.log's) and Softplus over [-30, 30] (the
// derivative sigmoid(x)), against libm in double precision and central differences; then
// Softplus at its ends, where log(1 + exp(x)) in float would overflow, and NaN.
TEST(CpuOpsUnary, ExpLogAndSoftplus)
{
    egc_node ex = node(EGC_OP_EXP, 1);
    Tensor x = rnd(S({2, 3, 4, 5}), -8.0f, 3.0f);
    Tensor y = forward(ex, {&x}, x.s);
    std::vector<double> want;
    for (float v : x.v) want.push_back(std::exp((double)v));
    expect_close(y, want, 1e-6);
    check_grad(ex, {x}, x.s, {0}, 1e-3f);

    egc_node lg = node(EGC_OP_LOG, 1);
    Tensor l = rnd(S({3, 17}), 0.05f, 20.0f);
    Tensor yl = forward(lg, {&l}, l.s);
    want.clear();
    for (float v : l.v) want.push_back(std::log((double)v));
    expect_close(yl, want, 1e-6);
    check_grad(lg, {l}, l.s, {0}, 1e-3f);
    Tensor z = zeros(S({1})), g = zeros(S({1})), dy = zeros(S({1}));
    dy.v[0] = 1.0f;
    egc_view in{z.v.data(), z.s}, out{z.v.data(), z.s}, dout{dy.v.data(), dy.s},
        din{g.v.data(), g.s};
    ASSERT_EQ(egc_cpu_backward(&graph(), &lg, &in, &out, &dout, &din), EGC_OK);
    EXPECT_TRUE(std::isinf(g.v[0]) && g.v[0] > 0);

    egc_node sp = node(EGC_OP_SOFTPLUS, 1);
    Tensor p = rnd(S({4, 2, 9}), -30.0f, 30.0f);
    p.v[0] = 0.0f;
    Tensor yp = forward(sp, {&p}, p.s);
    want.clear();
    for (float v : p.v) want.push_back(std::log1p(std::exp((double)v)));
    expect_close(yp, want, 1e-6);
    check_grad(sp, {p}, p.s, {0}, 1e-3f);
    Tensor e = zeros(S({6})), de = zeros(e.s), ge = zeros(e.s);
    const float ends[6] = {200.0f, -200.0f, INFINITY, -INFINITY, NAN, 89.0f};
    for (int k = 0; k < 6; k++) e.v[(size_t)k] = ends[k], de.v[(size_t)k] = 1.0f;
    Tensor ye = forward(sp, {&e}, e.s);
    backward(sp, {&e}, ye, de, {&ge});
    EXPECT_EQ(ye.v[0], 200.0f);
    EXPECT_EQ(ye.v[1], 0.0f);
    EXPECT_TRUE(std::isinf(ye.v[2]) && ye.v[2] > 0);
    EXPECT_EQ(ye.v[3], 0.0f);
    EXPECT_TRUE(std::isnan(ye.v[4]));
    EXPECT_EQ(ye.v[5], 89.0f);
    EXPECT_EQ(ge.v[0], 1.0f);
    EXPECT_EQ(ge.v[1], 0.0f);
    EXPECT_EQ(ge.v[2], 1.0f);
    EXPECT_EQ(ge.v[3], 0.0f);
    EXPECT_TRUE(std::isnan(ge.v[4]));
}

// A QuantizeLinear / DequantizeLinear pair (uint8, zero point 3, scale 0.25): values rounded
// to the grid, ties to even (x / scale = 2.5 gives 2, 3.5 gives 4), clamped to [0, 255] less the
// zero point; the gradient passes where the value was not clamped; int8's range likewise.
TEST(CpuOpsUnary, QuantizeDequantize)
{
    egc_node n = node(EGC_OP_FAKE_QUANT, 1);
    n.p.fq = {0.25f, 3.0f, 0.0f, 255.0f};
    const float xs[10] = {0.625f, 0.875f, -0.75f, -0.8f, -2.0f, 63.0f, 63.1f, 1.1f, 70.0f, 0.0f};
    const float want[10] = {0.5f, 1.0f, -0.75f, -0.75f, -0.75f, 63.0f, 63.0f, 1.0f, 63.0f, 0.0f};
    const float gwant[10] = {1, 1, 1, 1, 0, 1, 1, 1, 0, 1}; // -2.0 and 70.0 clamped
    Tensor x = zeros(S({2, 5})), dy = zeros(x.s), g = zeros(x.s);
    for (int k = 0; k < 10; k++) x.v[(size_t)k] = xs[k], dy.v[(size_t)k] = 1.0f;
    Tensor y = forward(n, {&x}, x.s);
    backward(n, {&x}, y, dy, {&g});
    for (int k = 0; k < 10; k++) {
        EXPECT_EQ(y.v[(size_t)k], want[k]) << "x = " << xs[k];
        EXPECT_EQ(g.v[(size_t)k], gwant[k]) << "x = " << xs[k];
    }
    // int8 on random values against a double-precision reference of the same float division
    n.p.fq = {0.05f, -4.0f, -128.0f, 127.0f};
    Tensor r = rnd(S({3, 4, 7, 5}), -8.0f, 8.0f), dr = rnd(r.s), gr = zeros(r.s);
    Tensor yr = forward(n, {&r}, r.s);
    backward(n, {&r}, yr, dr, {&gr});
    for (size_t k = 0; k < r.v.size(); k++) {
        const double q = std::nearbyint((double)(r.v[k] / 0.05f)) - 4.0;
        const double qc = std::min(127.0, std::max(-128.0, q));
        ASSERT_NEAR(yr.v[k], (qc + 4.0) * 0.05, 1e-6) << r.v[k];
        ASSERT_EQ(gr.v[k], q == qc ? dr.v[k] : 0.0f) << r.v[k];
    }
}

TEST(CpuOpsUnary, LargeTensorsSplitAcrossThreads)
{
    // Big enough to be cut into parallel ranges; checked element by element.
    Tensor x = rnd(S({2, 8, 150, 151})), dy = rnd(x.s), b = rnd(x.s);
    for (egc_op op : {EGC_OP_RELU, EGC_OP_CLIP, EGC_OP_SIGMOID}) {
        egc_node n = node(op, 1);
        n.p.clip.lo = -0.5f;
        n.p.clip.hi = 0.25f;
        Tensor y = forward(n, {&x}, x.s);
        Tensor g = zeros(x.s);
        std::fill(g.v.begin(), g.v.end(), 0.5f);
        egc_view in{x.v.data(), x.s}, out{y.v.data(), y.s}, dout{dy.v.data(), dy.s},
            din{g.v.data(), g.s};
        ASSERT_EQ(egc_cpu_backward(&graph(), &n, &in, &out, &dout, &din), EGC_OK);
        for (size_t k = 0; k < x.v.size(); k++) {
            float v = x.v[k], want, dwant;
            if (op == EGC_OP_RELU) {
                want = v > 0 ? v : 0;
                dwant = v > 0 ? dy.v[k] : 0;
            } else if (op == EGC_OP_CLIP) {
                want = std::min(std::max(v, -0.5f), 0.25f);
                dwant = v >= -0.5f && v <= 0.25f ? dy.v[k] : 0;
            } else {
                want = (float)(1.0 / (1.0 + std::exp(-(double)v)));
                dwant = dy.v[k] * want * (1 - want);
            }
            ASSERT_NEAR(y.v[k], want, 1e-6) << k;
            ASSERT_NEAR(g.v[k], 0.5f + dwant, 1e-6) << k;
        }
    }
    egc_node n = node(EGC_OP_MUL, 2);
    Tensor y = forward(n, {&x, &b}, x.s);
    Tensor ga = zeros(x.s), gb = zeros(x.s);
    backward(n, {&x, &b}, y, dy, {&ga, &gb});
    for (size_t k = 0; k < x.v.size(); k++) {
        ASSERT_EQ(y.v[k], x.v[k] * b.v[k]) << k;
        ASSERT_EQ(ga.v[k], dy.v[k] * b.v[k]) << k;
        ASSERT_EQ(gb.v[k], dy.v[k] * x.v[k]) << k;
    }
}

// Broadcasting binary ops on tensors big enough to be cut into row ranges: the forward and the
// gradient of the full-shaped input run in parallel, the gradient of the broadcast input sums
// over rows in one walk; all element by element against a direct loop.
TEST(CpuOpsBinary, LargeBroadcastSplitAcrossThreads)
{
    const int64_t N = 2, C = 8, H = 150, W = 151;
    Tensor x = rnd(S({N, C, H, W})), s = rnd(S({N, 1, H, 1})), dy = rnd(x.s);
    for (egc_op op : {EGC_OP_MUL, EGC_OP_SUB}) {
        egc_node n = node(op, 2);
        Tensor y = forward(n, {&x, &s}, x.s);
        Tensor gx = zeros(x.s), gs = zeros(s.s);
        backward(n, {&x, &s}, y, dy, {&gx, &gs});
        std::vector<float> want_gs(gs.v.size(), 0.0f);
        for (int64_t b = 0; b < N; b++)
            for (int64_t c = 0; c < C; c++)
                for (int64_t h = 0; h < H; h++)
                    for (int64_t w = 0; w < W; w++) {
                        size_t k = (size_t)(((b * C + c) * H + h) * W + w), q = (size_t)(b * H + h);
                        float xv = x.v[k], sv = s.v[q], g = dy.v[k];
                        ASSERT_EQ(y.v[k], op == EGC_OP_MUL ? xv * sv : xv - sv) << k;
                        ASSERT_EQ(gx.v[k], op == EGC_OP_MUL ? g * sv : g) << k;
                        want_gs[q] += op == EGC_OP_MUL ? g * xv : -g;
                    }
        for (size_t q = 0; q < want_gs.size(); q++)
            ASSERT_NEAR(gs.v[q], want_gs[q], 1e-4f * (1.0f + std::fabs(want_gs[q]))) << q;
    }
}

// ===================== binary =====================

void run_binary(egc_op op, egc_shape as, egc_shape bs, egc_shape os)
{
    egc_node n = node(op, 2);
    Tensor a = rnd(as), b = rnd(bs);
    if (op == EGC_OP_DIV)
        for (auto &v : b.v) v = v < 0 ? v - 0.5f : v + 0.5f; // |b| >= 0.5
    Tensor y = forward(n, {&a, &b}, os);
    std::vector<double> want;
    for (int64_t k = 0; k < egc_shape_numel(&os); k++) {
        auto o = unravel(k, os);
        double x1 = a.v[bidx(as, os, o)], x2 = b.v[bidx(bs, os, o)];
        want.push_back(op == EGC_OP_ADD ? x1 + x2
                       : op == EGC_OP_SUB ? x1 - x2
                       : op == EGC_OP_MUL ? x1 * x2
                                          : x1 / x2);
    }
    expect_close(y, want, 1e-5);
    check_grad(n, {a, b}, os, {0, 1});
}

TEST(CpuOpsBinary, BroadcastingAllOps)
{
    for (egc_op op : {EGC_OP_ADD, EGC_OP_SUB, EGC_OP_MUL, EGC_OP_DIV}) {
        SCOPED_TRACE(egc_op_name(op));
        run_binary(op, S({2, 3, 4, 5}), S({3, 1, 5}), S({2, 3, 4, 5}));
        run_binary(op, S({3, 1, 5}), S({2, 3, 4, 1}), S({2, 3, 4, 5})); // both broadcast
        run_binary(op, S({2, 3, 3}), S({2, 3, 3}), S({2, 3, 3}));
        run_binary(op, S({}), S({3, 2}), S({3, 2}));                    // scalar A
        run_binary(op, S({2, 7}), S({1}), S({2, 7}));
    }
}

TEST(CpuOpsBinary, SameInputTwice)
{
    // x * x with both gradients into one buffer (the executor does this for a value used
    // twice): d/dx = 2x.
    egc_node n = node(EGC_OP_MUL, 2);
    Tensor x = rnd(S({6})), g = zeros(S({6})), dy = zeros(S({6}));
    std::fill(dy.v.begin(), dy.v.end(), 1.0f);
    Tensor y = forward(n, {&x, &x}, x.s);
    egc_view in[2] = {{x.v.data(), x.s}, {x.v.data(), x.s}};
    egc_view din[2] = {{g.v.data(), g.s}, {g.v.data(), g.s}};
    egc_view out{y.v.data(), y.s}, dout{dy.v.data(), dy.s};
    ASSERT_EQ(egc_cpu_backward(&graph(), &n, in, &out, &dout, din), EGC_OK);
    for (size_t k = 0; k < x.v.size(); k++) EXPECT_NEAR(g.v[k], 2.0f * x.v[k], 1e-6);
}

// ===================== pooling =====================

std::vector<double> naive_maxpool(const Tensor &x, const egc_pool_params &p, egc_shape os)
{
    int64_t NC = x.s.d[0] * x.s.d[1], H = x.s.d[2], W = x.s.d[3];
    std::vector<double> y;
    for (int64_t c = 0; c < NC; c++)
        for (int64_t oh = 0; oh < os.d[2]; oh++)
            for (int64_t ow = 0; ow < os.d[3]; ow++) {
                double m = -INFINITY;
                for (int i = 0; i < p.kh; i++)
                    for (int j = 0; j < p.kw; j++) {
                        int64_t h = oh * p.sh - p.pt + i * p.dh, w = ow * p.sw - p.pl + j * p.dw;
                        if (h >= 0 && h < H && w >= 0 && w < W)
                            m = std::max(m, (double)x.v[(size_t)((c * H + h) * W + w)]);
                    }
                y.push_back(m);
            }
    return y;
}

TEST(CpuOpsPool, MaxPoolHandComputed)
{
    // 5x5 values, 2x2 stride 2 with ceil_mode: 3x3 output, last row/col windows partial.
    // Expected values computed with torch.nn.functional.max_pool2d.
    egc_node n = node(EGC_OP_MAXPOOL, 1);
    Tensor x = zeros(S({1, 1, 5, 5}));
    x.v = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3};
    n.p.pool = pool_p(2, 2, 1, 0, 0, 0, 0, 1, 0);
    expect_close(forward(n, {&x}, S({1, 1, 3, 3})), {9, 6, 5, 8, 9, 9, 6, 6, 3});
    // 3x3 stride 2 pad 1: padding never wins.
    n.p.pool = pool_p(3, 2, 1, 1, 1, 1, 1, 0, 0);
    expect_close(forward(n, {&x}, S({1, 1, 3, 3})), {9, 6, 5, 9, 9, 9, 6, 8, 8});
    Tensor neg = rnd(S({1, 1, 3, 3}), -2.0f, -1.0f);
    Tensor yn = forward(n, {&neg}, S({1, 1, 2, 2}));
    for (float v : yn.v) EXPECT_LT(v, -0.5f);
}

TEST(CpuOpsPool, MaxPoolAgainstNaiveAndGradients)
{
    egc_node n = node(EGC_OP_MAXPOOL, 1);
    // dilation 2, asymmetric pads, ceil_mode
    n.p.pool = pool_p(3, 2, 2, 1, 0, 2, 1, 1, 0);
    Tensor x = distinct(S({2, 3, 9, 8}));
    egc_shape os = S({2, 3, 5, 3});
    expect_close(forward(n, {&x}, os), naive_maxpool(x, n.p.pool, os));
    check_grad(n, {x}, os, {0}, 1e-2f, 1e-2f, 2e-3f, 200);
    n.p.pool = pool_p(3, 2, 1, 1, 1, 1, 1, 0, 0);
    os = S({2, 3, 5, 4});
    expect_close(forward(n, {&x}, os), naive_maxpool(x, n.p.pool, os));
    check_grad(n, {x}, os, {0}, 1e-2f, 1e-2f, 2e-3f, 200);
}

TEST(CpuOpsPool, MaxPoolTiesGoToFirst)
{
    // All-equal window: the whole gradient goes to the first position (row-major), as PyTorch.
    egc_node n = node(EGC_OP_MAXPOOL, 1);
    n.p.pool = pool_p(2, 2, 1, 0, 0, 0, 0, 0, 0);
    Tensor x = zeros(S({1, 1, 2, 2}));
    std::fill(x.v.begin(), x.v.end(), 1.0f);
    Tensor y = forward(n, {&x}, S({1, 1, 1, 1}));
    Tensor g = zeros(x.s), dy = zeros(y.s);
    dy.v[0] = 2.0f;
    egc_view in{x.v.data(), x.s}, out{y.v.data(), y.s}, dout{dy.v.data(), dy.s},
        din{g.v.data(), g.s};
    ASSERT_EQ(egc_cpu_backward(&graph(), &n, &in, &out, &dout, &din), EGC_OK);
    EXPECT_EQ(g.v, (std::vector<float>{2.0f, 0.0f, 0.0f, 0.0f}));
}

// The forward's unchecked interior paths (3x3, 2x2 and any other window that lies inside x)
// give the bits of the rule "first in-range tap, then each later one that is greater" on
// every geometry, with ties of +0 and -0 and NaNs (a NaN first tap stays, a later one loses).
TEST(CpuOpsPool, MaxPoolForwardBitsMatchTheRule)
{
    struct G { int k, s, d, pt, pl, pb, pr, ceil; int64_t h, w; };
    const G geoms[] = {{3, 2, 1, 1, 1, 1, 1, 0, 15, 17}, {3, 2, 1, 1, 1, 1, 1, 1, 16, 16},
                       {2, 2, 1, 0, 0, 0, 0, 0, 14, 9},  {2, 2, 1, 0, 0, 0, 0, 1, 7, 7},
                       {3, 1, 1, 1, 1, 1, 1, 0, 6, 11}, {3, 2, 2, 2, 1, 0, 2, 1, 13, 12},
                       {5, 3, 1, 2, 2, 2, 2, 0, 19, 4}, {3, 2, 1, 1, 1, 1, 1, 0, 2, 2},
                       {2, 1, 1, 0, 0, 1, 0, 0, 1, 5}};
    for (const G &q : geoms) {
        egc_node n = node(EGC_OP_MAXPOOL, 1);
        n.p.pool = pool_p(q.k, q.s, q.d, q.pt, q.pl, q.pb, q.pr, q.ceil, 0);
        const egc_pool_params &p = n.p.pool;
        auto osz = [&](int64_t in, int pa, int pb) {
            int64_t e = in + pa + pb - ((int64_t)(q.k - 1) * q.d + 1);
            return (q.ceil ? (e + q.s - 1) / q.s : e / q.s) + 1;
        };
        egc_shape os = S({2, 3, osz(q.h, q.pt, q.pb), osz(q.w, q.pl, q.pr)});
        Tensor x = zeros(S({2, 3, q.h, q.w}));
        for (size_t i = 0; i < x.v.size(); i++) { // few distinct values: many ties
            int r = (int)((i * 2654435761u) % 13);
            x.v[i] = r < 3 ? 0.0f : r < 6 ? -0.0f : r == 6 ? NAN : r == 7 ? 1.0f : -(float)r;
        }
        Tensor y = forward(n, {&x}, os);
        int64_t H = q.h, W = q.w, OH = os.d[2], OW = os.d[3];
        for (int64_t c = 0; c < 6; c++)
            for (int64_t oh = 0; oh < OH; oh++)
                for (int64_t ow = 0; ow < OW; ow++) {
                    float m = -FLT_MAX;
                    bool any = false;
                    for (int i = 0; i < p.kh; i++)
                        for (int j = 0; j < p.kw; j++) {
                            int64_t h = oh * p.sh - p.pt + i * p.dh, w = ow * p.sw - p.pl + j * p.dw;
                            if (h < 0 || h >= H || w < 0 || w >= W) continue;
                            float v = x.v[(size_t)((c * H + h) * W + w)];
                            if (!any || v > m) m = v;
                            any = true;
                        }
                    float got = y.v[(size_t)((c * OH + oh) * OW + ow)];
                    uint32_t a, b;
                    std::memcpy(&a, &m, 4);
                    std::memcpy(&b, &got, 4);
                    ASSERT_EQ(a, b) << "k " << q.k << " s " << q.s << " d " << q.d << " at " << c
                                    << "," << oh << "," << ow << ": " << got << " vs " << m;
                }
    }
}

TEST(CpuOpsPool, AveragePoolHandComputed)
{
    // Expected values computed with torch.nn.functional.avg_pool2d (which agrees with
    // onnxruntime): a ceil_mode window past the end padding is not charged for the overhang.
    egc_node n = node(EGC_OP_AVGPOOL, 1);
    Tensor x = seq(S({1, 1, 4, 4}));
    n.p.pool = pool_p(3, 2, 1, 1, 1, 1, 1, 1, 1);
    expect_close(forward(n, {&x}, S({1, 1, 3, 3})),
                 {14.0 / 9, 30.0 / 9, 2.0, 57.0 / 9, 11.0, 6.0, 4.5, 7.5, 4.0});
    n.p.pool.count_include_pad = 0;
    expect_close(forward(n, {&x}, S({1, 1, 3, 3})), {3.5, 5.0, 6.0, 9.5, 11.0, 12.0, 13.5, 15.0, 16.0});
    Tensor x3 = seq(S({1, 1, 3, 3}));
    n.p.pool = pool_p(2, 2, 1, 0, 0, 0, 0, 1, 1);
    expect_close(forward(n, {&x3}, S({1, 1, 2, 2})), {3.0, 4.5, 7.5, 9.0});
}

TEST(CpuOpsPool, AveragePoolGradients)
{
    egc_node n = node(EGC_OP_AVGPOOL, 1);
    Tensor x = rnd(S({2, 3, 7, 8}));
    // ceil_mode: 4 columns (a fifth window would start in the end padding and is dropped)
    n.p.pool = pool_p(3, 2, 1, 1, 0, 1, 2, 1, 1);
    check_grad(n, {x}, S({2, 3, 4, 4}), {0}, 1e-2f, 1e-2f, 2e-3f, 200);
    n.p.pool.count_include_pad = 0;
    check_grad(n, {x}, S({2, 3, 4, 4}), {0}, 1e-2f, 1e-2f, 2e-3f, 200);
    check_adjoint(n, {x}, S({2, 3, 4, 4}));
    n.p.pool = pool_p(2, 1, 2, 0, 0, 0, 0, 0, 0); // dilated, no padding
    check_grad(n, {x}, S({2, 3, 5, 6}), {0}, 1e-2f, 1e-2f, 2e-3f, 200);
    check_adjoint(n, {x}, S({2, 3, 5, 6}));
}

TEST(CpuOpsPool, GlobalAveragePool)
{
    egc_node n = node(EGC_OP_GAP, 1);
    Tensor x = rnd(S({2, 3, 5, 7}));
    Tensor y = forward(n, {&x}, S({2, 3, 1, 1}));
    std::vector<double> want;
    for (int p = 0; p < 6; p++) {
        double s = 0;
        for (int k = 0; k < 35; k++) s += x.v[(size_t)(p * 35 + k)];
        want.push_back(s / 35);
    }
    expect_close(y, want, 1e-5);
    check_grad(n, {x}, S({2, 3, 1, 1}), {0});
    check_adjoint(n, {x}, S({2, 3, 1, 1}));
}

// ===================== BatchNormalization =====================

TEST(CpuOpsBatchNorm, InferenceForm)
{
    egc_node n = node(EGC_OP_BATCHNORM, 5);
    n.p.bn.eps = 1e-3f;
    Tensor x = rnd(S({2, 3, 4, 5})), sc = rnd(S({3})), b = rnd(S({3})), mu = rnd(S({3})),
           var = rnd(S({3}), 0.1f, 2.0f);
    Tensor y = forward(n, {&x, &sc, &b, &mu, &var}, x.s);
    std::vector<double> want;
    for (size_t k = 0; k < x.v.size(); k++) {
        size_t c = (k / 20) % 3;
        want.push_back(sc.v[c] * (x.v[k] - mu.v[c]) / std::sqrt((double)var.v[c] + 1e-3) + b.v[c]);
    }
    expect_close(y, want, 1e-5);
    check_grad(n, {x, sc, b, mu, var}, x.s, {0});
}

// ===================== shape ops =====================

TEST(CpuOpsShape, ReshapeCopies)
{
    egc_node n = node(EGC_OP_RESHAPE, 1);
    n.p.reshape.flatten_axis = 1;
    Tensor x = rnd(S({2, 3, 4}));
    Tensor y = forward(n, {&x}, S({2, 12}));
    EXPECT_EQ(y.v, x.v);
    check_grad(n, {x}, S({2, 12}), {0});
    // element counts must agree
    Tensor bad = zeros(S({5}));
    egc_view in{x.v.data(), x.s}, out{bad.v.data(), bad.s};
    EXPECT_EQ(egc_cpu_forward(&graph(), &n, &in, &out), EGC_E_SHAPE);
}

TEST(CpuOpsShape, ConcatNegativeAxis)
{
    egc_node n = node(EGC_OP_CONCAT, 3);
    n.p.axis.axis = -2;
    Tensor a = rnd(S({2, 1, 3})), b = rnd(S({2, 4, 3})), c = rnd(S({2, 2, 3}));
    egc_shape os = S({2, 7, 3});
    Tensor y = forward(n, {&a, &b, &c}, os);
    std::vector<double> want;
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 7; j++)
            for (int k = 0; k < 3; k++) {
                const Tensor &t = j < 1 ? a : j < 5 ? b : c;
                int jj = j < 1 ? j : j < 5 ? j - 1 : j - 5;
                want.push_back(t.v[(size_t)((i * t.s.d[1] + jj) * 3 + k)]);
            }
    expect_close(y, want, 0);
    check_grad(n, {a, b, c}, os, {0, 1, 2});
}

TEST(CpuOpsShape, SliceNegativeStepsAndClamping)
{
    egc_node n = node(EGC_OP_SLICE, 1);
    Tensor x = seq(S({3, 5}), 0.0f); // x[i][j] = 5i + j
    // axis 1 from the end backwards by 2: columns 4, 2, 0; axis 0: rows 1..2 (end clamped)
    n.p.slice.n = 2;
    n.p.slice.axes[0] = -1, n.p.slice.starts[0] = -1, n.p.slice.ends[0] = -1000,
    n.p.slice.steps[0] = -2;
    n.p.slice.axes[1] = 0, n.p.slice.starts[1] = 1, n.p.slice.ends[1] = 1000000,
    n.p.slice.steps[1] = 1;
    egc_shape os = S({2, 3});
    expect_close(forward(n, {&x}, os), {9, 7, 5, 14, 12, 10}, 0);
    Tensor xr = rnd(S({3, 5}));
    check_grad(n, {xr}, os, {0});
    // strided forward slice on 3 dims
    egc_node m = node(EGC_OP_SLICE, 1);
    m.p.slice.n = 1;
    m.p.slice.axes[0] = 2, m.p.slice.starts[0] = 1, m.p.slice.ends[0] = 6, m.p.slice.steps[0] = 2;
    Tensor x3 = rnd(S({2, 3, 7}));
    check_grad(m, {x3}, S({2, 3, 3}), {0});
    check_adjoint(m, {x3}, S({2, 3, 3}));
    check_adjoint(n, {xr}, os);
}

TEST(CpuOpsShape, PadModesHandComputed)
{
    // Expected values computed with numpy.pad.
    egc_node n = node(EGC_OP_PAD, 1);
    Tensor x = seq(S({3, 4}));
    n.p.pad.n = 2;
    n.p.pad.mode = EGC_PAD_REFLECT;
    int64_t pr[4] = {1, 2, 2, 1};
    memcpy(n.p.pad.pads, pr, sizeof pr);
    expect_close(forward(n, {&x}, S({6, 7})),
                 {7, 6, 5, 6, 7, 8, 7, 3, 2, 1, 2, 3, 4, 3, 7, 6, 5, 6, 7, 8, 7,
                  11, 10, 9, 10, 11, 12, 11, 7, 6, 5, 6, 7, 8, 7, 3, 2, 1, 2, 3, 4, 3},
                 0);
    n.p.pad.mode = EGC_PAD_EDGE;
    int64_t pe[4] = {2, 1, 0, 3};
    memcpy(n.p.pad.pads, pe, sizeof pe);
    expect_close(forward(n, {&x}, S({5, 8})),
                 {1, 1, 2, 3, 4, 4, 4, 4, 1, 1, 2, 3, 4, 4, 4, 4, 1, 1, 2, 3, 4, 4, 4, 4,
                  5, 5, 6, 7, 8, 8, 8, 8, 9, 9, 10, 11, 12, 12, 12, 12},
                 0);
    // constant with negative pads: drop row 0, add a row at the end; two columns in front,
    // drop the last two columns.
    n.p.pad.mode = EGC_PAD_CONSTANT;
    n.p.pad.value = 0.5f;
    int64_t pc[4] = {-1, 2, 1, -2};
    memcpy(n.p.pad.pads, pc, sizeof pc);
    expect_close(forward(n, {&x}, S({3, 4})), {.5, .5, 5, 6, .5, .5, 9, 10, .5, .5, .5, .5}, 0);
    // reflect after cropping: [1..5] cropped by one in front is [2,3,4,5]; reflected by two
    // at the end it is [2,3,4,5,4,3] (numpy.pad of the cropped array).
    egc_node r = node(EGC_OP_PAD, 1);
    r.p.pad.n = 1;
    r.p.pad.mode = EGC_PAD_REFLECT;
    r.p.pad.pads[0] = -1;
    r.p.pad.pads[1] = 2;
    Tensor x5 = seq(S({5}));
    expect_close(forward(r, {&x5}, S({6})), {2, 3, 4, 5, 4, 3}, 0);
}

TEST(CpuOpsShape, PadGradients)
{
    egc_node n = node(EGC_OP_PAD, 1);
    Tensor x = rnd(S({2, 3, 5, 4}));
    n.p.pad.n = 4;
    // the ResNet option-A shortcut: zero channels on both sides
    int64_t p1[8] = {0, 2, 0, 0, 0, 3, 0, 0};
    memcpy(n.p.pad.pads, p1, sizeof p1);
    check_grad(n, {x}, S({2, 8, 5, 4}), {0});
    int64_t p2[8] = {0, 0, 2, -1, 0, 0, -1, 3};
    memcpy(n.p.pad.pads, p2, sizeof p2);
    for (int mode : {EGC_PAD_CONSTANT, EGC_PAD_EDGE, EGC_PAD_REFLECT}) {
        SCOPED_TRACE(mode);
        n.p.pad.mode = mode;
        check_grad(n, {x}, S({2, 3, 6, 6}), {0}, 1e-2f, 1e-2f, 2e-3f, 120);
        check_adjoint(n, {x}, S({2, 3, 6, 6}));
    }
}

TEST(CpuOpsShape, Transpose)
{
    egc_node n = node(EGC_OP_TRANSPOSE, 1);
    n.p.transpose.n = 4;
    int perm[4] = {0, 2, 3, 1};
    memcpy(n.p.transpose.perm, perm, sizeof perm);
    Tensor x = rnd(S({2, 3, 4, 5}));
    egc_shape os = S({2, 4, 5, 3});
    Tensor y = forward(n, {&x}, os);
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 4; b++)
            for (int c = 0; c < 5; c++)
                for (int d = 0; d < 3; d++)
                    ASSERT_EQ(y.v[(size_t)(((a * 4 + b) * 5 + c) * 3 + d)],
                              x.v[(size_t)(((a * 3 + d) * 4 + b) * 5 + c)]);
    check_grad(n, {x}, os, {0});
    check_adjoint(n, {x}, os);
    // no perm: reversed dims
    egc_node r = node(EGC_OP_TRANSPOSE, 1);
    Tensor m = rnd(S({3, 2}));
    Tensor t = forward(r, {&m}, S({2, 3}));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) ASSERT_EQ(t.v[(size_t)(j * 3 + i)], m.v[(size_t)(i * 2 + j)]);
}

// ===================== Softmax =====================

TEST(CpuOpsSoftmax, AxisAndLegacy)
{
    egc_node n = node(EGC_OP_SOFTMAX, 1);
    Tensor x = rnd(S({2, 3, 4}), -3.0f, 3.0f);
    x.v[0] = 80.0f; // stable for large logits
    n.p.axis.axis = 1;
    Tensor y = forward(n, {&x}, x.s);
    std::vector<double> want(x.v.size());
    for (int a = 0; a < 2; a++)
        for (int c = 0; c < 4; c++) {
            double m = -INFINITY, s = 0;
            for (int b = 0; b < 3; b++) m = std::max(m, (double)x.v[(size_t)((a * 3 + b) * 4 + c)]);
            for (int b = 0; b < 3; b++) s += std::exp(x.v[(size_t)((a * 3 + b) * 4 + c)] - m);
            for (int b = 0; b < 3; b++)
                want[(size_t)((a * 3 + b) * 4 + c)] =
                    std::exp(x.v[(size_t)((a * 3 + b) * 4 + c)] - m) / s;
        }
    expect_close(y, want, 1e-5);
    x.v[0] = 0.3f;
    check_grad(n, {x}, x.s, {0});
    // legacy (opset < 13): flatten to [2, 12] at axis 1, softmax over each row of 12
    n.p.axis.legacy = 1;
    Tensor yl = forward(n, {&x}, x.s);
    for (int a = 0; a < 2; a++) {
        double s = 0, m = -INFINITY;
        for (int k = 0; k < 12; k++) m = std::max(m, (double)x.v[(size_t)(a * 12 + k)]);
        for (int k = 0; k < 12; k++) s += std::exp(x.v[(size_t)(a * 12 + k)] - m);
        for (int k = 0; k < 12; k++)
            ASSERT_NEAR(yl.v[(size_t)(a * 12 + k)], std::exp(x.v[(size_t)(a * 12 + k)] - m) / s, 1e-6);
    }
    check_grad(n, {x}, x.s, {0});
    n.p.axis.legacy = 0;
    n.p.axis.axis = -1;
    check_grad(n, {x}, x.s, {0});
}

// Attention-sized softmax over the last axis ([24, 197] rows, cut across threads): within
// 1e-6 (relative) of a double reference, with masked entries (-100 as Swin's window masks add,
// -inf) giving 0 or their tiny share, and a row holding a NaN all NaN, as expf gives it; the
// backward against the closed form.
TEST(CpuOpsSoftmax, ManyRowsMasksAndNaN)
{
    const int R = 24, D = 197;
    egc_node n = node(EGC_OP_SOFTMAX, 1);
    n.p.axis.axis = -1;
    Tensor x = rnd(S({2, 12, D}), -6.0f, 6.0f);
    for (int k = 0; k < D; k += 3) x.v[(size_t)(5 * D + k)] -= 100.0f;
    for (int k = 0; k < D; k += 2) x.v[(size_t)(6 * D + k)] = -INFINITY;
    x.v[(size_t)(7 * D + 11)] = NAN;
    Tensor y = forward(n, {&x}, x.s);
    for (int r = 0; r < R; r++) {
        const float *xr = &x.v[(size_t)(r * D)], *yr = &y.v[(size_t)(r * D)];
        if (r == 7) {
            for (int k = 0; k < D; k++) ASSERT_TRUE(std::isnan(yr[k])) << k;
            continue;
        }
        double m = -INFINITY, s = 0;
        for (int k = 0; k < D; k++) m = std::max(m, (double)xr[k]);
        for (int k = 0; k < D; k++) s += std::exp((double)xr[k] - m);
        for (int k = 0; k < D; k++) {
            const double want = std::exp((double)xr[k] - m) / s;
            ASSERT_NEAR(yr[k], want, 1e-6 * want + 1e-30) << "row " << r << " element " << k;
        }
    }
    // backward, rows without the NaN: dx = y (dy - sum dy y)
    Tensor xb = rnd(S({2, 12, D}), -6.0f, 6.0f), dy = rnd(S({2, 12, D}), -1.0f, 1.0f);
    Tensor yb = forward(n, {&xb}, xb.s);
    Tensor dxt = zeros(xb.s);
    std::fill(dxt.v.begin(), dxt.v.end(), 0.5f);
    backward(n, {&xb}, yb, dy, {&dxt});
    const std::vector<float> &dx = dxt.v;
    for (int r = 0; r < R; r++) {
        double dot = 0;
        for (int k = 0; k < D; k++) dot += (double)dy.v[(size_t)(r * D + k)] * yb.v[(size_t)(r * D + k)];
        for (int k = 0; k < D; k++) {
            const size_t i = (size_t)(r * D + k);
            ASSERT_NEAR(dx[i], 0.5 + yb.v[i] * (dy.v[i] - dot), 1e-6) << "row " << r << " element " << k;
        }
    }
}

// ===================== errors =====================

TEST(CpuOpsErrors, UnsupportedAndShapeErrorsNameTheNode)
{
    egc_node n = node(EGC_OP_MAXPOOL, 1);
    n.name = const_cast<char *>("pool_5d");
    n.p.pool = pool_p(2, 2, 1, 0, 0, 0, 0, 0, 0);
    Tensor x = zeros(S({1, 1, 4, 4, 4})), y = zeros(S({1, 1, 2, 2, 2}));
    egc_view in{x.v.data(), x.s}, out{y.v.data(), y.s};
    EXPECT_EQ(egc_cpu_forward(&graph(), &n, &in, &out), EGC_E_UNSUPPORTED);
    std::string msg = egc_last_error();
    EXPECT_NE(msg.find("pool_5d"), std::string::npos) << msg;
    EXPECT_NE(msg.find("MaxPool"), std::string::npos) << msg;

    egc_node c = node(EGC_OP_CONV, 2);
    c.name = const_cast<char *>("conv_bad");
    c.p.conv = conv_p(3, 3, 1, 1, 0, 0, 0, 0, 1);
    Tensor cx = zeros(S({1, 2, 5, 5})), cw = zeros(S({4, 2, 3, 3})), cy = zeros(S({1, 4, 5, 5}));
    egc_view cin[2] = {{cx.v.data(), cx.s}, {cw.v.data(), cw.s}}, cout{cy.v.data(), cy.s};
    EXPECT_EQ(egc_cpu_forward(&graph(), &c, cin, &cout), EGC_E_SHAPE); // should be 3x3
    EXPECT_NE(std::string(egc_last_error()).find("conv_bad"), std::string::npos);
    c.p.conv.group = 3; // 2 channels do not split into 3 groups
    cy = zeros(S({1, 4, 3, 3}));
    cout.ptr = cy.v.data();
    cout.shape = cy.s;
    EXPECT_EQ(egc_cpu_forward(&graph(), &c, cin, &cout), EGC_E_SHAPE);
    c.p.conv.group = 1;
    EXPECT_EQ(egc_cpu_forward(&graph(), &c, cin, &cout), EGC_OK) << egc_last_error();
    // weight gradients are never computed
    Tensor gw = zeros(cw.s);
    egc_view din[2] = {{nullptr, cx.s}, {gw.v.data(), gw.s}}, dout{cy.v.data(), cy.s};
    EXPECT_EQ(egc_cpu_backward(&graph(), &c, cin, &cout, &dout, din), EGC_E_UNSUPPORTED);
    // missing required input
    cin[1].ptr = nullptr;
    EXPECT_EQ(egc_cpu_forward(&graph(), &c, cin, &cout), EGC_E_ARG);

    egc_node a = node(EGC_OP_ADD, 2);
    Tensor p = zeros(S({2, 3})), q = zeros(S({4})), r = zeros(S({2, 3}));
    egc_view ain[2] = {{p.v.data(), p.s}, {q.v.data(), q.s}}, aout{r.v.data(), r.s};
    EXPECT_EQ(egc_cpu_forward(&graph(), &a, ain, &aout), EGC_E_SHAPE);
}

// ===================== backend vtable =====================

TEST(CpuOpsBackend, VtableRunsOps)
{
    egc_backend *be = nullptr;
    ASSERT_EQ(egc_cpu_backend_create(&be), EGC_OK) << egc_last_error();
    EXPECT_STREQ(be->name, "cpu");
    EXPECT_EQ(std::string(be->device_name).rfind("CPU (", 0), 0u) << be->device_name;

    // Conv (depthwise + pointwise through the vtable), compared with the direct call.
    ConvCase cc{3, 4, 6, 7, 4, conv_p(3, 3, 2, 1, 1, 1, 1, 1, 4), true};
    egc_node n = node(EGC_OP_CONV, 3);
    n.p.conv = cc.p;
    Tensor x = rnd(S({3, 4, 6, 7})), w = rnd(S({4, 1, 3, 3})), b = rnd(S({4}));
    egc_shape os = S({3, 4, 3, 4});
    Tensor ref = forward(n, {&x, &w, &b}, os);

    auto dev = [&](const Tensor &t) {
        void *p = nullptr;
        EXPECT_EQ(be->alloc(be, t.v.size() * sizeof(float), &p), EGC_OK);
        EXPECT_EQ((uintptr_t)p % 64, 0u);
        EXPECT_EQ(be->upload(be, p, t.v.data(), t.v.size() * sizeof(float)), EGC_OK);
        return (float *)p;
    };
    float *dx = dev(x), *dw = dev(w), *db = dev(b), *dy = nullptr, *dg = nullptr, *dxg = nullptr;
    int64_t ny = egc_shape_numel(&os), nx = (int64_t)x.v.size();
    ASSERT_EQ(be->alloc(be, (size_t)ny * sizeof(float), (void **)&dy), EGC_OK);
    ASSERT_EQ(be->alloc(be, (size_t)ny * sizeof(float), (void **)&dg), EGC_OK);
    ASSERT_EQ(be->alloc(be, (size_t)nx * sizeof(float), (void **)&dxg), EGC_OK);
    void *state = nullptr;
    ASSERT_EQ(be->plan_prepare(be, &graph(), nullptr, &state), EGC_OK);
    egc_view in[3] = {{dx, x.s}, {dw, w.s}, {db, b.s}}, out{dy, os};
    ASSERT_EQ(be->op_forward(be, state, &graph(), &n, in, &out), EGC_OK) << egc_last_error();
    ASSERT_EQ(be->sync(be), EGC_OK);
    std::vector<float> host((size_t)ny);
    ASSERT_EQ(be->download(be, host.data(), dy, host.size() * sizeof(float)), EGC_OK);
    EXPECT_EQ(host, ref.v);

    // fill + accumulate, then a backward that accumulates onto dxg = 0.25
    ASSERT_EQ(be->fill(be, dg, 1.0f, ny), EGC_OK);
    ASSERT_EQ(be->accumulate(be, dg, dg, ny), EGC_OK); // dg = 2
    ASSERT_EQ(be->fill(be, dxg, 0.25f, nx), EGC_OK);
    egc_view dout{dg, os}, din[3] = {{dxg, x.s}, {nullptr, w.s}, {nullptr, b.s}};
    ASSERT_EQ(be->op_backward(be, state, &graph(), &n, in, &out, &dout, din), EGC_OK)
        << egc_last_error();
    std::vector<float> gx((size_t)nx);
    ASSERT_EQ(be->download(be, gx.data(), dxg, gx.size() * sizeof(float)), EGC_OK);
    // reference: direct call with dout = 2 into zeros, plus 0.25
    Tensor g2 = zeros(os), gref = zeros(x.s);
    std::fill(g2.v.begin(), g2.v.end(), 2.0f);
    egc_view rin[3] = {{x.v.data(), x.s}, {w.v.data(), w.s}, {b.v.data(), b.s}};
    egc_view rout{ref.v.data(), os}, rdout{g2.v.data(), os},
        rdin[3] = {{gref.v.data(), x.s}, {nullptr, w.s}, {nullptr, b.s}};
    ASSERT_EQ(egc_cpu_backward(&graph(), &n, rin, &rout, &rdout, rdin), EGC_OK);
    for (size_t k = 0; k < gx.size(); k++) ASSERT_NEAR(gx[k], gref.v[k] + 0.25f, 1e-5);
    be->plan_release(be, state);
    for (float *p : {dx, dw, db, dy, dg, dxg}) be->free(be, p);
    be->destroy(be);
}

} // namespace
