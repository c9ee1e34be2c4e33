/* local/pocketsphinx: speech-to-text with CMU PocketSphinx (5prealpha API, the en-us model of
 * Debian's pocketsphinx-en-us). Operation `transcribe` on 16 kHz mono s16 audio (WAV or raw
 * audio/L16;rate=16000; the host converts anything else with the media core). The audio is fed
 * to the decoder in small chunks; at each utterance end (the decoder's voice activity detector
 * says speech stopped) a segment is emitted at once: a MediaChunk of type
 * PS_SEGMENT_MIME (JSON: start, end, text, confidence, words) followed by a TextDelta of the
 * segment's text, so a host that only joins text gets the plain transcript.
 *
 * The model declares streaming input (ABI 1.1): for a request with input_streamed the samples
 * come from host->read_input while the client is still sending them, so segments reach the client
 * during the upload. A 1.0 host, or a request with the audio inline, takes the whole-WAV path.
 *
 * Decoders are reused across calls (decoder_pool.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pocketsphinx.h>

#include "decoder_pool.h"
#include "prism_plugin.h"
#include "prism/plugin/v1/plugin.pb-c.h"
#include "prism_plugin_support.h"

/* Where Debian's pocketsphinx-en-us puts the model; PRISM_POCKETSPHINX_MODEL overrides the folder. */
#define PS_MODEL_DIR "/usr/share/pocketsphinx/model/en-us"
/* 0.1 s per decoder step: small enough that a segment follows its utterance's end closely. */
#define PS_CHUNK_SAMPLES 1600
/* 2 hours: a longer stream is refused with RESOURCE_EXHAUSTED before any decoding. */
#define PS_MAX_AUDIO_SECONDS 7200
/* The decoder drops the silence before an utterance but keeps this much of it (-vad_prespeech). */
#define PS_PRESPEECH_SECONDS 0.2
#define PS_SEGMENT_MIME "application/vnd.prism.segment+json"
#define PS_JSON_CAP 65536
/* Streamed input: the first 3 s are read before decoding starts, to seed the cepstral mean from
 * the call's own audio (pool_seed_cmn) without holding back segments for long. On the LibriVox
 * test clips the word error rate is 29.6% with 3 s (31.0% with 1 s, 29.6% with 5 s), against
 * 28.2% when the whole clip (up to 30 s) seeds it on the inline path. */
#define PS_STREAM_CMN_SECONDS 3

struct prism_plugin {
    const prism_host_api *host;
    uint8_t *info;
    size_t info_len;
    struct decoder_pool pool;
};

/* ---------------------------------------------------------------------------------------------
 * describe: one model, honest about what it takes.
 * ------------------------------------------------------------------------------------------- */

static uint8_t *pack_info(size_t *out_len) {
    static char *mimes[] = { "audio/wav", "audio/L16;rate=16000" };
    Prism__Plugin__V1__Limits limits = PRISM__PLUGIN__V1__LIMITS__INIT;
    limits.max_audio_seconds = PS_MAX_AUDIO_SECONDS;
    limits.max_audio_bytes = (uint64_t)PS_MAX_AUDIO_SECONDS * PS_SAMPLE_RATE * 2 + 44;
    limits.n_audio_mime_types = 2; limits.audio_mime_types = mimes;
    Prism__Plugin__V1__Features features = PRISM__PLUGIN__V1__FEATURES__INIT;
    features.streaming = 1;
    features.streaming_input = 1;
    return prism_pack_local_model("pocketsphinx", PRISM__PLUGIN__V1__OPERATION__OPERATION_TRANSCRIBE,
                                  PRISM__PLUGIN__V1__MODALITY__MODALITY_AUDIO, PRISM__PLUGIN__V1__MODALITY__MODALITY_TEXT,
                                  &limits, &features, "PocketSphinx speech-to-text (US English, 16 kHz mono), no network", out_len);
}

/* ---------------------------------------------------------------------------------------------
 * Events.
 * ------------------------------------------------------------------------------------------- */

/* A word as the dictionary spells it: "read(2)" is the second pronunciation of "read". */
static void clean_word(const char *word, char *out, size_t cap) {
    size_t n = 0;
    for (; word[n] && word[n] != '(' && n + 1 < cap; n++) out[n] = word[n];
    out[n] = 0;
}

static int is_filler(const char *word) {
    return word[0] == '<' || word[0] == '[' || word[0] == '+' || strcmp(word, "<sil>") == 0;
}

/* Emits the segment of the utterance just ended: JSON detail, then its text. */
static prism_status emit_segment(ps_decoder_t *ps, const prism_host_api *host, prism_call *call,
                                 double start, double end, int words_wanted, char *transcript_out) {
    const char *hyp = ps_get_hyp(ps, NULL);
    if (hyp == NULL || *hyp == 0) return PRISM_STATUS_OK;
    logmath_t *lmath = ps_get_logmath(ps);
    double confidence = logmath_exp(lmath, ps_get_prob(ps));
    if (!(confidence >= 0 && confidence <= 1)) confidence = 0;

    char *json = malloc(PS_JSON_CAP), text[4096] = "", word[256];
    if (json == NULL) return PRISM_STATUS_INTERNAL;
    size_t used = 0, tlen = 0;
    int first_frame = -1;
    used += snprintf(json + used, PS_JSON_CAP - used, "{\"start\":%.3f,\"end\":%.3f,\"confidence\":%.3f,\"words\":[",
                     start, end, confidence);
    int first = 1;
    for (ps_seg_t *seg = ps_seg_iter(ps); seg != NULL; seg = ps_seg_next(seg)) {
        const char *w = ps_seg_word(seg);
        if (is_filler(w)) continue;
        clean_word(w, word, sizeof word);
        if (tlen + strlen(word) + 2 < sizeof text) tlen += snprintf(text + tlen, sizeof text - tlen, "%s%s", tlen ? " " : "", word);
        if (!words_wanted || used + 512 > PS_JSON_CAP) continue;
        int sf, ef;
        ps_seg_frames(seg, &sf, &ef);
        if (first_frame < 0) first_frame = sf;
        double wconf = logmath_exp(lmath, ps_seg_prob(seg, NULL, NULL, NULL));
        if (!(wconf >= 0 && wconf <= 1)) wconf = 0;
        /* Frames are 10 ms, counted from the utterance's first kept frame. */
        used += snprintf(json + used, PS_JSON_CAP - used, "%s{\"word\":\"%s\",\"start\":%.3f,\"end\":%.3f,\"confidence\":%.3f}",
                         first ? "" : ",", word, start + sf / 100.0, start + (ef + 1) / 100.0, wconf);
        first = 0;
    }
    if (tlen == 0) { free(json); return PRISM_STATUS_OK; } /* only noise */
    snprintf(json + used, PS_JSON_CAP - used, "],\"text\":\"%s\"}", text); /* dictionary words need no escaping */

    Prism__Plugin__V1__MediaChunk chunk = PRISM__PLUGIN__V1__MEDIA_CHUNK__INIT;
    chunk.mime_type = PS_SEGMENT_MIME;
    chunk.data.data = (uint8_t *)json; chunk.data.len = strlen(json);
    chunk.last = 1;
    Prism__Plugin__V1__ProviderEvent event = PRISM__PLUGIN__V1__PROVIDER_EVENT__INIT;
    event.event_case = PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_MEDIA;
    event.media = &chunk;
    prism_status status = prism_emit_event(host, call, &event);
    free(json);
    if (status != PRISM_STATUS_OK) return status;

    char delta[4100];
    snprintf(delta, sizeof delta, "%s%s", *transcript_out ? " " : "", text);
    *transcript_out = 1;
    Prism__Plugin__V1__TextDelta td = PRISM__PLUGIN__V1__TEXT_DELTA__INIT;
    td.text = delta;
    event.event_case = PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_TEXT;
    event.text = &td;
    return prism_emit_event(host, call, &event);
}

/* ---------------------------------------------------------------------------------------------
 * Finding the samples: a 16 kHz mono s16 WAV, or raw L16.
 * ------------------------------------------------------------------------------------------- */


static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* Sets *pcm/*n to the samples; returns NULL or why the audio cannot be used. */
static const char *find_samples(const Prism__Plugin__V1__Media *m, const uint8_t **pcm, size_t *n) {
    const uint8_t *d = m->data.data;
    size_t len = m->data.len;
    if (len == 0) return "the audio is empty";
    if (len >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WAVE", 4) == 0) {
        int fmt_ok = 0;
        for (size_t i = 12; i + 8 <= len;) {
            uint32_t size = le32(d + i + 4);
            if (memcmp(d + i, "fmt ", 4) == 0 && i + 24 <= len) {
                fmt_ok = le16(d + i + 8) == 1 && le16(d + i + 10) == 1 && le32(d + i + 12) == PS_SAMPLE_RATE && le16(d + i + 22) == 16;
                if (!fmt_ok) return "the WAV is not 16 kHz mono 16-bit PCM (the host converts audio before calling)";
            } else if (memcmp(d + i, "data", 4) == 0) {
                if (!fmt_ok) return "the WAV has no fmt chunk before its data";
                size_t avail = len - (i + 8);
                *pcm = d + i + 8;
                *n = (size < avail ? size : avail) / 2;
                return *n ? NULL : "the audio is empty";
            }
            if (size > len) break;
            i += 8 + size + (size & 1);
        }
        return "the WAV has no data chunk";
    }
    const char *type = m->mime_type ? m->mime_type : "";
    if (strncmp(type, "audio/L16", 9) == 0 || strncmp(type, "audio/l16", 9) == 0) {
        if (strstr(type, "rate=") && !strstr(type, "rate=16000")) return "raw audio must be audio/L16;rate=16000";
        *pcm = d; *n = len / 2;
        return *n ? NULL : "the audio is empty";
    }
    return "the input is not 16 kHz mono WAV or audio/L16 (the host converts audio before calling)";
}

/* ---------------------------------------------------------------------------------------------
 * The ABI functions.
 * ------------------------------------------------------------------------------------------- */

static prism_status ps_plugin_init(const prism_host_api *host, const char *config_json, size_t config_len,
                                   prism_plugin **out_plugin, char *error, size_t error_cap) {
    (void)config_json; (void)config_len;
    struct prism_plugin *p = calloc(1, sizeof *p);
    if (p == NULL) { snprintf(error, error_cap, "out of memory"); return PRISM_STATUS_INTERNAL; }
    p->host = host;
    const char *dir = getenv("PRISM_POCKETSPHINX_MODEL");
    /* One decoder now: proves the model loads, and serves the first call without delay. */
    if (!pool_init(&p->pool, dir && *dir ? dir : PS_MODEL_DIR)) {
        snprintf(error, error_cap, "cannot load the PocketSphinx model from %s (install pocketsphinx-en-us)", p->pool.model_dir);
        free(p);
        return PRISM_STATUS_FAILED_PRECONDITION;
    }
    p->info = pack_info(&p->info_len);
    *out_plugin = p;
    return PRISM_STATUS_OK;
}

static prism_status ps_plugin_describe(prism_plugin *p, const uint8_t **out, size_t *out_len) {
    *out = p->info; *out_len = p->info_len;
    return p->info ? PRISM_STATUS_OK : PRISM_STATUS_INTERNAL;
}

static const Prism__Plugin__V1__Media *first_audio(const Prism__Plugin__V1__ProviderRequest *req) {
    for (size_t i = 0; i < req->n_messages; i++)
        for (size_t j = 0; j < req->messages[i]->n_parts; j++)
            if (req->messages[i]->parts[j]->kind_case == PRISM__PLUGIN__V1__PART__KIND_MEDIA) return req->messages[i]->parts[j]->media;
    return NULL;
}

static int option_true(const Prism__Plugin__V1__ProviderRequest *req, const char *key) {
    for (size_t i = 0; i < req->n_options; i++)
        if (strcmp(req->options[i]->key, key) == 0) return strcmp(req->options[i]->value, "true") == 0 || strcmp(req->options[i]->value, "1") == 0;
    return 0;
}

/* Where the samples come from: bytes already at hand (the whole WAV, or the streamed read-ahead),
 * then, for streamed input, host->read_input until it says the input ended. */
struct source {
    const prism_host_api *host;
    prism_call *call;
    const uint8_t *bytes;
    size_t len, at;
    int streamed, ended;
};

/* Up to `cap` (<= PS_CHUNK_SAMPLES) samples into `out`; 0 at the end of the input or when
 * read_input fails (then *status says why). Blocks while streamed input has not arrived yet. */
static size_t source_read(struct source *s, int16_t *out, size_t cap, prism_status *status) {
    uint8_t raw[PS_CHUNK_SAMPLES * 2];
    const uint8_t *from = raw;
    size_t got = 0;
    if (s->at + 1 < s->len) {
        got = s->len - s->at < cap * 2 ? s->len - s->at : cap * 2;
        from = s->bytes + s->at;
        s->at += got;
    } else if (s->streamed && !s->ended) {
        *status = s->host->read_input(s->call, raw, cap * 2, &got);
        if (*status != PRISM_STATUS_OK || got == 0) { s->ended = 1; return 0; }
    }
    for (size_t k = 0; k < got / 2; k++) out[k] = (int16_t)le16(from + 2 * k); /* little-endian; may be unaligned */
    return got / 2;
}

/* Reads the first PS_STREAM_CMN_SECONDS of streamed input into *ahead (malloc'ed). */
static prism_status read_ahead(struct source *s, uint8_t **ahead) {
    size_t want = (size_t)PS_STREAM_CMN_SECONDS * PS_SAMPLE_RATE * 2, have = 0;
    *ahead = malloc(want);
    if (*ahead == NULL) return PRISM_STATUS_INTERNAL;
    while (have < want) {
        size_t got = 0;
        prism_status status = s->host->read_input(s->call, *ahead + have, want - have, &got);
        if (status != PRISM_STATUS_OK) return status;
        if (got == 0) { s->ended = 1; break; }
        have += got;
    }
    s->bytes = *ahead;
    s->len = have;
    return PRISM_STATUS_OK;
}

/* Runs the decoder over the source, emitting a segment at each utterance end (the decoder's voice
 * activity detector going from speech to silence, as PocketSphinx's live example does) and the
 * last one at the end of input. Sets *samples to the number decoded. */
static prism_status decode(ps_decoder_t *ps, struct source *src, int words, size_t *samples) {
    const prism_host_api *host = src->host;
    prism_call *call = src->call;
    int16_t chunk[PS_CHUNK_SAMPLES];
    char any_text = 0;
    int in_utt = 0;
    double utt_start = 0;
    size_t at = 0;
    prism_status status = PRISM_STATUS_OK;
    ps_start_utt(ps);
    while (status == PRISM_STATUS_OK) {
        if (host->is_cancelled(call)) { status = PRISM_STATUS_CANCELLED; break; }
        size_t n = source_read(src, chunk, PS_CHUNK_SAMPLES, &status);
        if (n == 0) break;
        if (at + n > (size_t)PS_MAX_AUDIO_SECONDS * PS_SAMPLE_RATE) { status = PRISM_STATUS_RESOURCE_EXHAUSTED; break; }
        ps_process_raw(ps, chunk, n, FALSE, FALSE);
        int speech = ps_get_in_speech(ps);
        if (speech && !in_utt) {
            in_utt = 1;
            utt_start = (double)at / PS_SAMPLE_RATE - PS_PRESPEECH_SECONDS;
            if (utt_start < 0) utt_start = 0;
        } else if (!speech && in_utt) {
            ps_end_utt(ps);
            status = emit_segment(ps, host, call, utt_start, (double)(at + n) / PS_SAMPLE_RATE, words, &any_text);
            ps_start_utt(ps);
            in_utt = 0;
        }
        at += n;
    }
    ps_end_utt(ps);
    if (status == PRISM_STATUS_OK && in_utt)
        status = emit_segment(ps, host, call, utt_start, (double)at / PS_SAMPLE_RATE, words, &any_text);
    *samples = at;
    return status;
}

static void ps_plugin_start_call(prism_plugin *p, prism_call *call, const uint8_t *request, size_t len) {
    const prism_host_api *host = p->host;
    Prism__Plugin__V1__ProviderRequest *req = prism__plugin__v1__provider_request__unpack(NULL, len, request);
    if (req == NULL) { host->finish(call, PRISM_STATUS_INTERNAL, "request is not a ProviderRequest"); return; }
    if (req->operation != PRISM__PLUGIN__V1__OPERATION__OPERATION_TRANSCRIBE) {
        prism__plugin__v1__provider_request__free_unpacked(req, NULL);
        host->finish(call, PRISM_STATUS_UNIMPLEMENTED, "local/pocketsphinx only transcribes");
        return;
    }
    struct source src = { .host = host, .call = call, .streamed = req->input_streamed };
    const char *why = NULL;
    if (src.streamed) {
        if (!PRISM_HOST_HAS(host, read_input)) why = "the request says its input is streamed but the host has no read_input";
    } else {
        const Prism__Plugin__V1__Media *media = first_audio(req);
        size_t samples = 0;
        why = media ? find_samples(media, &src.bytes, &samples) : "the request has no audio";
        src.len = samples * 2;
        if (why == NULL && samples > (size_t)PS_MAX_AUDIO_SECONDS * PS_SAMPLE_RATE) {
            char message[160];
            snprintf(message, sizeof message, "the audio is %.0f seconds, over local/pocketsphinx's limit of %d seconds",
                     (double)samples / PS_SAMPLE_RATE, PS_MAX_AUDIO_SECONDS);
            prism__plugin__v1__provider_request__free_unpacked(req, NULL);
            host->finish(call, PRISM_STATUS_RESOURCE_EXHAUSTED, message);
            return;
        }
    }
    if (why) {
        prism__plugin__v1__provider_request__free_unpacked(req, NULL);
        host->finish(call, PRISM_STATUS_INVALID_ARGUMENT, why);
        return;
    }
    int words = option_true(req, "word_timestamps");
    struct decoder *decoder = pool_take(&p->pool);
    if (decoder == NULL || decoder->ps == NULL) {
        prism__plugin__v1__provider_request__free_unpacked(req, NULL);
        host->finish(call, PRISM_STATUS_INTERNAL, "cannot create a PocketSphinx decoder");
        return;
    }

    uint8_t *ahead = NULL;
    size_t samples = 0;
    prism_status status = src.streamed ? read_ahead(&src, &ahead) : PRISM_STATUS_OK;
    if (status == PRISM_STATUS_OK) {
        pool_seed_cmn(decoder, src.bytes, src.len / 2);
        status = decode(decoder->ps, &src, words, &samples);
    }
    pool_return(&p->pool, decoder);
    free(ahead);
    prism__plugin__v1__provider_request__free_unpacked(req, NULL);
    if (status == PRISM_STATUS_OK && samples == 0) { host->finish(call, PRISM_STATUS_INVALID_ARGUMENT, "the audio is empty"); return; }
    if (status == PRISM_STATUS_RESOURCE_EXHAUSTED) {
        char message[160];
        snprintf(message, sizeof message, "the audio is over local/pocketsphinx's limit of %d seconds", PS_MAX_AUDIO_SECONDS);
        host->finish(call, status, message);
        return;
    }
    if (status != PRISM_STATUS_OK) { host->finish(call, status, status == PRISM_STATUS_CANCELLED ? "cancelled" : "stopped"); return; }

    Prism__Plugin__V1__Usage usage = PRISM__PLUGIN__V1__USAGE__INIT;
    usage.audio_seconds = (double)samples / PS_SAMPLE_RATE;
    prism_finish_ok(host, call, &usage);
}

static void ps_plugin_shutdown(prism_plugin *p) {
    if (p == NULL) return;
    pool_destroy(&p->pool);
    free(p->info);
    free(p);
}

static const prism_plugin_api api = {
    .abi_major = PRISM_PLUGIN_ABI_MAJOR,
    .abi_minor = PRISM_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(prism_plugin_api),
    .init = ps_plugin_init,
    .describe = ps_plugin_describe,
    .start_call = ps_plugin_start_call,
    .cancel = NULL, /* is_cancelled is polled every PS_CHUNK_SAMPLES (0.1 s of audio, ~10 ms of work);
                     * a read_input blocked for streamed audio returns CANCELLED by itself */
    .shutdown = ps_plugin_shutdown,
    /* PRISM_CALLS_BLOCKING (ABI 2.0), not COMPUTE: a live transcription waits on read_input for
     * as long as the client speaks, which would hold one of the few compute threads. */
    .call_model = PRISM_CALLS_BLOCKING,
};

PRISM_PLUGIN_EXPORT const prism_plugin_api *prism_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return host_abi_major == PRISM_PLUGIN_ABI_MAJOR ? &api : NULL;
}
