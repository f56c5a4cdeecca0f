/*
 * bench_http: the HTTP floor of `make bench` (scripts/bench.sh): COUNT POSTs
 * of one body (the bytes switchyard sends, captured by the bench's
 * calibration run) to the fake provider with curl multi over at most CONNS
 * kept-alive connections, CONNS calls in flight. Prints its own process CPU
 * (getrusage user + sys) per call and its rate as one JSON line.
 *
 * It must never talk to anything but the URL it is given (the bench's
 * loopback fake provider) and never count a call that did not answer 200:
 * one failure is an error exit.
 *
 * Usage: bench_http URL BODY_FILE COUNT CONNS
 */
#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define BH_BODY_MAX (1024 * 1024)
#define BH_REPLY_MAX (1024 * 1024)

struct bh_call {
    CURL *easy;
    char *reply; /* grows up to BH_REPLY_MAX, like a worker's reply buffer */
    size_t len, cap;
};

static size_t bh_write(char *p, size_t size, size_t nmemb, void *arg)
{
    struct bh_call *c = arg;
    size_t n = size * nmemb;

    if (c->len + n > BH_REPLY_MAX)
        return 0;
    if (c->len + n > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        char *r;

        while (cap < c->len + n)
            cap *= 2;
        r = realloc(c->reply, cap);
        if (!r)
            return 0;
        c->reply = r;
        c->cap = cap;
    }
    memcpy(c->reply + c->len, p, n);
    c->len += n;
    return n;
}

static double bh_cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static double bh_wall_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    static char body[BH_BODY_MAX];
    struct curl_slist *hdr = NULL;
    struct bh_call *calls;
    unsigned long n, conns, started = 0, done = 0, failed = 0;
    size_t body_len, reply_bytes = 0;
    double cpu0, wall0, cpu, wall;
    CURLM *multi;
    FILE *f;

    if (argc != 5 || (n = strtoul(argv[3], NULL, 10)) == 0 ||
        (conns = strtoul(argv[4], NULL, 10)) == 0 || conns > 10000) {
        fputs("usage: bench_http URL BODY_FILE COUNT CONNS\n", stderr);
        return 2;
    }
    if (!(f = fopen(argv[2], "rb"))) {
        fprintf(stderr, "bench_http: cannot read %s\n", argv[2]);
        return 1;
    }
    body_len = fread(body, 1, sizeof body, f);
    fclose(f);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();
    calls = calloc(conns, sizeof *calls);
    if (!multi || !calls)
        return 1;
    curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)conns);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, (long)conns);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    hdr = curl_slist_append(hdr, "Authorization: Bearer bench-dummy-key");
    /* as a worker's call: each carries a request id of this length */
    hdr = curl_slist_append(hdr, "x-client-request-id: 01a236e5-c243-7822-acb2-c88a8951d378");
    cpu0 = bh_cpu_us();
    wall0 = bh_wall_s();
    for (unsigned long i = 0; i < conns && started < n; i++, started++) {
        struct bh_call *c = &calls[i];

        c->easy = curl_easy_init();
        curl_easy_setopt(c->easy, CURLOPT_URL, argv[1]);
        curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c->easy, CURLOPT_POST, 1L);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, bh_write);
        curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
        curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
        curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c->easy, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_multi_add_handle(multi, c->easy);
    }
    while (done < n) {
        int running, left;
        CURLMsg *m;

        curl_multi_perform(multi, &running);
        while ((m = curl_multi_info_read(multi, &left))) {
            struct bh_call *c;
            long status = 0;

            if (m->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            if (m->data.result != CURLE_OK || status != 200)
                failed++;
            reply_bytes += c->len;
            c->len = 0;
            done++;
            curl_multi_remove_handle(multi, c->easy);
            if (started < n) {
                started++;
                curl_multi_add_handle(multi, c->easy);
            }
        }
        if (done < n)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    cpu = bh_cpu_us() - cpu0;
    wall = bh_wall_s() - wall0;
    if (failed) {
        fprintf(stderr, "bench_http: %lu of %lu calls failed\n", failed, n);
        return 1;
    }
    printf("{\"messages\":%lu,\"cpu_us_per_msg\":%.3f,\"msg_per_s\":%.0f,\"wall_s\":%.3f,"
           "\"request_bytes\":%lu,\"reply_bytes\":%lu}\n",
           n, cpu / (double)n, (double)n / wall, wall, (unsigned long)body_len,
           (unsigned long)(reply_bytes / n));
    for (unsigned long i = 0; i < conns; i++) {
        if (calls[i].easy)
            curl_easy_cleanup(calls[i].easy);
        free(calls[i].reply);
    }
    free(calls);
    curl_slist_free_all(hdr);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return 0;
}
