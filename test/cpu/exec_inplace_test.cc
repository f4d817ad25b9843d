// exec_inplace_test.cc: the executor's shared (in-place) buffers and plan options on the CPU
// backend. A wrapper of the CPU backend asks, through plan_prepare_ex, that every Clip node
// run in place of its input; the executor must grant that only where it is safe (the node is
// the input's last reader and the input is not kept for the head's backward, the target or
// the output), and the results must equal a plain CPU plan's bit for bit.
//
// Graph (one image [1,2,3,3], values in parentheses):
//   x --Relu--> (a) --Clip[-0.5,0.5]--> (b) --Clip[-0.25,0.25]--> (c) --Add(c, a)--> (y)
// Forward only: b cannot take a's buffer (a is read again by the Add), c can take b's.
// Target b: c is a head node and b is kept (Clip's backward reads it), so nothing is shared,
// and the gradient with respect to b must be the reference one (a wrongly shared b would
// hold c's values, all inside [-0.25,0.25], and pass the gradient everywhere).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "backend/backend.h"
#include "cpu/cpu_ops.h"
#include "model/exec.h"
}

namespace {

egc_status ask_clip_inplace(egc_backend *be, const egc_graph *g, const egc_shape *shapes,
                            const egc_plan_info *info, void **state)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == EGC_OP_CLIP) info->inplace[i] = 1;
    EXPECT_EQ(info->precision, EGC_PREC_MIXED); // handed through from the plan options
    return be->plan_prepare(be, g, shapes, state);
}

// Marks the values named in half_names (a comma-separated list) as stored in 2-byte elements.
const char *half_names = "";
egc_status ask_half(egc_backend *be, const egc_graph *g, const egc_shape *shapes,
                    const egc_plan_info *info, void **state)
{
    EXPECT_NE(info->half, nullptr);
    std::string names = std::string(",") + half_names + ",";
    for (int v = 0; v < g->n_values; v++)
        if (names.find("," + std::string(g->values[v].name) + ",") != std::string::npos)
            info->half[v] = 1;
    return be->plan_prepare(be, g, shapes, state);
}

struct TinyGraph {
    std::vector<egc_value> values;
    std::vector<egc_node> nodes;
    egc_graph g;
    explicit TinyGraph(int64_t side = 3)
    {
        const int64_t dims[4] = {1, 2, side, side};
        values.resize(5);
        memset(values.data(), 0, values.size() * sizeof(egc_value));
        const char *names[5] = {"x", "a", "b", "c", "y"};
        for (int v = 0; v < 5; v++) {
            values[(size_t)v].name = (char *)names[v];
            values[(size_t)v].shape = egc_shape_make(4, dims);
            values[(size_t)v].producer = v - 1;
        }
        nodes.resize(4);
        memset(nodes.data(), 0, nodes.size() * sizeof(egc_node));
        const egc_op ops[4] = {EGC_OP_RELU, EGC_OP_CLIP, EGC_OP_CLIP, EGC_OP_ADD};
        const char *nn[4] = {"relu", "clip1", "clip2", "add"};
        for (int i = 0; i < 4; i++) {
            nodes[(size_t)i].op = ops[i];
            nodes[(size_t)i].name = (char *)nn[i];
            nodes[(size_t)i].n_in = 1;
            nodes[(size_t)i].in[0] = i;
            nodes[(size_t)i].out = i + 1;
        }
        nodes[1].p.clip.lo = -0.5f;
        nodes[1].p.clip.hi = 0.5f;
        nodes[2].p.clip.lo = -0.25f;
        nodes[2].p.clip.hi = 0.25f;
        nodes[3].n_in = 2;
        nodes[3].in[0] = 3;
        nodes[3].in[1] = 1;
        memset(&g, 0, sizeof g);
        g.values = values.data();
        g.n_values = 5;
        g.nodes = nodes.data();
        g.n_nodes = 4;
        g.input = 0;
        g.output = 4;
        g.declared_batch = 1;
        g.opset = 17;
    }
};

struct Result {
    std::vector<float> y, grad;
    std::string desc;
};

// Forward (and, with a target, backward of a ones seed) of x on backend be.
void run(const egc_graph *g, egc_backend *be, int target, const std::vector<float> &x, Result *r)
{
    egc_plan_opts o;
    egc_plan_opts_default(&o);
    o.precision = EGC_PREC_MIXED;
    egc_plan *p = nullptr;
    ASSERT_EQ(egc_plan_create_ex(g, be, 1, target, &o, &p), EGC_OK) << egc_last_error();
    egc_view in = egc_plan_value(p, g->input);
    memcpy(in.ptr, x.data(), x.size() * sizeof(float));
    ASSERT_EQ(egc_plan_forward(p), EGC_OK) << egc_last_error();
    egc_view out = egc_plan_value(p, g->output);
    r->y.assign(out.ptr, out.ptr + egc_shape_numel(&out.shape));
    if (target >= 0) {
        std::vector<float> seed(r->y.size(), 1.0f);
        ASSERT_EQ(egc_plan_backward(p, seed.data()), EGC_OK) << egc_last_error();
        egc_view gv = egc_plan_grad(p, target);
        r->grad.assign(gv.ptr, gv.ptr + egc_shape_numel(&gv.shape));
    }
    char buf[4096];
    egc_plan_describe(p, buf, sizeof buf);
    r->desc = buf;
    egc_plan_destroy(p);
}

TEST(ExecInplace, GrantedOnlyWhereSafeAndResultsUnchanged)
{
    TinyGraph t;
    std::vector<float> x(18);
    for (size_t i = 0; i < x.size(); i++) x[i] = (float)((int)(i * 7 % 19) - 9) * 0.11f;
    egc_backend *plain = nullptr, *asking = nullptr;
    ASSERT_EQ(egc_cpu_backend_create(&plain), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_cpu_backend_create(&asking), EGC_OK) << egc_last_error();
    asking->plan_prepare_ex = ask_clip_inplace; // instead of the CPU's own (Conv fusion)

    for (int target : {-1, 2}) {
        SCOPED_TRACE("target " + std::to_string(target));
        Result ref, got;
        run(&t.g, plain, target, x, &ref);
        run(&t.g, asking, target, x, &got);
        ASSERT_EQ(ref.y.size(), got.y.size());
        for (size_t i = 0; i < ref.y.size(); i++) EXPECT_EQ(ref.y[i], got.y[i]) << "y " << i;
        ASSERT_EQ(ref.grad.size(), got.grad.size());
        for (size_t i = 0; i < ref.grad.size(); i++) EXPECT_EQ(ref.grad[i], got.grad[i]) << "grad " << i;
        EXPECT_NE(ref.desc.find("0 shared buffers"), std::string::npos) << ref.desc;
        const char *want = target < 0 ? "1 shared buffer," : "0 shared buffers";
        EXPECT_NE(got.desc.find(want), std::string::npos) << got.desc;
        EXPECT_NE(got.desc.find("precision mixed"), std::string::npos) << got.desc;
        EXPECT_NE(got.desc.find("graph replay off"), std::string::npos) << got.desc;
    }
    // the reference gradient w.r.t. b is not all ones: clip2 blocks where |b| > 0.25
    Result ref;
    run(&t.g, plain, 2, x, &ref);
    size_t blocked = 0;
    for (float v : ref.grad) blocked += v == 0.0f;
    EXPECT_GT(blocked, 0u);
    egc_backend_destroy(plain);
    egc_backend_destroy(asking);
}

// Values the backend stores in fp16 get numel * 2 bytes of the arena (never the input or a
// kept value), and buffers of values alive at the same time never overlap.
TEST(ExecInplace, HalfStoredValuesTakeTwoBytesPerElement)
{
    TinyGraph t(32); // 2048 elements per value: 8 KiB in fp32, 4 KiB in fp16
    egc_backend *be = nullptr;
    ASSERT_EQ(egc_cpu_backend_create(&be), EGC_OK) << egc_last_error();
    be->plan_prepare_ex = ask_half;
    egc_plan_opts o;
    egc_plan_opts_default(&o);
    o.precision = EGC_PREC_MIXED;
    // value lifetimes of the forward-only plan (time 0 = input, node i at i + 1; kept: x, y)
    const int def[5] = {0, 1, 2, 3, 4}, last[5] = {99, 4, 3, 4, 99};
    auto arena = [&](const char *names, int *n_half, std::string *desc) -> size_t {
        half_names = names;
        egc_plan *p = nullptr;
        EXPECT_EQ(egc_plan_create_ex(&t.g, be, 1, -1, &o, &p), EGC_OK) << egc_last_error();
        if (!p) return 0;
        size_t bytes = egc_plan_arena_bytes(p);
        char buf[4096];
        egc_plan_describe(p, buf, sizeof buf);
        *desc = buf;
        *n_half = 0;
        std::string list = std::string(",") + names + ",";
        size_t sz[5];
        char *ptr[5];
        for (int v = 0; v < 5; v++) {
            std::string nm = "," + std::string(t.values[(size_t)v].name) + ",";
            int h = list.find(nm) != std::string::npos && v != 0 && v != 4;
            *n_half += h;
            ptr[v] = (char *)egc_plan_value(p, v).ptr;
            sz[v] = 2048u * (h ? 2u : 4u);
        }
        for (int a = 0; a < 5; a++)
            for (int b = a + 1; b < 5; b++) {
                bool live = !(last[a] < def[b] || last[b] < def[a]);
                bool apart = ptr[a] + sz[a] <= ptr[b] || ptr[b] + sz[b] <= ptr[a];
                EXPECT_TRUE(!live || apart) << names << ": values " << a << " and " << b
                                            << " overlap while both alive";
            }
        egc_plan_destroy(p);
        return bytes;
    };
    int nh = 0;
    std::string desc;
    size_t full = arena("", &nh, &desc);
    EXPECT_NE(desc.find("0 values stored in 2 bytes"), std::string::npos) << desc;
    size_t kept = arena("x,y", &nh, &desc); // input and output stay fp32
    EXPECT_EQ(kept, full);
    EXPECT_NE(desc.find("0 values stored in 2 bytes"), std::string::npos) << desc;
    size_t halved = arena("a,b,c", &nh, &desc);
    EXPECT_EQ(nh, 3);
    EXPECT_NE(desc.find("3 values stored in 2 bytes"), std::string::npos) << desc;
    // at most x + y (8 KiB each) + the largest live fp16 pair set (3 x 4 KiB)
    EXPECT_LT(halved, full);
    EXPECT_LE(halved, (size_t)(2 * 8192 + 3 * 4096));
    half_names = "";
    egc_backend_destroy(be);
}

// egc_plan_set_rows: a plan of batch 7 run on its first 3 rows gives those rows exactly as a
// plan of batch 3 does, forward and backward, and leaves rows 3.. of its buffers alone; a
// graph that mixes rows (Softmax over the batch axis) and a backend without partial rows
// keep computing whole batches.
TEST(ExecInplace, FirstRowsOnlyWhereRowsAreSeparate)
{
    TinyGraph t(4); // [B,2,4,4]
    const size_t per = 2 * 4 * 4;
    egc_backend *be = nullptr;
    ASSERT_EQ(egc_cpu_backend_create(&be), EGC_OK) << egc_last_error();
    ASSERT_EQ(be->partial_rows, 1);
    std::vector<float> x(7 * per);
    for (size_t i = 0; i < x.size(); i++) x[i] = (float)((int)(i * 13 % 29) - 14) * 0.07f;
    auto run_rows = [&](egc_backend *b, int batch, int rows, int target, std::vector<float> *y,
                        std::vector<float> *gr, int64_t *got_rows) {
        egc_plan *p = nullptr;
        ASSERT_EQ(egc_plan_create(&t.g, b, batch, target, &p), EGC_OK) << egc_last_error();
        egc_view in = egc_plan_value(p, t.g.input);
        memcpy(in.ptr, x.data(), (size_t)batch * per * sizeof(float));
        egc_view out0 = egc_plan_value(p, t.g.output);
        std::fill(out0.ptr, out0.ptr + (size_t)batch * per, 777.0f); // sentinel
        *got_rows = egc_plan_set_rows(p, rows);
        EXPECT_EQ(egc_plan_rows(p), *got_rows);
        EXPECT_EQ(egc_plan_value(p, t.g.output).shape.d[0], *got_rows);
        ASSERT_EQ(egc_plan_forward(p), EGC_OK) << egc_last_error();
        y->assign(out0.ptr, out0.ptr + (size_t)batch * per);
        if (target >= 0) {
            std::vector<float> seed((size_t)batch * per, 1.0f);
            ASSERT_EQ(egc_plan_backward(p, seed.data()), EGC_OK) << egc_last_error();
            egc_view gv = egc_plan_grad(p, target);
            gr->assign(gv.ptr, gv.ptr + (size_t)(*got_rows) * per);
        }
        egc_plan_destroy(p);
    };
    for (int target : {-1, 2}) {
        std::vector<float> y7, g7, y3, g3;
        int64_t r7 = 0, r3 = 0;
        run_rows(be, 7, 3, target, &y7, &g7, &r7);
        run_rows(be, 3, 3, target, &y3, &g3, &r3);
        EXPECT_EQ(r7, 3);
        for (size_t i = 0; i < 3 * per; i++) ASSERT_EQ(y7[i], y3[i]) << "row value " << i;
        for (size_t i = 3 * per; i < 7 * per; i++) ASSERT_EQ(y7[i], 777.0f) << "row 3.. touched " << i;
        ASSERT_EQ(g7.size(), g3.size());
        for (size_t i = 0; i < g7.size(); i++) ASSERT_EQ(g7[i], g3[i]) << "gradient " << i;
    }
    // out of range: the whole batch
    {
        egc_plan *p = nullptr;
        ASSERT_EQ(egc_plan_create(&t.g, be, 7, -1, &p), EGC_OK) << egc_last_error();
        EXPECT_EQ(egc_plan_set_rows(p, 0), 7);
        EXPECT_EQ(egc_plan_set_rows(p, 8), 7);
        EXPECT_EQ(egc_plan_set_rows(p, 7), 7);
        egc_plan_destroy(p);
    }
    // a backend without partial rows
    egc_backend *whole = nullptr;
    ASSERT_EQ(egc_cpu_backend_create(&whole), EGC_OK) << egc_last_error();
    whole->partial_rows = 0;
    {
        std::vector<float> y, g;
        int64_t r = 0;
        run_rows(whole, 7, 3, -1, &y, &g, &r);
        EXPECT_EQ(r, 7);
        EXPECT_NE(y[6 * per], 777.0f); // all rows computed
    }
    // a graph that mixes rows: the last node becomes a Softmax over axis 0
    t.nodes[3].op = EGC_OP_SOFTMAX;
    t.nodes[3].n_in = 1;
    t.nodes[3].p.axis.axis = 0;
    {
        std::vector<float> y, g;
        int64_t r = 0;
        run_rows(be, 7, 3, -1, &y, &g, &r);
        EXPECT_EQ(r, 7);
        float col = 0; // softmax over the batch: the 7 rows of a column sum to 1
        for (int b = 0; b < 7; b++) col += y[(size_t)b * per + 5];
        EXPECT_NEAR(col, 1.0f, 1e-5);
    }
    egc_backend_destroy(whole);
    egc_backend_destroy(be);
}

// A backend that computes whole batches (partial_rows 0, as the CUDA backend does): the CPU
// backend wrapped so that each prepared state knows its rows and every op call checks that
// its views have them.
struct RowState {
    int64_t rows;
    void *inner;
};
struct RowLog {
    std::vector<int64_t> prepared;  // batch of each plan_prepare_ex
    int released = 0, bad_calls = 0;
    int64_t last_rows = 0;           // rows of the last op call
} g_rowlog;

egc_status rows_prepare(egc_backend *be, const egc_graph *g, const egc_shape *shapes,
                        const egc_plan_info *info, void **state)
{
    (void)info;
    const int64_t rows = shapes[g->input].d[0];
    g_rowlog.prepared.push_back(rows);
    RowState *st = new RowState{rows, nullptr};
    egc_status s = be->plan_prepare(be, g, shapes, &st->inner);
    if (s != EGC_OK) {
        delete st;
        return s;
    }
    *state = st;
    return EGC_OK;
}
void rows_release(egc_backend *be, void *state)
{
    RowState *st = (RowState *)state;
    g_rowlog.released++;
    (void)be;
    delete st;
}
egc_status rows_forward(egc_backend *be, void *state, const egc_graph *g, const egc_node *n,
                        const egc_view *in, const egc_view *out)
{
    RowState *st = (RowState *)state;
    g_rowlog.last_rows = out->shape.d[0];
    if (!st || in[0].shape.d[0] != st->rows || out->shape.d[0] != st->rows) g_rowlog.bad_calls++;
    return egc_cpu_forward(g, n, in, out);
}
egc_status rows_backward(egc_backend *be, void *state, const egc_graph *g, const egc_node *n,
                         const egc_view *in, const egc_view *out, const egc_view *dout,
                         const egc_view *din)
{
    RowState *st = (RowState *)state;
    if (!st || dout->shape.d[0] != st->rows) g_rowlog.bad_calls++;
    return egc_cpu_backward(g, n, in, out, dout, din);
}

// egc_plan_use_rows on such a backend: the plan computes the whole batch on its one state
// (every op call sees the batch's rows), with input rows n.. zeroed, and rows 0..n-1 as a
// plan of n rows gives them.
TEST(ExecInplace, FewerRowsOnBackendsThatComputeWholeBatches)
{
    TinyGraph t(4); // [B,2,4,4]
    const size_t per = 2 * 4 * 4;
    const int B = 16;
    egc_backend *be = nullptr;
    ASSERT_EQ(egc_cpu_backend_create(&be), EGC_OK) << egc_last_error();
    be->partial_rows = 0;
    be->plan_prepare_ex = rows_prepare;
    be->plan_release = rows_release;
    be->plan_describe = nullptr;
    be->op_forward = rows_forward;
    be->op_backward = rows_backward;
    be->capture_begin = nullptr;
    be->capture_end = nullptr;
    be->replay = nullptr;
    std::vector<float> x(B * per);
    for (size_t i = 0; i < x.size(); i++) x[i] = (float)((int)(i * 13 % 29) - 14) * 0.07f;
    const int target = 2; // b: the Clip and the Add are the head
    // reference: a plan of 3 rows
    std::vector<float> y3, g3;
    {
        egc_plan *p = nullptr;
        ASSERT_EQ(egc_plan_create(&t.g, be, 3, target, &p), EGC_OK) << egc_last_error();
        memcpy(egc_plan_value(p, t.g.input).ptr, x.data(), 3 * per * sizeof(float));
        ASSERT_EQ(egc_plan_forward(p), EGC_OK) << egc_last_error();
        egc_view out = egc_plan_value(p, t.g.output);
        y3.assign(out.ptr, out.ptr + 3 * per);
        std::vector<float> seed(3 * per, 1.0f);
        ASSERT_EQ(egc_plan_backward(p, seed.data()), EGC_OK) << egc_last_error();
        egc_view gv = egc_plan_grad(p, target);
        g3.assign(gv.ptr, gv.ptr + 3 * per);
        egc_plan_destroy(p);
    }
    g_rowlog = RowLog();
    egc_plan *p = nullptr;
    ASSERT_EQ(egc_plan_create(&t.g, be, B, target, &p), EGC_OK) << egc_last_error();
    egc_view in = egc_plan_value(p, t.g.input);
    for (size_t i = 0; i < B * per; i++) in.ptr[i] = 555.0f;
    memcpy(in.ptr, x.data(), 3 * per * sizeof(float));
    ASSERT_EQ(egc_plan_use_rows(p, 3), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_plan_rows(p), B);
    for (size_t i = 3 * per; i < B * per; i++) ASSERT_EQ(in.ptr[i], 0.0f) << i;
    ASSERT_EQ(egc_plan_forward(p), EGC_OK) << egc_last_error();
    EXPECT_EQ(g_rowlog.last_rows, B);
    egc_view out = egc_plan_value(p, t.g.output);
    for (size_t i = 0; i < 3 * per; i++) ASSERT_EQ(out.ptr[i], y3[i]) << i;
    std::vector<float> seed(B * per, 1.0f);
    ASSERT_EQ(egc_plan_backward(p, seed.data()), EGC_OK) << egc_last_error();
    egc_view gv = egc_plan_grad(p, target);
    ASSERT_EQ(gv.shape.d[0], B);
    for (size_t i = 0; i < 3 * per; i++) ASSERT_EQ(gv.ptr[i], g3[i]) << i;
    EXPECT_EQ(g_rowlog.prepared, (std::vector<int64_t>{B}));
    EXPECT_EQ(g_rowlog.bad_calls, 0);
    egc_plan_destroy(p);
    EXPECT_EQ(g_rowlog.released, 1);
    egc_backend_destroy(be);
}

TEST(ExecInplace, PlanOptionsChecked)
{
    TinyGraph t;
    egc_backend *be = nullptr;
    ASSERT_EQ(egc_cpu_backend_create(&be), EGC_OK) << egc_last_error();
    egc_plan_opts o;
    egc_plan_opts_default(&o);
    EXPECT_EQ(o.precision, EGC_PREC_FP32);
    EXPECT_EQ(o.graphs, 1);
    o.precision = (egc_precision)7;
    egc_plan *p = nullptr;
    EXPECT_EQ(egc_plan_create_ex(&t.g, be, 1, -1, &o, &p), EGC_E_ARG);
    EXPECT_EQ(p, nullptr);
    egc_precision pr;
    EXPECT_EQ(egc_precision_parse("mixed", &pr), EGC_OK);
    EXPECT_EQ(pr, EGC_PREC_MIXED);
    EXPECT_STREQ(egc_precision_name(pr), "mixed");
    EXPECT_EQ(egc_precision_parse("fp16", &pr), EGC_E_ARG);
    EXPECT_NE(std::string(egc_last_error()).find("fp16"), std::string::npos) << egc_last_error();
    egc_backend_destroy(be);
}

} // namespace
