/* philox.h: the counter-based random numbers of the sampled CAM methods, and the image hash
 * that keys them. Everything here is exactly specified so that the CPU and the CUDA backends
 * draw the same numbers, bit for bit, for the same key; the inline functions compile as C11
 * and as CUDA (__host__ __device__), so a kernel includes this header and calls them.
 *
 * Generator: Philox4x32-10 exactly as in Random123 (and cuRAND's curand_Philox4x32_10):
 *   rounds r = 0..9; before every round but the first the key is bumped,
 *   key0 += 0x9E3779B9, key1 += 0xBB67AE85; a round maps (c0,c1,c2,c3) with
 *   p0 = 0xD2511F53 * c0, p1 = 0xCD9E8D57 * c2 (64-bit products) to
 *   (hi(p1) ^ c1 ^ key0, lo(p1), hi(p0) ^ c3 ^ key1, lo(p0)).
 *
 * Keys. One draw of four 32-bit words is philox(counter, key) with
 *   key     = (lo32(seed), hi32(seed))
 *   counter = (block, sample_id, lo32(image_id), hi32(image_id))
 * where seed is the run's 64-bit seed, image_id the 64-bit hash of the input tensor
 * (egc_image_id, defined below), sample_id the sample index s (0-based) and block a 32-bit block index:
 *   block 0        the per-sample scalars:
 *                    word 0 -> baseline index r = (word0 * R) >> 32   (64-bit product; R refs)
 *                    word 1 -> alpha = (word1 >> 8) * 2^-24            (a float in [0,1))
 *                    words 2, 3 unused
 *   block 1 + j/4  the noise values j .. j+3 (j a multiple of 4) of the 3*H*W noise image,
 *                  flat CHW index; see egc_philox_normal4 for how four words give four normals.
 * Uniform reference images (the built-in `uniform` baseline set) use the same key with
 * image_id = EGC_UNIFORM_REF_ID and sample_id = the reference index r: value j (flat CHW) is
 * the pixel byte (word (j%4) of block j/4) >> 24, i.e. U{0..255}, then normalised by the preset.
 *
 * Normal values (Box-Muller). From a block's words (w0,w1,w2,w3), pair (w0,w1) gives the
 * values j, j+1 and pair (w2,w3) the values j+2, j+3. For a pair (a, b):
 *   u1 = ((a >> 8) + 1) * 2^-24  in (0,1]       u2 = (b >> 8) * 2^-24  in [0,1)
 *   rad = sqrt(-2 ln u1)           n_even = rad * cos(2 pi u2)   n_odd = rad * sin(2 pi u2)
 * all computed in double precision with the routines below, which use only correctly rounded
 * IEEE operations (+, -, *, /, sqrt; no fused multiply-add, no library transcendental), so the
 * result is the same on every conforming machine; each normal is then rounded to float.
 *   ln u1:   u1 = k * 2^-24 (k = (a>>8)+1 in 1..2^24); k = m * 2^p with m in [1,2) (p the
 *            position of k's top bit, m = k * 2^-p exact); if m > sqrt(2) (m > 1.4142135623730951):
 *            m = m/2, p = p+1 (exact); s = (m-1)/(m+1); q = s*s;
 *            P = Horner over q of the coefficients 1/(2i+1), i = 11 down to 0 (EGC_PHILOX_LOGC):
 *            P = c11; P = P*q + c_i for i = 10..0; ln m = (2*s)*P;
 *            ln u1 = ((double)(p - 24)) * LN2 + ln m, LN2 = 0.6931471805599453.
 *   sin/cos: u2 = k2 * 2^-24; quadrant q = (k2 + 2^21) >> 22 (0..4); i = k2 - q*2^22 (an
 *            integer in [-2^21, 2^21)); t = i * (2*pi*2^-24) (constant 3.7450702829239286e-07);
 *            t2 = t*t; sin t = t + t*(t2*S(t2)), cos t = 1 + t2*C(t2) with S, C the Horner
 *            polynomials of EGC_PHILOX_SINC / EGC_PHILOX_COSC (coefficients of t^3..t^21 over t,
 *            t^2..t^20); then rotate by q quarter turns: q%4 = 0: (s, c); 1: (c, -s); 2: (-s, -c);
 *            3: (-c, s) as (sin, cos).
 *   rad = sqrt(-2.0 * ln u1); n_even = (float)(rad * cos), n_odd = (float)(rad * sin).
 * A noise value is then e = sigma * n in float (sigma = rho * (max(x) - min(x)) in float).
 *
 * The sample point is z = x' + a * (x - x') + e, evaluated in float as
 *   d = x - x';  t = a * d;  z = x' + t;  z = z + e   (each rounded; no FMA; e omitted when
 *   rho = 0), which gives z = x exactly when x' = x and e is omitted.
 *
 * Image id: a 64-bit hash of the preprocessed float32 input tensor [3,H,W] of n values, a sum
 * of per-value hashes so that it is computed in parallel (in any order: integer addition
 * modulo 2^64 is associative) on the CPU and by one reduction on the GPU:
 *   mix(z)  = z ^= z >> 30; z *= 0xbf58476d1ce4e5b9; z ^= z >> 27; z *= 0x94d049bb133111eb;
 *             z ^ (z >> 31)                       (the SplitMix64 finaliser, modulo 2^64)
 *   word j  = mix(((j mod 2^32) << 32 | u_j) + 0x9e3779b97f4a7c15), u_j the IEEE-754 bits of
 *             value j (flat CHW index)
 *   id      = mix(sum_j word_j + (n + 1) * 0x9e3779b97f4a7c15)   (all modulo 2^64)
 * The bits are hashed as they are: -0 and +0, or two NaN payloads, give different ids. */
#ifndef EGC_CORE_PHILOX_H
#define EGC_CORE_PHILOX_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__CUDACC__)
#define EGC_PHILOX_HD __host__ __device__
#else
#define EGC_PHILOX_HD
#endif

/* Double ops that a CUDA compiler must not contract into FMAs. */
#if defined(__CUDA_ARCH__)
#define EGC_DADD(a, b) __dadd_rn((a), (b))
#define EGC_DMUL(a, b) __dmul_rn((a), (b))
#else
#define EGC_DADD(a, b) ((a) + (b))
#define EGC_DMUL(a, b) ((a) * (b))
#endif

/* The image_id of the built-in uniform reference images ("uniform!" in ASCII). */
#define EGC_UNIFORM_REF_ID 0x216d726f66696e75ULL

typedef struct egc_philox4 {
    uint32_t v[4];
} egc_philox4;

/* Philox4x32-10 of counter c under key k (Random123 philox4x32(ctr, key), 10 rounds). */
static inline EGC_PHILOX_HD egc_philox4 egc_philox4x32_10(egc_philox4 c, uint32_t k0, uint32_t k1)
{
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint64_t p0 = (uint64_t)0xD2511F53u * c.v[0];
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c.v[2];
        egc_philox4 o;
        o.v[0] = (uint32_t)(p1 >> 32) ^ c.v[1] ^ k0;
        o.v[1] = (uint32_t)p1;
        o.v[2] = (uint32_t)(p0 >> 32) ^ c.v[3] ^ k1;
        o.v[3] = (uint32_t)p0;
        c = o;
    }
    return c;
}

/* The draw of block `block` for key (seed, image_id, sample_id), as documented above. */
static inline EGC_PHILOX_HD egc_philox4 egc_philox_block(uint64_t seed, uint64_t image_id,
                                                         uint32_t sample_id, uint32_t block)
{
    egc_philox4 c;
    c.v[0] = block;
    c.v[1] = sample_id;
    c.v[2] = (uint32_t)image_id;
    c.v[3] = (uint32_t)(image_id >> 32);
    return egc_philox4x32_10(c, (uint32_t)seed, (uint32_t)(seed >> 32));
}

/* ln(k * 2^-24) for k in 1..2^24, as documented above. */
static inline EGC_PHILOX_HD double egc_philox_log24(uint32_t k)
{
    int p = 0; /* the position of k's top bit, by binary search */
    for (int step = 16; step > 0; step >>= 1)
        if ((k >> (p + step)) != 0) p += step;
    /* exact: 2^-p is a power of two and k has at most 25 significant bits */
    double m = EGC_DMUL((double)k, 1.0 / (double)(1u << p));
    if (m > 1.4142135623730951) {
        m = EGC_DMUL(m, 0.5);
        p += 1;
    }
    double s = (m - 1.0) / (m + 1.0);
    double q = EGC_DMUL(s, s);
    const double c[12] = {1.0,
                          0.3333333333333333,
                          0.2,
                          0.14285714285714285,
                          0.1111111111111111,
                          0.09090909090909091,
                          0.07692307692307693,
                          0.06666666666666667,
                          0.058823529411764705,
                          0.05263157894736842,
                          0.047619047619047616,
                          0.043478260869565216};
    double P = c[11];
    for (int i = 10; i >= 0; i--) P = EGC_DADD(EGC_DMUL(P, q), c[i]);
    double lnm = EGC_DMUL(EGC_DMUL(2.0, s), P);
    return EGC_DADD(EGC_DMUL((double)(p - 24), 0.6931471805599453), lnm);
}

/* sin and cos of 2*pi*k2*2^-24 for k2 in 0..2^24-1, as documented above. */
static inline EGC_PHILOX_HD void egc_philox_sincos24(uint32_t k2, double *sn, double *cs)
{
    const double S[10] = {-0.16666666666666666,   0.008333333333333333,  -0.0001984126984126984,
                          2.7557319223985893e-06, -2.505210838544172e-08, 1.6059043836821613e-10,
                          -7.647163731819816e-13, 2.8114572543455206e-15, -8.22063524662433e-18,
                          1.9572941063391263e-20};
    const double C[10] = {-0.5,
                          0.041666666666666664,
                          -0.001388888888888889,
                          2.48015873015873e-05,
                          -2.755731922398589e-07,
                          2.08767569878681e-09,
                          -1.1470745597729725e-11,
                          4.779477332387385e-14,
                          -1.5619206968586225e-16,
                          4.110317623312165e-19};
    uint32_t q = (k2 + (1u << 21)) >> 22;
    int32_t i = (int32_t)k2 - (int32_t)(q << 22);
    double t = EGC_DMUL((double)i, 3.7450702829239286e-07);
    double t2 = EGC_DMUL(t, t);
    double ps = S[9], pc = C[9];
    for (int j = 8; j >= 0; j--) {
        ps = EGC_DADD(EGC_DMUL(ps, t2), S[j]);
        pc = EGC_DADD(EGC_DMUL(pc, t2), C[j]);
    }
    double s = EGC_DADD(t, EGC_DMUL(t, EGC_DMUL(t2, ps)));
    double c = EGC_DADD(1.0, EGC_DMUL(t2, pc));
    switch (q & 3u) {
    case 0: *sn = s; *cs = c; break;
    case 1: *sn = c; *cs = -s; break;
    case 2: *sn = -s; *cs = -c; break;
    default: *sn = -c; *cs = s; break;
    }
}

/* Box-Muller on a pair of words: out[0] = rad*cos, out[1] = rad*sin (see above). */
static inline EGC_PHILOX_HD void egc_philox_boxmuller(uint32_t a, uint32_t b, float out[2])
{
    double l = egc_philox_log24((a >> 8) + 1u);
    double rad = sqrt(EGC_DMUL(-2.0, l));
    double sn, cs;
    egc_philox_sincos24(b >> 8, &sn, &cs);
    out[0] = (float)EGC_DMUL(rad, cs);
    out[1] = (float)EGC_DMUL(rad, sn);
}

/* The four standard normals of one noise block (values j..j+3 for block 1 + j/4). */
static inline EGC_PHILOX_HD void egc_philox_normal4(egc_philox4 w, float out[4])
{
    egc_philox_boxmuller(w.v[0], w.v[1], out);
    egc_philox_boxmuller(w.v[2], w.v[3], out + 2);
}

/* ---- the sample rows of a group of images (the backends' perturbation entry) ----
 * A group of images is explained with S samples each; row r = i * S + s is sample s of
 * image i. egc_sample_row gives the draws of a row exactly as the explainer defines them:
 *   plan != 0:  baseline, alpha and noise seed from plan row s (alpha grid does not apply);
 *   otherwise:  the sample id is k = sample0[i] + s (k = s when sample0 is NULL);
 *               block 0 of (seed, ids[i], k): baseline = (word0 * R) >> 32 and
 *               u = (word1 >> 8) * 2^-24 (as egc_sample_scalars' alpha), and alpha = u
 *               (alpha_mode 0: uniform), (float)s / S (1: grid), or ((float)s + u) / S (2:
 *               stratified: one draw in each of the S strata [s/S, (s+1)/S] (rounding may
 *               reach the upper end), s the row's sample index 0..S-1 whatever sample0 is); noise seed = seed, noise key (seed, ids[i],
 *               k);
 *   per_image:  the baseline row is i (the sets `self` and `blur`, one baseline per image).
 * The arrays are in the memory of whoever evaluates it (host for the CPU backend, device
 * for a kernel, which takes the struct by value). */
typedef struct egc_sample_spec {
    uint64_t seed;              /* the run's seed */
    const uint64_t *ids;        /* [images] image ids */
    const float *sigma;         /* [images] noise scale rho * (max x - min x); <= 0: none */
    const uint32_t *plan_b;     /* [S] plan rows (plan != 0) */
    const float *plan_a;        /* [S] */
    const uint64_t *plan_seed;  /* [S] */
    const uint32_t *sample0;    /* [images] first sample id of each image, or NULL: 0 */
    int32_t S;                  /* samples per image, >= 1 */
    uint32_t R;                 /* images in the baseline set, >= 1 */
    int32_t per_image;          /* baseline row = image index */
    int32_t alpha_mode;         /* 0: alpha = u, 1: s / S (grid), 2: (s + u) / S (stratified) */
    int32_t plan;               /* draws come from the plan rows */
} egc_sample_spec;

/* The draws of one row. */
typedef struct egc_sample_draw {
    uint64_t noise_seed;        /* key of the noise: (noise_seed, image_id, sample) */
    uint64_t image_id;
    uint32_t image;             /* i */
    uint32_t sample;            /* s */
    uint32_t baseline;          /* row of the baseline set */
    float alpha;
    float sigma;
} egc_sample_draw;

/* The draws of row r (0 <= r < images * S) as documented above. */
static inline EGC_PHILOX_HD egc_sample_draw egc_sample_row(const egc_sample_spec *sp, int64_t r)
{
    egc_sample_draw d;
    int64_t i = r / sp->S, s = r % sp->S;
    d.image = (uint32_t)i;
    d.sample = (uint32_t)s;
    d.image_id = sp->ids[i];
    d.sigma = sp->sigma[i];
    if (sp->plan) {
        d.baseline = sp->plan_b[s];
        d.alpha = sp->plan_a[s];
        d.noise_seed = sp->plan_seed[s];
    } else {
        d.sample = (uint32_t)s + (sp->sample0 ? sp->sample0[i] : 0u);
        egc_philox4 w = egc_philox_block(sp->seed, d.image_id, d.sample, 0);
        uint32_t R = sp->R ? sp->R : 1u;
        d.baseline = (uint32_t)(((uint64_t)w.v[0] * (uint64_t)R) >> 32);
        d.alpha = (float)(w.v[1] >> 8) * (1.0f / 16777216.0f);
        if (sp->alpha_mode == 1) d.alpha = (float)s / (float)sp->S;
        else if (sp->alpha_mode == 2) d.alpha = ((float)s + d.alpha) / (float)sp->S;
        d.noise_seed = sp->seed;
    }
    if (sp->per_image) d.baseline = (uint32_t)i;
    return d;
}

/* The SplitMix64 finaliser of the image id (documented above). */
static inline EGC_PHILOX_HD uint64_t egc_id_mix(uint64_t z)
{
    z ^= z >> 30;
    z *= 0xbf58476d1ce4e5b9ULL;
    z ^= z >> 27;
    z *= 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The hash of value j, of IEEE-754 bits u, of an image (a term of the image id's sum). */
static inline EGC_PHILOX_HD uint64_t egc_id_word(uint64_t j, uint32_t u)
{
    return egc_id_mix(((j << 32) | (uint64_t)u) + 0x9e3779b97f4a7c15ULL);
}

/* The image id of an image of n values whose word hashes sum to sum (modulo 2^64). */
static inline EGC_PHILOX_HD uint64_t egc_id_final(uint64_t sum, uint64_t n)
{
    return egc_id_mix(sum + (n + 1) * 0x9e3779b97f4a7c15ULL);
}

/* ---- functions of philox.c ---- */

/* The image id (the hash documented above) of the n floats x (any n >= 0). */
uint64_t egc_image_id(const float *x, size_t n);

/* The scan of one image of n >= 1 floats x, as an explanation needs it: *id = the image id
 * (id NULL: not computed), range[0], range[1] = the min and max of the values v + 0 (so -0
 * counts as +0), *bad = the flat index of the first non-finite value, or -1 (range is then
 * meaningless). The CUDA backend's m_scan gives the same values. */
void egc_image_scan(const float *x, size_t n, uint64_t *id, float range[2], int64_t *bad);

/* Block 0 of (seed, image_id, sample_id): the baseline index in [0, R) (R >= 1) and the
 * uniform interpolation coefficient alpha in [0,1). */
void egc_sample_scalars(uint64_t seed, uint64_t image_id, uint32_t sample_id, uint32_t R,
                        uint32_t *baseline, float *alpha);

/* The first n (any n >= 0) standard normal values of (seed, image_id, sample_id), flat
 * index j from block 1 + j/4, written to out[n]. */
void egc_sample_normals(uint64_t seed, uint64_t image_id, uint32_t sample_id, size_t n,
                        float *out);

/* The first n uniform bytes (U{0..255}) of (seed, image_id, sample_id): value j is word j%4
 * of block j/4 shifted right by 24. Used for the `uniform` reference images. */
void egc_sample_bytes(uint64_t seed, uint64_t image_id, uint32_t sample_id, size_t n,
                      uint8_t *out);

#ifdef __cplusplus
}
#endif
#endif
