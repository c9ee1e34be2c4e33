/* Lets valgrind 3.19 (Debian 12) run Swift programs whose main thread parks in libdispatch:
 * libdispatch calls sigsuspend() with a mask in read-only memory, and valgrind's rt_sigsuspend
 * wrapper edits that mask in place and crashes. Preloaded by profile.sh only; it hands the kernel a
 * writable copy of the mask and changes nothing else. */
#define _GNU_SOURCE
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

int sigsuspend(const sigset_t *mask) {
    sigset_t copy = *mask;
    return (int)syscall(SYS_rt_sigsuspend, &copy, (size_t)(_NSIG / 8));
}
