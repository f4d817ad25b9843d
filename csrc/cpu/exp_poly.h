/* exp_poly.h: a vectorizable exp for the CPU ops (eltwise.c, softmax.c). Files that use it
 * are built with -fno-trapping-math, which lets the compiler turn the selects around it
 * into vector blends. */
#ifndef EGC_CPU_EXP_POLY_H
#define EGC_CPU_EXP_POLY_H

#include <stdint.h>
#include <string.h>

/* exp(x) for finite x in [-87, 0] (2^n stays a normal float): n = round(x / ln 2), then
 * e^r on r = x - n ln 2 in [-ln 2 / 2, ln 2 / 2] by the Cephes expf polynomial (ln 2 split in
 * two for an exact r), times 2^n made from its exponent bits. Within 2 ulp of exp; free of
 * calls and branches, so the loops that use it vectorize. */
static inline float egc_exp_nonpos(float x)
{
    const int32_t ni = (int32_t)(x * 1.44269504088896341f - 0.5f); /* x <= 0: to nearest */
    const float n = (float)ni;
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    const float z = r * r;
    const float p = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                       4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f) * z +
                    r + 1.0f;
    const int32_t bits = (ni + 127) * (1 << 23);
    float s;
    memcpy(&s, &bits, sizeof s);
    return p * s;
}

/* exp(t) for t <= 0 or NaN (a softmax's x - max x): 0 below -87 (where exp(t) is under
 * 2^-125, and for -inf), NaN stays NaN. */
static inline float egc_exp_nonpos_any(float t)
{
    const int nan = t != t;
    const float c = nan ? 0.0f : (t < -87.0f ? -87.0f : t);
    const float e = t < -87.0f ? 0.0f : egc_exp_nonpos(c);
    return nan ? t : e;
}

#endif
