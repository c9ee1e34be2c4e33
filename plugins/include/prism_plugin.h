/* prism_plugin.h: the C ABI between the Prism gateway (the host) and a provider plugin (a
 * shared object the host loads with dlopen). This header and proto/prism/plugin/v1/plugin.proto
 * are all a plugin author needs; plugins/example/ is a complete plugin to copy.
 *
 * ---------------------------------------------------------------------------------------------
 * Overview
 *
 *   The host finds files named `libprism-plugin-NAME.so` in the folders of PRISM_PLUGIN_PATH.
 *   It refuses a file or folder that is writable by group or others or owned by another user
 *   (other than root), then dlopens the file (RTLD_NOW | RTLD_LOCAL) and calls the one exported
 *   symbol, PRISM_PLUGIN_ENTRY_SYMBOL ("prism_plugin_entry"), to get the plugin's function table.
 *
 *   Life cycle, all driven by the host:
 *     1. entry(host ABI version)          -> the plugin's const table (prism_plugin_api)
 *     2. api->init(host, config)          -> an opaque plugin instance
 *     3. api->describe(instance)          -> a serialized prism.plugin.v1.ProviderInfo
 *     4. api->start_call(...) many times, concurrently, each ending with host->finish()
 *        api->cancel(...) for calls the client gave up on
 *     5. api->shutdown(instance)          once no call is in flight; then dlclose.
 *
 *   Requests, descriptions and events are protobuf messages of prism.plugin.v1 serialized to
 *   bytes, so a plugin can be written in any language that can export a C function and speak
 *   protobuf (C with protobuf-c, Swift with @_cdecl, Rust, Go c-shared). Unknown fields are
 *   ignored, so both sides can grow.
 *
 * Versioning (as Triton's backend API)
 *
 *   PRISM_PLUGIN_ABI_MAJOR changes when anything here changes incompatibly; a host loads only
 *   plugins with its own major. PRISM_PLUGIN_ABI_MINOR grows when something is added at the END
 *   of a struct; a host accepts any minor, and reads fields added after the plugin's minor as
 *   absent (NULL / 0). Both tables begin with the ABI version and their own size, which the
 *   other side checks before reading further.
 *
 * Threads
 *
 *   init, describe and shutdown are called on host threads, never concurrently with each
 *   other or with a call: init and describe on the thread that loads the plugin, shutdown on the
 *   host's unload thread (one serial queue for all plugins), never on a thread the plugin
 *   started and never inside a host function (not even a finish that ends the last call). So
 *   shutdown may join the plugin's own threads, and must: dlclose follows it, and no thread may
 *   still run the plugin's code then. start_call is called on a thread of the host's bounded
 *   worker pool, never on a network event loop, and may block (a vendor HTTP request, an OCR
 *   pass); many calls run at once on different threads. cancel is called from another host
 *   thread while the call may be running; the library stays loaded until it returns. Every
 *   function of prism_host_api may be called from any thread, the plugin's own included.
 *
 * History
 *
 *   1.0  the first version.
 *   1.1  prism_host_api.read_input (input that is still arriving, e.g. live audio to transcribe)
 *        and ProviderRequest.input_streamed / Features.streaming_input in plugin.proto.
 *   1.2  vendor batch APIs: Operation OPERATION_BATCH with ProviderRequest.batch (a BatchCall:
 *        submit, get, results, cancel) answered by ProviderEvent.batch_status / batch_result, in
 *        plugin.proto. No function was added; the host sends batch calls only to plugins built
 *        against 1.2 or later whose model declares Features.batch.
 *   1.3  any model id of a configured vendor: ProviderInfo.families in plugin.proto, rows whose
 *        id is a pattern ("claude-*"). A client's "provider/ID" with no known row is served by
 *        the first family matching ID, and start_call gets ProviderRequest.model = ID verbatim
 *        (so a plugin declaring families must pass ids it does not know to its vendor as they
 *        are, escaped where they go into a URL; the host matches only ids of printable ASCII
 *        without spaces, at most 256 bytes). Limits.max_image_short_edge: the host fits images
 *        to it too. No function was added; a 1.2 host ignores both fields.
 *   1.3  (also) Usage.cache_read_tokens / cache_write_tokens in plugin.proto: a vendor's prompt
 *        cache use; plugins before it leave them 0.
 *   1.3  (also) ProviderRequest.traceparent / tracestate in plugin.proto: the W3C trace context
 *        of the host's span for the call, for a plugin to send on as HTTP headers; plugins
 *        before it ignore them, and a host before it leaves them empty.
 *
 * Errors
 *
 *   Functions that can fail return a prism_status: PRISM_STATUS_OK (0) or a failure; failures
 *   use the numbers of gRPC status codes, so the host can map them without a table.
 * ---------------------------------------------------------------------------------------------
 */
#ifndef PRISM_PLUGIN_H
#define PRISM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PRISM_PLUGIN_ABI_MAJOR 1
#define PRISM_PLUGIN_ABI_MINOR 3

/* The name of the one symbol a plugin exports (see prism_plugin_entry_fn). */
#define PRISM_PLUGIN_ENTRY_SYMBOL "prism_plugin_entry"

/* Marks the entry function exported even when the plugin hides its other symbols. */
#if defined(__GNUC__) || defined(__clang__)
#define PRISM_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define PRISM_PLUGIN_EXPORT
#endif

/* The outcome of a call or of a plugin function. The numbers are gRPC's status codes, with
 * the meanings below as seen from a provider; the host turns them into the client's status. */
typedef enum prism_status {
    PRISM_STATUS_OK = 0,
    /* The client cancelled, or the host called cancel(): stop and finish with this. */
    PRISM_STATUS_CANCELLED = 1,
    /* The vendor failed without saying why. Not retried. */
    PRISM_STATUS_UNKNOWN = 2,
    /* The request cannot be served as it is (bad schema, unsupported option). Not retried. */
    PRISM_STATUS_INVALID_ARGUMENT = 3,
    /* The deadline passed (the vendor timed out). Retried while time is left. */
    PRISM_STATUS_DEADLINE_EXCEEDED = 4,
    /* The request is over a vendor limit (context window, file size). Not retried. */
    PRISM_STATUS_RESOURCE_EXHAUSTED = 8,
    /* The plugin is misconfigured or the vendor refused its key (the client sees
     * FAILED_PRECONDITION naming the provider; never UNAUTHENTICATED). Not retried. */
    PRISM_STATUS_FAILED_PRECONDITION = 9,
    /* The vendor rate-limited the call (HTTP 429). Retried with backoff, then another model. */
    PRISM_STATUS_RATE_LIMITED = 10,
    /* The operation or model is not supported by this plugin. Not retried. */
    PRISM_STATUS_UNIMPLEMENTED = 12,
    /* A bug in the plugin or a malformed vendor answer. Not retried. */
    PRISM_STATUS_INTERNAL = 13,
    /* The vendor is down or overloaded (HTTP 5xx, 529, connection refused). Retried. */
    PRISM_STATUS_UNAVAILABLE = 14,
    /* The vendor rejected the plugin's key (HTTP 401/403); reported like FAILED_PRECONDITION. */
    PRISM_STATUS_UNAUTHENTICATED = 16
} prism_status;

/* Log levels for prism_host_api.log. */
typedef enum prism_log_level {
    PRISM_LOG_DEBUG = 0,
    PRISM_LOG_INFO = 1,
    PRISM_LOG_WARNING = 2,
    PRISM_LOG_ERROR = 3
} prism_log_level;

/* An instance of a plugin, made by init and ended by shutdown. Opaque to the host: the plugin
 * defines `struct prism_plugin` (or casts its own type) and owns its memory. */
typedef struct prism_plugin prism_plugin;

/* One call, made by the host before start_call. Opaque to the plugin: it passes the pointer
 * back to the host functions and never dereferences it. Valid from start_call until finish()
 * has been called for it AND start_call has returned, whichever is later; host functions called
 * with it after finish (but before start_call returns) do nothing and say so. */
typedef struct prism_call prism_call;

/* ---------------------------------------------------------------------------------------------
 * The host's table, given to init. The table and the strings it points to are owned by the
 * host and stay valid until shutdown returns; the plugin may keep the pointer.
 * ------------------------------------------------------------------------------------------- */
typedef struct prism_host_api {
    /* The host's ABI version and sizeof(prism_host_api) as the host compiled it. A function
     * added in a later minor is present only if struct_size covers it. */
    uint32_t abi_major;
    uint32_t abi_minor;
    size_t struct_size;

    /* Sends one event of `call` to the client: `event` is `len` bytes of a serialized
     * prism.plugin.v1.ProviderEvent (text delta, tool call, media chunk, usage, finished, error).
     * The host copies the bytes before returning; the plugin keeps ownership of `event`.
     *
     * Backpressure: when the client reads slower than the plugin emits, emit BLOCKS until the
     * host has room again (a bounded number of events and bytes per call), so a plugin's
     * memory stays bounded by simply calling emit. Do not hold a lock other calls need.
     *
     * Returns PRISM_STATUS_OK when the event was accepted; PRISM_STATUS_CANCELLED when the call
     * was cancelled (the event was dropped: stop work and finish); PRISM_STATUS_INVALID_ARGUMENT
     * when the bytes are not a ProviderEvent (the call is failed as INTERNAL: finish it);
     * PRISM_STATUS_FAILED_PRECONDITION when called after finish (a plugin bug; nothing is sent).
     * Thread-safe; events of one call must come from one thread at a time, in order. */
    prism_status (*emit)(prism_call *call, const uint8_t *event, size_t len);

    /* Ends `call`. Exactly once per call, from any thread, during or after start_call.
     * `status` is PRISM_STATUS_OK for a complete answer, else the failure; `message` is a
     * NUL-terminated UTF-8 explanation (or NULL), copied before returning. A failure may be
     * preceded by an emitted ProviderEvent.error with retry details. After finish returns,
     * `call` may no longer be used, except by host functions that will refuse it while
     * start_call has not yet returned (see prism_call). */
    void (*finish)(prism_call *call, prism_status status, const char *message);

    /* 1 if the client cancelled the call or its deadline passed, else 0. Cheap; poll it in
     * long loops that do not emit. Thread-safe. */
    int (*is_cancelled)(prism_call *call);

    /* Writes a line to the host's log, attributed to this plugin. `message` is NUL-terminated
     * UTF-8, copied before returning. Thread-safe. `call` may be NULL (not about one call). */
    void (*log)(const struct prism_host_api *host, prism_call *call, prism_log_level level, const char *message);

    /* Host-private; the plugin must not touch it. */
    void *host_data;

    /* ---- Added in ABI 1.1: present only if struct_size covers it (check with
     * PRISM_HOST_HAS(host, read_input) before calling). ---- */

    /* Pulls the next bytes of a call's streamed input. A call has streamed input only when its
     * ProviderRequest has input_streamed set, which the host does only for a model whose
     * Features.streaming_input is set and a plugin built against ABI 1.1 or later; the request
     * then holds one Media of the type the input has (e.g. "audio/L16;rate=16000", 16 kHz mono
     * signed 16-bit little-endian PCM) with empty data, and the bytes come from here, in order,
     * while the client is still sending them.
     *
     * Copies at most `capacity` bytes into `buffer` (owned by the plugin, written only during the
     * call) and sets *out_len to their number. BLOCKS the calling thread until at least one byte
     * is available, the input has ended, or the call is cancelled; call it from the call's own
     * thread (start_call's, or one the plugin started for the call), one reader per call at a
     * time. Data is never split inside a sample: *out_len is a multiple of the input's sample
     * size (2 bytes for L16 mono) when `capacity` is.
     *
     * Returns PRISM_STATUS_OK with *out_len > 0 for data; PRISM_STATUS_OK with *out_len == 0 once
     * the input has ended (and on every call after that); PRISM_STATUS_CANCELLED when the call
     * was cancelled, also while blocked (stop and finish); PRISM_STATUS_INVALID_ARGUMENT when
     * `buffer` or `out_len` is NULL or `capacity` is 0; PRISM_STATUS_FAILED_PRECONDITION, at
     * once and with *out_len == 0, for a call without streamed input or after finish. The
     * plugin may finish before the input has ended; the rest is then discarded.
     *
     * The host keeps the input it has handed out, so a call retried after a failure (before any
     * content was emitted) reads it again from the start. */
    prism_status (*read_input)(prism_call *call, uint8_t *buffer, size_t capacity, size_t *out_len);
} prism_host_api;

/* True when `host` (a const prism_host_api *) is new enough to have `field`: the plugin may
 * call a function added in a later minor only when this holds. */
#define PRISM_HOST_HAS(host, field) \
    ((host)->struct_size >= offsetof(prism_host_api, field) + sizeof((host)->field) && (host)->field != NULL)

/* ---------------------------------------------------------------------------------------------
 * The plugin's table, returned by the entry function. Owned by the plugin; it must stay valid
 * and unchanged until the library is unloaded (a `static const` table is the usual way).
 * ------------------------------------------------------------------------------------------- */
typedef struct prism_plugin_api {
    /* The plugin's ABI version (PRISM_PLUGIN_ABI_MAJOR/MINOR as it was compiled) and
     * sizeof(prism_plugin_api). The host refuses a major other than its own. */
    uint32_t abi_major;
    uint32_t abi_minor;
    size_t struct_size;

    /* Creates an instance. `host` is valid until shutdown returns (see prism_host_api).
     * `config_json` is `config_len` bytes of a UTF-8 JSON object (not NUL-terminated) with the
     * plugin's settings from the gateway config, "{}" when there are none; valid only during the
     * call. Secrets come from the environment (e.g. ANTHROPIC_API_KEY), never from this JSON.
     *
     * On success: set *out_plugin (may be NULL if the plugin keeps no state) and return
     * PRISM_STATUS_OK. On failure: write a NUL-terminated reason of at most error_cap bytes
     * (including the NUL) into `error` and return the failure; the host lists the plugin as
     * failed with that reason, never calls shutdown for it, and unloads it. Required. */
    prism_status (*init)(const prism_host_api *host, const char *config_json, size_t config_len,
                         prism_plugin **out_plugin, char *error, size_t error_cap);

    /* Describes the provider: sets *out to a serialized prism.plugin.v1.ProviderInfo of *out_len
     * bytes. The bytes are owned by the plugin and must stay valid and unchanged until the next
     * describe call or shutdown (serializing once in init and returning that is fine).
     * Returns PRISM_STATUS_OK, or a failure (the plugin is then listed as failed). Required. */
    prism_status (*describe)(prism_plugin *plugin, const uint8_t **out, size_t *out_len);

    /* Starts one call: `request` is `len` bytes of a serialized prism.plugin.v1.ProviderRequest,
     * valid only until start_call returns (copy what you need later). Runs on a host worker
     * thread and may block until the answer is complete.
     *
     * The plugin answers with host->emit(call, ...) zero or more times and then exactly one
     * host->finish(call, ...), from this thread or another, before or after start_call returns
     * (a plugin with its own I/O loop may return at once and finish later). The call's worker
     * thread is busy until start_call returns. Required. */
    void (*start_call)(prism_plugin *plugin, prism_call *call, const uint8_t *request, size_t len);

    /* Asks the plugin to stop `call` soon: abort the vendor request and finish with
     * PRISM_STATUS_CANCELLED. Called from a host thread other than the call's, at most once,
     * only before finish (it may race with a finish on the call's thread: the plugin must
     * tolerate that). It must not block; it may call finish itself when the call can end at
     * once. Optional (NULL): the plugin then notices through emit's return value and
     * is_cancelled.
     *
     * A call still unfinished a grace period after cancel is abandoned by the host: the client
     * gets its status, later events are dropped, the library stays loaded until finish comes,
     * and the plugin is reported as ignoring cancellation. */
    void (*cancel)(prism_plugin *plugin, prism_call *call);

    /* Ends the instance: called once, after every call has finished and every cancel returned,
     * on the host's unload thread (see Threads), before dlclose. Frees what init made, including
     * the describe bytes, and joins any threads the plugin started. Optional (NULL). */
    void (*shutdown)(prism_plugin *plugin);
} prism_plugin_api;

/* The type of the exported entry symbol:
 *
 *   PRISM_PLUGIN_EXPORT const prism_plugin_api *prism_plugin_entry(uint32_t host_abi_major,
 *                                                                  uint32_t host_abi_minor);
 *
 * Called once after dlopen, on the loading thread. The host passes its own ABI version; a
 * plugin that cannot work with it returns NULL (the host reports "plugin refused host ABI").
 * Otherwise it returns its table (see prism_plugin_api for ownership). Must not block or
 * start threads: do that in init. */
typedef const prism_plugin_api *(*prism_plugin_entry_fn)(uint32_t host_abi_major, uint32_t host_abi_minor);

#ifdef __cplusplus
}
#endif

#endif /* PRISM_PLUGIN_H */
