/* cam.c: the pieces every CAM method shares: channel pooling, weighted channel sums, relu,
 * min-max normalisation, bilinear upsampling (half-pixel centres) and the final
 * post-processing. Contracts are in methods.h. */
#include "methods/methods.h"

void egc_cam_channel_mean(const float *g, int K, int hw, float *w)
{
    for (int k = 0; k < K; k++) {
        const float *p = g + (size_t)k * (size_t)hw;
        double s = 0;
        for (int i = 0; i < hw; i++) s += p[i];
        w[k] = (float)(s / hw);
    }
}

void egc_cam_weighted_sum(const float *w, const float *a, int K, int hw, float *out)
{
    for (int i = 0; i < hw; i++) {
        double s = 0;
        for (int k = 0; k < K; k++) s += (double)w[k] * a[(size_t)k * (size_t)hw + i];
        out[i] = (float)s;
    }
}

void egc_cam_relu(float *L, int n)
{
    for (int i = 0; i < n; i++)
        if (!(L[i] > 0.0f)) L[i] = 0.0f;
}

void egc_cam_minmax(float *L, int n)
{
    if (n <= 0) return;
    float mn = L[0], mx = L[0];
    for (int i = 1; i < n; i++) {
        if (L[i] < mn) mn = L[i];
        if (L[i] > mx) mx = L[i];
    }
    float den = (mx - mn) + 1e-7f;
    for (int i = 0; i < n; i++) L[i] = (L[i] - mn) / den;
}

/* Source index and weight of output coordinate X along one axis (PyTorch's
 * area_pixel_compute_source_index for align_corners = false). */
static void src_index(int X, int in, int out, int *i0, int *i1, float *l1)
{
    float scale = (float)in / (float)out;
    float s = scale * ((float)X + 0.5f) - 0.5f;
    if (s < 0.0f) s = 0.0f;
    int i = (int)s;
    if (i > in - 1) i = in - 1;
    *i0 = i;
    *i1 = i + (i < in - 1 ? 1 : 0);
    *l1 = s - (float)i;
}

void egc_cam_upsample_bilinear(const float *in, int h, int w, float *out, int H, int W)
{
    for (int Y = 0; Y < H; Y++) {
        int y0, y1;
        float ly1;
        src_index(Y, h, H, &y0, &y1, &ly1);
        float ly0 = 1.0f - ly1;
        const float *r0 = in + (size_t)y0 * (size_t)w, *r1 = in + (size_t)y1 * (size_t)w;
        for (int X = 0; X < W; X++) {
            int x0, x1;
            float lx1;
            src_index(X, w, W, &x0, &x1, &lx1);
            float lx0 = 1.0f - lx1;
            out[(size_t)Y * (size_t)W + X] =
                ly0 * (lx0 * r0[x0] + lx1 * r0[x1]) + ly1 * (lx0 * r1[x0] + lx1 * r1[x1]);
        }
    }
}

void egc_cam_finalize(const float *raw, int h, int w, float *map, int H, int W, float *scratch)
{
    int hw = h * w;
    for (int i = 0; i < hw; i++) scratch[i] = raw[i];
    egc_cam_minmax(scratch, hw);
    egc_cam_upsample_bilinear(scratch, h, w, map, H, W);
    egc_cam_minmax(map, H * W);
}
