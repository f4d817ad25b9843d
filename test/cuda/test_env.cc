// test_env.cc: the environment every CUDA test runs in. The choice cache (the timed cuDNN and
// fusion-path choices kept across processes, core/choice_cache.h) is off, so that each run
// of the suite makes and checks its choices itself, whatever an earlier run left in the cache
// folder, and leaves no file behind; tools/gpu_check.sh checks the cache across processes.
#include <cstdlib>

namespace {
[[maybe_unused]] const bool kNoChoiceCache = setenv("EGC_CUDA_CACHE", "0", 1) == 0;
} // namespace
