/* prism_plugin_kit.h: the few libc calls PrismPluginKit needs that Swift cannot reach on Linux
 * (dladdr is behind _GNU_SOURCE). */
#ifndef PRISM_PLUGIN_KIT_H
#define PRISM_PLUGIN_KIT_H

/* Marks the shared object holding `address` RTLD_NODELETE, so a later dlclose leaves it mapped.
 * Returns 1 on success, 0 if the object was not found. */
int prism_plugin_kit_pin_image(const void *address);

#endif
