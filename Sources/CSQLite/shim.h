// Umbrella header of the CSQLite system library module (Debian's libsqlite3).
#include <sqlite3.h>
