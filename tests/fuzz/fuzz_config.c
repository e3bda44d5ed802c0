/* fuzz_config.c -- the config loader on any bytes: a refusal names the
 * file and line or the key; an accepted config frees cleanly. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/fuzz/fuzz.h"
#include "gateway/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* no @include of outside files: the loader must not read beyond the
     * input (the harness, not the gateway, makes this rule) */
    if (memmem(data, size, "@include", 8))
        return 0;
    int fd = memfd_create("herald.conf", 0);
    FUZZ_ASSERT(fd >= 0);
    FUZZ_ASSERT(write(fd, data, size) == (ssize_t)size);
    char path[64], err[1024];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    gw_config c;
    if (gw_config_load(&c, path, err, sizeof err) == 0)
        gw_config_free(&c);
    else
        FUZZ_ASSERT(err[0] != '\0');
    close(fd);
    return 0;
}
