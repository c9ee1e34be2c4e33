/* testkit: a provider plugin for the host's tests, never loaded by default (its file name,
 * libprismtest-plugin-testkit.so, does not match the host's libprism-plugin-*.so rule). Each
 * model misbehaves in one way a real vendor plugin can: errors, hangs, floods, slow streams. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "prism_plugin.h"
#include "prism/plugin/v1/plugin.pb-c.h"
#include "prism_plugin_support.h"

/* Most threads the "detached" model keeps at once (calls beyond it finish UNAVAILABLE). */
#define MAX_OWN_THREADS 64

struct prism_plugin {
    const prism_host_api *host;
    uint8_t *info;
    size_t info_len;
    /* Threads the "detached" model started; shutdown joins them. */
    pthread_mutex_t lock;
    pthread_t threads[MAX_OWN_THREADS];
    size_t n_threads;
};

typedef Prism__Plugin__V1__Modality Modality;
typedef Prism__Plugin__V1__Operation Operation;
#define M(x) PRISM__PLUGIN__V1__MODALITY__MODALITY_##x
#define OP(x) PRISM__PLUGIN__V1__OPERATION__OPERATION_##x

static void sleep_ms(long ms) {
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static uint8_t *pack_info(size_t *out_len) {
    static Operation gen[] = { OP(GENERATE) }, transcribe[] = { OP(TRANSCRIBE) }, ocr[] = { OP(OCR) };
    static Modality text[] = { M(TEXT) }, text_image[] = { M(TEXT), M(IMAGE) }, audio[] = { M(AUDIO) }, image[] = { M(IMAGE) };
    Prism__Plugin__V1__Features features = PRISM__PLUGIN__V1__FEATURES__INIT;
    features.streaming = 1; features.tools = 1; features.system_prompt = 1;
    features.batch = getenv("PRISM_TESTKIT_BATCH") != NULL;  /* declared only: no batch calls are served */
    Prism__Plugin__V1__Limits limits = PRISM__PLUGIN__V1__LIMITS__INIT;
    limits.max_images = 4; limits.max_image_long_edge = 512;
    Prism__Plugin__V1__Pricing pricing = PRISM__PLUGIN__V1__PRICING__INIT;
    pricing.input_usd_micros_per_million_tokens = 1000000;
    pricing.output_usd_micros_per_million_tokens = 2000000;

    struct { const char *id; Operation *ops; Modality *in; size_t n_in; } rows[] = {
        { "echo", gen, text_image, 2 }, { "fail", gen, text, 1 }, { "hang", gen, text, 1 },
        { "slow", gen, text, 1 }, { "flood", gen, text, 1 }, { "detached", gen, text, 1 },
        { "transcriber", transcribe, audio, 1 }, { "ocr", ocr, image, 1 },
    };
    enum { N = sizeof rows / sizeof rows[0] };
    Prism__Plugin__V1__ModelInfo models[N], *pointers[N];
    for (size_t i = 0; i < N; i++) {
        prism__plugin__v1__model_info__init(&models[i]);
        models[i].id = (char *)rows[i].id;
        models[i].n_operations = 1; models[i].operations = rows[i].ops;
        models[i].n_inputs = rows[i].n_in; models[i].inputs = rows[i].in;
        models[i].n_outputs = 1; models[i].outputs = text;
        models[i].limits = &limits; models[i].features = &features; models[i].pricing = &pricing;
        pointers[i] = &models[i];
    }
    Prism__Plugin__V1__ProviderInfo info = PRISM__PLUGIN__V1__PROVIDER_INFO__INIT;
    info.name = "testkit"; info.version = "0.1.0"; info.description = "misbehaving models for tests";
    info.n_models = N; info.models = pointers;
    return prism_pack_provider_info(&info, out_len);
}

static void finish_ok(const prism_host_api *host, prism_call *call) {
    Prism__Plugin__V1__Usage usage = PRISM__PLUGIN__V1__USAGE__INIT;
    usage.input_tokens = 10; usage.output_tokens = 5;
    prism_finish_ok(host, call, &usage);
}

/* The first text part of the last message: the test's instruction. */
static const char *instruction(const Prism__Plugin__V1__ProviderRequest *req) {
    for (size_t i = req->n_messages; i-- > 0;)
        for (size_t j = 0; j < req->messages[i]->n_parts; j++)
            if (req->messages[i]->parts[j]->kind_case == PRISM__PLUGIN__V1__PART__KIND_TEXT) return req->messages[i]->parts[j]->text;
    return "";
}

static void run(const prism_host_api *host, prism_call *call, const Prism__Plugin__V1__ProviderRequest *req) {
    const char *model = req->model, *say = instruction(req);
    char line[256];
    if (strcmp(model, "echo") == 0) {
        /* Every text part, then one line per medium: what the host adapted the input into. */
        for (size_t i = 0; i < req->n_messages; i++)
            for (size_t j = 0; j < req->messages[i]->n_parts; j++) {
                const Prism__Plugin__V1__Part *p = req->messages[i]->parts[j];
                if (p->kind_case == PRISM__PLUGIN__V1__PART__KIND_TEXT) snprintf(line, sizeof line, "%s\n", p->text);
                else if (p->kind_case == PRISM__PLUGIN__V1__PART__KIND_MEDIA)
                    snprintf(line, sizeof line, "[%s %zu bytes]\n", p->media->mime_type, p->media->data.len);
                else continue;
                if (prism_emit_text(host, call, line) != PRISM_STATUS_OK) { host->finish(call, PRISM_STATUS_CANCELLED, NULL); return; }
            }
        finish_ok(host, call);
    } else if (strcmp(model, "fail") == 0) {
        if (strcmp(say, "after-content") == 0) {
            prism_emit_text(host, call, "partial answer");
            host->finish(call, PRISM_STATUS_UNAVAILABLE, "vendor connection reset mid-answer");
        } else if (strcmp(say, "invalid") == 0) {
            host->finish(call, PRISM_STATUS_INVALID_ARGUMENT, "the vendor says the request is invalid");
        } else if (strcmp(say, "unauthenticated") == 0) {
            host->finish(call, PRISM_STATUS_UNAUTHENTICATED, "the vendor rejected the key");
        } else if (strcmp(say, "garbage") == 0) {
            prism_status s = host->emit(call, (const uint8_t *)"\xff\xff\xff", 3);
            host->finish(call, s == PRISM_STATUS_OK ? PRISM_STATUS_OK : PRISM_STATUS_INTERNAL, "emitted garbage");
        } else {
            Prism__Plugin__V1__Error error = PRISM__PLUGIN__V1__ERROR__INIT;
            error.message = "rate limited"; error.retryable = 1; error.retry_after_ms = 20; error.http_status = 429;
            Prism__Plugin__V1__ProviderEvent event = PRISM__PLUGIN__V1__PROVIDER_EVENT__INIT;
            event.event_case = PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_ERROR;
            event.error = &error;
            prism_emit_event(host, call, &event);
            host->finish(call, PRISM_STATUS_RATE_LIMITED, "429 Too Many Requests");
        }
    } else if (strcmp(model, "hang") == 0) {
        /* Ignores cancellation entirely for up to `say` seconds (default 5), then finishes. */
        long seconds = atol(say) > 0 ? atol(say) : 5;
        sleep_ms(seconds * 1000);
        prism_emit_text(host, call, "woke up");
        host->finish(call, PRISM_STATUS_OK, NULL);
    } else if (strcmp(model, "slow") == 0) {
        for (int i = 0; i < 400; i++) {
            if (host->is_cancelled(call)) { host->finish(call, PRISM_STATUS_CANCELLED, "cancelled"); return; }
            snprintf(line, sizeof line, "tick %d\n", i);
            if (prism_emit_text(host, call, line) != PRISM_STATUS_OK) { host->finish(call, PRISM_STATUS_CANCELLED, "cancelled"); return; }
            sleep_ms(25);
        }
        finish_ok(host, call);
    } else if (strcmp(model, "flood") == 0) {
        long count = atol(say) > 0 ? atol(say) : 2000;
        char *chunk = malloc(1025);
        memset(chunk, 'x', 1024); chunk[1024] = 0;
        for (long i = 0; i < count; i++)
            if (prism_emit_text(host, call, chunk) != PRISM_STATUS_OK) { free(chunk); host->finish(call, PRISM_STATUS_CANCELLED, NULL); return; }
        free(chunk);
        finish_ok(host, call);
    } else if (strcmp(model, "transcriber") == 0 || strcmp(model, "ocr") == 0) {
        for (size_t i = 0; i < req->n_messages; i++)
            for (size_t j = 0; j < req->messages[i]->n_parts; j++) {
                const Prism__Plugin__V1__Part *p = req->messages[i]->parts[j];
                if (p->kind_case != PRISM__PLUGIN__V1__PART__KIND_MEDIA) continue;
                snprintf(line, sizeof line, "%s of %zu bytes of %s", model[0] == 't' ? "transcript" : "text", p->media->data.len, p->media->mime_type);
                prism_emit_text(host, call, line);
            }
        finish_ok(host, call);
    } else {
        host->finish(call, PRISM_STATUS_UNIMPLEMENTED, "no such testkit model");
    }
}

/* The "detached" model: start_call returns at once and a thread of the plugin's own waits for
 * the cancel, then finishes the call from there, as a plugin with its own I/O loop does. */
struct detached_call { const prism_host_api *host; prism_call *call; };

static void *detached_main(void *arg) {
    struct detached_call *d = arg;
    while (!d->host->is_cancelled(d->call)) sleep_ms(1);
    d->host->finish(d->call, PRISM_STATUS_CANCELLED, "cancelled on the plugin's own thread");
    /* Still running library code after finish: the host must not have unloaded it under us. */
    free(d);
    return NULL;
}

static void start_detached(prism_plugin *p, prism_call *call) {
    struct detached_call *d = malloc(sizeof *d);
    d->host = p->host; d->call = call;
    pthread_mutex_lock(&p->lock);
    int ok = p->n_threads < MAX_OWN_THREADS && pthread_create(&p->threads[p->n_threads], NULL, detached_main, d) == 0;
    if (ok) p->n_threads++;
    pthread_mutex_unlock(&p->lock);
    if (!ok) { free(d); p->host->finish(call, PRISM_STATUS_UNAVAILABLE, "testkit: no thread for the detached call"); }
}

static prism_status tk_init(const prism_host_api *host, const char *config, size_t config_len, prism_plugin **out, char *error, size_t cap) {
    (void)config; (void)config_len;
    if (getenv("PRISM_TESTKIT_FAIL_INIT")) { snprintf(error, cap, "asked to fail by PRISM_TESTKIT_FAIL_INIT"); return PRISM_STATUS_FAILED_PRECONDITION; }
    struct prism_plugin *p = calloc(1, sizeof *p);
    p->host = host;
    p->info = pack_info(&p->info_len);
    pthread_mutex_init(&p->lock, NULL);
    *out = p;
    return PRISM_STATUS_OK;
}

static prism_status tk_describe(prism_plugin *p, const uint8_t **out, size_t *len) { *out = p->info; *len = p->info_len; return PRISM_STATUS_OK; }

static void tk_start_call(prism_plugin *p, prism_call *call, const uint8_t *request, size_t len) {
    Prism__Plugin__V1__ProviderRequest *req = prism__plugin__v1__provider_request__unpack(NULL, len, request);
    if (req == NULL) { p->host->finish(call, PRISM_STATUS_INTERNAL, "bad request bytes"); return; }
    if (strcmp(req->model, "detached") == 0) start_detached(p, call);
    else run(p->host, call, req);
    prism__plugin__v1__provider_request__free_unpacked(req, NULL);
}

/* Joins the detached threads, as a plugin with threads of its own must before dlclose. The host
 * runs shutdown on a thread of its own: run on one of ours, the join would wait for itself. */
static void tk_shutdown(prism_plugin *p) {
    for (size_t i = 0; i < p->n_threads; i++) {
        if (pthread_equal(p->threads[i], pthread_self())) {
            fprintf(stderr, "testkit: shutdown called on the plugin's own thread (inside finish)\n");
            abort();
        }
        pthread_join(p->threads[i], NULL);
    }
    pthread_mutex_destroy(&p->lock);
    free(p->info);
    free(p);
}

static prism_plugin_api api = {
    PRISM_PLUGIN_ABI_MAJOR, PRISM_PLUGIN_ABI_MINOR, sizeof(prism_plugin_api),
    tk_init, tk_describe, tk_start_call, NULL, tk_shutdown,
};

PRISM_PLUGIN_EXPORT const prism_plugin_api *prism_plugin_entry(uint32_t major, uint32_t minor) {
    (void)minor;
    /* PRISM_TESTKIT_ABI=1.N: pose as a plugin built against ABI 1.N, which (as 1.x plugins do)
     * refuses a host of another major, so a 2.0 host must offer it 1.3. */
    const char *posed = getenv("PRISM_TESTKIT_ABI");
    if (posed && posed[0] == '1' && posed[1] == '.') {
        api.abi_major = 1;
        api.abi_minor = (uint32_t)atoi(posed + 2);
        return major == 1 ? &api : NULL;
    }
    api.abi_major = PRISM_PLUGIN_ABI_MAJOR;
    api.abi_minor = PRISM_PLUGIN_ABI_MINOR;
    return major == PRISM_PLUGIN_ABI_MAJOR ? &api : NULL;
}
