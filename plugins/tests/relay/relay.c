/* relay: a non-blocking (ABI 2.0) plugin in C for the host's tests, never loaded by default. Its
 * model local/relay sends the last user text to the OpenAI-compatible server named by
 * PRISM_RELAY_URL (POST, a Chat Completions body) through host->http_start and emits each piece of
 * the response body as a text delta, unparsed: the host's I/O loop, flow control and cancellation
 * seen from C, without Swift (whose plugins cannot load into a ThreadSanitizer process). A text
 * starting "ignore-cancel" makes it a plugin that ignores cancellation: its exchange's on_done
 * CANCELLED finishes nothing, and the call is finished late, by the next start_call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prism_plugin.h"
#include "prism/plugin/v1/plugin.pb-c.h"
#include "prism_plugin_support.h"

struct prism_plugin {
    const prism_host_api *host;
    uint8_t *info;
    size_t info_len;
    char *url;
    /* A call whose cancellation was ignored, finished by the next start_call; exchanged
     * atomically, as calls live on different loops. */
    prism_call *late;
};

/* One call's exchange: everything the callbacks need, freed in on_done. Touched only on the
 * call's I/O loop (start_call and the callbacks run there), so it needs no lock. */
struct exchange {
    struct prism_plugin *plugin;
    const prism_host_api *host;
    prism_call *call;
    uint32_t status;
    int stopped;
    int ignore_cancel;
};

static int on_head(void *ctx, uint32_t status, const prism_http_header *headers, size_t count) {
    (void)headers; (void)count;
    ((struct exchange *)ctx)->status = status;
    return 0;
}

static int on_body(void *ctx, const uint8_t *data, size_t len) {
    struct exchange *e = ctx;
    char *text = malloc(len + 1);
    if (text == NULL) return 1;
    memcpy(text, data, len);
    text[len] = 0;
    /* Never blocks on the loop; CANCELLED means stop. */
    prism_status emitted = prism_emit_text(e->host, e->call, text);
    free(text);
    if (emitted != PRISM_STATUS_OK) { e->stopped = 1; return 1; }
    return 0;
}

static void on_done(void *ctx, prism_status status, const char *message) {
    struct exchange *e = ctx;
    if (status == PRISM_STATUS_OK && e->status == 200) {
        prism_finish_ok(e->host, e->call, NULL);
    } else if (status == PRISM_STATUS_OK) {
        char reason[64];
        snprintf(reason, sizeof reason, "the server answered HTTP %u", e->status);
        e->host->finish(e->call, PRISM_STATUS_UNAVAILABLE, reason);
    } else if (status == PRISM_STATUS_CANCELLED && e->ignore_cancel) {
        __atomic_store_n(&e->plugin->late, e->call, __ATOMIC_SEQ_CST);
    } else {
        e->host->finish(e->call, e->stopped ? PRISM_STATUS_CANCELLED : status, message);
    }
    free(e);
}

static const prism_http_handler handler = { on_head, on_body, on_done };

static prism_status relay_init(const prism_host_api *host, const char *config, size_t config_len, prism_plugin **out, char *error, size_t cap) {
    (void)config; (void)config_len;
    const char *url = getenv("PRISM_RELAY_URL");
    if (url == NULL || !PRISM_HOST_HAS(host, http_start)) {
        snprintf(error, cap, "set PRISM_RELAY_URL, and load into a host of ABI 2.0");
        return PRISM_STATUS_FAILED_PRECONDITION;
    }
    struct prism_plugin *p = calloc(1, sizeof *p);
    if (p == NULL) return PRISM_STATUS_INTERNAL;
    p->host = host;
    p->url = strdup(url);
    p->info = prism_pack_local_model("relay", PRISM__PLUGIN__V1__OPERATION__OPERATION_GENERATE,
                                     PRISM__PLUGIN__V1__MODALITY__MODALITY_TEXT, PRISM__PLUGIN__V1__MODALITY__MODALITY_TEXT,
                                     NULL, NULL, "relays text to an OpenAI-compatible server (tests)", &p->info_len);
    *out = p;
    return PRISM_STATUS_OK;
}

static prism_status relay_describe(prism_plugin *p, const uint8_t **out, size_t *len) { *out = p->info; *len = p->info_len; return PRISM_STATUS_OK; }

/* Runs on the call's I/O loop: starts the exchange and returns. */
static void relay_start_call(prism_plugin *p, prism_call *call, const uint8_t *request, size_t len) {
    prism_call *late = __atomic_exchange_n(&p->late, NULL, __ATOMIC_SEQ_CST);
    if (late != NULL) p->host->finish(late, PRISM_STATUS_CANCELLED, "finished late, after ignoring its cancellation");
    Prism__Plugin__V1__ProviderRequest *req = prism__plugin__v1__provider_request__unpack(NULL, len, request);
    if (req == NULL || req->n_messages == 0) {
        p->host->finish(call, PRISM_STATUS_INVALID_ARGUMENT, "no messages");
        if (req) prism__plugin__v1__provider_request__free_unpacked(req, NULL);
        return;
    }
    const char *text = "";
    Prism__Plugin__V1__Message *last = req->messages[req->n_messages - 1];
    for (size_t i = 0; i < last->n_parts; i++)
        if (last->parts[i]->kind_case == PRISM__PLUGIN__V1__PART__KIND_TEXT) text = last->parts[i]->text;
    int ignore_cancel = strncmp(text, "ignore-cancel", strlen("ignore-cancel")) == 0;
    char body[1024];
    snprintf(body, sizeof body, "{\"model\":\"relay\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"%.900s\"}]}", text);
    prism__plugin__v1__provider_request__free_unpacked(req, NULL);

    prism_http_header headers[] = { { "content-type", "application/json" }, { "authorization", "Bearer sk-test" } };
    prism_http_request http = { "POST", p->url, headers, 2, (const uint8_t *)body, strlen(body), 0 };
    struct exchange *e = calloc(1, sizeof *e);
    if (e == NULL) { p->host->finish(call, PRISM_STATUS_INTERNAL, "out of memory"); return; }
    e->plugin = p;
    e->host = p->host;
    e->call = call;
    e->ignore_cancel = ignore_cancel;
    prism_status started = p->host->http_start(call, &http, &handler, e);
    if (started != PRISM_STATUS_OK) {
        free(e);
        p->host->finish(call, started, "the host refused the exchange");
    }
}

static void relay_shutdown(prism_plugin *p) {
    free(p->info);
    free(p->url);
    free(p);
}

static const prism_plugin_api api = {
    .abi_major = PRISM_PLUGIN_ABI_MAJOR,
    .abi_minor = PRISM_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(prism_plugin_api),
    .init = relay_init,
    .describe = relay_describe,
    .start_call = relay_start_call,
    .cancel = NULL,
    .shutdown = relay_shutdown,
    .call_model = PRISM_CALLS_NONBLOCKING,
};

PRISM_PLUGIN_EXPORT const prism_plugin_api *prism_plugin_entry(uint32_t host_major, uint32_t host_minor) {
    (void)host_minor;
    return host_major == PRISM_PLUGIN_ABI_MAJOR ? &api : NULL;
}
