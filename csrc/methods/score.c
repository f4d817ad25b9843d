/* score.c: the target score y_c of the explanation methods (the logit or the softmax
 * probability of class c) and its seed, the gradient dy_c/dlogits that starts the backward
 * pass. The CPU reference of the backends' m_score_seed entry (contracts in methods.h). */
#include <math.h>
#include <string.h>

#include "methods/methods.h"

int egc_score_argmax(const float *logits, int n)
{
    int c = 0;
    for (int j = 1; j < n; j++)
        if (logits[j] > logits[c]) c = j;
    return c;
}

float egc_score_seed(const float *logits, int n, int c, int softmax, float *seed)
{
    if (!softmax) {
        if (seed) {
            memset(seed, 0, (size_t)n * sizeof(float));
            seed[c] = 1.0f;
        }
        return logits[c];
    }
    double mx = logits[0];
    for (int j = 1; j < n; j++)
        if (logits[j] > mx) mx = logits[j];
    double sum = 0;
    for (int j = 0; j < n; j++) sum += exp((double)logits[j] - mx);
    double pc = exp((double)logits[c] - mx) / sum;
    if (seed)
        for (int j = 0; j < n; j++) {
            double pj = exp((double)logits[j] - mx) / sum;
            seed[j] = (float)(pc * ((j == c ? 1.0 : 0.0) - pj));
        }
    return (float)pc;
}
