// parity_f16_test.cc: the float16 kernels of the mixed-precision path (kernels/*_f16.cu and
// the NCHW <-> NHWC conversions) against CPU references: the layout permutation written out
// here, round-to-nearest-even float -> half done on the host, and the CPU backend's own ops
// (egc_cpu_forward: Relu, Clip, MaxPool) on the half-rounded inputs. Every one of these
// kernels computes in float32 and rounds once, so results must match bit for bit. Sizes are
// odd (tails), cover both the 16-byte vector path and the scalar path (a pointer shifted by
// one element), and batch 64. Skipped, with the reason, where no CUDA device is present.
#include <gtest/gtest.h>

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
#include "../kernels/egc_kernels.h"
}

namespace {

// float -> IEEE binary16 bits, round to nearest even (overflow to inf, subnormals kept).
uint16_t to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, e = (x >> 23) & 0xffu, m = x & 0x7fffffu;
    if (e == 0xffu) return (uint16_t)(sign | 0x7c00u | (m ? 0x200u : 0u));
    int exp = (int)e - 127 + 15;
    if (exp >= 0x1f) return (uint16_t)(sign | 0x7c00u);
    if (exp <= 0) { // subnormal half (or zero)
        if (exp < -10) return (uint16_t)sign;
        m |= 0x800000u;
        int shift = 14 - exp;
        uint32_t hm = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (hm & 1u))) hm++;
        return (uint16_t)(sign | hm);
    }
    uint32_t hm = m >> 13, rem = m & 0x1fffu;
    uint32_t h = sign | ((uint32_t)exp << 10) | hm;
    if (rem > 0x1000u || (rem == 0x1000u && (hm & 1u))) h++; // may carry into the exponent
    return (uint16_t)h;
}

float from_half(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu, x;
    if (e == 0) {
        if (!m) {
            x = sign;
        } else { // subnormal
            int k = -1;
            do {
                k++;
                m <<= 1;
            } while (!(m & 0x400u));
            x = sign | ((uint32_t)(127 - 15 - k) << 23) | ((m & 0x3ffu) << 13);
        }
    } else if (e == 0x1f) {
        x = sign | 0x7f800000u | (m << 13);
    } else {
        x = sign | ((e - 15 + 127) << 23) | (m << 13);
    }
    float f;
    memcpy(&f, &x, 4);
    return f;
}

float round_half(float f) { return from_half(to_half(f)); }

std::vector<float> random_data(std::mt19937 &r, size_t n, float lo, float hi)
{
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> v(n);
    for (auto &x : v) x = u(r);
    return v;
}

// NCHW [n,c,hw] -> NHWC [n,hw,c] on the host.
template <class T> std::vector<T> to_nhwc(const std::vector<T> &x, int64_t n, int64_t c, int64_t hw)
{
    std::vector<T> y(x.size());
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t p = 0; p < hw; p++) y[(size_t)((i * hw + p) * c + k)] = x[(size_t)((i * c + k) * hw + p)];
    return y;
}

// First differing element of two bit patterns, or "" when equal.
std::string first_diff(const std::vector<uint16_t> &ref, const std::vector<uint16_t> &got)
{
    if (ref.size() != got.size()) return "sizes differ";
    for (size_t i = 0; i < ref.size(); i++)
        if (ref[i] != got[i]) {
            char b[160];
            snprintf(b, sizeof b, "element %zu of %zu: got %.9g (0x%04x), want %.9g (0x%04x)", i,
                     ref.size(), (double)from_half(got[i]), got[i], (double)from_half(ref[i]), ref[i]);
            return b;
        }
    return "";
}

class CudaF16 : public testing::Test {
protected:
    static egc_backend *be_;
    static std::string skip_;
    static void SetUpTestSuite()
    {
        if (be_ || !skip_.empty()) return;
        if (egc_cuda_backend_create(0, &be_) != EGC_OK) {
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
        stream_ = egc_cuda_stream(be_);
        ASSERT_NE(stream_, nullptr);
    }
    void TearDown() override
    {
        if (be_)
            for (void *p : allocs_) be_->free(be_, p);
        allocs_.clear();
    }
    // Device buffer with a copy of host data (extra bytes after it, for shifted pointers).
    template <class T> T *dev(const std::vector<T> &h, size_t extra = 16)
    {
        void *p = nullptr;
        size_t bytes = h.size() * sizeof(T);
        EXPECT_EQ(be_->alloc(be_, bytes + extra, &p), EGC_OK) << egc_last_error();
        if (bytes) EXPECT_EQ(be_->upload(be_, p, h.data(), bytes), EGC_OK) << egc_last_error();
        allocs_.push_back(p);
        return (T *)p;
    }
    template <class T> std::vector<T> host(const T *p, size_t n)
    {
        std::vector<T> h(n);
        EXPECT_EQ(be_->sync(be_), EGC_OK) << egc_last_error();
        if (n) EXPECT_EQ(be_->download(be_, h.data(), p, n * sizeof(T)), EGC_OK) << egc_last_error();
        return h;
    }
    std::vector<uint16_t> halves(const std::vector<float> &x)
    {
        std::vector<uint16_t> h(x.size());
        for (size_t i = 0; i < x.size(); i++) h[i] = to_half(x[i]);
        return h;
    }
    void *stream_ = nullptr;
    std::vector<void *> allocs_;
};

egc_backend *CudaF16::be_ = nullptr;
std::string CudaF16::skip_;

TEST(HalfHost, RoundingReference)
{
    // the host reference itself: exact values, ties to even, overflow, subnormals
    EXPECT_EQ(to_half(1.0f), 0x3c00);
    EXPECT_EQ(to_half(-2.0f), 0xc000);
    EXPECT_EQ(to_half(65504.0f), 0x7bff);
    EXPECT_EQ(to_half(65536.0f), 0x7c00);
    EXPECT_EQ(to_half(1.0f + 1.0f / 2048.0f), 0x3c00);            // tie -> even (down)
    EXPECT_EQ(to_half(1.0f + 3.0f / 2048.0f), 0x3c02);            // tie -> even (up)
    EXPECT_EQ(to_half(std::ldexp(1.0f, -24)), 0x0001);             // smallest subnormal
    EXPECT_EQ(from_half(0x0001), std::ldexp(1.0f, -24));
    EXPECT_EQ(from_half(0x3555), round_half(1.0f / 3.0f));
    for (uint32_t h = 0; h < 0x7c00; h++) ASSERT_EQ(to_half(from_half((uint16_t)h)), h);
}

TEST_F(CudaF16, ConvertRoundTrip)
{
    std::mt19937 r(11);
    struct G {
        int64_t n, c, hw;
    } geoms[] = {{1, 3, 35}, {3, 37, 33}, {64, 5, 49}, {2, 64, 1}, {1, 1, 1}};
    for (const G &g : geoms) {
        SCOPED_TRACE("n " + std::to_string(g.n) + " c " + std::to_string(g.c) + " hw " +
                     std::to_string(g.hw));
        size_t ne = (size_t)(g.n * g.c * g.hw);
        std::vector<float> x = random_data(r, ne, -70000.0f, 70000.0f); // some overflow to inf
        for (size_t i = 0; i < ne; i += 3) x[i] *= 1e-4f;
        for (size_t i = 1; i < ne; i += 7) x[i] *= 1e-8f; // subnormal halves
        float *xd = dev(x);
        uint16_t *hd = dev(std::vector<uint16_t>(ne, 0xffff));
        float *yd = dev(std::vector<float>(ne, NAN));
        ASSERT_EQ(egc_k_nchw_to_nhwc_f16(xd, hd, g.n, g.c, g.hw, stream_), 0);
        ASSERT_EQ(egc_k_nhwc_f16_to_nchw(hd, yd, g.n, g.c, g.hw, stream_), 0);
        std::vector<uint16_t> want = to_nhwc(halves(x), g.n, g.c, g.hw);
        std::string d = first_diff(want, host(hd, ne));
        EXPECT_EQ(d, "") << d;
        std::vector<float> back = host(yd, ne);
        for (size_t i = 0; i < ne; i++) {
            float w = round_half(x[i]);
            ASSERT_TRUE(back[i] == w) << "element " << i << ": got " << back[i] << " want " << w;
        }
    }
    // into padded channels: [n, hw, cy], channels c..cy-1 zero (an RGB input padded to 4 or
    // 8, weights [K, 3, R, S] padded likewise, and a pad across a 32-channel tile)
    struct P {
        int64_t n, c, cy, hw;
    } pads[] = {{2, 3, 8, 1000}, {64, 3, 8, 49}, {3, 3, 4, 37}, {1, 30, 40, 65}, {2, 5, 5, 9}};
    for (const P &g : pads) {
        SCOPED_TRACE("n " + std::to_string(g.n) + " c " + std::to_string(g.c) + " -> " +
                     std::to_string(g.cy) + " hw " + std::to_string(g.hw));
        size_t ne = (size_t)(g.n * g.c * g.hw), ny = (size_t)(g.n * g.cy * g.hw);
        std::vector<float> x = random_data(r, ne, -3.0f, 3.0f);
        float *xd = dev(x);
        uint16_t *hd = dev(std::vector<uint16_t>(ny, 0xffff));
        ASSERT_EQ(egc_k_nchw_to_nhwc_f16_pad(xd, hd, g.n, g.c, g.cy, g.hw, stream_), 0);
        std::vector<uint16_t> xh = halves(x), want(ny, 0);
        for (int64_t i = 0; i < g.n; i++)
            for (int64_t k = 0; k < g.c; k++)
                for (int64_t p = 0; p < g.hw; p++)
                    want[(size_t)((i * g.hw + p) * g.cy + k)] = xh[(size_t)((i * g.c + k) * g.hw + p)];
        std::string d = first_diff(want, host(hd, ny));
        EXPECT_EQ(d, "") << d;
    }
    EXPECT_NE(egc_k_nchw_to_nhwc_f16_pad(nullptr, nullptr, 1, 8, 3, 5, stream_), 0); // cy < c
    // empty tensors launch nothing
    EXPECT_EQ(egc_k_nchw_to_nhwc_f16(nullptr, nullptr, 0, 3, 5, stream_), 0);
    EXPECT_EQ(egc_k_nhwc_f16_to_nchw(nullptr, nullptr, 2, 0, 5, stream_), 0);
}

// CPU reference of a one-input op through egc_cpu_forward on float data.
std::vector<float> cpu_unary(egc_op op, const egc_op_params &p, const std::vector<float> &x,
                             const std::vector<int64_t> &xd, const std::vector<int64_t> &yd)
{
    size_t ny = 1;
    for (int64_t d : yd) ny *= (size_t)d;
    std::vector<float> y(ny);
    std::vector<egc_value> values(2);
    memset(values.data(), 0, 2 * sizeof(egc_value));
    egc_shape xs = egc_shape_make((int)xd.size(), xd.data()), ys = egc_shape_make((int)yd.size(), yd.data());
    values[0].shape = xs;
    values[0].producer = -1;
    values[1].shape = ys;
    values[1].producer = 0;
    egc_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.name = (char *)"ref";
    n.n_in = 1;
    n.in[0] = 0;
    n.out = 1;
    n.p = p;
    egc_graph g;
    memset(&g, 0, sizeof g);
    g.values = values.data();
    g.n_values = 2;
    g.nodes = &n;
    g.n_nodes = 1;
    g.output = 1;
    egc_view in{(float *)x.data(), xs}, out{y.data(), ys};
    EXPECT_EQ(egc_cpu_forward(&g, &n, &in, &out), EGC_OK) << egc_last_error();
    return y;
}

TEST_F(CudaF16, ClipReluAndRelu6)
{
    std::mt19937 r(12);
    for (size_t ne : {(size_t)1, (size_t)8, (size_t)1037, (size_t)64 * 3 * 17 * 5}) {
        for (int shift : {0, 1}) {
            SCOPED_TRACE("n " + std::to_string(ne) + " shift " + std::to_string(shift));
            std::vector<float> x = random_data(r, ne, -8.0f, 8.0f);
            for (auto &v : x) v = round_half(v);
            std::vector<uint16_t> xh = halves(x);
            uint16_t *xd = dev(xh) + shift;
            if (shift) ASSERT_EQ(be_->upload(be_, xd, xh.data(), ne * 2), EGC_OK);
            uint16_t *yd = dev(std::vector<uint16_t>(ne, 0xffff)) + shift;
            std::vector<int64_t> dims = {(int64_t)ne};
            for (int which = 0; which < 2; which++) {
                egc_op_params p;
                memset(&p, 0, sizeof p);
                egc_op op = EGC_OP_RELU;
                float lo = 0.0f, hi = INFINITY;
                if (which == 1) {
                    op = EGC_OP_CLIP;
                    p.clip.lo = lo = 0.0f;
                    p.clip.hi = hi = 6.0f;
                }
                ASSERT_EQ(egc_k_clip_f16(xd, yd, lo, hi, (int64_t)ne, stream_), 0);
                std::string d = first_diff(halves(cpu_unary(op, p, x, dims, dims)), host(yd, ne));
                EXPECT_EQ(d, "") << (which ? "Clip(0,6) " : "Relu ") << d;
            }
            // in place
            ASSERT_EQ(egc_k_clip_f16(xd, xd, -1.0f, 1.0f, (int64_t)ne, stream_), 0);
            std::vector<uint16_t> got = host(xd, ne);
            for (size_t i = 0; i < ne; i++)
                ASSERT_EQ(got[i], to_half(std::fmin(std::fmax(x[i], -1.0f), 1.0f))) << i;
        }
    }
}

TEST_F(CudaF16, AddWithAndWithoutRelu)
{
    std::mt19937 r(13);
    for (size_t ne : {(size_t)3, (size_t)16, (size_t)4099, (size_t)64 * 7 * 7 * 9}) {
        for (int shift : {0, 1}) {
            SCOPED_TRACE("n " + std::to_string(ne) + " shift " + std::to_string(shift));
            std::vector<uint16_t> a = halves(random_data(r, ne, -40.0f, 40.0f));
            std::vector<uint16_t> b = halves(random_data(r, ne, -40.0f, 40.0f));
            uint16_t *ad = dev(a) + shift, *bd = dev(b) + shift;
            if (shift) {
                ASSERT_EQ(be_->upload(be_, ad, a.data(), ne * 2), EGC_OK);
                ASSERT_EQ(be_->upload(be_, bd, b.data(), ne * 2), EGC_OK);
            }
            uint16_t *yd = dev(std::vector<uint16_t>(ne, 0xffff)) + shift;
            for (int relu = 0; relu < 2; relu++) {
                ASSERT_EQ(egc_k_add_f16(ad, bd, yd, relu, (int64_t)ne, stream_), 0);
                std::vector<uint16_t> want(ne);
                for (size_t i = 0; i < ne; i++) {
                    float v = from_half(a[i]) + from_half(b[i]);
                    if (relu) v = v > 0.0f ? v : 0.0f;
                    want[i] = to_half(v);
                }
                std::string d = first_diff(want, host(yd, ne));
                EXPECT_EQ(d, "") << (relu ? "Add+Relu " : "Add ") << d;
            }
        }
    }
}

TEST_F(CudaF16, BiasActivationEpilogue)
{
    std::mt19937 r(14);
    struct G {
        int64_t n, hw, c;
        int shift;
    } geoms[] = {{1, 5, 8, 0}, {3, 7, 24, 0}, {64, 9, 16, 0}, {2, 9, 5, 0}, {2, 3, 16, 1}, {1, 1, 1, 0}};
    for (const G &g : geoms) {
        SCOPED_TRACE("n " + std::to_string(g.n) + " hw " + std::to_string(g.hw) + " c " +
                     std::to_string(g.c) + " shift " + std::to_string(g.shift));
        size_t ne = (size_t)(g.n * g.hw * g.c);
        std::vector<uint16_t> y = halves(random_data(r, ne, -10.0f, 10.0f));
        std::vector<float> bias = random_data(r, (size_t)g.c, -3.0f, 3.0f);
        float *bd = dev(bias);
        std::vector<uint16_t> z = halves(random_data(r, ne, -6.0f, 6.0f));
        uint16_t *zd = dev(std::vector<uint16_t>(ne + 1)) + g.shift;
        ASSERT_EQ(be_->upload(be_, zd, z.data(), ne * 2), EGC_OK);
        for (int relu = 0; relu < 2; relu++)
            for (int with_bias = 0; with_bias < 2; with_bias++)
                for (int with_z = 0; with_z < 2; with_z++) {
                    uint16_t *yd = dev(y) + g.shift;
                    if (g.shift) ASSERT_EQ(be_->upload(be_, yd, y.data(), ne * 2), EGC_OK);
                    ASSERT_EQ(egc_k_bias_act_f16(yd, with_bias ? bd : nullptr, with_z ? zd : nullptr,
                                                 g.n, g.hw, g.c, relu, stream_),
                              0);
                    std::vector<uint16_t> want(ne);
                    for (size_t i = 0; i < ne; i++) {
                        float v = from_half(y[i]) + (with_bias ? bias[i % (size_t)g.c] : 0.0f);
                        if (with_z) v = v + from_half(z[i]);
                        if (relu) v = v > 0.0f ? v : 0.0f;
                        want[i] = to_half(v);
                    }
                    std::string d = first_diff(want, host(yd, ne));
                    EXPECT_EQ(d, "") << "relu " << relu << " bias " << with_bias << " z " << with_z
                                     << ": " << d;
                }
    }
}

// The check of the fused convolutions: max |got - ref| and max |ref| as the host computes
// them, exactly (maxima are order-free); a NaN or an infinity gives +inf.
TEST_F(CudaF16, CompareMaxima)
{
    std::mt19937 r(16);
    for (size_t ne : {(size_t)1, (size_t)7, (size_t)1000, (size_t)300001}) {
        SCOPED_TRACE("n " + std::to_string(ne));
        std::vector<uint16_t> a = halves(random_data(r, ne, -50.0f, 50.0f));
        std::vector<uint16_t> b = a;
        for (size_t i = 0; i < ne; i += 13) b[i] = to_half(from_half(a[i]) + 0.25f * (float)(i % 5));
        float *od = dev(std::vector<float>(2, -1.0f));
        for (int bad = 0; bad < 3; bad++) {
            std::vector<uint16_t> g = b;
            if (bad == 1) g[ne / 2] = 0x7e00;  // NaN
            if (bad == 2) g[ne - 1] = 0x7c00;  // +inf
            ASSERT_EQ(egc_k_compare_f16(dev(a), dev(g), (int64_t)ne, od, stream_), 0);
            std::vector<float> got(2);
            ASSERT_EQ(be_->download(be_, got.data(), od, 2 * sizeof(float)), EGC_OK);
            float md = 0.0f, mr = 0.0f;
            for (size_t i = 0; i < ne; i++) {
                md = std::max(md, std::fabs(from_half(b[i]) - from_half(a[i])));
                mr = std::max(mr, std::fabs(from_half(a[i])));
            }
            if (bad) md = INFINITY;
            EXPECT_EQ(got[0], md) << "bad " << bad;
            EXPECT_EQ(got[1], mr) << "bad " << bad;
        }
    }
}

TEST_F(CudaF16, MaxPoolNhwc)
{
    std::mt19937 r(15);
    struct G {
        int64_t n, c, h, w;
        int k, s, pt, pl, pb, pr, d;
    } geoms[] = {
        {1, 3, 13, 11, 3, 2, 1, 1, 1, 1, 1},   // VGG/ResNet-like 3x3 stride 2 pad 1
        {64, 16, 8, 8, 2, 2, 0, 0, 0, 0, 1},   // 2x2 stride 2
        {2, 5, 9, 10, 3, 2, 0, 1, 1, 0, 2},    // asymmetric pads, dilation 2
    };
    for (const G &g : geoms) {
        SCOPED_TRACE("n " + std::to_string(g.n) + " c " + std::to_string(g.c) + " k " +
                     std::to_string(g.k));
        int64_t oh = (g.h + g.pt + g.pb - (int64_t)g.d * (g.k - 1) - 1) / g.s + 1;
        int64_t ow = (g.w + g.pl + g.pr - (int64_t)g.d * (g.k - 1) - 1) / g.s + 1;
        size_t nx = (size_t)(g.n * g.c * g.h * g.w), ny = (size_t)(g.n * g.c * oh * ow);
        std::vector<float> x = random_data(r, nx, -4.0f, 4.0f);
        for (auto &v : x) v = std::round(v * 4.0f) / 4.0f; // ties
        egc_op_params p;
        memset(&p, 0, sizeof p);
        p.pool.kh = p.pool.kw = g.k;
        p.pool.sh = p.pool.sw = g.s;
        p.pool.dh = p.pool.dw = g.d;
        p.pool.pt = g.pt;
        p.pool.pl = g.pl;
        p.pool.pb = g.pb;
        p.pool.pr = g.pr;
        std::vector<float> yref = cpu_unary(EGC_OP_MAXPOOL, p, x, {g.n, g.c, g.h, g.w}, {g.n, g.c, oh, ow});
        egc_k_pool k;
        memset(&k, 0, sizeof k);
        k.planes = g.n * g.c;
        k.h = g.h;
        k.w = g.w;
        k.oh = oh;
        k.ow = ow;
        k.kh = k.kw = g.k;
        k.sh = k.sw = g.s;
        k.dh = k.dw = g.d;
        k.pt = g.pt;
        k.pl = g.pl;
        k.pb = g.pb;
        k.pr = g.pr;
        uint16_t *xd = dev(to_nhwc(halves(x), g.n, g.c, g.h * g.w));
        uint16_t *yd = dev(std::vector<uint16_t>(ny, 0xffff));
        ASSERT_EQ(egc_k_maxpool_nhwc_f16(xd, yd, g.n, g.c, &k, stream_), 0);
        std::string d = first_diff(to_nhwc(halves(yref), g.n, g.c, oh * ow), host(yd, ny));
        EXPECT_EQ(d, "") << d;
    }
}

} // namespace
