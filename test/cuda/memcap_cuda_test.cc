// memcap_cuda_test.cc: the device-memory cap and the automatic batch splitting on the CUDA
// backend, where the session's bytes are what cudaMalloc gave (weights, arenas, the cuBLAS
// and cuDNN workspaces), with the shared ResNet-20 (CIFAR-10), strict fp32 (TF32 off).
//
// The cases are those of test/memcap_cases.h, run on "cuda" within 1e-4 (the passes may pick
// other convolution algorithms than the full batch): a split session gives the logits,
// target-layer gradients and activations of the uncapped one and keeps backward to the rows
// of the last forward; a cap below one row gives EGC_E_NOMEM naming the cap; a capped
// explainer (Grad-CAM, Expected Grad-CAM) gives the maps of the uncapped one. Skipped, with
// the reason, where no CUDA device or driver is present.
#include <gtest/gtest.h>

#include "cuda_test_util.h"
#include "memcap_cases.h"

namespace {

class MemCapCuda : public ::testing::Test {
protected:
    void SetUp() override
    {
        if (!cuda_skip_reason().empty()) GTEST_SKIP() << cuda_skip_reason();
    }

    Tf32Env strict_fp32{false};
};

TEST_F(MemCapCuda, SplitSessionMatchesUncapped)
{
    memcap_split_session_matches_uncapped("cuda", 1e-4);
}

TEST_F(MemCapCuda, CapBelowOneRowIsNoMem) { memcap_cap_below_one_row_is_nomem("cuda"); }

TEST_F(MemCapCuda, ExplainerSplitGivesTheSameMaps)
{
    memcap_explainer_split_same_maps("cuda", 1e-4);
}

}  // namespace
