// memcap_test.cc: the device-memory cap and the automatic batch splitting, on the CPU
// backend with the shared ResNet-20 (CIFAR-10).
//
// The session and explainer cases are those of test/memcap_cases.h, run on "cpu" within
// 1e-5: a split session gives the logits, target-layer gradients and activations of the
// uncapped one and keeps backward to the rows of the last forward; a cap below one row gives
// EGC_E_NOMEM naming the cap and the row's bytes, which fit one row exactly; a capped
// explainer (Grad-CAM, Expected Grad-CAM) gives the maps of the uncapped one.
// Here only: the extra bytes a caller declares count against the cap.
#include <gtest/gtest.h>

#include "memcap_cases.h"

namespace {

TEST(MemCap, SplitSessionMatchesUncapped) { memcap_split_session_matches_uncapped("cpu", 1e-5); }

TEST(MemCap, CapBelowOneRowIsNoMem) { memcap_cap_below_one_row_is_nomem("cpu"); }

TEST(MemCap, ExtraBytesCountAgainstTheCap)
{
    MemcapModel mm("cpu");
    ASSERT_NO_FATAL_FAILURE(mm.Load());
    MemcapSessPtr full = mm.Session(16, 0);
    ASSERT_TRUE(full);
    size_t b16 = egc_session_device_bytes(full.get());
    // The session alone fits at 16 rows; with 1 MiB per row declared beside it, it cannot.
    MemcapSessPtr plain = mm.Session(16, b16);
    ASSERT_TRUE(plain);
    EXPECT_EQ(egc_session_chunk(plain.get()), 16);
    const size_t row = 1 << 20;
    MemcapSessPtr extra = mm.Session(16, b16 + 4 * row, EGC_OK, row);
    ASSERT_TRUE(extra);
    int chunk = egc_session_chunk(extra.get());
    EXPECT_GE(chunk, 4);
    EXPECT_LT(chunk, 16);
    EXPECT_LE(egc_session_device_bytes(extra.get()) + (size_t)chunk * row, b16 + 4 * row);
    // Fixed extra bytes larger than the cap leave no room at all.
    MemcapSessPtr none = mm.Session(16, b16, EGC_E_NOMEM, 0, b16);
    EXPECT_FALSE(none);
}

TEST(MemCap, ExplainerSplitGivesTheSameMaps) { memcap_explainer_split_same_maps("cpu", 1e-5); }

}  // namespace
