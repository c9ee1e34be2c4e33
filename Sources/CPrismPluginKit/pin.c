/* pin.c: keeps a Swift plugin's shared object mapped for the life of the process (see
 * PluginExport.pinImage for why a Swift image must never be unloaded). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

#include "prism_plugin_kit.h"

int prism_plugin_kit_pin_image(const void *address) {
    Dl_info info;
    if (dladdr(address, &info) == 0 || info.dli_fname == NULL) return 0;
    /* RTLD_NOLOAD finds the loaded object by the name it was opened under (the host may have
     * unlinked that file already); the extra reference is never dropped, on purpose. */
    return dlopen(info.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE) != NULL;
}
