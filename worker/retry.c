/*
 * retry: decides, never acts: no clock read, no randomness of its own, no
 * I/O. dispatch applies the decision.
 */
#include "retry.h"

const char *retry_action_name(enum retry_action a)
{
    switch (a) {
    case RETRY_SAME:
        return "retry";
    case RETRY_FALL_BACK:
        return "fall_back";
    case RETRY_GIVE_UP:
        return "give_up";
    case RETRY_ABANDON:
        return "abandon";
    }
    return "unknown";
}

static struct retry_decision retry_fall_back(const struct retry_input *in, const char *why)
{
    if (!in->has_next)
        return (struct retry_decision){RETRY_GIVE_UP, 0, why};
    return (struct retry_decision){RETRY_FALL_BACK, 0, why};
}

struct retry_decision retry_decide(const struct retry_input *in)
{
    if (in->stopping)
        return (struct retry_decision){RETRY_ABANDON, 0, "stopping"};
    if (in->rate_limited) {
        uint64_t wait = in->rate_wait_ms;
        if (in->fall_back_on_rate_limit && in->has_next)
            return retry_fall_back(in, "rate_limited");
        if (in->deadline_ms >= 0 &&
            in->now_ms + (int64_t)(wait > INT32_MAX ? INT32_MAX : wait) >= in->deadline_ms)
            return retry_fall_back(in, "rate_limited");
        if (in->rate_waited_ms + wait > in->rate_limit_max_wait_ms ||
            in->rate_limited_calls > RETRY_MAX_RATE_LIMITED)
            return retry_fall_back(in, "rate_limited");
        return (struct retry_decision){RETRY_SAME, wait, "rate_limited_wait"};
    }
    if (in->attempts >= in->max_attempts)
        return (struct retry_decision){RETRY_GIVE_UP, 0, "max_attempts"};
    if (!in->retryable)
        return retry_fall_back(in, "not_retryable");
    if (in->tries_on_current > in->retries_per_candidate)
        return retry_fall_back(in, "retries_spent");
    unsigned shift = in->tries_on_current > 0 ? in->tries_on_current - 1 : 0;
    if (shift > 32)
        shift = 32;
    uint64_t cap = in->backoff_initial_ms << shift;
    if (cap > in->backoff_max_ms || (cap >> shift) != in->backoff_initial_ms)
        cap = in->backoff_max_ms;
    uint64_t delay = cap / 2 + in->random % (cap / 2 + 1);
    if (in->retry_after_ms >= 0) {
        if ((uint64_t)in->retry_after_ms > in->backoff_max_ms)
            return retry_fall_back(in, "retry_after_too_long");
        if ((uint64_t)in->retry_after_ms > delay)
            delay = (uint64_t)in->retry_after_ms;
    }
    if (in->deadline_ms >= 0 && in->now_ms + (int64_t)delay >= in->deadline_ms)
        return retry_fall_back(in, "deadline");
    return (struct retry_decision){RETRY_SAME, delay, "retry"};
}
