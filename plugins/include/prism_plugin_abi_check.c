/* Compiles prism_plugin.h on its own as C, so that a header that does not stand alone fails the
 * build here and not in a third party's plugin; SwiftPM also needs one source for this target. */
#include "prism_plugin.h"

_Static_assert(PRISM_STATUS_UNAUTHENTICATED == 16, "prism_status uses gRPC's numbers");
_Static_assert(offsetof(prism_plugin_api, abi_major) == 0, "tables start with the ABI version");
_Static_assert(offsetof(prism_host_api, abi_major) == 0, "tables start with the ABI version");
_Static_assert(offsetof(prism_host_api, read_input) > offsetof(prism_host_api, host_data),
               "functions added in 1.1 come after everything of 1.0 (append-only)");
_Static_assert(PRISM_PLUGIN_ABI_MAJOR == 2 && PRISM_PLUGIN_ABI_1_MINOR >= 1, "read_input is ABI 1.1");
/* 2.0 kept 1.3's layout and appended, so one host table serves 1.x and 2.0 plugins alike. */
_Static_assert(offsetof(prism_host_api, http_start) > offsetof(prism_host_api, read_input), "2.0 functions come after 1.x's");
_Static_assert(offsetof(prism_plugin_api, call_model) > offsetof(prism_plugin_api, shutdown), "call_model comes after 1.x's table");
