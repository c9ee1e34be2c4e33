// Umbrella header of the CProtobufC system library module.
#include "protobuf-c/protobuf-c.h"
