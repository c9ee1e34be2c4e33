// Umbrella header of the CPostgres system library module (Debian's libpq, PostgreSQL's C client).
#include <libpq-fe.h>
