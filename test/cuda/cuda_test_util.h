// cuda_test_util.h: helpers of the CUDA tests: why the CUDA backend cannot be used here (and
// the skip that says so), a scoped environment variable, and a scoped setting of
// EGC_CUDA_TF32 (TF32 tensor-core math allowed or not).
#ifndef EGC_TEST_CUDA_TEST_UTIL_H
#define EGC_TEST_CUDA_TEST_UTIL_H

#include <cstdlib>
#include <string>

#include "backend/backend.h"
#include "egcam/status.h"

// Why CUDA cannot be used here ("" when it can); probed once.
inline const std::string &cuda_skip_reason()
{
    static std::string reason;
    static bool probed = false;
    if (!probed) {
        probed = true;
        egc_backend *be = nullptr;
        if (egc_backend_create("cuda", &be) != EGC_OK)
            reason = std::string("no usable CUDA device: ") + egc_last_error();
        egc_backend_destroy(be);
    }
    return reason;
}

// Skips the current test, with the reason, where CUDA cannot be used.
#define SKIP_WITHOUT_CUDA()                                                                \
    do {                                                                                   \
        if (!cuda_skip_reason().empty()) GTEST_SKIP() << cuda_skip_reason();               \
    } while (0)

// Sets an environment variable while it lives; restores the old value.
class EnvVar {
public:
    EnvVar(const char *name, const char *value) : name_(name)
    {
        const char *o = getenv(name);
        had_ = o != nullptr;
        if (had_) old_ = o;
        setenv(name, value, 1);
    }
    ~EnvVar()
    {
        if (had_) setenv(name_.c_str(), old_.c_str(), 1);
        else unsetenv(name_.c_str());
    }
    EnvVar(const EnvVar &) = delete;
    EnvVar &operator=(const EnvVar &) = delete;

private:
    std::string name_, old_;
    bool had_ = false;
};

// Sets EGC_CUDA_TF32 for the sessions created while it lives; restores the old value.
class Tf32Env {
public:
    explicit Tf32Env(bool allow) : tf32_("EGC_CUDA_TF32", allow ? "1" : "0") {}

private:
    EnvVar tf32_;
};

#endif  // EGC_TEST_CUDA_TEST_UTIL_H
