/*
 * http: curl multi socket API on the loop. Each shard is a multi handle
 * with its own timer; curl tells us which sockets to watch, we tell curl
 * which socket is ready. A finished transfer's callback runs from the loop
 * with the response in memory (bounded). Never block, never sleep.
 */
#include "http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HTTP_DEFAULT_PER_SHARD 64
#define HTTP_DEFAULT_MAX_RESPONSE (8u << 20)
/* finished easy handles kept for the next transfers: curl_easy_reset
 * keeps their buffers, so a steady stream of calls allocates none */
#define HTTP_EASY_POOL 1024
/* curl's receive buffer, per call in flight (its default is 16 KiB): most
 * of a call's memory while it waits seconds for its reply, with 10,000 in
 * flight. A reply larger than this is read in more pieces, a few
 * microseconds against a call of seconds. 2 KiB holds a typical reply's
 * headers and a short answer in one read (scripts/bench.sh, scenario c). */
#define HTTP_RECV_BUFFER 2048L

struct http_socket {
    struct loop_io io;
    struct http_shard *shard;
    curl_socket_t fd;
    struct http_socket *next_dead;
};

struct http_shard {
    struct http *http;
    CURLM *multi;
    struct loop_timer timer;
    size_t active;
    int still_running;
};

struct http {
    struct loop *loop;
    struct http_shard **shards;
    size_t nshards, shards_cap;
    size_t per_shard, max_response;
    size_t running;
    LIST_HEAD(, http_transfer) transfers; /* running, for http_free */
    /* sockets curl stopped using: freed after the current event batch,
     * since an epoll event for them may still be queued */
    struct http_socket *dead;
    struct loop_timer reaper;
    CURL *pool[HTTP_EASY_POOL];
    size_t npool;
};

static void http_check_done(struct http_shard *shard);

static void http_reap(struct loop_timer *t)
{
    struct http *http = t->data;
    while (http->dead) {
        struct http_socket *s = http->dead;
        http->dead = s->next_dead;
        free(s);
    }
}

static void http_socket_ready(struct loop_io *io, unsigned events)
{
    struct http_socket *s = io->data;
    struct http_shard *shard = s->shard;
    int mask = ((events & LOOP_READ) ? CURL_CSELECT_IN : 0) |
               ((events & LOOP_WRITE) ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(shard->multi, s->fd, mask, &shard->still_running);
    http_check_done(shard);
}

static int http_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct http_shard *shard = userp;
    struct http *http = shard->http;
    struct http_socket *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            loop_io_set(http->loop, &s->io, 0);
            curl_multi_assign(shard->multi, fd, NULL);
            s->next_dead = http->dead;
            http->dead = s;
            if (!loop_timer_armed(&http->reaper))
                loop_timer_start(http->loop, &http->reaper, 0);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->fd = fd;
        s->shard = shard;
        s->io.fd = fd;
        s->io.cb = http_socket_ready;
        s->io.data = s;
        curl_multi_assign(shard->multi, fd, s);
    }
    unsigned events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= LOOP_READ;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= LOOP_WRITE;
    return loop_io_set(http->loop, &s->io, events) < 0 ? -1 : 0;
}

static void http_timer_fired(struct loop_timer *t)
{
    struct http_shard *shard = t->data;
    curl_multi_socket_action(shard->multi, CURL_SOCKET_TIMEOUT, 0, &shard->still_running);
    http_check_done(shard);
}

static int http_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct http_shard *shard = userp;
    if (timeout_ms < 0)
        loop_timer_stop(shard->http->loop, &shard->timer);
    else
        loop_timer_start(shard->http->loop, &shard->timer, (uint64_t)timeout_ms);
    return 0;
}

static struct http_shard *http_shard_new(struct http *http)
{
    struct http_shard *shard = calloc(1, sizeof *shard);
    if (!shard)
        return NULL;
    shard->http = http;
    shard->multi = curl_multi_init();
    if (!shard->multi) {
        free(shard);
        return NULL;
    }
    shard->timer.cb = http_timer_fired;
    shard->timer.data = shard;
    curl_multi_setopt(shard->multi, CURLMOPT_SOCKETFUNCTION, http_socket_cb);
    curl_multi_setopt(shard->multi, CURLMOPT_SOCKETDATA, shard);
    curl_multi_setopt(shard->multi, CURLMOPT_TIMERFUNCTION, http_timer_cb);
    curl_multi_setopt(shard->multi, CURLMOPT_TIMERDATA, shard);
    curl_multi_setopt(shard->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* keep as many idle connections as transfers the shard may hold */
    curl_multi_setopt(shard->multi, CURLMOPT_MAXCONNECTS, (long)http->per_shard);
    return shard;
}

struct http *http_new(struct loop *loop, const struct http_options *opt)
{
    static int curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return NULL;
        curl_ready = 1;
    }
    struct http *http = calloc(1, sizeof *http);
    if (!http)
        return NULL;
    LIST_INIT(&http->transfers);
    http->loop = loop;
    http->per_shard =
        opt && opt->transfers_per_shard ? opt->transfers_per_shard : HTTP_DEFAULT_PER_SHARD;
    http->max_response =
        opt && opt->max_response_bytes ? opt->max_response_bytes : HTTP_DEFAULT_MAX_RESPONSE;
    http->reaper.cb = http_reap;
    http->reaper.data = http;
    return http;
}

/* A finished easy handle back to the pool (or freed when it is full). */
static void http_easy_put(struct http *http, CURL *easy)
{
    if (http->npool < HTTP_EASY_POOL) {
        curl_easy_reset(easy);
        http->pool[http->npool++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}

static CURL *http_easy_get(struct http *http)
{
    return http->npool ? http->pool[--http->npool] : curl_easy_init();
}

static void http_detach(struct http_transfer *t)
{
    struct http_shard *shard = t->shard;
    if (!shard)
        return; /* never submitted */
    curl_multi_remove_handle(shard->multi, t->easy);
    http_easy_put(shard->http, t->easy);
    curl_slist_free_all(t->slist);
    t->easy = NULL;
    t->slist = NULL;
    t->shard = NULL;
    shard->active--;
    shard->http->running--;
    LIST_REMOVE(t, link);
}

void http_free(struct http *http)
{
    if (!http)
        return;
    while (!LIST_EMPTY(&http->transfers)) {
        struct http_transfer *t = LIST_FIRST(&http->transfers);
        http_detach(t);
        http_transfer_release(t);
    }
    for (size_t i = 0; i < http->nshards; i++) {
        struct http_shard *shard = http->shards[i];
        loop_timer_stop(http->loop, &shard->timer);
        curl_multi_cleanup(shard->multi);
        free(shard);
    }
    free(http->shards);
    while (http->npool)
        curl_easy_cleanup(http->pool[--http->npool]);
    loop_timer_stop(http->loop, &http->reaper);
    http_reap(&http->reaper);
    free(http);
}

static size_t http_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct http_transfer *t = userdata;
    size_t n = size * nmemb;
    size_t max = t->shard->http->max_response;
    if (t->response_len + n > max)
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    if (t->response_len + n + 1 > t->response_cap) {
        size_t cap = t->response_cap ? t->response_cap : 4096;
        while (cap < t->response_len + n + 1)
            cap *= 2;
        char *buf = realloc(t->response, cap);
        if (!buf)
            return 0;
        t->response = buf;
        t->response_cap = cap;
    }
    memcpy(t->response + t->response_len, ptr, n);
    t->response_len += n;
    t->response[t->response_len] = '\0';
    return n;
}

/* The reply's rate-limit headers, Retry-After and retry-after-ms
 * (ratelimit.h reads them). A status line starts a new response (after a
 * 100 Continue, say): only the last one's headers count. */
static size_t http_header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct http_transfer *t = userdata;
    size_t n = size * nitems;
    if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0)
        ratelimit_hints_init(&t->hints);
    else
        ratelimit_hints_header(&t->hints, buf, n, loop_wall_ms());
    t->retry_after_ms = t->hints.retry_after_ms;
    return n;
}

static struct http_shard *http_pick_shard(struct http *http)
{
    for (size_t i = 0; i < http->nshards; i++)
        if (http->shards[i]->active < http->per_shard)
            return http->shards[i];
    if (http->nshards == http->shards_cap) {
        size_t cap = http->shards_cap ? http->shards_cap * 2 : 4;
        struct http_shard **shards = realloc(http->shards, cap * sizeof(struct http_shard *));
        if (!shards)
            return NULL;
        http->shards = shards;
        http->shards_cap = cap;
    }
    struct http_shard *shard = http_shard_new(http);
    if (shard)
        http->shards[http->nshards++] = shard;
    return shard;
}

int http_submit(struct http *http, struct http_transfer *t)
{
    t->status = 0;
    t->transport_error = 0;
    t->error[0] = '\0';
    t->response = NULL;
    t->response_len = t->response_cap = 0;
    t->retry_after_ms = -1;
    ratelimit_hints_init(&t->hints);
    t->latency_ms = 0;
    struct http_shard *shard = http_pick_shard(http);
    CURL *easy = shard ? http_easy_get(http) : NULL;
    if (!easy) {
        snprintf(t->error, sizeof t->error, "out of memory");
        return -1;
    }
    struct curl_slist *slist = NULL;
    for (size_t i = 0; i < t->nheaders; i++) {
        struct curl_slist *next = curl_slist_append(slist, t->headers[i]);
        if (!next) {
            curl_slist_free_all(slist);
            http_easy_put(http, easy);
            snprintf(t->error, sizeof t->error, "out of memory");
            return -1;
        }
        slist = next;
    }
    /* curl adds "Expect: 100-continue" for large bodies: a round trip lost */
    slist = curl_slist_append(slist, "Expect:");
    t->easy = easy;
    t->slist = slist;
    t->shard = shard;
    curl_easy_setopt(easy, CURLOPT_URL, t->url);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, slist);
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->body);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->body_len);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, http_write_cb);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, http_header_cb);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, t);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, t->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, t->connect_timeout_ms);
    curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* waiting for a connection to confirm it can multiplex pays off only
     * where HTTP/2 can be negotiated (TLS ALPN, known after the handshake);
     * on plain http it would queue every new call behind the first one's
     * whole reply, however slow */
    if (strncmp(t->url, "https://", 8) == 0)
        curl_easy_setopt(easy, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, HTTP_RECV_BUFFER);
    t->started_ms = loop_now_ms(http->loop);
    if (curl_multi_add_handle(shard->multi, easy) != CURLM_OK) {
        curl_slist_free_all(slist);
        http_easy_put(http, easy);
        t->easy = t->slist = NULL;
        t->shard = NULL;
        snprintf(t->error, sizeof t->error, "curl refused the transfer");
        return -1;
    }
    shard->active++;
    http->running++;
    LIST_INSERT_HEAD(&http->transfers, t, link);
    return 0;
}

static void http_check_done(struct http_shard *shard)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(shard->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        struct http_transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode rc = msg->data.result;
        long status = 0;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        t->transport_error = (int)rc;
        t->status = rc == CURLE_OK ? status : 0;
        if (rc != CURLE_OK && t->error[0] == '\0')
            snprintf(t->error, sizeof t->error, "%s", curl_easy_strerror(rc));
        if (rc == CURLE_WRITE_ERROR)
            snprintf(t->error, sizeof t->error, "reply larger than %zu bytes",
                     shard->http->max_response);
        t->latency_ms = loop_now_ms(shard->http->loop) - t->started_ms;
        http_detach(t);
        t->done(t);
    }
}

void http_cancel(struct http *http, struct http_transfer *t)
{
    (void)http;
    if (t->easy)
        http_detach(t);
}

void http_transfer_release(struct http_transfer *t)
{
    free(t->response);
    t->response = NULL;
    t->response_len = t->response_cap = 0;
}
