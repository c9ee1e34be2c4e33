/* The helpers of prism_plugin_support.h: protobuf-c packing for describe() and emit(). */
#include <stdlib.h>

#include "prism_plugin_support.h"

/* Events are small (a text delta, a segment); most pack on the stack. */
enum { STACK_EVENT_BYTES = 1024 };

uint8_t *prism_pack_provider_info(const Prism__Plugin__V1__ProviderInfo *info, size_t *out_len) {
    size_t len = prism__plugin__v1__provider_info__get_packed_size(info);
    uint8_t *bytes = malloc(len ? len : 1);
    if (bytes == NULL) return NULL;
    *out_len = prism__plugin__v1__provider_info__pack(info, bytes);
    return bytes;
}

uint8_t *prism_pack_local_model(const char *model_id, Prism__Plugin__V1__Operation operation,
                                Prism__Plugin__V1__Modality input, Prism__Plugin__V1__Modality output,
                                Prism__Plugin__V1__Limits *limits, Prism__Plugin__V1__Features *features,
                                const char *description, size_t *out_len) {
    Prism__Plugin__V1__ModelInfo model = PRISM__PLUGIN__V1__MODEL_INFO__INIT;
    model.id = (char *)model_id;
    model.n_operations = 1; model.operations = &operation;
    model.n_inputs = 1; model.inputs = &input;
    model.n_outputs = 1; model.outputs = &output;
    model.limits = limits; model.features = features;
    Prism__Plugin__V1__ModelInfo *models[] = { &model };
    Prism__Plugin__V1__ProviderInfo info = PRISM__PLUGIN__V1__PROVIDER_INFO__INIT;
    info.name = "local";
    info.version = "1.0.0";
    info.description = (char *)description;
    info.n_models = 1; info.models = models;
    return prism_pack_provider_info(&info, out_len);
}

prism_status prism_emit_event(const prism_host_api *host, prism_call *call,
                              const Prism__Plugin__V1__ProviderEvent *event) {
    uint8_t stack[STACK_EVENT_BYTES];
    size_t len = prism__plugin__v1__provider_event__get_packed_size(event);
    uint8_t *bytes = len <= sizeof stack ? stack : malloc(len);
    if (bytes == NULL) return PRISM_STATUS_INTERNAL;
    prism__plugin__v1__provider_event__pack(event, bytes);
    prism_status status = host->emit(call, bytes, len);
    if (bytes != stack) free(bytes);
    return status;
}

prism_status prism_emit_text(const prism_host_api *host, prism_call *call, const char *text) {
    Prism__Plugin__V1__TextDelta delta = PRISM__PLUGIN__V1__TEXT_DELTA__INIT;
    delta.text = (char *)text;
    Prism__Plugin__V1__ProviderEvent event = PRISM__PLUGIN__V1__PROVIDER_EVENT__INIT;
    event.event_case = PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_TEXT;
    event.text = &delta;
    return prism_emit_event(host, call, &event);
}

void prism_finish_ok(const prism_host_api *host, prism_call *call, const Prism__Plugin__V1__Usage *usage) {
    Prism__Plugin__V1__ProviderEvent event = PRISM__PLUGIN__V1__PROVIDER_EVENT__INIT;
    if (usage != NULL) {
        event.event_case = PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_USAGE;
        event.usage = (Prism__Plugin__V1__Usage *)usage;
        prism_emit_event(host, call, &event);
    }
    Prism__Plugin__V1__Finish finished = PRISM__PLUGIN__V1__FINISH__INIT;
    finished.stop_reason = PRISM__PLUGIN__V1__STOP_REASON__STOP_END_TURN;
    event.event_case = PRISM__PLUGIN__V1__PROVIDER_EVENT__EVENT_FINISHED;
    event.finished = &finished;
    prism_emit_event(host, call, &event);
    host->finish(call, PRISM_STATUS_OK, NULL);
}
