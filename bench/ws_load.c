/*
 * ws_load: a small single-threaded WebSocket echo load generator (epoll).
 *
 * Opens C connections to ws://HOST:PORT/PATH, performs the RFC 6455 handshake,
 * then each connection keeps exactly one message in flight: send a masked
 * text frame of SIZE bytes, wait for the echo, send the next one.
 * Messages received during the measured window (after WARMUP seconds) are
 * counted; per-message round-trip latency is recorded for percentiles.
 *
 * Usage: ws_load HOST PORT PATH CONNS DURATION_S WARMUP_S SIZE
 * Prints one JSON object on stdout.
 *
 * Written for the benchmark harness (no third-party code). scripts/bench builds it
 * into bench/build/; by hand:
 *   gcc -O2 -o ws_load ws_load.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_DEAD };

typedef struct {
    int fd;
    int state;
    char *rbuf;
    size_t rlen, rcap;
    double sent_at;
} conn_t;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned char *frame;   /* pre-built masked client frame */
static size_t frame_len;
static size_t payload_len;

static uint32_t *lat;          /* latencies in microseconds */
static size_t nlat, caplat;

static void add_lat(double secs) {
    if (nlat == caplat) {
        caplat = caplat ? caplat * 2 : 1 << 20;
        lat = realloc(lat, caplat * sizeof(uint32_t));
        if (!lat) { perror("realloc"); exit(2); }
    }
    double us = secs * 1e6;
    lat[nlat++] = us > 4e9 ? 4000000000u : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void build_frame(void) {
    unsigned char mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    size_t hdr = 2 + (payload_len >= 126 ? (payload_len > 65535 ? 8 : 2) : 0) + 4;
    frame_len = hdr + payload_len;
    frame = malloc(frame_len);
    size_t i = 0;
    frame[i++] = 0x81; /* FIN + text */
    if (payload_len < 126) {
        frame[i++] = 0x80 | (unsigned char)payload_len;
    } else if (payload_len <= 65535) {
        frame[i++] = 0x80 | 126;
        frame[i++] = (payload_len >> 8) & 0xff;
        frame[i++] = payload_len & 0xff;
    } else {
        frame[i++] = 0x80 | 127;
        for (int k = 7; k >= 0; k--) frame[i++] = (payload_len >> (8 * k)) & 0xff;
    }
    memcpy(frame + i, mask, 4);
    i += 4;
    for (size_t k = 0; k < payload_len; k++) frame[i + k] = ('a' + (k % 26)) ^ mask[k % 4];
}

static int write_all(int fd, const void *buf, size_t len) {
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) { /* tiny frames; spin briefly */ continue; }
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int send_pong(int fd, const unsigned char *data, size_t len) {
    unsigned char buf[2 + 4 + 125];
    if (len > 125) len = 125;
    buf[0] = 0x8A;
    buf[1] = 0x80 | (unsigned char)len;
    memset(buf + 2, 0, 4); /* zero mask key: payload unchanged */
    memcpy(buf + 6, data, len);
    return write_all(fd, buf, 6 + len);
}

static const char *HS_FMT =
    "GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT PATH CONNS DURATION_S WARMUP_S SIZE\n", argv[0]);
        return 2;
    }
    const char *host = argv[1], *port = argv[2], *path = argv[3];
    int nconn = atoi(argv[4]);
    double duration = atof(argv[5]), warmup = atof(argv[6]);
    payload_len = (size_t)atol(argv[7]);
    build_frame();

    char hs[1024];
    int hslen = snprintf(hs, sizeof hs, HS_FMT, path, host, port);

    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)atoi(port));
    inet_pton(AF_INET, host, &sa.sin_addr);

    int ep = epoll_create1(0);
    conn_t *cs = calloc((size_t)nconn, sizeof(conn_t));
    for (int i = 0; i < nconn; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        cs[i].fd = fd;
        cs[i].rcap = 65536 + payload_len * 2;
        cs[i].rbuf = malloc(cs[i].rcap);
        int r = connect(fd, (struct sockaddr *)&sa, sizeof sa);
        if (r < 0 && errno != EINPROGRESS) { cs[i].state = ST_DEAD; close(fd); continue; }
        cs[i].state = ST_CONNECTING;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }

    double t0 = now();
    double t_measure = t0 + warmup, t_end = t_measure + duration;
    long long msgs = 0, msgs_total = 0;
    long errors = 0, handshakes_ok = 0, closed_by_server = 0;
    struct epoll_event evs[256];

    while (1) {
        double t = now();
        if (t >= t_end) break;
        int n = epoll_wait(ep, evs, 256, 50);
        for (int k = 0; k < n; k++) {
            conn_t *c = &cs[evs[k].data.u32];
            if (c->state == ST_DEAD) continue;
            if (c->state == ST_CONNECTING) {
                int err = 0;
                socklen_t el = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
                if (err) { errors++; c->state = ST_DEAD; close(c->fd); continue; }
                if (write_all(c->fd, hs, (size_t)hslen) < 0) { errors++; c->state = ST_DEAD; close(c->fd); continue; }
                c->state = ST_HANDSHAKE;
                struct epoll_event ev = {.events = EPOLLIN, .data.u32 = evs[k].data.u32};
                epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                continue;
            }
            /* readable */
            for (;;) {
                if (c->rcap - c->rlen < 4096) {
                    c->rcap *= 2;
                    c->rbuf = realloc(c->rbuf, c->rcap);
                }
                ssize_t r = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
                if (r < 0) {
                    if (errno == EAGAIN) break;
                    if (errno == EINTR) continue;
                    errors++; c->state = ST_DEAD; close(c->fd); break;
                }
                if (r == 0) { closed_by_server++; c->state = ST_DEAD; close(c->fd); break; }
                c->rlen += (size_t)r;
            }
            if (c->state == ST_DEAD) continue;
            size_t off = 0;
            if (c->state == ST_HANDSHAKE) {
                char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
                if (!end) continue;
                if (c->rlen < 12 || memcmp(c->rbuf + 9, "101", 3) != 0) {
                    errors++; c->state = ST_DEAD; close(c->fd); continue;
                }
                off = (size_t)(end - c->rbuf) + 4;
                c->state = ST_OPEN;
                handshakes_ok++;
                c->sent_at = now();
                if (write_all(c->fd, frame, frame_len) < 0) { errors++; c->state = ST_DEAD; close(c->fd); continue; }
            }
            /* parse server frames */
            while (c->state == ST_OPEN) {
                size_t avail = c->rlen - off;
                if (avail < 2) break;
                unsigned char *p = (unsigned char *)c->rbuf + off;
                int opcode = p[0] & 0x0f;
                int masked = p[1] & 0x80;
                uint64_t len = p[1] & 0x7f;
                size_t h = 2;
                if (len == 126) {
                    if (avail < 4) break;
                    len = ((uint64_t)p[2] << 8) | p[3];
                    h = 4;
                } else if (len == 127) {
                    if (avail < 10) break;
                    len = 0;
                    for (int b = 0; b < 8; b++) len = (len << 8) | p[2 + b];
                    h = 10;
                }
                if (masked) h += 4;
                if (avail < h + len) break;
                off += h + (size_t)len;
                if (opcode == 0x9) { /* ping */
                    if (send_pong(c->fd, p + h, (size_t)len) < 0) { errors++; c->state = ST_DEAD; close(c->fd); }
                    continue;
                }
                if (opcode == 0x8) { /* close */
                    closed_by_server++; c->state = ST_DEAD; close(c->fd);
                    break;
                }
                if (opcode == 0xA) continue; /* pong */
                /* data frame (assume unfragmented echo) */
                if (len != payload_len) errors++;
                double tn = now();
                msgs_total++;
                if (tn >= t_measure && tn < t_end) {
                    msgs++;
                    add_lat(tn - c->sent_at);
                }
                c->sent_at = tn;
                if (write_all(c->fd, frame, frame_len) < 0) { errors++; c->state = ST_DEAD; close(c->fd); }
            }
            if (c->state != ST_DEAD) {
                if (off && off < c->rlen) memmove(c->rbuf, c->rbuf + off, c->rlen - off);
                c->rlen -= off;
            }
        }
    }
    double measured = now() - t_measure;
    if (measured > duration) measured = duration;
    long open_at_end = 0;
    for (int i = 0; i < nconn; i++)
        if (cs[i].state == ST_OPEN) open_at_end++;

    double p50 = 0, p90 = 0, p99 = 0, pmax = 0;
    if (nlat) {
        qsort(lat, nlat, sizeof(uint32_t), cmp_u32);
        p50 = lat[(size_t)(nlat * 0.50)] / 1000.0;
        p90 = lat[(size_t)(nlat * 0.90)] / 1000.0;
        p99 = lat[(size_t)(nlat * 0.99)] / 1000.0;
        pmax = lat[nlat - 1] / 1000.0;
    }
    printf("{\"conns\": %d, \"handshakes_ok\": %ld, \"open_at_end\": %ld, \"closed_by_server\": %ld, "
           "\"errors\": %ld, \"msgs\": %lld, \"msgs_total\": %lld, \"seconds\": %.3f, \"msgs_per_s\": %.1f, "
           "\"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, \"size\": %zu}\n",
           nconn, handshakes_ok, open_at_end, closed_by_server, errors, msgs, msgs_total, measured,
           measured > 0 ? msgs / measured : 0.0, p50, p90, p99, pmax, payload_len);
    for (int i = 0; i < nconn; i++)
        if (cs[i].state != ST_DEAD) close(cs[i].fd);
    return 0;
}
