/* badabi: a plugin built against a future major ABI version, for the host's tests: the host
 * must refuse it at load, list it as failed, and keep serving. Never loaded by default. */
#include <stdlib.h>

#include "prism_plugin.h"

static const prism_plugin_api api = {
    .abi_major = 99,
    .abi_minor = 0,
    .struct_size = sizeof(prism_plugin_api),
};

PRISM_PLUGIN_EXPORT const prism_plugin_api *prism_plugin_entry(uint32_t host_major, uint32_t host_minor) {
    (void)host_major; (void)host_minor;
    return &api;
}
