/* shim.h: libcurl for Swift. curl_easy_setopt, curl_easy_getinfo, curl_multi_setopt and
 * curl_share_setopt are variadic, which Swift cannot call, so each argument type gets a typed
 * inline wrapper here; besides those, only prism_curl_keep_tls_session, which reaches into the
 * OpenSSL object under a transfer. */
#ifndef PRISM_CCURL_SHIM_H
#define PRISM_CCURL_SHIM_H

#include <curl/curl.h>
/* The host I/O loop drives curl's socket API from an epoll set (HostIOLoop.swift). */
#include <sys/epoll.h>

typedef size_t (*prism_curl_data_fn)(char *data, size_t size, size_t count, void *context);

static inline CURLcode prism_curl_set_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode prism_curl_set_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode prism_curl_set_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode prism_curl_set_size(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode prism_curl_set_data_fn(CURL *h, CURLoption o, prism_curl_data_fn v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode prism_curl_get_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode prism_curl_get_string(CURL *h, CURLINFO i, char **v) { return curl_easy_getinfo(h, i, v); }
static inline CURLcode prism_curl_set_opensocket_fn(CURL *h, curl_opensocket_callback v) { return curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, v); }

/* From <openssl/ssl.h> (not included: its types would clash with the COpenSSL module's copy). */
struct ssl_st;
void SSL_set_shutdown(struct ssl_st *ssl, int mode);

/* Marks the TLS connection under `h` as closed properly (SSL_SENT_SHUTDOWN, 1 in ssl.h) before the
 * caller has curl close it mid-transfer. OpenSSL otherwise marks the connection's session not
 * resumable when it is freed, and that session is the one curl keeps for the host, so the next
 * connection would need a full handshake. RFC 5246 section 7.2.1 and TLS 1.3 allow resuming after
 * such a close. Call while the transfer is still attached (CURLINFO_TLS_SSL_PTR is valid only then);
 * does nothing for a plain-HTTP transfer or another TLS backend. */
static inline void prism_curl_keep_tls_session(CURL *h) {
    struct curl_tlssessioninfo *info = NULL;
    if(curl_easy_getinfo(h, CURLINFO_TLS_SSL_PTR, &info) == CURLE_OK && info &&
       info->backend == CURLSSLBACKEND_OPENSSL && info->internals)
        SSL_set_shutdown((struct ssl_st *)info->internals, 1);
}

static inline CURLMcode prism_curl_multi_set_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }
static inline CURLMcode prism_curl_multi_set_pointer(CURLM *m, CURLMoption o, void *v) { return curl_multi_setopt(m, o, v); }
static inline CURLMcode prism_curl_multi_set_socket_fn(CURLM *m, curl_socket_callback v) { return curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, v); }
static inline CURLMcode prism_curl_multi_set_timer_fn(CURLM *m, curl_multi_timer_callback v) { return curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, v); }

static inline CURLSHcode prism_curl_share_set_long(CURLSH *s, CURLSHoption o, long v) { return curl_share_setopt(s, o, v); }
static inline CURLSHcode prism_curl_share_set_pointer(CURLSH *s, CURLSHoption o, void *v) { return curl_share_setopt(s, o, v); }
static inline CURLSHcode prism_curl_share_set_lock_fn(CURLSH *s, curl_lock_function v) { return curl_share_setopt(s, CURLSHOPT_LOCKFUNC, v); }
static inline CURLSHcode prism_curl_share_set_unlock_fn(CURLSH *s, curl_unlock_function v) { return curl_share_setopt(s, CURLSHOPT_UNLOCKFUNC, v); }

#endif
