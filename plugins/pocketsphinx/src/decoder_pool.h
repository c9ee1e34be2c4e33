/* decoder_pool.h: PocketSphinx decoders kept for reuse by local/pocketsphinx (see decoder_pool.c). */
#ifndef PRISM_PS_DECODER_POOL_H
#define PRISM_PS_DECODER_POOL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <pocketsphinx.h>

#define PS_SAMPLE_RATE 16000
/* Idle decoders kept for reuse; more concurrent calls create more and free the extras. */
#define PS_POOL_MAX 4
/* Cepstral coefficients per frame (the en-us model uses 13). */
#define PS_MAX_CEPLEN 64

/* A decoder and the cepstral mean it started with. */
struct decoder {
    ps_decoder_t *ps;
    mfcc_t initial_mean[PS_MAX_CEPLEN];
};

struct decoder_pool {
    char model_dir[512];
    pthread_mutex_t lock; /* guards idle and count */
    struct decoder *idle[PS_POOL_MAX];
    int count;
};

/* Little-endian 16-bit sample (WAV data may be unaligned). */
static inline uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

/* Makes the first decoder from the model folder; 0 when the model cannot be loaded. */
int pool_init(struct decoder_pool *pool, const char *model_dir);
/* An idle decoder, or a new one (NULL if that fails). Thread-safe. */
struct decoder *pool_take(struct decoder_pool *pool);
/* Gives a decoder back (freed if the pool is full). Thread-safe. */
void pool_return(struct decoder_pool *pool, struct decoder *d);
/* Frees every idle decoder; no decoder may be out. */
void pool_destroy(struct decoder_pool *pool);
/* Starts the decoder's live CMN from this call's own audio (16 kHz s16le `bytes`). */
void pool_seed_cmn(struct decoder *d, const uint8_t *bytes, size_t samples);

#endif
