// Umbrella header of the COpenSSL system library module.
#include "openssl/ssl.h"
#include "openssl/err.h"
#include "openssl/bio.h"
