/* rsp://'s back-to-back sampling loop in C (targets/rsp.py RspSampler.take_batch): the same work as the Python fast
 * path (RspConnection.receive_matching, RspSampler._take_back_to_back and _sample) for the usual sample, without the
 * interpreter's cost per sample, which on a 2-core host sharing a CPU with QEMU's vcpu thread is what limits the rate.
 *
 * On entry one burst (interrupt, `g`, the `m`s, `c`) is out whose replies are not read. Per sample: read until the
 * replies are in (as receive_matching reads: until `count` '#' with two digits after the last, or more bytes than
 * `bound`), match all of it as its pattern does (acks around packets; a stop reply [ST]xx without '#$}*'; then each
 * data reply, hex digits and 'x' only), check every checksum, decode pc (and the 8-byte memory read) as _sample
 * does, send the next burst, store the values. Anything else (console output, an error reply, an escape or run-length
 * mark, a bad checksum, a reply too long or out of step, a short `g`) stops the loop BEFORE that sample is taken: its
 * bytes are left in `buf` for the Python path, which reads them with every check and error message it has.
 */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

enum { TOOK_ALL = 0, LEFT_TO_PYTHON = 1, TIMED_OUT = 2, CLOSED = 3, READ_FAILED = 4, SEND_FAILED = 5 };

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);     /* Python's time.monotonic and perf_counter_ns on Linux */
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* One packet at p (acks before it skipped): its body [*body, *body + *len) when its checksum is right; the position
 * after it and the acks that follow, or NULL when the data is not a packet as the fast path takes it. */
static const unsigned char *packet(const unsigned char *p, const unsigned char *end, int stop,
                                   const unsigned char **body, long *len) {
    while (p < end && *p == '+') p++;
    if (p >= end || *p++ != '$') return NULL;
    const unsigned char *b = p;
    unsigned sum = 0;
    while (p < end && *p != '#') {
        unsigned char c = *p;
        if (stop ? (c == '$' || c == '}' || c == '*') : (hexval(c) < 0 && c != 'x')) return NULL;
        sum += c;
        p++;
    }
    if (end - p < 3) return NULL;
    int hi = hexval(p[1]), lo = hexval(p[2]);
    if (hi < 0 || lo < 0 || (unsigned)(hi << 4 | lo) != (sum & 0xff)) return NULL;
    *body = b;
    *len = p - b;
    p += 3;
    while (p < end && *p == '+') p++;
    return p;
}

/* `digits` hex digits at p, little-endian bytes (as unhexlify then int.from_bytes(..., "little")); -1 if not hex. */
static int little_endian(const unsigned char *p, int digits, uint64_t *value) {
    uint64_t v = 0;
    for (int i = 0; i < digits; i += 2) {
        int hi = hexval(p[i]), lo = hexval(p[i + 1]);
        if (hi < 0 || lo < 0) return -1;
        v |= (uint64_t)(hi << 4 | lo) << (4 * i);
    }
    *value = v;
    return 0;
}

/* Read once into buf (from *len), honouring the deadline: a blocking recv (the socket's SO_RCVTIMEO is the
 * connection's timeout), or, polling, up to poll_tries non-blocking reads with sched_yield() between them first;
 * after a wait that ran out with time left, poll() for the rest. 0, or the status that ends the loop. */
static int fill(int fd, unsigned char *buf, long cap, long *len, int64_t deadline, int poll_tries, int *err) {
    if (deadline <= now_ns()) return TIMED_OUT;     /* checked before every read, as RspConnection._read does */
    for (int tries = 0; tries < poll_tries; tries++) {
        ssize_t got = recv(fd, buf + *len, cap - *len, MSG_DONTWAIT);
        if (got > 0) { *len += got; return 0; }
        if (got == 0) return CLOSED;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) break;   /* the blocking read reports it */
        sched_yield();
    }
    int waited = 0;
    for (;;) {
        int64_t left = deadline - now_ns();
        if (left <= 0) return TIMED_OUT;
        if (waited) {
            struct pollfd pfd = {fd, POLLIN, 0};
            if (poll(&pfd, 1, (int)((left + 999999) / 1000000)) == 0) continue;
        }
        ssize_t got = recv(fd, buf + *len, cap - *len, waited ? MSG_DONTWAIT : 0);
        if (got > 0) { *len += got; return 0; }
        if (got == 0) return CLOSED;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { waited = 1; continue; }
        *err = errno;
        return READ_FAILED;
    }
}

static int complete(const unsigned char *buf, long len, int count) {
    int hashes = 0;
    long last = -1;
    for (long i = 0; i < len; i++)
        if (buf[i] == '#') { hashes++; last = i; }
    return hashes >= count && last + 3 <= len;
}

/* Up to k samples; returns how many were taken, *status says why it stopped (TOOK_ALL: k were). count: packets a
 * sample's replies hold (the stop reply, the `g`, the `m`s); bound: read no more than this before matching; pc_at,
 * pc_digits: pc's place in the `g` reply's hex, g_length the digits that reply must have at least; mem_digits: the
 * one `m` reply's digits (0: none), its value stored in mems. ends: each sample's time (CLOCK_MONOTONIC ns) after its
 * next burst went out. On LEFT_TO_PYTHON, buf[0, *left) holds what was read of the sample it stopped at. */
long xs_rsp_take(int fd, const unsigned char *burst, long burst_len, int count, long bound, double timeout_s,
                 int poll_tries, long k, int pc_at, int pc_digits, int g_length, int mem_digits,
                 int64_t *ends, uint64_t *pcs, uint64_t *mems, unsigned char *buf, long cap, long *left,
                 int *status, int *err) {
    int64_t timeout = (int64_t)(timeout_s * 1e9), start = now_ns();
    long n = 0;
    *left = 0;
    *status = TOOK_ALL;
    *err = 0;
    while (n < k) {
        int64_t deadline = start + timeout;
        long len = 0;
        int s = fill(fd, buf, cap, &len, deadline, poll_tries, err);
        while (!s && !complete(buf, len, count) && len <= bound && len < cap)
            s = fill(fd, buf, cap, &len, deadline, poll_tries, err);
        if (s) { *status = s; return n; }
        *left = len;
        const unsigned char *p = buf, *end = buf + len, *body;
        long body_len;
        p = packet(p, end, 1, &body, &body_len);
        if (!p || body_len < 3 || (body[0] != 'S' && body[0] != 'T') || hexval(body[1]) < 0 || hexval(body[2]) < 0) {
            *status = LEFT_TO_PYTHON;
            return n;
        }
        uint64_t pc = 0, mem = 0;
        for (int i = 1; i < count; i++) {
            p = packet(p, end, 0, &body, &body_len);
            if (!p) break;
            if (i == 1 && (body_len < g_length || little_endian(body + pc_at, pc_digits, &pc))) { p = NULL; break; }
            if (i == 2 && (body_len != mem_digits || little_endian(body, mem_digits, &mem))) { p = NULL; break; }
        }
        if (p != end) { *status = LEFT_TO_PYTHON; return n; }
        for (long sent = 0; sent < burst_len;) {
            ssize_t w = send(fd, burst + sent, burst_len - sent, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) { *err = errno; *status = SEND_FAILED; *left = 0; return n; }
            sent += w;
        }
        start = now_ns();
        ends[n] = start;
        pcs[n] = pc;
        if (mem_digits) mems[n] = mem;
        n++;
    }
    *left = 0;
    return n;
}
