/* Helpers for Prism's own provider plugins written in C with protobuf-c: packing the messages the
 * ABI carries (ProviderInfo for describe, ProviderEvent for emit) and ending a call the usual way.
 * Optional: a plugin needs only prism_plugin.h and the .proto files; these save the boilerplate.
 * Every function may be called from any thread. */
#ifndef PRISM_PLUGIN_SUPPORT_H
#define PRISM_PLUGIN_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include "prism_plugin.h"
#include "prism/plugin/v1/plugin.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Packs `info` for describe(). Returns a malloc'ed buffer the plugin owns (and frees at
 * shutdown), its length in *out_len; NULL if memory runs out. */
uint8_t *prism_pack_provider_info(const Prism__Plugin__V1__ProviderInfo *info, size_t *out_len);

/* Packs the ProviderInfo of a "local" engine with one model that does one operation from one
 * modality to another (the shape of Prism's tesseract, pocketsphinx and espeak plugins); `limits`
 * and `features` may be NULL. Returns what prism_pack_provider_info returns. */
uint8_t *prism_pack_local_model(const char *model_id, Prism__Plugin__V1__Operation operation,
                                Prism__Plugin__V1__Modality input, Prism__Plugin__V1__Modality output,
                                Prism__Plugin__V1__Limits *limits, Prism__Plugin__V1__Features *features,
                                const char *description, size_t *out_len);

/* Packs `event` and hands it to host->emit, which copies it. Returns emit's status (CANCELLED
 * once the call is cancelled), or PRISM_STATUS_INTERNAL if memory runs out. */
prism_status prism_emit_event(const prism_host_api *host, prism_call *call,
                              const Prism__Plugin__V1__ProviderEvent *event);

/* Emits one text delta. */
prism_status prism_emit_text(const prism_host_api *host, prism_call *call, const char *text);

/* Ends a successful call: emits `usage` (unless NULL), a Finish with STOP_END_TURN, then
 * host->finish(call, PRISM_STATUS_OK, NULL). */
void prism_finish_ok(const prism_host_api *host, prism_call *call, const Prism__Plugin__V1__Usage *usage);

#ifdef __cplusplus
}
#endif

#endif
