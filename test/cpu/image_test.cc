// image_test.cc: image decoding, preprocessing presets and .npy files.
//
// Golden data (test/golden/preprocess, made by tools/gen_preprocess_golden.py with PIL and
// torchvision): the uint8 images the model sees must match exactly, normalised values to
// 1e-6, and decoded pixels of the shared images and of small files of every PNG/JPEG/BMP
// kind must have PIL's CRC-32. Robustness: truncated, bit-flipped, empty, missing and
// mislabelled files give errors, never crashes.
#include <gtest/gtest.h>

#include <png.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

extern "C" {
#include "egcam/image.h"
#include "io/image_internal.h"
}

namespace {

const std::string kShared = std::string(EGC_SHARED_DIR) + "/data/";
const std::string kGolden = std::string(EGC_SOURCE_DIR) + "/test/golden/preprocess/";

std::vector<uint8_t> read_bytes(const std::string &path)
{
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)),
                                std::istreambuf_iterator<char>());
}

void write_bytes(const std::string &path, const std::vector<uint8_t> &b)
{
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char *>(b.data()), (std::streamsize)b.size());
}

std::string temp_path(const std::string &name)
{
    const char *t = getenv("TMPDIR");
    return std::string(t && *t ? t : "/tmp") + "/egc_image_test_" + std::to_string(getpid()) +
           "_" + name;
}

uint32_t crc32_of(const uint8_t *p, size_t n)
{
    static uint32_t table[256];
    static bool init = false;
    if (!init) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        init = true;
    }
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

// RAII holder so that failed assertions do not leak.
struct Img {
    egc_image im{0, 0, nullptr};
    ~Img() { egc_image_free(&im); }
};

// --- the index (one JSON record per line) ---

bool json_str(const std::string &line, const std::string &key, std::string *out)
{
    std::string pat = "\"" + key + "\": \"";
    size_t p = line.find(pat);
    if (p == std::string::npos) return false;
    p += pat.size();
    size_t e = line.find('"', p);
    if (e == std::string::npos) return false;
    *out = line.substr(p, e - p);
    return true;
}

bool json_num(const std::string &line, const std::string &key, double *out)
{
    std::string pat = "\"" + key + "\": ";
    size_t p = line.find(pat);
    if (p == std::string::npos) return false;
    *out = strtod(line.c_str() + p + pat.size(), nullptr);
    return true;
}

std::vector<std::string> index_lines(const std::string &section)
{
    std::ifstream f(kGolden + "index.json");
    std::vector<std::string> out;
    std::string line;
    bool in = false;
    while (std::getline(f, line)) {
        if (line.rfind("\"" + section + "\": [", 0) == 0) {
            in = true;
            continue;
        }
        if (in && line[0] == ']') break;
        if (in) out.push_back(line);
    }
    return out;
}

// uint8 [H, W, 3] .npy as written by numpy ('|u1', C order).
bool read_u8_npy(const std::string &path, int *h, int *w, std::vector<uint8_t> *data)
{
    std::vector<uint8_t> b = read_bytes(path);
    if (b.size() < 10 || memcmp(b.data(), "\x93NUMPY", 6) != 0 || b[6] != 1) return false;
    size_t hl = b[8] | (b[9] << 8);
    if (10 + hl > b.size()) return false;
    std::string hdr(b.begin() + 10, b.begin() + 10 + (long)hl);
    if (hdr.find("'|u1'") == std::string::npos) return false;
    if (hdr.find("'fortran_order': False") == std::string::npos) return false;
    size_t s = hdr.find("'shape': (");
    if (s == std::string::npos) return false;
    int c = 0;
    if (sscanf(hdr.c_str() + s + 10, "%d, %d, %d", h, w, &c) != 3 || c != 3) return false;
    size_t n = (size_t)*h * (size_t)*w * 3;
    if (10 + hl + n > b.size()) return false;
    data->assign(b.begin() + 10 + (long)hl, b.begin() + 10 + (long)hl + (long)n);
    return true;
}

// ------------------------------------------------------------------------------------------
// golden: geometry bit-exact with PIL / torchvision

TEST(ImageGolden, GeometryMatchesPilExactly)
{
    std::vector<std::string> lines = index_lines("golden");
    ASSERT_GE(lines.size(), 20u) << "golden index missing or short: " << kGolden;
    int checked = 0;
    for (const std::string &line : lines) {
        std::string file, image, preset;
        double size = 0;
        ASSERT_TRUE(json_str(line, "file", &file) && json_str(line, "image", &image) &&
                    json_str(line, "preset", &preset) && json_num(line, "size", &size))
            << line;
        int gh = 0, gw = 0;
        std::vector<uint8_t> want;
        ASSERT_TRUE(read_u8_npy(kGolden + file, &gh, &gw, &want)) << file;
        egc_preset p;
        ASSERT_EQ(egc_preset_parse(preset.c_str(), &p), EGC_OK) << preset;
        Img src, out;
        ASSERT_EQ(egc_image_load((kShared + image).c_str(), &src.im), EGC_OK) << egc_last_error();
        ASSERT_EQ(egc_preset_geometry(&src.im, p, (int)size, (int)size, &out.im), EGC_OK)
            << egc_last_error();
        ASSERT_EQ(out.im.w, gw);
        ASSERT_EQ(out.im.h, gh);
        int maxdiff = 0;
        size_t ndiff = 0;
        for (size_t i = 0; i < want.size(); i++) {
            int d = std::abs((int)out.im.rgb[i] - (int)want[i]);
            if (d) ndiff++;
            maxdiff = std::max(maxdiff, d);
        }
        EXPECT_EQ(maxdiff, 0) << file << ": " << ndiff << " of " << want.size()
                              << " values differ";
        checked++;
    }
    EXPECT_EQ(checked, (int)lines.size());
}

TEST(ImageGolden, NormalisationMatchesTorch)
{
    std::vector<std::string> lines = index_lines("float_samples");
    ASSERT_GE(lines.size(), 20u);
    std::vector<std::string> golden = index_lines("golden");
    int nsamples = 0;
    for (size_t li = 0; li < lines.size(); li++) {
        const std::string &line = lines[li];
        std::string file, preset, image;
        ASSERT_TRUE(json_str(line, "file", &file) && json_str(line, "preset", &preset));
        double size = 0;
        for (const std::string &g : golden) {
            std::string gf;
            if (json_str(g, "file", &gf) && gf == file) {
                json_str(g, "image", &image);
                json_num(g, "size", &size);
            }
        }
        ASSERT_FALSE(image.empty()) << file;
        egc_preset p;
        ASSERT_EQ(egc_preset_parse(preset.c_str(), &p), EGC_OK);
        int S = (int)size;
        Img src;
        ASSERT_EQ(egc_image_load((kShared + image).c_str(), &src.im), EGC_OK) << egc_last_error();
        std::vector<float> x((size_t)3 * S * S);
        ASSERT_EQ(egc_preprocess(&src.im, p, S, S, x.data()), EGC_OK) << egc_last_error();
        // samples: [[c, y, x, p, value], ...]
        size_t pos = line.find("\"samples\": [");
        ASSERT_NE(pos, std::string::npos);
        const char *s = line.c_str() + pos + 12;
        for (;;) {
            while (*s == ' ' || *s == ',') s++;
            if (*s != '[') break;
            s++;
            double v[5];
            for (int k = 0; k < 5; k++) {
                char *e = nullptr;
                v[k] = strtod(s, &e);
                ASSERT_NE(e, s) << line;
                s = e;
                while (*s == ',' || *s == ' ') s++;
            }
            ASSERT_EQ(*s, ']');
            s++;
            int c = (int)v[0], y = (int)v[1], xx = (int)v[2];
            float got = x[((size_t)c * S + y) * S + xx];
            EXPECT_NEAR(got, (float)v[4], 1e-6) << file << " c" << c << " y" << y << " x" << xx;
            nsamples++;
        }
        // Round trip of the whole tensor through the inverse.
        Img sized, back;
        ASSERT_EQ(egc_preset_geometry(&src.im, p, S, S, &sized.im), EGC_OK);
        ASSERT_EQ(egc_preset_denormalize(x.data(), S, S, p, &back.im), EGC_OK);
        ASSERT_EQ(memcmp(back.im.rgb, sized.im.rgb, (size_t)S * S * 3), 0) << file;
    }
    EXPECT_GE(nsamples, 200);
}

// ------------------------------------------------------------------------------------------
// decoding: pixels equal PIL's

TEST(ImageDecode, PixelsMatchPil)
{
    std::vector<std::string> lines = index_lines("decode_crc32");
    ASSERT_GE(lines.size(), 250u);
    int local = 0;
    for (const std::string &line : lines) {
        std::string rel, path;
        if (json_str(line, "local", &rel)) {
            path = kGolden + rel;
            local++;
        } else {
            ASSERT_TRUE(json_str(line, "image", &rel)) << line;
            path = kShared + rel;
        }
        double w = 0, h = 0, crc = 0;
        ASSERT_TRUE(json_num(line, "w", &w) && json_num(line, "h", &h) &&
                    json_num(line, "crc32", &crc));
        Img im;
        ASSERT_EQ(egc_image_load(path.c_str(), &im.im), EGC_OK) << egc_last_error();
        ASSERT_EQ(im.im.w, (int)w) << rel;
        ASSERT_EQ(im.im.h, (int)h) << rel;
        EXPECT_EQ(crc32_of(im.im.rgb, (size_t)im.im.w * im.im.h * 3), (uint32_t)crc) << rel;
    }
    EXPECT_GE(local, 20);
}

// An interlaced PNG written with libpng decodes to the same pixels.
TEST(ImageDecode, InterlacedPng)
{
    const int w = 23, h = 17;
    std::vector<uint8_t> rgb((size_t)w * h * 3);
    for (size_t i = 0; i < rgb.size(); i++) rgb[i] = (uint8_t)(i * 37 + (i / 3) * 11);
    std::string path = temp_path("interlaced.png");
    FILE *f = fopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    std::vector<png_bytep> rows(h);
    for (int y = 0; y < h; y++) rows[y] = rgb.data() + (size_t)y * w * 3;
    png_set_rows(png, info, rows.data());
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, nullptr);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    Img im;
    ASSERT_EQ(egc_image_load(path.c_str(), &im.im), EGC_OK) << egc_last_error();
    ASSERT_EQ(im.im.w, w);
    ASSERT_EQ(im.im.h, h);
    EXPECT_EQ(memcmp(im.im.rgb, rgb.data(), rgb.size()), 0);
    remove(path.c_str());
}

// ------------------------------------------------------------------------------------------
// robustness

void expect_error(const std::vector<uint8_t> &b, const std::string &what)
{
    Img im;
    egc_status st = egc_image_decode(b.data(), b.size(), what.c_str(), &im.im);
    EXPECT_NE(st, EGC_OK) << what << " (" << b.size() << " bytes) decoded";
    if (st != EGC_OK) {
        EXPECT_EQ(im.im.rgb, nullptr);
        EXPECT_NE(strstr(egc_last_error(), what.c_str()), nullptr)
            << "message does not name " << what << ": " << egc_last_error();
    }
}

TEST(ImageRobust, TruncatedFilesFail)
{
    const char *files[] = {"imagenet-sample/n01644900_tailed_frog.JPEG",
                           "imagenet-sample/n04008634_projectile.JPEG", "photos/mnist_nine.bmp",
                           "photos/cat.bmp"};
    for (const char *rel : files) {
        std::vector<uint8_t> full = read_bytes(kShared + rel);
        ASSERT_GT(full.size(), 1000u) << rel;
        // Every short prefix, then many prefixes up to where only trailing markers are
        // missing (a JPEG without its final EOI still has all its pixels, as in PIL).
        size_t stop = full.size() - std::min<size_t>(64, full.size() / 20);
        for (size_t n = 0; n < stop; n += (n < 300 ? 1 : 1 + stop / 97)) {
            std::vector<uint8_t> pre(full.begin(), full.begin() + (long)n);
            expect_error(pre, std::string(rel) + "#prefix" + std::to_string(n));
        }
    }
    for (const char *rel : {"decode/rgb8.png", "decode/pal8_trns.png", "decode/progressive.jpg",
                            "decode/cmyk.jpg", "decode/pal4.bmp", "decode/rgb565.bmp"}) {
        std::vector<uint8_t> full = read_bytes(kGolden + rel);
        ASSERT_GT(full.size(), 60u) << rel;
        // PNG: up to the start of IEND (12 bytes); JPEG: before EOI; BMP: all pixel bytes.
        size_t tail = std::string(rel).find(".png") != std::string::npos ? 12 : 2;
        for (size_t n = 0; n + tail < full.size(); n++) {
            std::vector<uint8_t> pre(full.begin(), full.begin() + (long)n);
            expect_error(pre, std::string(rel) + "#prefix" + std::to_string(n));
        }
    }
}

TEST(ImageRobust, RandomCorruptionNeverCrashes)
{
    std::mt19937 rng(42);
    int failures = 0, total = 0;
    for (const char *rel : {"decode/rgb8.png", "decode/la8.png", "decode/progressive.jpg",
                            "decode/q50_420.jpg", "decode/pal8_topdown.bmp",
                            "decode/bgra32_v4.bmp", "decode/pal8_os2.bmp"}) {
        std::vector<uint8_t> full = read_bytes(kGolden + rel);
        ASSERT_FALSE(full.empty()) << rel;
        for (int it = 0; it < 300; it++) {
            std::vector<uint8_t> b = full;
            int flips = 1 + (int)(rng() % 8);
            for (int k = 0; k < flips; k++) b[rng() % b.size()] ^= (uint8_t)(1u << (rng() % 8));
            Img im;
            egc_status st = egc_image_decode(b.data(), b.size(), rel, &im.im);
            total++;
            if (st != EGC_OK) {
                failures++;
                EXPECT_EQ(im.im.rgb, nullptr);
                EXPECT_GT(strlen(egc_last_error()), 0u);
            } else {
                EXPECT_GT(im.im.w, 0);
                EXPECT_GT(im.im.h, 0);
                EXPECT_NE(im.im.rgb, nullptr);
            }
        }
    }
    // Header flips must be caught at least sometimes; otherwise the checks do nothing.
    EXPECT_GT(failures, total / 20);
}

TEST(ImageRobust, EmptyMissingAndMislabelledFiles)
{
    Img im;
    std::string empty = temp_path("empty.png");
    write_bytes(empty, {});
    EXPECT_EQ(egc_image_load(empty.c_str(), &im.im), EGC_E_FORMAT);
    EXPECT_NE(strstr(egc_last_error(), empty.c_str()), nullptr) << egc_last_error();
    remove(empty.c_str());

    std::string missing = temp_path("does_not_exist.jpg");
    EXPECT_EQ(egc_image_load(missing.c_str(), &im.im), EGC_E_IO);
    EXPECT_NE(strstr(egc_last_error(), missing.c_str()), nullptr) << egc_last_error();

    std::string text = temp_path("text.jpg");
    std::string words = "this is not a picture\n";
    write_bytes(text, std::vector<uint8_t>(words.begin(), words.end()));
    EXPECT_EQ(egc_image_load(text.c_str(), &im.im), EGC_E_FORMAT);
    EXPECT_NE(strstr(egc_last_error(), text.c_str()), nullptr) << egc_last_error();
    remove(text.c_str());

    // A directory is not an image either.
    EXPECT_EQ(egc_image_load(EGC_SOURCE_DIR, &im.im), EGC_E_IO);
    egc_tensor t;
    EXPECT_EQ(egc_npy_read(EGC_SOURCE_DIR, &t), EGC_E_IO);

    // Other formats are named.
    const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0};
    EXPECT_EQ(egc_image_decode(gif, sizeof gif, "anim", &im.im), EGC_E_UNSUPPORTED);
    EXPECT_NE(strstr(egc_last_error(), "GIF"), nullptr);
    EXPECT_EQ(im.im.rgb, nullptr);
}

TEST(ImageRobust, UnsupportedBmpKindsAndLimits)
{
    std::vector<uint8_t> bmp = read_bytes(kGolden + "decode/pal8_topdown.bmp");
    ASSERT_GT(bmp.size(), 54u);
    Img im;
    std::vector<uint8_t> rle = bmp;
    rle[30] = 1;  // compression = BI_RLE8
    EXPECT_EQ(egc_image_decode(rle.data(), rle.size(), "rle.bmp", &im.im), EGC_E_UNSUPPORTED);
    EXPECT_NE(strstr(egc_last_error(), "RLE"), nullptr) << egc_last_error();

    std::vector<uint8_t> planes = bmp;
    planes[26] = 3;
    EXPECT_EQ(egc_image_decode(planes.data(), planes.size(), "planes.bmp", &im.im),
              EGC_E_FORMAT);

    // Huge declared size: refused by the limit before any pixel memory, naming the file.
    std::vector<uint8_t> big = bmp;
    int32_t w = 40000;
    memcpy(&big[18], &w, 4);
    EXPECT_EQ(egc_image_decode(big.data(), big.size(), "huge.bmp", &im.im), EGC_E_UNSUPPORTED);
    EXPECT_NE(strstr(egc_last_error(), "huge.bmp"), nullptr);

    // The same for a JPEG (SOF0 dimensions) and a PNG (IHDR, with its CRC fixed).
    std::vector<uint8_t> jpg = read_bytes(kGolden + "decode/q50_420.jpg");
    bool patched = false;
    for (size_t i = 2; i + 9 < jpg.size(); i++) {
        if (jpg[i] == 0xFF && (jpg[i + 1] == 0xC0 || jpg[i + 1] == 0xC2)) {
            jpg[i + 5] = 0xFF, jpg[i + 6] = 0x00;  // height 65280
            jpg[i + 7] = 0xFF, jpg[i + 8] = 0x00;  // width 65280
            patched = true;
            break;
        }
    }
    ASSERT_TRUE(patched);
    EXPECT_EQ(egc_image_decode(jpg.data(), jpg.size(), "huge.jpg", &im.im), EGC_E_UNSUPPORTED);

    std::vector<uint8_t> png = read_bytes(kGolden + "decode/rgb8.png");
    ASSERT_GT(png.size(), 33u);
    const uint8_t dims[8] = {0, 1, 0x86, 0xA0, 0, 1, 0x86, 0xA0};  // 100000 x 100000
    memcpy(&png[16], dims, 8);
    uint32_t crc = crc32_of(&png[12], 17);
    png[29] = (uint8_t)(crc >> 24), png[30] = (uint8_t)(crc >> 16);
    png[31] = (uint8_t)(crc >> 8), png[32] = (uint8_t)crc;
    EXPECT_EQ(egc_image_decode(png.data(), png.size(), "huge.png", &im.im), EGC_E_UNSUPPORTED)
        << egc_last_error();

    // Tighter limits through the internal entry point.
    std::vector<uint8_t> ok = read_bytes(kGolden + "decode/rgb8.png");
    EXPECT_EQ(egc_image_decode_limited(ok.data(), ok.size(), "small", 16, 0, &im.im),
              EGC_E_UNSUPPORTED);
    ASSERT_EQ(egc_image_decode_limited(ok.data(), ok.size(), "small", 64, 64 * 64, &im.im),
              EGC_OK);
    egc_image_free(&im.im);
    EXPECT_EQ(im.im.rgb, nullptr);
    egc_image_free(nullptr);
}

// ------------------------------------------------------------------------------------------
// saving

TEST(ImageSave, PngRoundTripIsExactJpegIsClose)
{
    Img src;
    ASSERT_EQ(egc_image_load((kShared + "photos/cat.bmp").c_str(), &src.im), EGC_OK);
    std::string png = temp_path("cat.png"), jpg = temp_path("cat.JPG");
    ASSERT_EQ(egc_image_save(png.c_str(), &src.im, 0), EGC_OK) << egc_last_error();
    Img a;
    ASSERT_EQ(egc_image_load(png.c_str(), &a.im), EGC_OK) << egc_last_error();
    ASSERT_EQ(a.im.w, src.im.w);
    ASSERT_EQ(a.im.h, src.im.h);
    EXPECT_EQ(memcmp(a.im.rgb, src.im.rgb, (size_t)a.im.w * a.im.h * 3), 0);

    ASSERT_EQ(egc_image_save(jpg.c_str(), &src.im, 95), EGC_OK) << egc_last_error();
    std::vector<uint8_t> head = read_bytes(jpg);
    ASSERT_GT(head.size(), 3u);
    EXPECT_EQ(head[0], 0xFF);
    EXPECT_EQ(head[1], 0xD8);
    Img b;
    ASSERT_EQ(egc_image_load(jpg.c_str(), &b.im), EGC_OK) << egc_last_error();
    ASSERT_EQ(b.im.w, src.im.w);
    double err = 0;
    size_t n = (size_t)b.im.w * b.im.h * 3;
    for (size_t i = 0; i < n; i++) err += std::abs((int)b.im.rgb[i] - (int)src.im.rgb[i]);
    EXPECT_LT(err / n, 3.0);
    EXPECT_GT(err / n, 0.0);  // it is lossy: the JPEG path was taken

    EXPECT_EQ(egc_image_save(jpg.c_str(), &src.im, 0), EGC_E_ARG);
    EXPECT_EQ(egc_image_save(jpg.c_str(), &src.im, 101), EGC_E_ARG);
    egc_image empty{0, 0, nullptr};
    EXPECT_EQ(egc_image_save(png.c_str(), &empty, 90), EGC_E_ARG);
    std::string bad = temp_path("no_such_dir/x.png");
    EXPECT_EQ(egc_image_save(bad.c_str(), &src.im, 90), EGC_E_IO);
    EXPECT_NE(strstr(egc_last_error(), "no_such_dir"), nullptr);
    remove(png.c_str());
    remove(jpg.c_str());
}

// ------------------------------------------------------------------------------------------
// presets: parsing, rules, sizes

TEST(ImagePreset, ParseNamesAndArguments)
{
    egc_preset p;
    ASSERT_EQ(egc_preset_parse("tf", &p), EGC_OK);
    EXPECT_EQ(p, EGC_PRESET_TF);
    ASSERT_EQ(egc_preset_parse("torchvision", &p), EGC_OK);
    EXPECT_EQ(p, EGC_PRESET_TORCHVISION);
    ASSERT_EQ(egc_preset_parse("cifar", &p), EGC_OK);
    EXPECT_EQ(p, EGC_PRESET_CIFAR);
    EXPECT_EQ(egc_preset_parse("keras", &p), EGC_E_ARG);
    EXPECT_NE(strstr(egc_last_error(), "keras"), nullptr);
    EXPECT_STREQ(egc_preset_name(EGC_PRESET_TORCHVISION), "torchvision");
    EXPECT_STREQ(egc_preset_name(EGC_PRESET_TF), "tf");

    Img src, out;
    ASSERT_EQ(egc_image_load((kShared + "photos/cat.bmp").c_str(), &src.im), EGC_OK);
    EXPECT_EQ(egc_preset_geometry(&src.im, EGC_PRESET_TORCHVISION, 224, 160, &out.im), EGC_E_ARG);
    EXPECT_EQ(egc_preset_geometry(&src.im, EGC_PRESET_TF, 0, 224, &out.im), EGC_E_ARG);
    egc_image empty{0, 0, nullptr};
    EXPECT_EQ(egc_preset_geometry(&empty, EGC_PRESET_TF, 8, 8, &out.im), EGC_E_ARG);
    EXPECT_EQ(out.im.rgb, nullptr);
    // Non-square tf/cifar sizes are fine.
    ASSERT_EQ(egc_preset_geometry(&src.im, EGC_PRESET_TF, 96, 64, &out.im), EGC_OK);
    EXPECT_EQ(out.im.w, 96);
    EXPECT_EQ(out.im.h, 64);
}

// Presets of your own: "BASE:mean=..:std=..:bgr" keeps BASE's geometry and normalises
// x = (p/255 - mean) / std in float32 (torchvision's ToTensor and Normalize), the channels
// swapped with bgr; the same text gives the same preset, the canonical name reads back to it;
// denormalising gives the pixels back; Keras' caffe mode (BGR, mean subtracted from 0..255
// pixels) is "bgr:mean=M/255:std=1/255".
TEST(ImagePreset, PresetsOfYourOwn)
{
    egc_preset a, b, c, d;
    ASSERT_EQ(egc_preset_parse("torchvision:mean=0.5:std=0.5:bgr", &a), EGC_OK) << egc_last_error();
    EXPECT_EQ(egc_preset_base(a), EGC_PRESET_TORCHVISION);
    EXPECT_STREQ(egc_preset_name(a), "torchvision:mean=0.5,0.5,0.5:std=0.5,0.5,0.5:bgr");
    ASSERT_EQ(egc_preset_parse(egc_preset_name(a), &b), EGC_OK);
    EXPECT_EQ(a, b);
    ASSERT_EQ(egc_preset_parse("torchvision:bgr:std=1/2,0.5,0.5:mean=0.5", &b), EGC_OK);
    EXPECT_EQ(a, b);
    ASSERT_EQ(egc_preset_parse("torchvision:mean=0.5:std=0.5", &c), EGC_OK);
    EXPECT_NE(a, c);
    ASSERT_EQ(egc_preset_parse("resize", &d), EGC_OK);
    EXPECT_EQ(d, EGC_PRESET_CIFAR);
    EXPECT_EQ(egc_preset_base(EGC_PRESET_TF), EGC_PRESET_TF);
    EXPECT_EQ(egc_preset_base((egc_preset)3), -1); // no preset (an enumerator's range)
    EXPECT_STREQ(egc_preset_name((egc_preset)3), "unknown");
    EXPECT_EQ(egc_preset_base((egc_preset)(EGC_PRESET_CUSTOM_END - 1)), -1); // not registered

    Img src, g0, g1;
    ASSERT_EQ(egc_image_load((kShared + "photos/cat.bmp").c_str(), &src.im), EGC_OK);
    ASSERT_EQ(egc_preset_geometry(&src.im, EGC_PRESET_TORCHVISION, 64, 64, &g0.im), EGC_OK);
    ASSERT_EQ(egc_preset_geometry(&src.im, a, 64, 64, &g1.im), EGC_OK);
    ASSERT_EQ(memcmp(g0.im.rgb, g1.im.rgb, (size_t)64 * 64 * 3), 0);
    float box0[4], box1[4];
    ASSERT_EQ(egc_preset_crop_box(EGC_PRESET_TORCHVISION, src.im.w, src.im.h, 64, 64, box0), EGC_OK);
    ASSERT_EQ(egc_preset_crop_box(a, src.im.w, src.im.h, 64, 64, box1), EGC_OK);
    EXPECT_EQ(memcmp(box0, box1, sizeof box0), 0);
    const size_t n = 64 * 64;
    std::vector<float> x(3 * n);
    ASSERT_EQ(egc_preprocess(&src.im, a, 64, 64, x.data()), EGC_OK);
    size_t bad = 0;
    for (size_t i = 0; i < n; i++)
        for (int ch = 0; ch < 3; ch++) {
            volatile float v = (float)g0.im.rgb[3 * i + (2 - ch)] / 255.0f; // BGR
            volatile float want = (v - 0.5f) / 0.5f;
            if (x[ch * n + i] != want) bad++;
        }
    EXPECT_EQ(bad, 0u);
    Img back;
    ASSERT_EQ(egc_preset_denormalize(x.data(), 64, 64, a, &back.im), EGC_OK);
    EXPECT_EQ(memcmp(back.im.rgb, g0.im.rgb, 3 * n), 0);

    egc_preset caffe;
    ASSERT_EQ(egc_preset_parse("cifar:bgr:mean=103.939/255,116.779/255,123.68/255:std=1/255",
                               &caffe), EGC_OK) << egc_last_error();
    ASSERT_EQ(egc_preprocess(&src.im, caffe, 64, 64, x.data()), EGC_OK);
    Img g2;
    ASSERT_EQ(egc_preset_geometry(&src.im, EGC_PRESET_CIFAR, 64, 64, &g2.im), EGC_OK);
    const double mean_bgr[3] = {103.939, 116.779, 123.68};
    double worst = 0;
    for (size_t i = 0; i < n; i++)
        for (int ch = 0; ch < 3; ch++)
            worst = std::max(worst, std::fabs(x[ch * n + i] -
                                              (g2.im.rgb[3 * i + (2 - ch)] - mean_bgr[ch])));
    EXPECT_LT(worst, 1e-4);

    struct Bad {
        const char *text, *says;
    } bads[] = {{"torchvision:foo", "'foo' is not mean=.., std=.. or bgr"},
                {"torchvision:std=0", "std must not be 0"},
                {"torchvision:std=1/0", "std must be one or three finite numbers"},
                {"torchvision:mean=1,2", "mean must be one or three"},
                {"torchvision:mean=1,2,3,4", "mean must be one or three"},
                {"torchvision:mean=0.5:mean=0.5", "mean is given twice"},
                {"torchvision:bgr:bgr", "bgr is given twice"},
                {"torchvision:mean=nan", "mean must be one or three"},
                {"keras:mean=0", "preset 'keras' is unknown"},
                {"torchvision:", "'' is not mean=.., std=.. or bgr"}};
    for (const Bad &k : bads) {
        EXPECT_EQ(egc_preset_parse(k.text, &d), EGC_E_ARG) << k.text;
        EXPECT_NE(strstr(egc_last_error(), k.says), nullptr) << k.text << ": " << egc_last_error();
    }
}

TEST(ImagePreset, ResizeProperties)
{
    // Constant images stay constant at every scale; identity size is a copy; a 1-pixel image
    // is spread; very elongated images resize without huge buffers (torchvision window).
    Img c;
    c.im.w = 13, c.im.h = 7;
    c.im.rgb = (uint8_t *)malloc(13 * 7 * 3);
    for (int i = 0; i < 13 * 7; i++) {
        c.im.rgb[3 * i] = 10;
        c.im.rgb[3 * i + 1] = 200;
        c.im.rgb[3 * i + 2] = 255;
    }
    int sizes[][2] = {{1, 1}, {5, 3}, {13, 7}, {40, 29}, {300, 2}};
    for (auto &s : sizes) {
        Img o;
        ASSERT_EQ(egc_image_resize_bilinear(&c.im, s[0], s[1], &o.im), EGC_OK);
        for (int i = 0; i < s[0] * s[1]; i++) {
            ASSERT_EQ(o.im.rgb[3 * i], 10);
            ASSERT_EQ(o.im.rgb[3 * i + 1], 200);
            ASSERT_EQ(o.im.rgb[3 * i + 2], 255);
        }
    }
    Img ramp;
    ramp.im.w = 9, ramp.im.h = 4;
    ramp.im.rgb = (uint8_t *)malloc(9 * 4 * 3);
    for (int i = 0; i < 9 * 4 * 3; i++) ramp.im.rgb[i] = (uint8_t)(i * 7);
    Img same;
    ASSERT_EQ(egc_image_resize_bilinear(&ramp.im, 9, 4, &same.im), EGC_OK);
    EXPECT_EQ(memcmp(same.im.rgb, ramp.im.rgb, 9 * 4 * 3), 0);

    Img thin;
    thin.im.w = 1, thin.im.h = 3000;
    thin.im.rgb = (uint8_t *)malloc(3000 * 3);
    for (int i = 0; i < 3000 * 3; i++) thin.im.rgb[i] = (uint8_t)(i / 3);
    Img o;
    ASSERT_EQ(egc_preset_geometry(&thin.im, EGC_PRESET_TORCHVISION, 224, 224, &o.im), EGC_OK)
        << egc_last_error();
    EXPECT_EQ(o.im.w, 224);
    EXPECT_EQ(o.im.h, 224);
}

TEST(ImagePreset, NormaliseFormulas)
{
    Img px;
    px.im.w = 2, px.im.h = 1;
    px.im.rgb = (uint8_t *)malloc(6);
    const uint8_t v[6] = {0, 128, 255, 64, 1, 254};
    memcpy(px.im.rgb, v, 6);
    float tf[6], tv[6];
    egc_preset_normalize(&px.im, EGC_PRESET_TF, tf);
    egc_preset_normalize(&px.im, EGC_PRESET_TORCHVISION, tv);
    // CHW: plane c holds channel c of both pixels.
    EXPECT_FLOAT_EQ(tf[0], -1.0f);               // R of pixel 0 = 0
    EXPECT_FLOAT_EQ(tf[1], (64 - 128) / 128.0f); // R of pixel 1
    EXPECT_FLOAT_EQ(tf[2], 0.0f);                // G of pixel 0 = 128
    EXPECT_NEAR(tv[4], (255 / 255.0 - 0.406) / 0.225, 1e-5);
    EXPECT_NEAR(tv[3], (1 / 255.0 - 0.456) / 0.224, 1e-5);
    Img back;
    ASSERT_EQ(egc_preset_denormalize(tv, 2, 1, EGC_PRESET_TORCHVISION, &back.im), EGC_OK);
    EXPECT_EQ(memcmp(back.im.rgb, v, 6), 0);
    float wild[6] = {-50.f, 50.f, NAN, 0.f, 1e30f, -1e30f};
    Img cl;
    ASSERT_EQ(egc_preset_denormalize(wild, 2, 1, EGC_PRESET_TF, &cl.im), EGC_OK);
    EXPECT_EQ(cl.im.rgb[0], 0);    // R0 = -50 -> 0
    EXPECT_EQ(cl.im.rgb[3], 255);  // R1 = 50 -> 255
    EXPECT_EQ(cl.im.rgb[1], 0);    // G0 = NaN -> 0
    EXPECT_EQ(cl.im.rgb[4], 128);  // G1 = 0 -> 128
}

// ------------------------------------------------------------------------------------------
// .npy

std::vector<uint8_t> npy_bytes(int major, const std::string &dict, size_t data_bytes,
                               uint8_t fill = 0)
{
    std::vector<uint8_t> b = {0x93, 'N', 'U', 'M', 'P', 'Y', (uint8_t)major, 0};
    std::string h = dict;
    size_t pre = major == 1 ? 10 : 12;
    while ((pre + h.size() + 1) % 64) h += ' ';
    h += '\n';
    if (major == 1) {
        b.push_back((uint8_t)(h.size() & 0xFF));
        b.push_back((uint8_t)(h.size() >> 8));
    } else {
        for (int i = 0; i < 4; i++) b.push_back((uint8_t)(h.size() >> (8 * i)));
    }
    b.insert(b.end(), h.begin(), h.end());
    b.insert(b.end(), data_bytes, fill);
    return b;
}

TEST(ImageNpy, RoundTripAndVersions)
{
    int64_t dims[4] = {2, 3, 4, 5};
    egc_shape s = egc_shape_make(4, dims);
    egc_tensor t;
    ASSERT_EQ(egc_tensor_alloc(&t, &s), EGC_OK);
    for (int i = 0; i < 120; i++) t.data[i] = (float)i * 0.25f - 7.0f;
    std::string path = temp_path("t.npy");
    ASSERT_EQ(egc_npy_write(path.c_str(), &t), EGC_OK) << egc_last_error();
    std::vector<uint8_t> raw = read_bytes(path);
    ASSERT_EQ(raw.size() % 16, 0u);  // 64-aligned header + 480 bytes
    EXPECT_EQ((10 + (raw[8] | (raw[9] << 8))) % 64, 0);
    egc_tensor r;
    ASSERT_EQ(egc_npy_read(path.c_str(), &r), EGC_OK) << egc_last_error();
    EXPECT_TRUE(egc_shape_equal(&r.shape, &s));
    EXPECT_EQ(memcmp(r.data, t.data, 120 * sizeof(float)), 0);
    egc_tensor_free(&r);

    // Scalar and 1-D shapes.
    egc_shape s0 = egc_shape_make(0, nullptr);
    egc_tensor t0;
    ASSERT_EQ(egc_tensor_alloc(&t0, &s0), EGC_OK);
    t0.data[0] = 3.5f;
    ASSERT_EQ(egc_npy_write(path.c_str(), &t0), EGC_OK);
    ASSERT_EQ(egc_npy_read(path.c_str(), &r), EGC_OK) << egc_last_error();
    EXPECT_EQ(r.shape.ndim, 0);
    EXPECT_EQ(r.data[0], 3.5f);
    egc_tensor_free(&r);
    egc_tensor_free(&t0);

    // Versions 2 and 3, float64, a 1-D shape.
    std::vector<uint8_t> v2 =
        npy_bytes(2, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 24);
    double d3[3] = {1.5, -2.25, 1e-3};
    memcpy(&v2[v2.size() - 24], d3, 24);
    write_bytes(path, v2);
    ASSERT_EQ(egc_npy_read(path.c_str(), &r), EGC_OK) << egc_last_error();
    ASSERT_EQ(r.shape.ndim, 1);
    EXPECT_EQ(r.shape.d[0], 3);
    EXPECT_EQ(r.data[1], -2.25f);
    EXPECT_EQ(r.data[2], (float)1e-3);
    egc_tensor_free(&r);
    write_bytes(path, npy_bytes(3, "{\"descr\": \"<f4\", \"fortran_order\": False, "
                                   "\"shape\": (2, 2)}",
                                16));
    ASSERT_EQ(egc_npy_read(path.c_str(), &r), EGC_OK) << egc_last_error();
    EXPECT_EQ(r.shape.ndim, 2);
    egc_tensor_free(&r);

    // Cross-check against numpy when it is there: numpy reads what egcam writes.
    ASSERT_EQ(egc_npy_write(path.c_str(), &t), EGC_OK);
    std::string cmd = "/usr/bin/python3 -c \"import numpy as np, sys; a = np.load('" + path +
                      "'); sys.exit(0 if a.shape == (2, 3, 4, 5) and a.dtype == np.float32 and "
                      "float(a[1, 2, 3, 4]) == 119 * 0.25 - 7 else 3)\" 2>/dev/null";
    int rc = system(cmd.c_str());
    if (rc != -1 && WEXITSTATUS(rc) != 127 && WEXITSTATUS(rc) != 1) EXPECT_EQ(WEXITSTATUS(rc), 0);
    egc_tensor_free(&t);
    remove(path.c_str());
}

TEST(ImageNpy, BadHeadersAreNamedErrors)
{
    std::string path = temp_path("bad.npy");
    struct Case {
        std::vector<uint8_t> bytes;
        egc_status want;
        const char *word;
    } cases[] = {
        {npy_bytes(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", 16),
         EGC_E_UNSUPPORTED, "Fortran"},
        {npy_bytes(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", 16),
         EGC_E_UNSUPPORTED, "<i4"},
        {npy_bytes(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", 16),
         EGC_E_UNSUPPORTED, ">f4"},
        {npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 16),
         EGC_E_FORMAT, "truncated"},
        {npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, }", 16), EGC_E_FORMAT, "shape"},
        {npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 16),
         EGC_E_FORMAT, "shape"},
        {npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, "
                      "'shape': (1,1,1,1,1,1,1,1,1), }",
                   4),
         EGC_E_UNSUPPORTED, "dimensions"},
        {npy_bytes(1, "{'descr': '<f4', 'fortran_order': False, "
                      "'shape': (99999999999, 99999999999), }",
                   4),
         EGC_E_FORMAT, ""},
        {npy_bytes(1, "['descr']", 4), EGC_E_FORMAT, "dictionary"},
        {npy_bytes(4, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", 4),
         EGC_E_UNSUPPORTED, "version"},
        {{0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0xFF, 0x7F, '{'}, EGC_E_FORMAT, "truncated"},
        {{'n', 'o', 't', ' ', 'n', 'p', 'y', '!', '!', '!', '!'}, EGC_E_FORMAT, "magic"},
        {{}, EGC_E_FORMAT, "magic"},
    };
    for (const Case &c : cases) {
        write_bytes(path, c.bytes);
        egc_tensor r;
        EXPECT_EQ(egc_npy_read(path.c_str(), &r), c.want) << egc_last_error();
        EXPECT_EQ(r.data, nullptr);
        EXPECT_NE(strstr(egc_last_error(), path.c_str()), nullptr) << egc_last_error();
        EXPECT_NE(strstr(egc_last_error(), c.word), nullptr) << egc_last_error();
    }
    remove(path.c_str());
    egc_tensor r;
    EXPECT_EQ(egc_npy_read(path.c_str(), &r), EGC_E_IO);
}

}  // namespace
