// Umbrella header of the CHiredis system library module (Debian's libhiredis-dev): the blocking
// client API only (redisConnectWithTimeout, redisCommandArgv, freeReplyObject); see RedisPool.swift.
#include <hiredis/hiredis.h>
