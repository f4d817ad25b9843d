// choice_cache_test.cc: the file of timed choices (csrc/core/choice_cache.c): records read back
// in order, damaged records (a flipped byte, a torn write between records, a cut-off tail)
// skipped without losing the others, the load cap, a missing file or folder, and the folder
// from EGC_CACHE_DIR / XDG_CACHE_HOME / HOME, none with EGC_CUDA_CACHE=0. Runs everywhere.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern "C" {
#include "core/choice_cache.h"
}

namespace {

egc_choice make(int i)
{
    egc_choice c;
    memset(&c, 0, sizeof c);
    for (int k = 0; k < EGC_CHOICE_KEY; k++) c.key[k] = (int64_t)i * 1000 + k - 7;
    for (int k = 0; k < EGC_CHOICE_VAL; k++) c.val[k] = (int64_t)i * -31 + k;
    return c;
}

bool same(const egc_choice &a, const egc_choice &b) { return memcmp(&a, &b, sizeof a) == 0; }

class ChoiceCache : public ::testing::Test {
protected:
    void SetUp() override
    {
        char t[] = "/tmp/egc_choice_XXXXXX";
        ASSERT_NE(mkdtemp(t), nullptr);
        dir = t;
        file = dir + "/choices.bin";
        for (const char *v : {"EGC_CACHE_DIR", "XDG_CACHE_HOME", "HOME", "EGC_CUDA_CACHE"}) {
            const char *o = getenv(v);
            saved.push_back({v, o ? o : "", o != nullptr});
        }
    }
    void TearDown() override
    {
        for (auto &s : saved) {
            if (s.set) setenv(s.name.c_str(), s.value.c_str(), 1);
            else unsetenv(s.name.c_str());
        }
        std::string cmd = "rm -rf '" + dir + "'";
        (void)!system(cmd.c_str());
    }
    std::vector<unsigned char> bytes() const
    {
        std::vector<unsigned char> b;
        FILE *f = fopen(file.c_str(), "rb");
        if (!f) return b;
        int ch;
        while ((ch = fgetc(f)) != EOF) b.push_back((unsigned char)ch);
        fclose(f);
        return b;
    }
    void write(const std::vector<unsigned char> &b) const
    {
        FILE *f = fopen(file.c_str(), "wb");
        ASSERT_NE(f, nullptr);
        ASSERT_EQ(fwrite(b.data(), 1, b.size(), f), b.size());
        fclose(f);
    }
    struct Saved {
        std::string name, value;
        bool set;
    };
    std::vector<Saved> saved;
    std::string dir, file;
};

TEST_F(ChoiceCache, RecordsComeBackInOrder)
{
    egc_choice out[8];
    EXPECT_EQ(egc_choice_cache_load(file.c_str(), out, 8), 0); // no file yet
    for (int i = 0; i < 3; i++) {
        egc_choice c = make(i);
        ASSERT_EQ(egc_choice_cache_append(file.c_str(), &c), 0);
    }
    ASSERT_EQ(egc_choice_cache_load(file.c_str(), out, 8), 3);
    for (int i = 0; i < 3; i++) EXPECT_TRUE(same(out[i], make(i))) << i;
    EXPECT_EQ(egc_choice_cache_load(file.c_str(), out, 2), 2); // the cap
    EXPECT_EQ(egc_choice_cache_load(file.c_str(), nullptr, 8), 3); // a count only
    EXPECT_TRUE(same(out[1], make(1)));
    EXPECT_EQ(bytes().size() % 3, 0u); // three records of one size
    egc_choice *all = nullptr; // every record, in one read
    ASSERT_EQ(egc_choice_cache_load_all(file.c_str(), &all), 3);
    for (int i = 0; i < 3; i++) EXPECT_TRUE(same(all[i], make(i))) << i;
    free(all);
    EXPECT_EQ(egc_choice_cache_load_all((file + ".none").c_str(), &all), 0);
    EXPECT_EQ(all, nullptr);
}

TEST_F(ChoiceCache, DamagedRecordsAreSkippedAndTheOthersKept)
{
    for (int i = 0; i < 4; i++) {
        egc_choice c = make(i);
        ASSERT_EQ(egc_choice_cache_append(file.c_str(), &c), 0);
    }
    const std::vector<unsigned char> good = bytes();
    const size_t rec = good.size() / 4;
    egc_choice out[8];

    // a flipped byte in record 1's choice: records 0, 2, 3
    std::vector<unsigned char> b = good;
    b[rec + rec / 2] ^= 0x10;
    write(b);
    ASSERT_EQ(egc_choice_cache_load(file.c_str(), out, 8), 3);
    EXPECT_TRUE(same(out[0], make(0)));
    EXPECT_TRUE(same(out[1], make(2)));
    EXPECT_TRUE(same(out[2], make(3)));

    // a torn write (half a record) between records 1 and 2: all four still found
    b = good;
    b.insert(b.begin() + (long)(2 * rec), good.begin(), good.begin() + (long)(rec / 2));
    write(b);
    ASSERT_EQ(egc_choice_cache_load(file.c_str(), out, 8), 4);
    for (int i = 0; i < 4; i++) EXPECT_TRUE(same(out[i], make(i))) << i;

    // a cut-off tail: the whole records before it
    b = good;
    b.resize(3 * rec + rec / 3);
    write(b);
    ASSERT_EQ(egc_choice_cache_load(file.c_str(), out, 8), 3);
    EXPECT_TRUE(same(out[2], make(2)));

    // not a cache at all
    write(std::vector<unsigned char>(5000, 0xab));
    EXPECT_EQ(egc_choice_cache_load(file.c_str(), out, 8), 0);
}

TEST_F(ChoiceCache, MissingFolderIsNoCacheAndNoCrash)
{
    egc_choice c = make(1), out[2];
    const std::string nowhere = dir + "/no/such/folder/x.bin";
    EXPECT_EQ(egc_choice_cache_append(nowhere.c_str(), &c), -1);
    EXPECT_EQ(egc_choice_cache_load(nowhere.c_str(), out, 2), 0);
    EXPECT_EQ(egc_choice_cache_append(nullptr, &c), -1);
    EXPECT_EQ(egc_choice_cache_load(nullptr, out, 2), 0);
}

TEST_F(ChoiceCache, FolderFromTheEnvironment)
{
    char buf[2048];
    unsetenv("EGC_CUDA_CACHE");
    // EGC_CACHE_DIR, made when missing
    setenv("EGC_CACHE_DIR", (dir + "/mine").c_str(), 1);
    ASSERT_EQ(egc_choice_cache_path("c.bin", buf, sizeof buf), 1);
    EXPECT_EQ(std::string(buf), dir + "/mine/c.bin");
    struct stat st;
    EXPECT_EQ(stat((dir + "/mine").c_str(), &st), 0);
    // XDG_CACHE_HOME/egcam, then HOME/.cache/egcam
    unsetenv("EGC_CACHE_DIR");
    setenv("XDG_CACHE_HOME", (dir + "/xdg").c_str(), 1);
    ASSERT_EQ(egc_choice_cache_path("c.bin", buf, sizeof buf), 1);
    EXPECT_EQ(std::string(buf), dir + "/xdg/egcam/c.bin");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", (dir + "/home").c_str(), 1);
    ASSERT_EQ(mkdir((dir + "/home").c_str(), 0755), 0);
    ASSERT_EQ(egc_choice_cache_path("c.bin", buf, sizeof buf), 1);
    EXPECT_EQ(std::string(buf), dir + "/home/.cache/egcam/c.bin");
    // off, no variable, a name with a slash, a buffer too small, a folder that cannot be made
    setenv("EGC_CUDA_CACHE", "0", 1);
    EXPECT_EQ(egc_choice_cache_path("c.bin", buf, sizeof buf), 0);
    EXPECT_STREQ(buf, "");
    unsetenv("EGC_CUDA_CACHE");
    unsetenv("HOME");
    EXPECT_EQ(egc_choice_cache_path("c.bin", buf, sizeof buf), 0);
    setenv("EGC_CACHE_DIR", dir.c_str(), 1);
    EXPECT_EQ(egc_choice_cache_path("a/b", buf, sizeof buf), 0);
    EXPECT_EQ(egc_choice_cache_path("c.bin", buf, 8), 0);
    EXPECT_STREQ(buf, "");
    write({1, 2, 3}); // a file where the folder would be
    setenv("EGC_CACHE_DIR", file.c_str(), 1);
    EXPECT_EQ(egc_choice_cache_path("c.bin", buf, sizeof buf), 0);
}

} // namespace
