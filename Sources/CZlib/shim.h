// Umbrella header of the CZlib system library module.
#include "zlib.h"
