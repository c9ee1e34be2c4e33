/* local/tesseract: OCR with Tesseract 5 (LSTM engine, language packs from the system's tessdata;
 * "eng" by default). Operation `ocr`: each image of the request (PNG, JPEG or TIFF; the host
 * rasterizes PDF pages and fits images first) becomes text. For every text line it emits a
 * MediaChunk of type TS_LINE_MIME (JSON: text, confidence 0-1, box [left, top, right, bottom]
 * in pixels, block number) followed by a TextDelta of the line, so a host that only joins text
 * gets the plain text; blocks are separated by a blank line. An image with no text gives an
 * empty answer, not an error. Options: "language" (e.g. "eng+deu", as installed).
 *
 * Engines (~0.3 s and ~30 MB each to create) are kept in a small pool, one per concurrent call. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <leptonica/allheaders.h>
#include <tesseract/capi.h>

#include "prism_plugin.h"
#include "prism/plugin/v1/plugin.pb-c.h"
#include "prism_plugin_support.h"

#define TS_DEFAULT_LANGUAGE "eng"
#define TS_POOL_MAX 4
/* 50 MB and 40 megapixels: an A4 page at 600 dpi is 35 megapixels. */
#define TS_MAX_IMAGE_BYTES (50u * 1024 * 1024)
#define TS_MAX_IMAGE_PIXELS 40000000u
#define TS_MAX_IMAGES 64
#define TS_LINE_MIME "application/vnd.prism.ocr-line+json"
#define TS_JSON_CAP 8192

struct engine {
    TessBaseAPI *api;
    char language[64];
};

struct prism_plugin {
    const prism_host_api *host;
    uint8_t *info;
    size_t info_len;
    pthread_mutex_t lock; /* guards pool */
    struct engine *pool[TS_POOL_MAX];
    int pooled;
};

static uint8_t *pack_info(size_t *out_len) {
    static char *mimes[] = { "image/png", "image/jpeg", "image/tiff" };
    Prism__Plugin__V1__Limits limits = PRISM__PLUGIN__V1__LIMITS__INIT;
    limits.max_images = TS_MAX_IMAGES;
    limits.max_image_bytes = TS_MAX_IMAGE_BYTES;
    limits.max_image_pixels = TS_MAX_IMAGE_PIXELS;
    limits.n_image_mime_types = 3; limits.image_mime_types = mimes;
    Prism__Plugin__V1__Features features = PRISM__PLUGIN__V1__FEATURES__INIT;
    features.streaming = 1;
    return prism_pack_local_model("tesseract", PRISM__PLUGIN__V1__OPERATION__OPERATION_OCR,
                                  PRISM__PLUGIN__V1__MODALITY__MODALITY_IMAGE, PRISM__PLUGIN__V1__MODALITY__MODALITY_TEXT,
                                  &limits, &features, "Tesseract OCR (system language packs, eng by default), no network", out_len);
}

/* ---------------------------------------------------------------------------------------------
 * The engine pool: an idle engine of another language is re-initialized rather than kept twice.
 * ------------------------------------------------------------------------------------------- */

static struct engine *take_engine(struct prism_plugin *p, const char *language) {
    pthread_mutex_lock(&p->lock);
    struct engine *e = NULL;
    for (int i = 0; i < p->pooled && e == NULL; i++)
        if (strcmp(p->pool[i]->language, language) == 0) { e = p->pool[i]; p->pool[i] = p->pool[--p->pooled]; }
    if (e == NULL && p->pooled > 0) e = p->pool[--p->pooled];
    pthread_mutex_unlock(&p->lock);
    if (e == NULL) {
        e = calloc(1, sizeof *e);
        if (e == NULL || (e->api = TessBaseAPICreate()) == NULL) { free(e); return NULL; }
    }
    if (strcmp(e->language, language) != 0) {
        e->language[0] = 0;
        if (TessBaseAPIInit3(e->api, NULL, language) != 0) { TessBaseAPIDelete(e->api); free(e); return NULL; }
        snprintf(e->language, sizeof e->language, "%s", language);
    }
    return e;
}

static void return_engine(struct prism_plugin *p, struct engine *e) {
    TessBaseAPIClear(e->api);
    pthread_mutex_lock(&p->lock);
    if (p->pooled < TS_POOL_MAX) { p->pool[p->pooled++] = e; e = NULL; }
    pthread_mutex_unlock(&p->lock);
    if (e) { TessBaseAPIEnd(e->api); TessBaseAPIDelete(e->api); free(e); }
}

/* ---------------------------------------------------------------------------------------------
 * Events.
 * ------------------------------------------------------------------------------------------- */

/* Appends `s` to `out` as a JSON string body. */
static size_t json_escape(char *out, size_t cap, const char *s) {
    size_t n = 0;
    for (; *s && n + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') { out[n++] = '\\'; out[n++] = (char)c; }
        else if (c < 0x20) n += snprintf(out + n, cap - n, "\\u%04x", c);
        else out[n++] = (char)c;
    }
    out[n] = 0;
    return n;
}

static prism_status emit_line(const prism_host_api *host, prism_call *call, const char *line, float confidence,
                              int box[4], int block, int image) {
    char json[TS_JSON_CAP], escaped[TS_JSON_CAP - 256];
    json_escape(escaped, sizeof escaped, line);
    snprintf(json, sizeof json, "{\"image\":%d,\"block\":%d,\"text\":\"%s\",\"confidence\":%.3f,\"box\":[%d,%d,%d,%d]}",
             image, block, escaped, confidence / 100.0, box[0], box[1], box[2], box[3]);
    Prism__Plugin__V1__MediaChunk chunk = PRISM__PLUGIN__V1__MEDIA_CHUNK__INIT;
    chunk.mime_type = TS_LINE_MIME;
    chunk.data.data = (uint8_t *)json; chunk.data.len = strlen(json);
    chunk.last = 1;
    Prism__Plugin__V1__ProviderEvent event = PRISM__PLUGIN__V1__PROVIDER_EVENT__INIT;
    event.event_case = PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_MEDIA;
    event.media = &chunk;
    prism_status status = prism_emit_event(host, call, &event);
    return status == PRISM_STATUS_OK ? prism_emit_text(host, call, line) : status;
}

/* ---------------------------------------------------------------------------------------------
 * One image.
 * ------------------------------------------------------------------------------------------- */

struct job { const prism_host_api *host; prism_call *call; };

static bool cancel_check(void *cancel_this, int words) {
    (void)words;
    struct job *job = cancel_this;
    return job->host->is_cancelled(job->call) != 0;
}

/* OCRs one image, emitting its lines; *chars counts the characters sent. */
static prism_status ocr_image(struct engine *e, struct job *job, const Prism__Plugin__V1__Media *m, int image,
                              int *emitted_any, uint64_t *chars, char *message, size_t cap) {
    PIX *pix = pixReadMem(m->data.data, m->data.len);
    if (pix == NULL) { snprintf(message, cap, "image %d is not an image Tesseract can read (png, jpeg, tiff)", image + 1); return PRISM_STATUS_INVALID_ARGUMENT; }
    if ((uint64_t)pixGetWidth(pix) * pixGetHeight(pix) > TS_MAX_IMAGE_PIXELS) {
        pixDestroy(&pix);
        snprintf(message, cap, "image %d is over local/tesseract's limit of %u pixels", image + 1, TS_MAX_IMAGE_PIXELS);
        return PRISM_STATUS_RESOURCE_EXHAUSTED;
    }
    TessBaseAPISetPageSegMode(e->api, PSM_AUTO_OSD); /* finds the orientation of rotated pages */
    TessBaseAPISetImage2(e->api, pix);
    ETEXT_DESC *monitor = TessMonitorCreate();
    TessMonitorSetCancelFunc(monitor, cancel_check);
    TessMonitorSetCancelThis(monitor, job);
    int failed = TessBaseAPIRecognize(e->api, monitor);
    TessMonitorDelete(monitor);
    prism_status status = PRISM_STATUS_OK;
    if (job->host->is_cancelled(job->call)) { status = PRISM_STATUS_CANCELLED; snprintf(message, cap, "cancelled"); }
    else if (failed) { status = PRISM_STATUS_INTERNAL; snprintf(message, cap, "Tesseract failed on image %d", image + 1); }

    TessResultIterator *it = status == PRISM_STATUS_OK ? TessBaseAPIGetIterator(e->api) : NULL;
    int block = 0;
    while (it != NULL && status == PRISM_STATUS_OK) {
        TessPageIterator *page = TessResultIteratorGetPageIterator(it);
        if (TessPageIteratorIsAtBeginningOf(page, RIL_BLOCK)) block++;
        char *line = TessResultIteratorGetUTF8Text(it, RIL_TEXTLINE);
        if (line != NULL) {
            size_t n = strlen(line);
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == ' ')) line[--n] = 0;
            if (n > 0) {
                int box[4] = { 0, 0, 0, 0 };
                TessPageIteratorBoundingBox(page, RIL_TEXTLINE, &box[0], &box[1], &box[2], &box[3]);
                char text[TS_JSON_CAP / 2];
                /* A blank line between blocks (and images), a newline after every line. */
                int new_block = *emitted_any && TessPageIteratorIsAtBeginningOf(page, RIL_BLOCK);
                snprintf(text, sizeof text, "%s%s\n", new_block ? "\n" : "", line);
                status = emit_line(job->host, job->call, text, TessResultIteratorConfidence(it, RIL_TEXTLINE), box, block, image);
                *emitted_any = 1;
                *chars += n;
            }
            TessDeleteText(line);
        }
        if (!TessResultIteratorNext(it, RIL_TEXTLINE)) break;
    }
    if (it) TessResultIteratorDelete(it);
    if (status != PRISM_STATUS_OK && message[0] == 0) snprintf(message, cap, "stopped");
    pixDestroy(&pix);
    return status;
}

/* ---------------------------------------------------------------------------------------------
 * The ABI functions.
 * ------------------------------------------------------------------------------------------- */

static prism_status ts_init(const prism_host_api *host, const char *config_json, size_t config_len,
                            prism_plugin **out_plugin, char *error, size_t error_cap) {
    (void)config_json; (void)config_len;
    struct prism_plugin *p = calloc(1, sizeof *p);
    if (p == NULL) { snprintf(error, error_cap, "out of memory"); return PRISM_STATUS_INTERNAL; }
    p->host = host;
    pthread_mutex_init(&p->lock, NULL);
    struct engine *e = take_engine(p, TS_DEFAULT_LANGUAGE); /* proves the language pack is there */
    if (e == NULL) {
        snprintf(error, error_cap, "Tesseract cannot load language '%s' (install tesseract-ocr-eng)", TS_DEFAULT_LANGUAGE);
        pthread_mutex_destroy(&p->lock);
        free(p);
        return PRISM_STATUS_FAILED_PRECONDITION;
    }
    return_engine(p, e);
    p->info = pack_info(&p->info_len);
    *out_plugin = p;
    return PRISM_STATUS_OK;
}

static prism_status ts_describe(prism_plugin *p, const uint8_t **out, size_t *out_len) {
    *out = p->info; *out_len = p->info_len;
    return p->info ? PRISM_STATUS_OK : PRISM_STATUS_INTERNAL;
}

static void ts_start_call(prism_plugin *p, prism_call *call, const uint8_t *request, size_t len) {
    const prism_host_api *host = p->host;
    Prism__Plugin__V1__ProviderRequest *req = prism__plugin__v1__provider_request__unpack(NULL, len, request);
    if (req == NULL) { host->finish(call, PRISM_STATUS_INTERNAL, "request is not a ProviderRequest"); return; }
    char message[256] = "";
    prism_status status = PRISM_STATUS_OK;
    const char *language = TS_DEFAULT_LANGUAGE;
    for (size_t i = 0; i < req->n_options; i++)
        if (strcmp(req->options[i]->key, "language") == 0 && *req->options[i]->value) language = req->options[i]->value;
    struct engine *e = NULL;
    if (req->operation != PRISM__PLUGIN__V1__OPERATION__OPERATION_OCR) {
        status = PRISM_STATUS_UNIMPLEMENTED; snprintf(message, sizeof message, "local/tesseract only does ocr");
    } else if ((e = take_engine(p, language)) == NULL) {
        status = PRISM_STATUS_INVALID_ARGUMENT; snprintf(message, sizeof message, "language: '%s' is not installed", language);
    }
    struct job job = { host, call };
    int images = 0, emitted_any = 0;
    uint64_t chars = 0;
    for (size_t i = 0; i < req->n_messages && status == PRISM_STATUS_OK; i++)
        for (size_t j = 0; j < req->messages[i]->n_parts && status == PRISM_STATUS_OK; j++) {
            const Prism__Plugin__V1__Part *part = req->messages[i]->parts[j];
            if (part->kind_case != PRISM__PLUGIN__V1__PART__KIND_MEDIA) continue;
            if (images >= TS_MAX_IMAGES) { status = PRISM_STATUS_RESOURCE_EXHAUSTED; snprintf(message, sizeof message, "more than %d images", TS_MAX_IMAGES); break; }
            status = ocr_image(e, &job, part->media, images++, &emitted_any, &chars, message, sizeof message);
        }
    if (status == PRISM_STATUS_OK && images == 0) { status = PRISM_STATUS_INVALID_ARGUMENT; snprintf(message, sizeof message, "the request has no image"); }
    if (e) return_engine(p, e);
    prism__plugin__v1__provider_request__free_unpacked(req, NULL);
    if (status != PRISM_STATUS_OK) { host->finish(call, status, message); return; }

    Prism__Plugin__V1__Usage usage = PRISM__PLUGIN__V1__USAGE__INIT;
    usage.output_tokens = chars; /* characters recognised */
    prism_finish_ok(host, call, &usage);
}

static void ts_shutdown(prism_plugin *p) {
    if (p == NULL) return;
    for (int i = 0; i < p->pooled; i++) { TessBaseAPIEnd(p->pool[i]->api); TessBaseAPIDelete(p->pool[i]->api); free(p->pool[i]); }
    pthread_mutex_destroy(&p->lock);
    free(p->info);
    free(p);
}

static const prism_plugin_api api = {
    .abi_major = PRISM_PLUGIN_ABI_MAJOR,
    .abi_minor = PRISM_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(prism_plugin_api),
    .init = ts_init,
    .describe = ts_describe,
    .start_call = ts_start_call,
    .cancel = NULL, /* Tesseract's progress monitor polls is_cancelled while it recognises */
    .shutdown = ts_shutdown,
    /* CPU-bound: calls run on the host's compute pool, one thread per core (ABI 2.0). */
    .call_model = PRISM_CALLS_COMPUTE,
};

PRISM_PLUGIN_EXPORT const prism_plugin_api *prism_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return host_abi_major == PRISM_PLUGIN_ABI_MAJOR ? &api : NULL;
}
