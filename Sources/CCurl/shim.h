/* shim.h: libcurl for Swift. curl_easy_setopt, curl_easy_getinfo, curl_multi_setopt and
 * curl_share_setopt are variadic, which Swift cannot call, so each argument type gets a typed
 * inline wrapper here; nothing else lives here. */
#ifndef PRISM_CCURL_SHIM_H
#define PRISM_CCURL_SHIM_H

#include <curl/curl.h>

typedef size_t (*prism_curl_data_fn)(char *data, size_t size, size_t count, void *context);
typedef int (*prism_curl_progress_fn)(void *context, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow);

static inline CURLcode prism_curl_set_long(CURL *h, CURLoption o, long v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode prism_curl_set_string(CURL *h, CURLoption o, const char *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode prism_curl_set_pointer(CURL *h, CURLoption o, void *v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode prism_curl_set_size(CURL *h, CURLoption o, curl_off_t v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode prism_curl_set_data_fn(CURL *h, CURLoption o, prism_curl_data_fn v) { return curl_easy_setopt(h, o, v); }
static inline CURLcode prism_curl_set_progress_fn(CURL *h, prism_curl_progress_fn v) { return curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, v); }
static inline CURLcode prism_curl_get_long(CURL *h, CURLINFO i, long *v) { return curl_easy_getinfo(h, i, v); }

static inline CURLMcode prism_curl_multi_set_long(CURLM *m, CURLMoption o, long v) { return curl_multi_setopt(m, o, v); }

static inline CURLSHcode prism_curl_share_set_long(CURLSH *s, CURLSHoption o, long v) { return curl_share_setopt(s, o, v); }
static inline CURLSHcode prism_curl_share_set_pointer(CURLSH *s, CURLSHoption o, void *v) { return curl_share_setopt(s, o, v); }
static inline CURLSHcode prism_curl_share_set_lock_fn(CURLSH *s, curl_lock_function v) { return curl_share_setopt(s, CURLSHOPT_LOCKFUNC, v); }
static inline CURLSHcode prism_curl_share_set_unlock_fn(CURLSH *s, curl_unlock_function v) { return curl_share_setopt(s, CURLSHOPT_UNLOCKFUNC, v); }

#endif
