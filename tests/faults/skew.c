/* Shift a process's wall clock by DPX_CLOCK_SKEW_MS (may be negative): a tiny LD_PRELOAD
 * stand-in for libfaketime, which this machine does not have. Only the real-time clocks move
 * (CLOCK_REALTIME and its coarse variant, gettimeofday, time); monotonic clocks, which timers and
 * timeouts use, are untouched, exactly as on a host whose NTP is off by that much.
 *
 *   gcc -shared -fPIC -O2 -o skew.so skew.c -ldl
 *   LD_PRELOAD=/path/skew.so DPX_CLOCK_SKEW_MS=20000 dpx node start ...
 *
 * Rust's SystemTime::now() calls libc's clock_gettime(CLOCK_REALTIME), so it is interposed. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long long skew_ns;
static int (*real_clock_gettime)(clockid_t, struct timespec *);
static int (*real_gettimeofday)(struct timeval *, void *);

__attribute__((constructor)) static void init(void) {
    const char *s = getenv("DPX_CLOCK_SKEW_MS");
    skew_ns = s ? strtoll(s, NULL, 10) * 1000000LL : 0;
    real_clock_gettime = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    real_gettimeofday = (int (*)(struct timeval *, void *))dlsym(RTLD_NEXT, "gettimeofday");
}

static void shift(struct timespec *ts) {
    long long ns = (long long)ts->tv_sec * 1000000000LL + ts->tv_nsec + skew_ns;
    ts->tv_sec = ns / 1000000000LL;
    ts->tv_nsec = ns % 1000000000LL;
}

int clock_gettime(clockid_t clk, struct timespec *ts) {
    int r = real_clock_gettime(clk, ts);
    if (r == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE)) shift(ts);
    return r;
}

int gettimeofday(struct timeval *tv, void *tz) {
    int r = real_gettimeofday(tv, tz);
    if (r == 0) {
        long long us = (long long)tv->tv_sec * 1000000LL + tv->tv_usec + skew_ns / 1000;
        tv->tv_sec = us / 1000000LL;
        tv->tv_usec = us % 1000000LL;
    }
    return r;
}

time_t time(time_t *t) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t) *t = ts.tv_sec;
    return ts.tv_sec;
}
