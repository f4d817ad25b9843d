// overlay_test.cc: colormaps, overlay blending and placement, and the preset crop box that
// puts a map back onto the full-size photo.
//
// Reference colours are matplotlib's published tables (matplotlib/_cm_listed.py and the
// _jet_data segments) times 255, rounded. Placement is checked against a plain double
// implementation of half-pixel-centre bilinear resizing, and the crop box against where
// egc_preset_geometry actually moves a marker rectangle.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

extern "C" {
#include "egcam/image.h"
}

namespace {

struct Image {
    egc_image im{0, 0, nullptr};
    ~Image() { egc_image_free(&im); }
};

std::vector<uint8_t> solid(int w, int h, uint8_t r, uint8_t g, uint8_t b)
{
    std::vector<uint8_t> p((size_t)w * h * 3);
    for (size_t i = 0; i < (size_t)w * h; i++) {
        p[3 * i] = r;
        p[3 * i + 1] = g;
        p[3 * i + 2] = b;
    }
    return p;
}

void expect_rgb(egc_colormap c, float t, int r, int g, int b)
{
    uint8_t rgb[3];
    egc_colormap_rgb(c, t, rgb);
    EXPECT_EQ(rgb[0], r) << egc_colormap_name(c) << "(" << t << ")";
    EXPECT_EQ(rgb[1], g) << egc_colormap_name(c) << "(" << t << ")";
    EXPECT_EQ(rgb[2], b) << egc_colormap_name(c) << "(" << t << ")";
}

int round255(double v) { return (int)std::floor(v * 255.0 + 0.5); }

// Bilinear sample of map (mw x mh) at picture pixel (x, y) of a box {x0, y0, bw, bh}: half-
// pixel centres, clamped at the edges.
double ref_sample(const std::vector<float> &map, int mw, int mh, const double box[4], int x,
                  int y)
{
    auto coord = [](double c, double o, double len, int m) {
        double u = (c + 0.5 - o) * m / len - 0.5;
        return std::min(std::max(u, 0.0), (double)(m - 1));
    };
    double u = coord(x, box[0], box[2], mw), v = coord(y, box[1], box[3], mh);
    int u0 = (int)std::floor(u), v0 = (int)std::floor(v);
    int u1 = std::min(u0 + 1, mw - 1), v1 = std::min(v0 + 1, mh - 1);
    double fu = u - u0, fv = v - v0;
    auto at = [&](int a, int b) { return (double)map[(size_t)b * mw + a]; };
    double top = at(u0, v0) + fu * (at(u1, v0) - at(u0, v0));
    double bot = at(u0, v1) + fu * (at(u1, v1) - at(u0, v1));
    return top + fv * (bot - top);
}

// True when rgb is the colour of t or of a value a hair away (float vs double rounding can
// move a value across a table boundary).
bool colour_of(egc_colormap c, double t, const uint8_t *rgb)
{
    for (double d : {0.0, -1e-5, 1e-5}) {
        uint8_t e[3];
        egc_colormap_rgb(c, (float)(t + d), e);
        if (!memcmp(e, rgb, 3)) return true;
    }
    return false;
}

}  // namespace

TEST(OverlayColormap, EndpointsMatchPublishedTables)
{
    // turbo: first and last entries of matplotlib's _turbo_data.
    expect_rgb(EGC_CMAP_TURBO, 0.0f, round255(0.18995), round255(0.07176), round255(0.23217));
    expect_rgb(EGC_CMAP_TURBO, 1.0f, round255(0.47960), round255(0.01583), round255(0.01055));
    // viridis: 0.5 selects entry floor(0.5 * 256) = 128 of _viridis_data.
    expect_rgb(EGC_CMAP_VIRIDIS, 0.5f, round255(0.127568), round255(0.566949),
               round255(0.550556));
    expect_rgb(EGC_CMAP_VIRIDIS, 0.0f, round255(0.267004), round255(0.004874),
               round255(0.329415));
    expect_rgb(EGC_CMAP_VIRIDIS, 1.0f, round255(0.993248), round255(0.906157),
               round255(0.143936));
    // jet: _jet_data at 0 is (0, 0, 0.5), at 1 (0.5, 0, 0); at 0.5 (entry 128 = 128/255)
    // red = (x - 0.35) / 0.31, green 1, blue = 1 - (x - 0.34) / 0.31.
    expect_rgb(EGC_CMAP_JET, 0.0f, 0, 0, round255(0.5));
    expect_rgb(EGC_CMAP_JET, 1.0f, round255(0.5), 0, 0);
    double x = 128.0 / 255.0;
    uint8_t mid[3];
    egc_colormap_rgb(EGC_CMAP_JET, 0.5f, mid);
    EXPECT_NEAR(mid[0], (x - 0.35) / 0.31 * 255.0, 1.0);
    EXPECT_EQ(mid[1], 255);
    EXPECT_NEAR(mid[2], (1.0 - (x - 0.34) / 0.31) * 255.0, 1.0);
}

TEST(OverlayColormap, ClampsAndParses)
{
    for (egc_colormap c : {EGC_CMAP_TURBO, EGC_CMAP_JET, EGC_CMAP_VIRIDIS}) {
        uint8_t a[3], b[3];
        egc_colormap_rgb(c, -3.0f, a);
        egc_colormap_rgb(c, 0.0f, b);
        EXPECT_EQ(0, memcmp(a, b, 3));
        egc_colormap_rgb(c, NAN, a);
        EXPECT_EQ(0, memcmp(a, b, 3));
        egc_colormap_rgb(c, 7.0f, a);
        egc_colormap_rgb(c, 1.0f, b);
        EXPECT_EQ(0, memcmp(a, b, 3));
        egc_colormap back;
        ASSERT_EQ(EGC_OK, egc_colormap_parse(egc_colormap_name(c), &back));
        EXPECT_EQ(c, back);
    }
    // Viridis is perceptually ordered: its luminance rises from 0 to 1.
    double prev = -1;
    for (int i = 0; i <= 20; i++) {
        uint8_t c[3];
        egc_colormap_rgb(EGC_CMAP_VIRIDIS, i / 20.0f, c);
        double lum = 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
        EXPECT_GT(lum, prev) << i;
        prev = lum;
    }
    egc_colormap c;
    EXPECT_EQ(EGC_E_ARG, egc_colormap_parse("inferno", &c));
    EXPECT_NE(nullptr, strstr(egc_last_error(), "inferno"));
    EXPECT_EQ(EGC_E_ARG, egc_colormap_parse(nullptr, &c));
}

TEST(OverlayBlend, ConstantMapFollowsTheFormula)
{
    const int w = 5, h = 3;
    std::vector<uint8_t> px = solid(w, h, 200, 40, 90);
    egc_image img{w, h, px.data()};
    for (float alpha : {0.0f, 0.25f, 0.5f, 0.8f, 1.0f})
        for (float v : {0.0f, 0.3f, 0.77f, 1.0f}) {
            std::vector<float> map(7 * 2, v);  // a different size: resized, still constant
            Image out;
            ASSERT_EQ(EGC_OK, egc_overlay(&img, map.data(), 7, 2, EGC_CMAP_TURBO, alpha, &out.im));
            ASSERT_EQ(out.im.w, w);
            ASSERT_EQ(out.im.h, h);
            uint8_t c[3];
            egc_colormap_rgb(EGC_CMAP_TURBO, v, c);
            for (int i = 0; i < w * h; i++)
                for (int k = 0; k < 3; k++) {
                    double want = (1.0 - alpha) * px[3 * i + k] + alpha * c[k];
                    EXPECT_NEAR(out.im.rgb[3 * i + k], want, 0.5 + 1e-4)
                        << "alpha " << alpha << " v " << v;
                }
            if (alpha == 0.0f) EXPECT_EQ(0, memcmp(out.im.rgb, px.data(), px.size()));
        }
}

TEST(OverlayPlacement, AsymmetricMapLandsWhereItShould)
{
    // A 4x2 map, hot only at its top-right cell, over a 40x20 picture at full opacity.
    const int mw = 4, mh = 2, w = 40, h = 20;
    std::vector<float> map(mw * mh, 0.0f);
    map[3] = 1.0f;
    map[4] = 0.25f;  // bottom-left cell, a little warm
    std::vector<uint8_t> px = solid(w, h, 10, 20, 30);
    egc_image img{w, h, px.data()};
    Image out;
    ASSERT_EQ(EGC_OK, egc_overlay(&img, map.data(), mw, mh, EGC_CMAP_VIRIDIS, 1.0f, &out.im));
    const double box[4] = {0, 0, (double)w, (double)h};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double t = ref_sample(map, mw, mh, box, x, y);
            ASSERT_TRUE(colour_of(EGC_CMAP_VIRIDIS, t, out.im.rgb + 3 * ((size_t)y * w + x)))
                << "pixel " << x << "," << y << " value " << t;
        }
    // The top-right corner is the hottest colour, the top-left and bottom-right the coldest.
    uint8_t hot[3], cold[3];
    egc_colormap_rgb(EGC_CMAP_VIRIDIS, 1.0f, hot);
    egc_colormap_rgb(EGC_CMAP_VIRIDIS, 0.0f, cold);
    EXPECT_EQ(0, memcmp(out.im.rgb + 3 * (w - 1), hot, 3));
    EXPECT_EQ(0, memcmp(out.im.rgb, cold, 3));
    EXPECT_EQ(0, memcmp(out.im.rgb + 3 * ((size_t)(h - 1) * w + w - 1), cold, 3));
}

TEST(OverlayPlacement, BoxPlacesTheMapAndDimsTheRest)
{
    const int w = 60, h = 40, mw = 3, mh = 2;
    std::vector<float> map = {0.0f, 0.5f, 1.0f, 0.2f, 0.9f, 0.1f};
    std::vector<uint8_t> px = solid(w, h, 101, 150, 255);
    egc_image img{w, h, px.data()};
    const float box[4] = {10.0f, 5.5f, 40.0f, 30.0f};
    const double dbox[4] = {10.0, 5.5, 40.0, 30.0};
    Image out;
    ASSERT_EQ(EGC_OK,
              egc_overlay_box(&img, map.data(), mw, mh, box, EGC_CMAP_TURBO, 1.0f, &out.im));
    int inside = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = out.im.rgb + 3 * ((size_t)y * w + x);
            bool in = x + 0.5 >= 10 && x + 0.5 < 50 && y + 0.5 >= 5.5 && y + 0.5 < 35.5;
            if (in) {
                inside++;
                ASSERT_TRUE(colour_of(EGC_CMAP_TURBO, ref_sample(map, mw, mh, dbox, x, y), p))
                    << x << "," << y;
            } else {
                ASSERT_EQ(p[0], (101 + 1) / 2) << x << "," << y;
                ASSERT_EQ(p[1], 150 / 2) << x << "," << y;
                ASSERT_EQ(p[2], (255 + 1) / 2) << x << "," << y;
            }
        }
    EXPECT_EQ(inside, 40 * 30);
}

TEST(OverlayPlacement, BadArgumentsAreErrors)
{
    std::vector<uint8_t> px = solid(4, 4, 0, 0, 0);
    egc_image img{4, 4, px.data()};
    std::vector<float> map(4, 0.5f);
    Image out;
    EXPECT_EQ(EGC_E_ARG, egc_overlay(&img, nullptr, 2, 2, EGC_CMAP_TURBO, 0.5f, &out.im));
    EXPECT_EQ(EGC_E_ARG, egc_overlay(&img, map.data(), 0, 2, EGC_CMAP_TURBO, 0.5f, &out.im));
    EXPECT_EQ(EGC_E_ARG, egc_overlay(&img, map.data(), 2, 2, EGC_CMAP_TURBO, 1.5f, &out.im));
    EXPECT_EQ(EGC_E_ARG, egc_overlay(&img, map.data(), 2, 2, EGC_CMAP_TURBO, NAN, &out.im));
    EXPECT_EQ(EGC_E_ARG, egc_overlay(&img, map.data(), 2, 2, (egc_colormap)9, 0.5f, &out.im));
    egc_image empty{0, 0, nullptr};
    EXPECT_EQ(EGC_E_ARG, egc_overlay(&empty, map.data(), 2, 2, EGC_CMAP_TURBO, 0.5f, &out.im));
    const float flat[4] = {0, 0, 0, 3};
    EXPECT_EQ(EGC_E_ARG,
              egc_overlay_box(&img, map.data(), 2, 2, flat, EGC_CMAP_TURBO, 0.5f, &out.im));
    EXPECT_EQ(nullptr, out.im.rgb);
}

// Where preset p moves a white rectangle [sx0,sx1) x [sy0,sy1) of a black iw x ih image:
// the crop box must predict the rectangle's edges in the model's w x h picture to within
// a pixel (the bilinear filter blurs edges; a half-grey threshold finds them).
void check_box_against_geometry(egc_preset p, int iw, int ih, int w, int h, int sx0, int sx1,
                                int sy0, int sy1)
{
    SCOPED_TRACE(std::string(egc_preset_name(p)) + " " + std::to_string(iw) + "x" +
                 std::to_string(ih));
    std::vector<uint8_t> px = solid(iw, ih, 0, 0, 0);
    for (int y = sy0; y < sy1; y++)
        for (int x = sx0; x < sx1; x++)
            for (int k = 0; k < 3; k++) px[3 * ((size_t)y * iw + x) + k] = 255;
    egc_image img{iw, ih, px.data()};
    Image sized;
    ASSERT_EQ(EGC_OK, egc_preset_geometry(&img, p, w, h, &sized.im));
    float box[4];
    ASSERT_EQ(EGC_OK, egc_preset_crop_box(p, iw, ih, w, h, box));
    // Measured edges: the first and one-past-last columns/rows above half grey.
    int u0 = w, u1 = 0, v0 = h, v1 = 0;
    for (int v = 0; v < h; v++)
        for (int u = 0; u < w; u++)
            if (sized.im.rgb[3 * ((size_t)v * w + u)] >= 128) {
                u0 = std::min(u0, u);
                u1 = std::max(u1, u + 1);
                v0 = std::min(v0, v);
                v1 = std::max(v1, v + 1);
            }
    ASSERT_LT(u0, u1) << "the marker is not in the crop";
    EXPECT_NEAR(u0, (sx0 - box[0]) * w / box[2], 1.0);
    EXPECT_NEAR(u1, (sx1 - box[0]) * w / box[2], 1.0);
    EXPECT_NEAR(v0, (sy0 - box[1]) * h / box[3], 1.0);
    EXPECT_NEAR(v1, (sy1 - box[1]) * h / box[3], 1.0);
    // The box lies inside the image.
    EXPECT_GE(box[0], 0.0f);
    EXPECT_GE(box[1], 0.0f);
    EXPECT_LE(box[0] + box[2], iw + 1e-3f);
    EXPECT_LE(box[1] + box[3], ih + 1e-3f);
}

TEST(OverlayCropBox, EveryPresetAgreesWithItsGeometry)
{
    // tf: a central crop of 87.5% of each side.
    check_box_against_geometry(EGC_PRESET_TF, 400, 300, 224, 224, 250, 330, 40, 120);
    check_box_against_geometry(EGC_PRESET_TF, 128, 256, 128, 128, 30, 60, 200, 230);
    // torchvision: short side to 256, centre crop 224; landscape, portrait and square.
    check_box_against_geometry(EGC_PRESET_TORCHVISION, 640, 427, 224, 224, 300, 420, 100, 180);
    check_box_against_geometry(EGC_PRESET_TORCHVISION, 300, 500, 224, 224, 40, 120, 300, 360);
    check_box_against_geometry(EGC_PRESET_TORCHVISION, 256, 256, 224, 224, 100, 200, 20, 60);
    // cifar: the whole image.
    check_box_against_geometry(EGC_PRESET_CIFAR, 96, 64, 32, 32, 10, 40, 30, 60);
    check_box_against_geometry(EGC_PRESET_CIFAR, 32, 32, 32, 32, 3, 9, 20, 31);
}

TEST(OverlayCropBox, ShapesOfTheBoxes)
{
    float b[4];
    // tf keeps the centre: equal borders, 87.5% of each side (to a pixel of truncation).
    ASSERT_EQ(EGC_OK, egc_preset_crop_box(EGC_PRESET_TF, 1000, 600, 224, 224, b));
    EXPECT_NEAR(b[2], 875, 1.0);
    EXPECT_NEAR(b[3], 525, 1.0);
    EXPECT_FLOAT_EQ(b[0] * 2 + b[2], 1000);
    EXPECT_FLOAT_EQ(b[1] * 2 + b[3], 600);
    // torchvision: a square of 224/256 of the short side, centred along the long side.
    ASSERT_EQ(EGC_OK, egc_preset_crop_box(EGC_PRESET_TORCHVISION, 1000, 600, 224, 224, b));
    EXPECT_NEAR(b[3], 600.0 * 224 / 256, 0.01);
    EXPECT_NEAR(b[2], b[3], 2.0);
    EXPECT_NEAR(b[0] + b[2] / 2, 500, 2.0);
    EXPECT_NEAR(b[1] + b[3] / 2, 300, 1.0);
    ASSERT_EQ(EGC_OK, egc_preset_crop_box(EGC_PRESET_CIFAR, 50, 70, 32, 32, b));
    EXPECT_EQ(b[0], 0.0f);
    EXPECT_EQ(b[1], 0.0f);
    EXPECT_EQ(b[2], 50.0f);
    EXPECT_EQ(b[3], 70.0f);
    EXPECT_EQ(EGC_E_ARG, egc_preset_crop_box(EGC_PRESET_TORCHVISION, 100, 100, 224, 200, b));
    EXPECT_EQ(EGC_E_ARG, egc_preset_crop_box(EGC_PRESET_TF, 0, 100, 224, 224, b));
    EXPECT_EQ(EGC_E_ARG, egc_preset_crop_box((egc_preset)7, 100, 100, 224, 224, b));
}

TEST(OverlayCropBox, OverlayOnThePhotoMatchesOverlayOnTheModelView)
{
    // A map drawn over the full photo through the crop box, then cut out and resized the
    // way the preset does, agrees with the map drawn over the model's view: the map lands
    // on the same content. Compared on a smooth gradient map, to a few levels of tolerance.
    const int iw = 500, ih = 350, S = 224, mw = 7, mh = 7;
    std::vector<float> map(mw * mh);
    for (int y = 0; y < mh; y++)
        for (int x = 0; x < mw; x++) map[(size_t)y * mw + x] = (float)(x * 0.12 + y * 0.02);
    std::vector<uint8_t> px = solid(iw, ih, 128, 128, 128);
    egc_image photo{iw, ih, px.data()};
    for (egc_preset p : {EGC_PRESET_TF, EGC_PRESET_TORCHVISION}) {
        float box[4];
        ASSERT_EQ(EGC_OK, egc_preset_crop_box(p, iw, ih, S, S, box));
        Image big, cut, view, small;
        ASSERT_EQ(EGC_OK, egc_overlay_box(&photo, map.data(), mw, mh, box, EGC_CMAP_VIRIDIS, 1.0f,
                                          &big.im));
        ASSERT_EQ(EGC_OK, egc_preset_geometry(&big.im, p, S, S, &cut.im));
        ASSERT_EQ(EGC_OK, egc_preset_geometry(&photo, p, S, S, &view.im));
        ASSERT_EQ(EGC_OK, egc_overlay(&view.im, map.data(), mw, mh, EGC_CMAP_VIRIDIS, 1.0f,
                                      &small.im));
        double err = 0;
        for (size_t i = 0; i < (size_t)S * S * 3; i++)
            err += std::fabs((double)cut.im.rgb[i] - small.im.rgb[i]);
        EXPECT_LT(err / (S * S * 3), 3.0) << egc_preset_name(p);
    }
}
