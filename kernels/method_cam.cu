/* method_cam.cu: the raw CAM of n images from the target gradient G and activation A
 * [n,K,hw] (m_cam; the CPU references are csrc/methods/{gradcam,gradcampp,xgradcam,hirescam,
 * layercam,scorecam}.c). Two kernels:
 *   weights (Grad-CAM, Grad-CAM++, XGrad-CAM: one block per channel plane; Score-CAM: one
 *     block per image, the softmax of its K masked scores), reduced in double like the CPU:
 *       Grad-CAM    w_k = mean_ij g
 *       Grad-CAM++  w_k = sum_ij [g > 0] g^2 / (2 g^2 + (sum_ab A_k) g^3 + 1e-6) * g
 *       XGrad-CAM   w_k = sum_ij g A / (sum_ab A_k + 1e-7)
 *       Score-CAM   w_k = exp(s_k - max s) / sum exp(s - max s)
 *   map (one thread per pixel of an image): L_ij = relu(sum_k w_k A_kij), or for HiResCAM
 *     relu(sum_k g A) and LayerCAM relu(sum_k relu(g) A), summed in double over k in order.
 * wk is written for HiResCAM and LayerCAM too (zeros). */
#include "method_util.cuh"

namespace {

enum { GRADCAM = 0, GRADCAMPP = 1, XGRADCAM = 2, HIRESCAM = 3, LAYERCAM = 4, SCORECAM = 5 };

__global__ void plane_weights_kernel(int method, const float *G, const float *A, int64_t planes,
                                     int hw, float *wk)
{
    for (int64_t p = blockIdx.x; p < planes; p += gridDim.x) {
        const float *g = G + p * hw, *a = A + p * hw;
        double w = 0.0;
        if (method == GRADCAM) {
            double s = 0.0;
            for (int i = threadIdx.x; i < hw; i += blockDim.x) s += g[i];
            s = egc_m_block_sum_d(s);
            w = s / hw;
        } else if (method == XGRADCAM) {
            double sa = 0.0, sga = 0.0;
            for (int i = threadIdx.x; i < hw; i += blockDim.x) {
                sa += a[i];
                sga += (double)g[i] * a[i];
            }
            sa = egc_m_block_sum_d(sa);
            sga = egc_m_block_sum_d(sga);
            w = sga / (sa + 1e-7);
        } else if (method == GRADCAMPP) {
            double sa = 0.0;
            for (int i = threadIdx.x; i < hw; i += blockDim.x) sa += a[i];
            sa = egc_m_block_sum_d(sa);
            double s = 0.0;
            for (int i = threadIdx.x; i < hw; i += blockDim.x) {
                double gv = g[i];
                if (gv == 0.0 || gv < 0.0) continue; /* relu(g) = 0: no contribution */
                double g2 = gv * gv, g3 = g2 * gv;
                s += g2 / (2.0 * g2 + sa * g3 + 1e-6) * gv;
            }
            w = egc_m_block_sum_d(s);
        }
        if (threadIdx.x == 0) wk[p] = (float)w;
    }
}

__global__ void score_weights_kernel(const float *s, int64_t n, int K, float *wk)
{
    for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
        const float *si = s + i * K;
        double mx = -INFINITY;
        for (int k = threadIdx.x; k < K; k += blockDim.x) mx = fmax(mx, (double)si[k]);
        mx = egc_m_block_max_d(mx);
        double sum = 0.0;
        for (int k = threadIdx.x; k < K; k += blockDim.x) sum += exp((double)si[k] - mx);
        sum = egc_m_block_sum_d(sum);
        for (int k = threadIdx.x; k < K; k += blockDim.x)
            wk[i * K + k] = (float)(exp((double)si[k] - mx) / sum);
    }
}

__global__ void map_kernel(int method, const float *G, const float *A, int64_t n, int K, int hw,
                           const float *wk, float *L)
{
    const int64_t total = n * hw, khw = (int64_t)K * hw;
    for (int64_t q = egc_k_tid(); q < total; q += egc_k_nthreads()) {
        int64_t i = q / hw, j = q % hw;
        const float *a = A + i * khw + j, *g = G + i * khw + j;
        double s = 0.0;
        if (method == HIRESCAM) {
            for (int k = 0; k < K; k++) s += (double)g[(int64_t)k * hw] * a[(int64_t)k * hw];
        } else if (method == LAYERCAM) {
            for (int k = 0; k < K; k++) {
                float gv = g[(int64_t)k * hw];
                if (gv > 0.0f) s += (double)gv * a[(int64_t)k * hw];
            }
        } else {
            const float *w = wk + i * K;
            for (int k = 0; k < K; k++) s += (double)w[k] * a[(int64_t)k * hw];
        }
        float v = (float)s;
        L[q] = v > 0.0f ? v : 0.0f;
    }
}

} // namespace

extern "C" int egc_k_cam(int method, const float *G, const float *A, int64_t n, int K, int hw,
                         float *wk, float *L, void *stream)
{
    if (n <= 0 || K <= 0 || hw <= 0) return 0;
    cudaStream_t s = egc_k_stream(stream);
    int64_t planes = n * K;
    if (method == GRADCAM || method == GRADCAMPP || method == XGRADCAM) {
        unsigned g = (unsigned)(planes < (1 << 20) ? planes : (1 << 20));
        unsigned t = hw <= 64 ? 64 : EGC_K_THREADS;
        plane_weights_kernel<<<g, t, 0, s>>>(method, G, A, planes, hw, wk);
    } else if (method == SCORECAM) {
        unsigned g = (unsigned)(n < 65535 ? n : 65535);
        score_weights_kernel<<<g, EGC_K_THREADS, 0, s>>>(G, n, K, wk);
    } else if (method == HIRESCAM || method == LAYERCAM) {
        egc_k_fill(wk, 0.0f, planes, stream);
    } else {
        return (int)cudaErrorInvalidValue;
    }
    int e = egc_k_status();
    if (e) return e;
    map_kernel<<<egc_k_blocks(n * hw), 128, 0, s>>>(method, G, A, n, K, hw, wk, L);
    return egc_k_status();
}
