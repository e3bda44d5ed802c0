/* test.h -- tiny assertion macros for the unit test binaries.
 * Each binary includes this once, runs its checks and ends with
 * TEST_REPORT(), which prints "N passed, N failed" and returns the exit code. */
#ifndef HERALD_TEST_H
#define HERALD_TEST_H

#include <stdio.h>
#include <string.h>

static int test_passed, test_failed;

#define CHECK(cond) do {                                                     \
    if (cond) test_passed++;                                                 \
    else { test_failed++;                                                    \
        fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); } \
} while (0)

#define CHECK_INT(a, b) do {                                                 \
    long long va_ = (long long)(a), vb_ = (long long)(b);                    \
    if (va_ == vb_) test_passed++;                                           \
    else { test_failed++;                                                    \
        fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n",           \
                __FILE__, __LINE__, #a, #b, va_, vb_); }                     \
} while (0)

#define CHECK_STR(a, b) do {                                                 \
    const char *sa_ = (a), *sb_ = (b);                                       \
    if (sa_ && sb_ && strcmp(sa_, sb_) == 0) test_passed++;                  \
    else { test_failed++;                                                    \
        fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n",       \
                __FILE__, __LINE__, #a, #b, sa_ ? sa_ : "(null)",            \
                sb_ ? sb_ : "(null)"); }                                     \
} while (0)

/* err contains needle */
#define CHECK_HAS(hay, needle) do {                                          \
    const char *h_ = (hay), *n_ = (needle);                                  \
    if (h_ && strstr(h_, n_)) test_passed++;                                 \
    else { test_failed++;                                                    \
        fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n",          \
                __FILE__, __LINE__, h_ ? h_ : "(null)", n_); }               \
} while (0)

#define TEST_REPORT() (printf("%d passed, %d failed\n", test_passed, test_failed), \
                       test_failed ? 1 : 0)

#endif
