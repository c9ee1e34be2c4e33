/* local/espeak: text-to-speech with eSpeak NG. Operation `synthesize`: the text of the request
 * becomes 16-bit mono PCM at the engine's rate (22050 Hz), streamed as MediaChunks of type
 * "audio/L16;rate=22050;channels=1" as the engine produces them (its synth callback, every
 * ES_BUFFER_MS); the host converts to wav, flac, mp3 or opus. Options (from the request's
 * options map): "voice" (an eSpeak voice name such as "en-us" or "de"), "speed" (a multiplier,
 * 1 = ES_RATE_NORMAL words a minute).
 *
 * eSpeak NG keeps its state in globals, so there is one engine per process, made in init and
 * reused; calls take turns on it under a mutex. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <espeak-ng/speak_lib.h>

#include "prism_plugin.h"
#include "prism/plugin/v1/plugin.pb-c.h"
#include "prism_plugin_support.h"

/* Audio handed to the callback at a time: short enough to stream, long enough to be cheap. */
#define ES_BUFFER_MS 200
/* 20,000 characters is ~25 minutes of speech; longer texts should be split by the caller. */
#define ES_MAX_CHARS 20000
#define ES_RATE_NORMAL espeakRATE_NORMAL
#define ES_DEFAULT_VOICE "en-us"
/* Bytes of voice names listed in the description. */
#define ES_VOICE_LIST_CAP 2048

struct prism_plugin {
    const prism_host_api *host;
    int sample_rate;
    char mime[64];
    char description[ES_VOICE_LIST_CAP + 128];
    uint8_t *info;
    size_t info_len;
};

/* The engine is global, and so is the lock that gives it to one call at a time. */
static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;

/* What the synth callback needs, passed through espeak's user_data. */
struct synth_job {
    const prism_host_api *host;
    prism_call *call;
    const char *mime;
    prism_status status;
    uint64_t samples;
};

static prism_status emit_audio(struct synth_job *job, const short *pcm, int samples, int last) {
    Prism__Plugin__V1__MediaChunk chunk = PRISM__PLUGIN__V1__MEDIA_CHUNK__INIT;
    chunk.mime_type = (char *)job->mime;
    chunk.data.data = (uint8_t *)pcm; /* s16 in host order: little-endian on every platform we build */
    chunk.data.len = (size_t)samples * 2;
    chunk.last = last;
    Prism__Plugin__V1__ProviderEvent event = PRISM__PLUGIN__V1__PROVIDER_EVENT__INIT;
    event.event_case = PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_MEDIA;
    event.media = &chunk;
    return prism_emit_event(job->host, job->call, &event);
}

/* Called by espeak_Synth on the calling thread for each buffer; returning 1 stops synthesis. */
static int synth_callback(short *wav, int samples, espeak_EVENT *events) {
    struct synth_job *job = events ? events->user_data : NULL;
    if (job == NULL) return 1;
    if (job->status != PRISM_STATUS_OK) return 1;
    if (job->host->is_cancelled(job->call)) { job->status = PRISM_STATUS_CANCELLED; return 1; }
    if (wav == NULL || samples <= 0) return 0;
    job->samples += (uint64_t)samples;
    job->status = emit_audio(job, wav, samples, 0);
    return job->status == PRISM_STATUS_OK ? 0 : 1;
}

static uint8_t *pack_info(struct prism_plugin *p, size_t *out_len) {
    Prism__Plugin__V1__Limits limits = PRISM__PLUGIN__V1__LIMITS__INIT;
    limits.max_request_bytes = ES_MAX_CHARS * 4 + 4096; /* UTF-8 is at most 4 bytes a character */
    Prism__Plugin__V1__Features features = PRISM__PLUGIN__V1__FEATURES__INIT;
    features.streaming = 1;
    return prism_pack_local_model("espeak", PRISM__PLUGIN__V1__OPERATION__OPERATION_SYNTHESIZE,
                                  PRISM__PLUGIN__V1__MODALITY__MODALITY_TEXT, PRISM__PLUGIN__V1__MODALITY__MODALITY_AUDIO,
                                  &limits, &features, p->description, out_len);
}

static prism_status es_init(const prism_host_api *host, const char *config_json, size_t config_len,
                            prism_plugin **out_plugin, char *error, size_t error_cap) {
    (void)config_json; (void)config_len;
    struct prism_plugin *p = calloc(1, sizeof *p);
    if (p == NULL) { snprintf(error, error_cap, "out of memory"); return PRISM_STATUS_INTERNAL; }
    p->host = host;
    pthread_mutex_lock(&engine_lock);
    /* DONT_EXIT: on a missing data folder espeak would otherwise exit() the whole server. */
    p->sample_rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, ES_BUFFER_MS, NULL, espeakINITIALIZE_DONT_EXIT);
    if (p->sample_rate > 0) espeak_SetSynthCallback(synth_callback);
    size_t used = snprintf(p->description, sizeof p->description, "eSpeak NG text-to-speech, no network; voices:");
    const espeak_VOICE **voices = p->sample_rate > 0 ? espeak_ListVoices(NULL) : NULL;
    for (int i = 0; voices && voices[i] && used + 40 < ES_VOICE_LIST_CAP; i++)
        used += snprintf(p->description + used, sizeof p->description - used, " %s", voices[i]->languages + 1);
    pthread_mutex_unlock(&engine_lock);
    if (p->sample_rate <= 0) {
        snprintf(error, error_cap, "espeak-ng failed to initialize (is espeak-ng-data installed?)");
        free(p);
        return PRISM_STATUS_FAILED_PRECONDITION;
    }
    snprintf(p->mime, sizeof p->mime, "audio/L16;rate=%d;channels=1", p->sample_rate);
    p->info = pack_info(p, &p->info_len);
    *out_plugin = p;
    return PRISM_STATUS_OK;
}

static prism_status es_describe(prism_plugin *p, const uint8_t **out, size_t *out_len) {
    *out = p->info; *out_len = p->info_len;
    return p->info ? PRISM_STATUS_OK : PRISM_STATUS_INTERNAL;
}

static const char *option(const Prism__Plugin__V1__ProviderRequest *req, const char *key) {
    for (size_t i = 0; i < req->n_options; i++)
        if (strcmp(req->options[i]->key, key) == 0) return req->options[i]->value;
    return NULL;
}

/* The request's text: every text part of every message, joined by spaces. Caller frees. */
static char *request_text(const Prism__Plugin__V1__ProviderRequest *req, size_t *chars) {
    size_t total = 1;
    for (size_t i = 0; i < req->n_messages; i++)
        for (size_t j = 0; j < req->messages[i]->n_parts; j++)
            if (req->messages[i]->parts[j]->kind_case == PRISM__PLUGIN__V1__PART__KIND_TEXT) total += strlen(req->messages[i]->parts[j]->text) + 1;
    char *text = malloc(total);
    if (text == NULL) return NULL;
    text[0] = 0;
    for (size_t i = 0; i < req->n_messages; i++)
        for (size_t j = 0; j < req->messages[i]->n_parts; j++)
            if (req->messages[i]->parts[j]->kind_case == PRISM__PLUGIN__V1__PART__KIND_TEXT) {
                if (text[0]) strcat(text, " ");
                strcat(text, req->messages[i]->parts[j]->text);
            }
    *chars = 0;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++) if ((*c & 0xC0) != 0x80) (*chars)++;
    return text;
}

static int blank(const char *s) {
    for (; *s; s++) if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return 0;
    return 1;
}

static void es_start_call(prism_plugin *p, prism_call *call, const uint8_t *request, size_t len) {
    const prism_host_api *host = p->host;
    Prism__Plugin__V1__ProviderRequest *req = prism__plugin__v1__provider_request__unpack(NULL, len, request);
    if (req == NULL) { host->finish(call, PRISM_STATUS_INTERNAL, "request is not a ProviderRequest"); return; }
    char message[200];
    size_t chars = 0;
    char *text = NULL;
    prism_status status = PRISM_STATUS_OK;
    if (req->operation != PRISM__PLUGIN__V1__OPERATION__OPERATION_SYNTHESIZE) {
        status = PRISM_STATUS_UNIMPLEMENTED; snprintf(message, sizeof message, "local/espeak only synthesizes");
    } else if ((text = request_text(req, &chars)) == NULL) {
        status = PRISM_STATUS_INTERNAL; snprintf(message, sizeof message, "out of memory");
    } else if (blank(text)) {
        status = PRISM_STATUS_INVALID_ARGUMENT; snprintf(message, sizeof message, "text: nothing to synthesize");
    } else if (chars > ES_MAX_CHARS) {
        status = PRISM_STATUS_RESOURCE_EXHAUSTED;
        snprintf(message, sizeof message, "text: %zu characters, over local/espeak's limit of %d", chars, ES_MAX_CHARS);
    }
    const char *voice = option(req, "voice");
    const char *speed = option(req, "speed");
    double factor = speed && *speed ? atof(speed) : 1.0;
    if (status == PRISM_STATUS_OK && (factor <= 0 || ES_RATE_NORMAL * factor < espeakRATE_MINIMUM || ES_RATE_NORMAL * factor > espeakRATE_MAXIMUM)) {
        status = PRISM_STATUS_INVALID_ARGUMENT;
        snprintf(message, sizeof message, "speed: %.2f is outside %.2f to %.2f", factor,
                 (double)espeakRATE_MINIMUM / ES_RATE_NORMAL, (double)espeakRATE_MAXIMUM / ES_RATE_NORMAL);
    }

    struct synth_job job = { host, call, p->mime, PRISM_STATUS_OK, 0 };
    if (status == PRISM_STATUS_OK) {
        pthread_mutex_lock(&engine_lock);
        if (espeak_SetVoiceByName(voice && *voice ? voice : ES_DEFAULT_VOICE) != EE_OK) {
            status = PRISM_STATUS_INVALID_ARGUMENT;
            snprintf(message, sizeof message, "voice: '%s' is not an eSpeak NG voice", voice);
        } else {
            espeak_SetParameter(espeakRATE, (int)(ES_RATE_NORMAL * factor), 0);
            espeak_ERROR err = espeak_Synth(text, strlen(text) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, &job);
            if (err != EE_OK && job.status == PRISM_STATUS_OK) {
                status = PRISM_STATUS_INTERNAL; snprintf(message, sizeof message, "espeak_Synth failed (%d)", (int)err);
            }
        }
        pthread_mutex_unlock(&engine_lock);
        if (status == PRISM_STATUS_OK && job.status != PRISM_STATUS_OK) {
            status = job.status; snprintf(message, sizeof message, status == PRISM_STATUS_CANCELLED ? "cancelled" : "stopped");
        }
    }
    free(text);
    prism__plugin__v1__provider_request__free_unpacked(req, NULL);
    if (status != PRISM_STATUS_OK) { host->finish(call, status, message); return; }

    emit_audio(&job, NULL, 0, 1); /* the end of the one audio item */
    Prism__Plugin__V1__Usage usage = PRISM__PLUGIN__V1__USAGE__INIT;
    usage.input_tokens = chars; /* characters, as the issue asks; there are no tokens here */
    usage.audio_seconds = (double)job.samples / p->sample_rate;
    prism_finish_ok(host, call, &usage);
}

static void es_shutdown(prism_plugin *p) {
    if (p == NULL) return;
    pthread_mutex_lock(&engine_lock);
    espeak_Terminate();
    pthread_mutex_unlock(&engine_lock);
    free(p->info);
    free(p);
}

static const prism_plugin_api api = {
    .abi_major = PRISM_PLUGIN_ABI_MAJOR,
    .abi_minor = PRISM_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(prism_plugin_api),
    .init = es_init,
    .describe = es_describe,
    .start_call = es_start_call,
    .cancel = NULL, /* the synth callback checks is_cancelled every ES_BUFFER_MS of audio */
    .shutdown = es_shutdown,
    /* CPU-bound: calls run on the host's compute pool, one thread per core (ABI 2.0). */
    .call_model = PRISM_CALLS_COMPUTE,
};

PRISM_PLUGIN_EXPORT const prism_plugin_api *prism_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return host_abi_major == PRISM_PLUGIN_ABI_MAJOR ? &api : NULL;
}
