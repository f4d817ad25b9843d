/* metric_select.cu: the masked-replacement rows of the fidelity metrics on the device
 * (m_select_rows; CPU reference egc_select_row in csrc/metrics/metric_rows.c): row
 * r = r0 + t is image i = r / rows_per at step k = r % rows_per, thr = min(k * thr_step,
 * thr_max), and out[t][c][p] = key[i * key_stride + p] < thr ? (b ? b[i][c][p] : bconst[c])
 * : a[i][c][p]. A pure selection of stored floats, so the rows are the CPU's bit for bit.
 * Grid-stride over the n * C * hw outputs. */
#include "kernel_util.cuh"
#include "egc_method_kernels.h"

namespace {

__global__ void select_kernel(const float *a, const float *b, const int32_t *key,
                              int64_t key_stride, int C, int64_t hw, int64_t rows_per,
                              int64_t thr_step, int64_t thr_max, float4 bc, int64_t r0,
                              int64_t total, float *out)
{
    const int64_t chw = (int64_t)C * hw;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = e / chw, rem = e - t * chw, c = rem / hw, p = rem - c * hw;
        int64_t r = r0 + t, i = r / rows_per, k = r - i * rows_per;
        int64_t thr = k * thr_step;
        if (thr > thr_max) thr = thr_max;
        int64_t src = (i * C + c) * hw + p;
        float v;
        if ((int64_t)key[i * key_stride + p] < thr) {
            float cst = c == 0 ? bc.x : c == 1 ? bc.y : c == 2 ? bc.z : bc.w;
            v = b ? b[src] : cst;
        } else {
            v = a[src];
        }
        out[e] = v;
    }
}

} // namespace

extern "C" int egc_k_select_rows(const float *a, const float *b, const int32_t *key,
                                 int64_t key_stride, int C, int64_t hw, int64_t rows_per,
                                 int64_t thr_step, int64_t thr_max, const float bconst[4],
                                 int64_t r0, int64_t n, float *out, void *stream)
{
    if (n <= 0 || C <= 0 || hw <= 0) return 0;
    int64_t total = n * (int64_t)C * hw;
    float4 bc = make_float4(bconst[0], bconst[1], bconst[2], bconst[3]);
    select_kernel<<<egc_k_blocks(total), EGC_K_THREADS, 0, egc_k_stream(stream)>>>(
        a, b, key, key_stride, C, hw, rows_per, thr_step, thr_max, bc, r0, total, out);
    return egc_k_status();
}
