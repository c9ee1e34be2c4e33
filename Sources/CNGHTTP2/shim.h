// Umbrella header of the CNGHTTP2 system library module.
#include "nghttp2/nghttp2.h"
