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
 * Threads (the thread map)
 *
 *   Host threads a plugin meets, and what runs on each (the host's threads carry the names in
 *   brackets, as top -H, perf and gdb show them):
 *
 *     loader     the thread that (re)scans the plugin folders: entry, init, describe.
 *     unload     one serial queue for all plugins: shutdown, then dlclose. Never a thread the
 *                plugin started, never inside a host function (not even a finish that ends the
 *                last call), so shutdown may join the plugin's threads, and must: no thread may
 *                still run the plugin's code after it returns.
 *     I/O loops  [prism-io-N] ABI 2.0, one per core: everything of a PRISM_CALLS_NONBLOCKING
 *                call: its start_call, every callback of its HTTP exchanges (prism_http_handler),
 *                its cancel and the work it posts with host->post. A call stays on one loop for
 *                its life, so a call's own state needs no lock. Nothing here may block: no
 *                sleep, no blocking socket, no waiting for another thread, no read_input.
 *     blocking   [prism-worker] the bounded pool (`--plugin-worker-threads`, 1,024 by default):
 *      pool      start_call of a PRISM_CALLS_BLOCKING call (every 1.x plugin's) and work given
 *                to host->run_blocking. May block for as long as a vendor takes.
 *     compute    [prism-compute] one thread per core: start_call of a PRISM_CALLS_COMPUTE call
 *      pool      (CPU-bound engines: OCR, speech recognition, synthesis). May block on CPU work.
 *
 *   The plugin's own threads may call every host function except where noted (read_input from
 *   one reader per call; emit from one thread at a time per call).
 *
 *   Blocking: emit blocks only on a blocking or compute thread (or the plugin's own), while the
 *   call's buffer is full (backpressure). On an I/O loop it never blocks: an event over the
 *   call's budget is still taken, and the host pauses reading the call's HTTP exchanges until
 *   the client has caught up (flow control as "pause reading", not a blocked thread).
 *
 *   Order at the end of a call: cancel (at most once, only before finish) may race with a
 *   finish on another thread; for a NONBLOCKING call both run on its loop, so they never
 *   overlap. After cancel, the host ends every open HTTP exchange of the call with on_done
 *   (PRISM_STATUS_CANCELLED). finish is called exactly once; the library stays loaded until
 *   finish has been called, start_call has returned and every cancel has returned.

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
 *   2.0  non-blocking calls: prism_plugin_api.call_model, and host-owned I/O in the host table:
 *        http_start (an HTTP exchange whose response is streamed to callbacks on the call's I/O
 *        loop; the host pools connections, speaks TLS with session reuse and HTTP/2, owns
 *        deadlines and cancellation), run_blocking and post. A vendor plugin becomes a codec:
 *        build the request, parse each chunk, emit, never block. The major changed because the
 *        contract of start_call did (a NONBLOCKING plugin's start_call runs on an I/O loop), so
 *        a 1.x host must not load such a plugin. A 2.0 host still loads 1.x plugins: it calls
 *        entry with 2.0 and, when refused, with 1.3, and runs their calls as 1.3 did (blocking
 *        pool). A 2.0 plugin that sets no call_model (0) is PRISM_CALLS_BLOCKING, as 1.x.
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

#define PRISM_PLUGIN_ABI_MAJOR 2
#define PRISM_PLUGIN_ABI_MINOR 0

/* The last 1.x version, which a 2.0 host also speaks (see History, 2.0). */
#define PRISM_PLUGIN_ABI_1_MINOR 3

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

/* How the host runs a plugin's calls (prism_plugin_api.call_model, ABI 2.0); see Threads. */
typedef enum prism_call_model {
    /* start_call runs on the blocking pool and may block until the answer is complete (1.x). */
    PRISM_CALLS_BLOCKING = 0,
    /* start_call runs on the call's I/O loop and must return at once; the plugin does its I/O
     * through host->http_start and hands anything that blocks to host->run_blocking. */
    PRISM_CALLS_NONBLOCKING = 1,
    /* start_call runs on the compute pool (one thread per core) and may block on CPU work. */
    PRISM_CALLS_COMPUTE = 2
} prism_call_model;

/* One HTTP header line: NUL-terminated name and value (ABI 2.0). */
typedef struct prism_http_header {
    const char *name;
    const char *value;
} prism_http_header;

/* An HTTP request for host->http_start (ABI 2.0). Everything it points to is copied before
 * http_start returns. */
typedef struct prism_http_request {
    /* "GET", "POST", "DELETE", ... */
    const char *method;
    /* An absolute http:// or https:// URL. */
    const char *url;
    /* Request headers; values may hold secrets (the host never logs them). Send the call's
     * ProviderRequest.traceparent / tracestate along so the vendor joins the trace. */
    const prism_http_header *headers;
    size_t header_count;
    /* The body (NULL with 0 for none). */
    const uint8_t *body;
    size_t body_len;
    /* The longest the exchange may take, in milliseconds; 0 for the call's deadline. The host
     * ends every exchange by the call's deadline, and after 10 minutes when it has none. */
    uint64_t timeout_ms;
} prism_http_request;

/* The plugin's callbacks for one HTTP exchange (ABI 2.0). All run on the call's I/O loop, one
 * at a time, never inside http_start: on_head once (unless the exchange fails before a
 * response), on_body for each piece of the body as it arrives, then on_done exactly once. They
 * must not block. `ctx` is the pointer given to http_start. */
typedef struct prism_http_handler {
    /* The final response's status and headers (names lower-case), valid during the callback.
     * Return 0 to go on, nonzero to stop the exchange (on_done then comes with
     * PRISM_STATUS_CANCELLED). */
    int (*on_head)(void *ctx, uint32_t status, const prism_http_header *headers, size_t count);
    /* `len` bytes of the body, valid during the callback. Return 0 to go on, nonzero to stop. */
    int (*on_body)(void *ctx, const uint8_t *data, size_t len);
    /* The end: PRISM_STATUS_OK when the whole response arrived (whatever its HTTP status);
     * PRISM_STATUS_CANCELLED when the call was cancelled or a callback asked to stop;
     * PRISM_STATUS_DEADLINE_EXCEEDED at the exchange's timeout or the call's deadline;
     * PRISM_STATUS_UNAVAILABLE when the vendor could not be reached or the connection failed
     * (refused, reset, cut mid-body, TLS), with `message` saying how (NUL-terminated, valid
     * during the callback). An exchange that did not end OK is ended at the vendor too, so it
     * stops generating an answer nobody reads: its HTTP/2 stream is reset (the connection's
     * other streams go on), an HTTP/1.1 connection is closed. */
    void (*on_done)(void *ctx, prism_status status, const char *message);
} prism_http_handler;

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
     * memory stays bounded by simply calling emit. Do not hold a lock other calls need. On an
     * I/O loop (ABI 2.0) emit never blocks: the host pauses the call's HTTP exchanges instead
     * (see Threads), so the events of one received chunk may pass the budget.
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

    /* ---- Added in ABI 2.0 (check with PRISM_HOST_HAS). ---- */

    /* Starts an HTTP exchange for `call`; its response comes to `handler`'s callbacks with
     * `ctx` on the call's I/O loop (see prism_http_handler). Any thread. `request` and `handler`
     * are copied before http_start returns; `ctx` must stay valid until on_done, which comes
     * even when the plugin finishes the call first (the host then ends the exchange). The host pools
     * connections per vendor, reuses TLS sessions, speaks HTTP/2 over TLS where the vendor
     * does (an I/O loop multiplexes its exchanges to one origin on one connection), trusts the
     * CAs of SSL_CERT_FILE / SSL_CERT_DIR, pauses reading while the call's events wait for the
     * client (over HTTP/2 by keeping the stream's 256 KiB window closed: on_body may still bring
     * what was in flight), and ends the exchange at its timeout, at the call's deadline and
     * when the call is cancelled.
     *
     * Returns PRISM_STATUS_OK when started (exactly one on_done follows, never inside
     * http_start); PRISM_STATUS_INVALID_ARGUMENT for a missing method or a URL that is not
     * http(s); PRISM_STATUS_CANCELLED when the call was cancelled; PRISM_STATUS_FAILED_PRECONDITION
     * after finish or for a call that is not PRISM_CALLS_NONBLOCKING. No callback follows a
     * failure. */
    prism_status (*http_start)(prism_call *call, const prism_http_request *request,
                               const prism_http_handler *handler, void *ctx);

    /* Runs work(ctx) once on the blocking pool, where it may block (a plugin's multi-step
     * operation written as blocking code; read_input; emit with backpressure). Any thread.
     * Returns PRISM_STATUS_OK when queued, PRISM_STATUS_UNAVAILABLE when the pool's queue is
     * full (work will not run: finish the call), PRISM_STATUS_FAILED_PRECONDITION after finish. */
    prism_status (*run_blocking)(prism_call *call, void (*work)(void *ctx), void *ctx);

    /* Runs work(ctx) once on the call's I/O loop, soon (a result of run_blocking work handed
     * back to the call's loop-confined state). Any thread; same returns as run_blocking, for a
     * PRISM_CALLS_NONBLOCKING call only. */
    prism_status (*post)(prism_call *call, void (*work)(void *ctx), void *ctx);
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
     * valid only until start_call returns (copy what you need later). Where it runs depends on
     * call_model (see Threads): on the blocking or compute pool, where it may block until the
     * answer is complete (that thread is busy until start_call returns), or, for
     * PRISM_CALLS_NONBLOCKING, on the call's I/O loop, where it must return at once after
     * starting its HTTP exchanges (host->http_start) or blocking work (host->run_blocking).
     *
     * The plugin answers with host->emit(call, ...) zero or more times and then exactly one
     * host->finish(call, ...), from this thread or another, before or after start_call returns.
     * Required. */
    void (*start_call)(prism_plugin *plugin, prism_call *call, const uint8_t *request, size_t len);

    /* Asks the plugin to stop `call` soon: abort the vendor request and finish with
     * PRISM_STATUS_CANCELLED. Called at most once, only before finish: for a NONBLOCKING call on
     * its I/O loop (the host then ends its HTTP exchanges with on_done CANCELLED); otherwise from
     * a host thread other than the call's, where it may race with a finish on the call's thread
     * (the plugin must tolerate that). It must not block; it may call finish itself when the call can end at
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

    /* ---- Added in ABI 2.0. ---- */

    /* A prism_call_model: where start_call runs and whether it may block (see Threads). 0 (a
     * table that does not set it) is PRISM_CALLS_BLOCKING. */
    uint32_t call_model;
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
