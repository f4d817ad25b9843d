// backend_registry_test.cc: the backend registry (csrc/backend/registry.c): names it accepts
// and rejects, the errors it gives for CUDA on a build or machine without it, and the
// device listing of `egcam info`. Runs everywhere: no test here needs a GPU.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>

extern "C" {
#include "backend/backend.h"
#include "egcam/tensor.h"
}

namespace {

// Which device names are CUDA devices: the names egc_backend_create takes for CUDA.
TEST(BackendRegistry, DeviceIsCuda)
{
    for (const char *d : {"cuda", "cuda:0", "cuda:12"}) EXPECT_EQ(egc_device_is_cuda(d), 1) << d;
    for (const char *d : {"cpu", "cudax", "cuda:", "cuda:a", "cuda:1x", ""})
        EXPECT_EQ(egc_device_is_cuda(d), 0) << d;
    EXPECT_EQ(egc_device_is_cuda(nullptr), 0);
}

TEST(BackendRegistry, CpuByName)
{
    egc_backend *be = nullptr;
    ASSERT_EQ(egc_backend_create("cpu", &be), EGC_OK) << egc_last_error();
    ASSERT_NE(be, nullptr);
    EXPECT_STREQ(be->name, "cpu");
    egc_backend_destroy(be);
    egc_backend_destroy(nullptr); // no-op
}

// Host memory for inputs: zeroed, 64-byte aligned, freed by egc_host_free; ordinary memory for
// the CPU; for CUDA page-locked only where a CUDA device is usable (else still a success).
TEST(BackendRegistry, HostMemoryForInputs)
{
    for (const char *dev : {"cpu", "cuda", "cuda:3"}) {
        void *p = nullptr;
        ASSERT_EQ(egc_host_alloc(dev, 1000, &p), EGC_OK) << dev << ": " << egc_last_error();
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u) << dev;
        const unsigned char *b = static_cast<unsigned char *>(p);
        size_t nz = 0;
        for (int i = 0; i < 1000; i++) nz += b[i] != 0;
        EXPECT_EQ(nz, 0u) << dev;
        std::memset(p, 0xab, 1000); // the whole block is writable
        if (!std::strcmp(dev, "cpu")) EXPECT_EQ(egc_host_pinned(p), 0);
        egc_host_free(p);
    }
    egc_host_free(nullptr);
    EXPECT_EQ(egc_host_pinned(nullptr), 0);
    void *p = reinterpret_cast<void *>(&p);
    EXPECT_EQ(egc_host_alloc("cpu", 0, &p), EGC_E_ARG);
    EXPECT_EQ(egc_host_alloc("cpu", 16, nullptr), EGC_E_ARG);
    EXPECT_EQ(egc_host_alloc("cpu", SIZE_MAX - 8, &p), EGC_E_NOMEM);
    int local = 0;
    EXPECT_EQ(egc_host_pinned(&local), 0); // not ours: asked safely
    egc_host_free(&local);                  // not ours: a no-op
    EXPECT_EQ(p, nullptr);
}

TEST(BackendRegistry, MalformedNamesAreArgumentErrors)
{
    for (const char *name : {"", "gpu", "CUDA", "cuda:", "cuda:-1", "cuda:1x", "cuda:99999", "cpu0"}) {
        egc_backend *be = reinterpret_cast<egc_backend *>(&be); // must be reset to NULL
        EXPECT_EQ(egc_backend_create(name, &be), EGC_E_ARG) << "name '" << name << "'";
        EXPECT_EQ(be, nullptr);
        EXPECT_NE(std::string(egc_last_error()).find(std::string("'") + name + "'"), std::string::npos)
            << egc_last_error();
    }
    egc_backend *be = nullptr;
    EXPECT_EQ(egc_backend_create(nullptr, &be), EGC_E_ARG);
}

TEST(BackendRegistry, AbsentCudaDeviceIsDeviceError)
{
    // Device 4095 exists nowhere: a build without CUDA, a machine without a driver and a
    // machine with GPUs all answer EGC_E_DEVICE with a reason.
    egc_backend *be = nullptr;
    EXPECT_EQ(egc_backend_create("cuda:4095", &be), EGC_E_DEVICE);
    EXPECT_EQ(be, nullptr);
    std::string msg = egc_last_error();
#ifdef EGC_WITH_CUDA
    EXPECT_NE(msg.find("cuda"), std::string::npos) << msg;
#else
    EXPECT_NE(msg.find("built without CUDA"), std::string::npos) << msg;
#endif
}

TEST(BackendRegistry, ListDevicesHasCpuAndCudaLines)
{
    char buf[4096];
    memset(buf, 'x', sizeof buf);
    egc_backend_list_devices(buf, sizeof buf);
    std::string s(buf);
    ASSERT_LT(s.size(), sizeof buf);
    EXPECT_EQ(s.rfind("cpu ", 0), 0u) << s;
    EXPECT_NE(s.find("\ncuda"), std::string::npos) << s;
    EXPECT_EQ(s.back(), '\n') << s;
    char tiny[6];
    memset(tiny, 'x', sizeof tiny);
    egc_backend_list_devices(tiny, sizeof tiny);
    EXPECT_EQ(strlen(tiny), sizeof tiny - 1); // truncated, terminated
}

} // namespace
