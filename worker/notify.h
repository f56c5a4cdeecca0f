/*
 * notify: the worker's side of systemd's service protocol (sd_notify):
 * READY=1 once it is in its consumer group, WATCHDOG=1 pinged from the
 * event loop at half the interval systemd asks for (a stuck loop stops
 * pinging, and systemd restarts the worker), STOPPING=1 while it drains,
 * STATUS= lines for `systemctl status`.
 *
 * Without NOTIFY_SOCKET in the environment (not run by systemd with
 * Type=notify) every function is a no-op. A failure to notify is logged
 * (rate-bounded) and never fatal: systemd's view of the worker is not a
 * reason to stop serving.
 *
 * Loop thread only.
 */
#ifndef SWITCHYARD_NOTIFY_H
#define SWITCHYARD_NOTIFY_H

#include <stdint.h>

struct loop;
struct notify;

/* A STATUS= text is cut at this many bytes (marked with "...") and its
 * control characters become spaces: a newline would start another
 * assignment. */
#define NOTIFY_STATUS_MAX 256

/* Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID (sd_watchdog_enabled's
 * rules: WATCHDOG_PID, when set, must be this process) and arms the
 * watchdog's timer on loop. loop stays the caller's and outlives the
 * notify. NULL only when out of memory; every function accepts NULL. */
struct notify *notify_new(struct loop *loop);
/* Stops the watchdog's timer. */
void notify_free(struct notify *n);

/* READY=1 with STATUS=status, the first time only; later calls do nothing. */
void notify_ready(struct notify *n, const char *status);
/* STOPPING=1 with STATUS=status; the watchdog keeps pinging while the
 * loop drains. */
void notify_stopping(struct notify *n, const char *status);
void notify_status(struct notify *n, const char *status);

/* 1 once READY=1 was attempted. */
int notify_was_ready(const struct notify *n);
/* The ping period in ms; 0 when systemd asked for no watchdog (or without
 * NOTIFY_SOCKET). */
uint64_t notify_watchdog_period_ms(const struct notify *n);

#endif
