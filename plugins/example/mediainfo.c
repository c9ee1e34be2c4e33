/* local/mediainfo: the example provider plugin, and the template to copy for a new one. It
 * "generates" an answer made of the facts of the media it is given (format, size, pixels,
 * pages, duration), streamed one line per part, using only prism_plugin.h and protobuf-c.
 *
 * Build alone:  see plugins/example/Makefile (any C compiler, protoc-c, libprotobuf-c).
 * Built by SwiftPM as the product `prism-plugin-example` (libprism-plugin-example.so). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prism_plugin.h"
#include "prism/plugin/v1/plugin.pb-c.h"

struct prism_plugin {
    const prism_host_api *host;
    uint8_t *info;      /* the packed ProviderInfo, made once in init, freed in shutdown */
    size_t info_len;
};

/* ---------------------------------------------------------------------------------------------
 * describe: two models, so that the host's adaptation can be seen at work. `mediainfo` takes
 * everything; `mediainfo-lite` takes only text and small JPEG/PNG images, so a PDF sent to it
 * arrives as page images plus the text layer, and a large photo arrives downscaled.
 * ------------------------------------------------------------------------------------------- */

static uint8_t *pack_info(size_t *out_len) {
    Prism__Plugin__V1__ProviderInfo info = PRISM__PLUGIN__V1__PROVIDER_INFO__INIT;
    info.name = "local";
    info.version = "1.0.0";
    info.description = "Example plugin: answers with the facts of the media it is given";

    static Prism__Plugin__V1__Operation generate[] = { PRISM__PLUGIN__V1__OPERATION__OPERATION_GENERATE };
    static Prism__Plugin__V1__Modality text_out[] = { PRISM__PLUGIN__V1__MODALITY__MODALITY_TEXT };
    static Prism__Plugin__V1__Modality all_in[] = {
        PRISM__PLUGIN__V1__MODALITY__MODALITY_TEXT, PRISM__PLUGIN__V1__MODALITY__MODALITY_IMAGE,
        PRISM__PLUGIN__V1__MODALITY__MODALITY_PDF, PRISM__PLUGIN__V1__MODALITY__MODALITY_AUDIO,
        PRISM__PLUGIN__V1__MODALITY__MODALITY_VIDEO };
    static Prism__Plugin__V1__Modality lite_in[] = {
        PRISM__PLUGIN__V1__MODALITY__MODALITY_TEXT, PRISM__PLUGIN__V1__MODALITY__MODALITY_IMAGE };
    static char *lite_types[] = { "image/jpeg", "image/png" };

    Prism__Plugin__V1__Features features = PRISM__PLUGIN__V1__FEATURES__INIT;
    features.streaming = 1;
    features.system_prompt = 1;

    Prism__Plugin__V1__Limits full_limits = PRISM__PLUGIN__V1__LIMITS__INIT;
    full_limits.max_images = 16;
    full_limits.max_image_bytes = 5 * 1024 * 1024;
    full_limits.max_image_long_edge = 2048;
    full_limits.max_pdf_pages = 100;
    full_limits.max_pdf_bytes = 32 * 1024 * 1024;
    full_limits.max_request_bytes = 64 * 1024 * 1024;

    Prism__Plugin__V1__Limits lite_limits = PRISM__PLUGIN__V1__LIMITS__INIT;
    lite_limits.max_images = 8;
    lite_limits.max_image_bytes = 512 * 1024;
    lite_limits.max_image_long_edge = 768;
    lite_limits.n_image_mime_types = 2;
    lite_limits.image_mime_types = lite_types;
    lite_limits.max_request_bytes = 8 * 1024 * 1024;

    Prism__Plugin__V1__ModelInfo full = PRISM__PLUGIN__V1__MODEL_INFO__INIT;
    full.id = "mediainfo";
    full.n_operations = 1; full.operations = generate;
    full.n_inputs = 5; full.inputs = all_in;
    full.n_outputs = 1; full.outputs = text_out;
    full.limits = &full_limits;
    full.features = &features;

    Prism__Plugin__V1__ModelInfo lite = PRISM__PLUGIN__V1__MODEL_INFO__INIT;
    lite.id = "mediainfo-lite";
    lite.n_operations = 1; lite.operations = generate;
    lite.n_inputs = 2; lite.inputs = lite_in;
    lite.n_outputs = 1; lite.outputs = text_out;
    lite.limits = &lite_limits;
    lite.features = &features;

    Prism__Plugin__V1__ModelInfo *models[] = { &full, &lite };
    info.n_models = 2;
    info.models = models;

    size_t len = prism__plugin__v1__provider_info__get_packed_size(&info);
    uint8_t *bytes = malloc(len ? len : 1);
    if (bytes == NULL) return NULL;
    *out_len = prism__plugin__v1__provider_info__pack(&info, bytes);
    return bytes;
}

/* ---------------------------------------------------------------------------------------------
 * The facts of one medium, from its header bytes only.
 * ------------------------------------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]; }
static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[1] << 8 | p[0]); }

/* Width and height of a PNG, JPEG or GIF; 0 when the header says nothing we read. */
static int image_size(const uint8_t *d, size_t n, uint32_t *w, uint32_t *h) {
    if (n >= 24 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) {
        *w = be32(d + 16); *h = be32(d + 20); return 1;
    }
    if (n >= 10 && memcmp(d, "GIF8", 4) == 0) {
        *w = le16(d + 6); *h = le16(d + 8); return 1;
    }
    if (n >= 4 && d[0] == 0xFF && d[1] == 0xD8) {
        size_t i = 2;
        while (i + 9 < n) {
            if (d[i] != 0xFF) { i++; continue; }
            uint8_t marker = d[i + 1];
            if (marker == 0xFF) { i++; continue; }
            size_t seglen = (size_t)d[i + 2] << 8 | d[i + 3];
            /* SOF0..SOF15 carry the size, except DHT (C4), JPG (C8) and DAC (CC). */
            if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
                *h = (uint32_t)d[i + 5] << 8 | d[i + 6];
                *w = (uint32_t)d[i + 7] << 8 | d[i + 8];
                return 1;
            }
            i += 2 + seglen;
        }
    }
    return 0;
}

/* Pages of a PDF, counted as "/Type /Page" objects (not "/Pages"): right for ordinary files. */
static unsigned pdf_pages(const uint8_t *d, size_t n) {
    unsigned pages = 0;
    for (size_t i = 0; i + 10 < n; i++) {
        if (d[i] != '/' || memcmp(d + i, "/Type", 5) != 0) continue;
        size_t j = i + 5;
        while (j < n && (d[j] == ' ' || d[j] == '\r' || d[j] == '\n')) j++;
        if (j + 5 <= n && memcmp(d + j, "/Page", 5) == 0 && (j + 5 == n || d[j + 5] != 's')) pages++;
    }
    return pages;
}

/* Seconds, rate and channels of a PCM WAV; 0 when it is not one. */
static int wav_facts(const uint8_t *d, size_t n, double *seconds, uint32_t *rate, uint16_t *channels) {
    if (n < 12 || memcmp(d, "RIFF", 4) != 0 || memcmp(d + 8, "WAVE", 4) != 0) return 0;
    uint32_t byte_rate = 0;
    for (size_t i = 12; i + 8 <= n;) {
        uint32_t size = le32(d + i + 4);
        if (memcmp(d + i, "fmt ", 4) == 0 && i + 20 <= n) {
            *channels = le16(d + i + 10); *rate = le32(d + i + 12); byte_rate = le32(d + i + 16);
        } else if (memcmp(d + i, "data", 4) == 0 && byte_rate > 0) {
            size_t available = n - (i + 8);
            *seconds = (double)(size < available ? size : available) / byte_rate;
            return 1;
        }
        i += 8 + size + (size & 1);
    }
    return 0;
}

static void describe_media(const Prism__Plugin__V1__Media *m, char *line, size_t cap) {
    const uint8_t *d = m->data.data ? m->data.data : (const uint8_t *)"";
    size_t n = m->data.len;
    const char *type = m->mime_type && *m->mime_type ? m->mime_type : "application/octet-stream";
    const char *name = m->name && *m->name ? m->name : "";
    uint32_t w = 0, h = 0, rate = 0;
    uint16_t channels = 0;
    double seconds = 0;
    if (strncmp(type, "image/", 6) == 0 && image_size(d, n, &w, &h)) {
        snprintf(line, cap, "%s%s%s: %ux%u pixels, %zu bytes\n", name, *name ? " " : "", type, w, h, n);
    } else if (strcmp(type, "application/pdf") == 0) {
        snprintf(line, cap, "%s%s%s: %u pages, %zu bytes\n", name, *name ? " " : "", type, pdf_pages(d, n), n);
    } else if (strncmp(type, "audio/", 6) == 0 && wav_facts(d, n, &seconds, &rate, &channels)) {
        snprintf(line, cap, "%s%s%s: %.2f seconds, %u Hz, %u channels, %zu bytes\n", name, *name ? " " : "", type,
                 seconds, rate, channels, n);
    } else {
        snprintf(line, cap, "%s%s%s: %zu bytes\n", name, *name ? " " : "", type, n);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Emitting events: pack a ProviderEvent and hand the bytes to the host, which copies them.
 * ------------------------------------------------------------------------------------------- */

static prism_status emit(const prism_host_api *host, prism_call *call, const Prism__Plugin__V1__ProviderEvent *event) {
    uint8_t stack[1024];
    size_t len = prism__plugin__v1__provider_event__get_packed_size(event);
    uint8_t *bytes = len <= sizeof stack ? stack : malloc(len);
    if (bytes == NULL) return PRISM_STATUS_INTERNAL;
    prism__plugin__v1__provider_event__pack(event, bytes);
    prism_status status = host->emit(call, bytes, len);
    if (bytes != stack) free(bytes);
    return status;
}

static prism_status emit_text(const prism_host_api *host, prism_call *call, const char *text) {
    Prism__Plugin__V1__TextDelta delta = PRISM__PLUGIN__V1__TEXT_DELTA__INIT;
    delta.text = (char *)text;
    Prism__Plugin__V1__ProviderEvent event = PRISM__PLUGIN__V1__PROVIDER_EVENT__INIT;
    event.event_case = PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_TEXT;
    event.text = &delta;
    return emit(host, call, &event);
}

/* ---------------------------------------------------------------------------------------------
 * The ABI functions.
 * ------------------------------------------------------------------------------------------- */

static prism_status mediainfo_init(const prism_host_api *host, const char *config_json, size_t config_len,
                                   prism_plugin **out_plugin, char *error, size_t error_cap) {
    (void)config_json; (void)config_len;
    struct prism_plugin *plugin = calloc(1, sizeof *plugin);
    if (plugin == NULL) { snprintf(error, error_cap, "out of memory"); return PRISM_STATUS_INTERNAL; }
    plugin->host = host;
    plugin->info = pack_info(&plugin->info_len);
    if (plugin->info == NULL) { free(plugin); snprintf(error, error_cap, "out of memory"); return PRISM_STATUS_INTERNAL; }
    host->log(host, NULL, PRISM_LOG_INFO, "mediainfo ready");
    *out_plugin = plugin;
    return PRISM_STATUS_OK;
}

static prism_status mediainfo_describe(prism_plugin *plugin, const uint8_t **out, size_t *out_len) {
    *out = plugin->info;
    *out_len = plugin->info_len;
    return PRISM_STATUS_OK;
}

static void mediainfo_start_call(prism_plugin *plugin, prism_call *call, const uint8_t *request, size_t len) {
    const prism_host_api *host = plugin->host;
    Prism__Plugin__V1__ProviderRequest *req = prism__plugin__v1__provider_request__unpack(NULL, len, request);
    if (req == NULL) { host->finish(call, PRISM_STATUS_INTERNAL, "request is not a ProviderRequest"); return; }
    if (req->operation != PRISM__PLUGIN__V1__OPERATION__OPERATION_GENERATE) {
        prism__plugin__v1__provider_request__free_unpacked(req, NULL);
        host->finish(call, PRISM_STATUS_UNIMPLEMENTED, "mediainfo only generates");
        return;
    }

    char line[512];
    uint64_t in_chars = strlen(req->system), out_chars = 0;
    prism_status status = PRISM_STATUS_OK;
    for (size_t i = 0; i < req->n_messages && status == PRISM_STATUS_OK; i++) {
        const Prism__Plugin__V1__Message *message = req->messages[i];
        for (size_t j = 0; j < message->n_parts && status == PRISM_STATUS_OK; j++) {
            const Prism__Plugin__V1__Part *part = message->parts[j];
            switch (part->kind_case) {
            case PRISM__PLUGIN__V1__PART__KIND_TEXT:
                in_chars += strlen(part->text);
                snprintf(line, sizeof line, "text: %zu characters\n", strlen(part->text));
                break;
            case PRISM__PLUGIN__V1__PART__KIND_MEDIA:
                describe_media(part->media, line, sizeof line);
                break;
            default:
                snprintf(line, sizeof line, "(a tool call or result)\n");
                break;
            }
            out_chars += strlen(line);
            /* emit blocks while the client is slow, and says when the call was cancelled. */
            status = emit_text(host, call, line);
        }
    }
    prism__plugin__v1__provider_request__free_unpacked(req, NULL);
    if (status != PRISM_STATUS_OK) { host->finish(call, status, "stopped"); return; }

    Prism__Plugin__V1__Usage usage = PRISM__PLUGIN__V1__USAGE__INIT;
    usage.input_tokens = (in_chars + 3) / 4;
    usage.output_tokens = (out_chars + 3) / 4;
    Prism__Plugin__V1__ProviderEvent event = PRISM__PLUGIN__V1__PROVIDER_EVENT__INIT;
    event.event_case = PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_USAGE;
    event.usage = &usage;
    emit(host, call, &event);

    Prism__Plugin__V1__Finish finished = PRISM__PLUGIN__V1__FINISH__INIT;
    finished.stop_reason = PRISM__PLUGIN__V1__STOP_REASON__STOP_END_TURN;
    event.event_case = PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_FINISHED;
    event.finished = &finished;
    emit(host, call, &event);
    host->finish(call, PRISM_STATUS_OK, NULL);
}

static void mediainfo_shutdown(prism_plugin *plugin) {
    if (plugin == NULL) return;
    free(plugin->info);
    free(plugin);
}

static const prism_plugin_api api = {
    .abi_major = PRISM_PLUGIN_ABI_MAJOR,
    .abi_minor = PRISM_PLUGIN_ABI_MINOR,
    .struct_size = sizeof(prism_plugin_api),
    .init = mediainfo_init,
    .describe = mediainfo_describe,
    .start_call = mediainfo_start_call,
    .cancel = NULL, /* each part is quick; emit's return value is enough to notice a cancel */
    .shutdown = mediainfo_shutdown,
};

PRISM_PLUGIN_EXPORT const prism_plugin_api *prism_plugin_entry(uint32_t host_abi_major, uint32_t host_abi_minor) {
    (void)host_abi_minor;
    return host_abi_major == PRISM_PLUGIN_ABI_MAJOR ? &api : NULL;
}
