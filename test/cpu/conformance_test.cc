// conformance_test.cc: ONNX's own operator tests (Debian's libonnx-testdata: model.onnx +
// input_*.pb + output_*.pb per case) run through egcam's reader, lowering and the CPU
// executor, for every operator egcam supports. Inputs after the first are bound as
// constants (weights are initializers in real models). Every case either passes, or is
// listed in kSkips with the reason, and then must be refused with a clear error (so the
// list cannot go stale). A summary is written to conformance.md in the working directory.
#include <dirent.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

extern "C" {
#include "backend/backend.h"
#include "model/exec.h"
#include "model/lower.h"
#include "model/onnx.h"
}

namespace {

const char *kOps[] = {"conv", "gemm", "matmul", "relu", "clip", "sigmoid", "mul", "add",
                      "maxpool", "averagepool", "globalaveragepool", "batchnorm", "flatten",
                      "reshape", "dropout", "identity", "concat", "slice", "pad", "softmax",
                      "sub", "div", "transpose", "hardsigmoid", "hardswish", "reduce_mean",
                      "leakyrelu", "prelu", "globalmaxpool", "reduce_max", "squeeze",
                      "unsqueeze", "erf", "sqrt", "layer_normalization", "reduce_sum", "gather", "split",
                      "instancenorm", "group_normalization", "tanh", "neg", "abs",
                      "reciprocal", "resize", "upsample", "exp", "log", "softplus", "elu",
                      "selu", "celu", "softsign", "logsoftmax"};

// Cases egcam refuses on purpose, with the reason shown in the README.
const std::map<std::string, std::string> kSkips = {
#include "conformance_skips.inc"
};

struct Outcome {
    std::string name, status, detail;
};

bool op_matches(const std::string &dir)
{
    for (const char *op : kOps) {
        std::string p = std::string("test_") + op;
        if (dir.compare(0, p.size(), p) != 0) continue;
        char next = dir.size() > p.size() ? dir[p.size()] : '\0';
        if (next == '\0' || next == '_') return true;
    }
    return false;
}

std::vector<std::string> list_cases()
{
    std::vector<std::string> out;
    std::string root = std::string(EGC_ONNX_TESTDATA) + "/node";
    DIR *d = opendir(root.c_str());
    if (!d) return out;
    while (dirent *e = readdir(d))
        if (op_matches(e->d_name)) out.push_back(e->d_name);
    closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

bool read_tensor(const std::string &path, egc_onnx_tensor *t)
{
    uint8_t *buf = nullptr;
    size_t len = 0;
    if (egc_read_file(path.c_str(), &buf, &len) != EGC_OK) return false;
    egc_status st = egc_onnx_parse_tensor(buf, len, path.c_str(), t);
    free(buf);
    return st == EGC_OK;
}

// Runs one case; returns "" on success, else the error text. *code gets the status.
std::string run_case(const std::string &name, egc_status *code)
{
    *code = EGC_OK;
    std::string dir = std::string(EGC_ONNX_TESTDATA) + "/node/" + name;
    egc_onnx_model *m = nullptr;
    if ((*code = egc_onnx_load((dir + "/model.onnx").c_str(), &m)) != EGC_OK)
        return egc_last_error();
    std::vector<egc_onnx_tensor> ins;
    for (int i = 0;; i++) {
        egc_onnx_tensor t;
        memset(&t, 0, sizeof t);
        std::string p = dir + "/test_data_set_0/input_" + std::to_string(i) + ".pb";
        FILE *f = fopen(p.c_str(), "rb");
        if (!f) break;
        fclose(f);
        if (!read_tensor(p, &t)) {
            egc_onnx_free(m);
            *code = EGC_E_FORMAT;
            return std::string("cannot read ") + p + ": " + egc_last_error();
        }
        ins.push_back(t);
    }
    egc_onnx_tensor expect;
    memset(&expect, 0, sizeof expect);
    if (!read_tensor(dir + "/test_data_set_0/output_0.pb", &expect)) {
        egc_onnx_free(m);
        for (auto &t : ins) egc_onnx_tensor_clear(&t);
        *code = EGC_E_FORMAT;
        return "cannot read output_0.pb";
    }
    // Graph inputs in order; the first is the runtime input, the rest become constants.
    std::vector<const char *> names;
    std::vector<egc_onnx_tensor> consts;
    int n_graph_in = 0;
    for (int i = 0; i < m->n_inputs; i++) {
        bool is_init = false;
        for (int k = 0; k < m->n_inits; k++)
            if (!strcmp(m->inits[k].name, m->inputs[i].name)) is_init = true;
        if (is_init) continue;
        if (n_graph_in > 0 && n_graph_in - 1 < (int)ins.size() - 1) {
            names.push_back(m->inputs[i].name);
            consts.push_back(ins[n_graph_in]);
        }
        n_graph_in++;
    }
    std::string err;
    egc_graph g;
    memset(&g, 0, sizeof g);
    egc_backend *be = nullptr;
    egc_plan *plan = nullptr;
    egc_status st = EGC_OK;
    if (ins.empty() || !ins[0].is_float) {
        st = EGC_E_UNSUPPORTED;
        err = "the first input is not a float tensor";
    }
    if (st == EGC_OK) st = egc_lower(m, name.c_str(), names.data(), consts.data(), (int)consts.size(), &g);
    if (st == EGC_OK) st = egc_cpu_backend_create(&be);
    int64_t batch = ins.empty() || ins[0].shape.ndim == 0 ? 1 : ins[0].shape.d[0];
    if (st == EGC_OK) st = egc_plan_create(&g, be, batch, -1, &plan);
    if (st == EGC_OK) {
        egc_view in = egc_plan_value(plan, g.input);
        if (egc_shape_numel(&in.shape) != ins[0].numel) {
            st = EGC_E_SHAPE;
            err = "input size mismatch";
        } else {
            st = be->upload(be, in.ptr, ins[0].f32, (size_t)ins[0].numel * sizeof(float));
        }
    }
    if (st == EGC_OK) st = egc_plan_forward(plan);
    if (st != EGC_OK && err.empty()) err = egc_last_error();
    if (st == EGC_OK) {
        egc_view o = egc_plan_value(plan, g.output);
        int64_t n = egc_shape_numel(&o.shape);
        if (n != expect.numel || !expect.is_float) {
            char a[96], b[96];
            err = std::string("output shape ") + egc_shape_str(&o.shape, a, sizeof a) +
                  " vs expected " + egc_shape_str(&expect.shape, b, sizeof b);
            st = EGC_E_SHAPE;
        } else {
            std::vector<float> got((size_t)n);
            st = be->download(be, got.data(), o.ptr, (size_t)n * sizeof(float));
            double worst = 0;
            int64_t wi = -1;
            for (int64_t i = 0; i < n && st == EGC_OK; i++) {
                double r = expect.f32[i], v = got[(size_t)i];
                double excess = std::fabs(v - r) - (1e-5 + 1e-3 * std::fabs(r));
                if (excess > worst || std::isnan(v) != std::isnan(r)) {
                    worst = excess > 0 ? excess : 1;
                    wi = i;
                }
            }
            if (wi >= 0) {
                err = "element " + std::to_string(wi) + ": got " + std::to_string(got[(size_t)wi]) +
                      ", expected " + std::to_string(expect.f32[wi]);
                st = EGC_E_INTERNAL;
            }
        }
    }
    *code = st;
    egc_plan_destroy(plan);
    egc_backend_destroy(be);
    egc_graph_clear(&g);
    egc_onnx_tensor_clear(&expect);
    for (auto &t : ins) egc_onnx_tensor_clear(&t);
    egc_onnx_free(m);
    return err;
}

TEST(Conformance, OnnxNodeTests)
{
    std::vector<std::string> cases = list_cases();
    if (cases.empty()) GTEST_SKIP() << "no ONNX test data at " << EGC_ONNX_TESTDATA
                                    << " (install libonnx-testdata)";
    std::vector<Outcome> res;
    int passed = 0, skipped = 0;
    for (const auto &c : cases) {
        egc_status code;
        std::string err = run_case(c, &code);
        auto sk = kSkips.find(c);
        if (sk == kSkips.end()) {
            EXPECT_EQ(code, EGC_OK) << c << ": " << err;
            res.push_back({c, code == EGC_OK ? "pass" : "FAIL", err});
            passed += code == EGC_OK;
        } else {
            // A listed case must be refused as unsupported (or as an unsupported type),
            // never silently computed wrong.
            EXPECT_NE(code, EGC_OK) << c << " is listed as skipped but now passes: remove it";
            EXPECT_NE(code, EGC_E_INTERNAL) << c << " gives wrong numbers: " << err;
            res.push_back({c, "skip", sk->second});
            skipped++;
        }
    }
    std::ofstream md("conformance.md");
    md << "| test | result | note |\n|---|---|---|\n";
    for (auto &o : res) {
        std::string d = o.detail.substr(0, o.detail.find('\n'));
        md << "| " << o.name << " | " << o.status << " | " << (o.status == "pass" ? "" : d) << " |\n";
    }
    md << "\n" << passed << " passed, " << skipped << " skipped of " << res.size() << "\n";
    RecordProperty("passed", passed);
    RecordProperty("skipped", skipped);
}

}  // namespace
