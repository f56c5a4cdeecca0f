/*
 * metrics: a listener and a fixed table of connection slots. A connection
 * reads its request head, is answered from one buffer, and is closed; its
 * slot carries a deadline timer. When every slot is taken, new connections
 * are accepted and closed at once (so the listener never spins).
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "redact.h"

#define METRICS_HEAD_MAX 8192

struct metrics_conn {
    struct metrics *owner;
    struct loop_io io;
    struct loop_timer deadline;
    char head[METRICS_HEAD_MAX];
    size_t head_len;
    char *out; /* the whole response */
    size_t out_len, out_sent;
};

struct metrics {
    struct loop *loop;
    struct metrics_handlers handlers;
    void *ctx;
    struct loop_io listener;
    char address[80];
    struct metrics_conn conns[METRICS_MAX_CONNS];
};

void metrics_printf(struct metrics_buf *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 16384;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data) {
            b->failed = 1;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
}

void metrics_label(struct metrics_buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            metrics_printf(b, "\\\\");
        else if (*s == '"')
            metrics_printf(b, "\\\"");
        else if (*s == '\n')
            metrics_printf(b, "\\n");
        else
            metrics_printf(b, "%c", *s);
    }
}

static void metrics_conn_close(struct metrics_conn *c)
{
    struct metrics *m = c->owner;
    loop_timer_stop(m->loop, &c->deadline);
    if (c->io.events)
        loop_io_set(m->loop, &c->io, 0);
    close(c->io.fd);
    c->io.fd = -1;
    free(c->out);
    c->out = NULL;
}

static void metrics_conn_timeout(struct loop_timer *t)
{
    metrics_conn_close(t->data);
}

/* Sends what the socket takes; closes when all is sent or on error. */
static void metrics_conn_flush(struct metrics_conn *c)
{
    while (c->out_sent < c->out_len) {
        ssize_t n = send(c->io.fd, c->out + c->out_sent, c->out_len - c->out_sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            loop_io_set(c->owner->loop, &c->io, LOOP_WRITE);
            return;
        }
        if (n <= 0)
            break;
        c->out_sent += (size_t)n;
    }
    metrics_conn_close(c);
}

static void metrics_respond(struct metrics_conn *c, int status, const char *content_type,
                            const char *body, size_t body_len, int head_only)
{
    const char *reason = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 431 ? "Request Header Fields Too Large"
                         : status == 503 ? "Service Unavailable"
                                         : "Internal Server Error";
    struct metrics_buf b = {0};
    metrics_printf(&b,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Cache-Control: no-store\r\n%sConnection: close\r\n\r\n",
                   status, reason, content_type, body_len,
                   status == 405 ? "Allow: GET, HEAD\r\n" : "");
    if (!head_only && body_len)
        metrics_printf(&b, "%.*s", (int)body_len, body);
    if (b.failed) {
        free(b.data);
        metrics_conn_close(c);
        return;
    }
    c->out = b.data;
    c->out_len = b.len;
    c->out_sent = 0;
    metrics_conn_flush(c);
}

static void metrics_text(struct metrics_conn *c, int status, const char *text, int head_only)
{
    metrics_respond(c, status, "text/plain; charset=utf-8", text, strlen(text), head_only);
}

/* Answers a complete request head. */
static void metrics_serve(struct metrics_conn *c)
{
    struct metrics *m = c->owner;
    char method[16], target[256], version[16];
    /* the request line: METHOD SP TARGET SP HTTP/1.x */
    if (sscanf(c->head, "%15[A-Z] %255[^ \r\n] %15[^\r\n]", method, target, version) != 3 ||
        strncmp(version, "HTTP/1.", 7) != 0) {
        metrics_text(c, 400, "bad request\n", 0);
        return;
    }
    int head_only = strcmp(method, "HEAD") == 0;
    if (!head_only && strcmp(method, "GET") != 0) {
        metrics_text(c, 405, "only GET and HEAD\n", 0);
        return;
    }
    char *query = strchr(target, '?');
    if (query)
        *query = '\0';
    if (strcmp(target, "/metrics") == 0) {
        struct metrics_buf b = {0};
        m->handlers.render(m->ctx, &b);
        /* the page names providers, models and errors: never a key */
        b.len = redact(b.data, b.len);
        if (b.failed)
            metrics_text(c, 500, "out of memory\n", head_only);
        else
            metrics_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8",
                            b.data ? b.data : "", b.len, head_only);
        free(b.data);
    } else if (strcmp(target, "/healthz") == 0) {
        metrics_text(c, 200, "ok\n", head_only);
    } else if (strcmp(target, "/readyz") == 0) {
        const char *why = "not ready";
        if (!m->handlers.ready || m->handlers.ready(m->ctx, &why)) {
            metrics_text(c, 200, "ready\n", head_only);
        } else {
            char text[128];
            snprintf(text, sizeof text, "%s\n", why);
            metrics_text(c, 503, text, head_only);
        }
    } else {
        metrics_text(c, 404, "not found: try /metrics, /healthz or /readyz\n", head_only);
    }
}

static void metrics_conn_event(struct loop_io *io, unsigned events)
{
    struct metrics_conn *c = io->data;
    if (c->out) {
        if (events & LOOP_WRITE)
            metrics_conn_flush(c);
        return;
    }
    for (;;) {
        size_t room = sizeof c->head - 1 - c->head_len;
        if (room == 0) {
            metrics_text(c, 431, "request head too large\n", 0);
            return;
        }
        ssize_t n = recv(io->fd, c->head + c->head_len, room, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            metrics_conn_close(c); /* closed before a whole request */
            return;
        }
        c->head_len += (size_t)n;
        c->head[c->head_len] = '\0';
        if (strstr(c->head, "\r\n\r\n") || strstr(c->head, "\n\n")) {
            metrics_serve(c);
            return;
        }
        if (memchr(c->head, '\0', c->head_len)) {
            metrics_text(c, 400, "bad request\n", 0);
            return;
        }
    }
}

static void metrics_accept(struct loop_io *io, unsigned events)
{
    (void)events;
    struct metrics *m = io->data;
    for (;;) {
        int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("metrics_accept_failed", "%s", strerror(errno));
            return;
        }
        struct metrics_conn *c = NULL;
        for (size_t i = 0; i < METRICS_MAX_CONNS && !c; i++)
            if (m->conns[i].io.fd < 0)
                c = &m->conns[i];
        if (!c) {
            close(fd); /* every slot busy: the scraper retries */
            continue;
        }
        c->io = (struct loop_io){.fd = fd, .cb = metrics_conn_event, .data = c};
        c->head_len = 0;
        c->out = NULL;
        loop_timer_start(m->loop, &c->deadline, METRICS_CONN_TIMEOUT_MS);
        loop_io_set(m->loop, &c->io, LOOP_READ);
    }
}

/* Splits "HOST:PORT" / "[V6]:PORT" into host and port. */
static int metrics_split(const char *where, char *host, size_t host_cap, char *port,
                         size_t port_cap)
{
    const char *colon = strrchr(where, ':');
    if (!colon || colon == where || !colon[1])
        return -1;
    const char *h = where;
    size_t hlen = (size_t)(colon - where);
    if (h[0] == '[') {
        if (hlen < 2 || h[hlen - 1] != ']')
            return -1;
        h++;
        hlen -= 2;
    }
    if (hlen == 0 || hlen >= host_cap || strlen(colon + 1) >= port_cap)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    snprintf(port, port_cap, "%s", colon + 1);
    return 0;
}

static int metrics_listen(struct metrics *m, const char *where, struct err *e)
{
    char host[256], port[16];
    if (metrics_split(where, host, sizeof host, port, sizeof port) < 0)
        return err_set(e, ERR_CONFIG, "metrics", "metrics.listen %s: expected HOST:PORT", where);
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0)
        return err_set(e, ERR_CONFIG, "metrics", "metrics.listen %s: %s", where, gai_strerror(rc));
    int fd = -1, saved = 0;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
            saved = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    if (fd < 0)
        return err_set(e, ERR_CONFIG, "metrics", "metrics.listen %s: cannot listen: %s", where,
                       strerror(saved));
    struct sockaddr_storage ss = {0};
    socklen_t sl = sizeof ss;
    char addr[INET6_ADDRSTRLEN] = "?";
    int bound_port = 0;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof addr);
            bound_port = ntohs(s6->sin6_port);
        } else {
            struct sockaddr_in s4;
            memcpy(&s4, &ss, sizeof s4); /* a copy, not a cast: no aliasing question */
            inet_ntop(AF_INET, &s4.sin_addr, addr, sizeof addr);
            bound_port = ntohs(s4.sin_port);
        }
    }
    snprintf(m->address, sizeof m->address, ss.ss_family == AF_INET6 ? "[%s]:%d" : "%s:%d", addr,
             bound_port);
    m->listener = (struct loop_io){.fd = fd, .cb = metrics_accept, .data = m};
    return loop_io_set(m->loop, &m->listener, LOOP_READ) < 0
               ? err_set(e, ERR_FATAL, "metrics", "cannot watch the metrics socket")
               : 0;
}

struct metrics *metrics_new(struct loop *loop, const char *where,
                            const struct metrics_handlers *handlers, void *ctx, struct err *e)
{
    struct metrics *m = calloc(1, sizeof *m);
    if (!m) {
        err_set(e, ERR_FATAL, "oom", "out of memory");
        return NULL;
    }
    m->loop = loop;
    m->handlers = *handlers;
    m->ctx = ctx;
    m->listener.fd = -1;
    for (size_t i = 0; i < METRICS_MAX_CONNS; i++) {
        m->conns[i].owner = m;
        m->conns[i].io.fd = -1;
        m->conns[i].deadline =
            (struct loop_timer){.cb = metrics_conn_timeout, .data = &m->conns[i]};
    }
    if (metrics_listen(m, where, e) < 0) {
        metrics_free(m);
        return NULL;
    }
    return m;
}

void metrics_free(struct metrics *m)
{
    if (!m)
        return;
    for (size_t i = 0; i < METRICS_MAX_CONNS; i++)
        if (m->conns[i].io.fd >= 0)
            metrics_conn_close(&m->conns[i]);
    if (m->listener.fd >= 0) {
        if (m->listener.events)
            loop_io_set(m->loop, &m->listener, 0);
        close(m->listener.fd);
    }
    free(m);
}

const char *metrics_address(const struct metrics *m)
{
    return m->address;
}
