// Umbrella header of the CVips system library module (libvips 8.14 and the glib it sits on).
#include <vips/vips.h>
