/* decoder_pool.c: the PocketSphinx decoders of local/pocketsphinx. A decoder costs ~0.8 s and
 * ~40 MB to create, so idle ones are kept and reused; at the start of each call its live
 * cepstral mean normalization (CMN) is seeded from the call's own audio, so that what one call
 * heard does not steer the next call's recognition. (The front end's noise estimate still
 * carries over; PocketSphinx 5prealpha offers no cheap way to reset it.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sphinxbase/ckd_alloc.h>
#include <sphinxbase/cmn.h>
#include <sphinxbase/fe.h>
#include <sphinxbase/feat.h>

#include "decoder_pool.h"

/* Live CMN starts each call from the mean cepstrum of the call's first 30 s of speech (what batch
 * CMN would use), not from a generic prior or the previous call's state; below 0.5 s (50 frames)
 * of speech the decoder's initial prior is used. */
#define PS_CMN_PRIOR_SECONDS 30
#define PS_CMN_MIN_FRAMES 50
#define PS_CMN_FRAMES_PER_STEP 256

static struct decoder *make_decoder(const char *dir) {
    char hmm[600], lm[600], dict[600];
    snprintf(hmm, sizeof hmm, "%s/en-us", dir);
    snprintf(lm, sizeof lm, "%s/en-us.lm.bin", dir);
    snprintf(dict, sizeof dict, "%s/cmudict-en-us.dict", dir);
    cmd_ln_t *config = cmd_ln_init(NULL, ps_args(), TRUE, "-hmm", hmm, "-lm", lm, "-dict", dict,
                                   "-logfn", "/dev/null", NULL);
    if (config == NULL) return NULL;
    ps_decoder_t *ps = ps_init(config);
    cmd_ln_free_r(config); /* the decoder keeps its own reference */
    if (ps == NULL) return NULL;
    struct decoder *d = calloc(1, sizeof *d);
    cmn_t *cmn = ps_get_feat(ps)->cmn_struct;
    if (d == NULL || cmn == NULL || cmn->veclen > PS_MAX_CEPLEN) { ps_free(ps); free(d); return NULL; }
    d->ps = ps;
    cmn_live_get(cmn, d->initial_mean);
    return d;
}

static void free_decoder(struct decoder *d) {
    ps_free(d->ps);
    free(d);
}

int pool_init(struct decoder_pool *pool, const char *model_dir) {
    snprintf(pool->model_dir, sizeof pool->model_dir, "%s", model_dir);
    pthread_mutex_init(&pool->lock, NULL);
    pool->count = 0;
    struct decoder *first = make_decoder(pool->model_dir);
    if (first == NULL) { pthread_mutex_destroy(&pool->lock); return 0; }
    pool->idle[pool->count++] = first;
    return 1;
}

struct decoder *pool_take(struct decoder_pool *pool) {
    pthread_mutex_lock(&pool->lock);
    struct decoder *d = pool->count > 0 ? pool->idle[--pool->count] : NULL;
    pthread_mutex_unlock(&pool->lock);
    return d ? d : make_decoder(pool->model_dir);
}

void pool_return(struct decoder_pool *pool, struct decoder *d) {
    pthread_mutex_lock(&pool->lock);
    if (pool->count < PS_POOL_MAX) { pool->idle[pool->count++] = d; d = NULL; }
    pthread_mutex_unlock(&pool->lock);
    if (d) free_decoder(d);
}

void pool_destroy(struct decoder_pool *pool) {
    for (int i = 0; i < pool->count; i++) free_decoder(pool->idle[i]);
    pool->count = 0;
    pthread_mutex_destroy(&pool->lock);
}

void pool_seed_cmn(struct decoder *d, const uint8_t *bytes, size_t samples) {
    cmn_t *cmn = ps_get_feat(d->ps)->cmn_struct;
    cmn_live_set(cmn, d->initial_mean);
    size_t limit = (size_t)PS_CMN_PRIOR_SECONDS * PS_SAMPLE_RATE, n = samples < limit ? samples : limit;
    int16 *pcm = malloc((n ? n : 1) * sizeof *pcm);
    /* A fresh front end (cheap, unlike a decoder) measures the mean with the decoder's settings. */
    fe_t *fe = pcm ? fe_init_auto_r(ps_get_config(d->ps)) : NULL;
    int ncep = fe ? fe_get_output_size(fe) : 0;
    if (fe == NULL || ncep != cmn->veclen || ncep > PS_MAX_CEPLEN) { if (fe) fe_free(fe); free(pcm); return; }
    for (size_t k = 0; k < n; k++) pcm[k] = (int16)le16(bytes + 2 * k);
    mfcc_t **cep = (mfcc_t **)ckd_calloc_2d(PS_CMN_FRAMES_PER_STEP, ncep, sizeof(mfcc_t));
    double sum[PS_MAX_CEPLEN] = { 0 };
    long frames = 0;
    const int16 *at = pcm;
    size_t left = n;
    fe_start_utt(fe);
    while (left > 0) {
        int32 got = PS_CMN_FRAMES_PER_STEP;
        size_t before = left;
        if (fe_process_frames(fe, &at, &left, cep, &got, NULL) < 0) break;
        for (int32 f = 0; f < got; f++, frames++)
            for (int c = 0; c < ncep; c++) sum[c] += MFCC2FLOAT(cep[f][c]);
        if (got == 0 && left == before) break;
    }
    int32 tail = 0;
    fe_end_utt(fe, cep[0], &tail);
    if (frames >= PS_CMN_MIN_FRAMES) {
        mfcc_t mean[PS_MAX_CEPLEN];
        for (int c = 0; c < ncep; c++) mean[c] = FLOAT2MFCC(sum[c] / frames);
        cmn_live_set(cmn, mean);
    }
    ckd_free_2d(cep);
    fe_free(fe);
    free(pcm);
}
