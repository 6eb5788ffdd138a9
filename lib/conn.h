/*
 * conn: one asynchronous libpq connection driven by the libuv loop.
 *
 * A state machine (DOWN -> RESOLVING -> CONNECTING -> IDLE <-> BUSY -> DOWN)
 * that never blocks the loop: host names are resolved with uv_getaddrinfo
 * and handed to libpq as hostaddr, the connection is made with
 * PQconnectStart/PQconnectPoll under our own timer (libpq ignores
 * connect_timeout in that mode), and the poll handle is re-armed after every
 * PQconnectPoll because libpq may replace the socket. Once up, the
 * connection is non-blocking and in pipeline mode: a batch of statements is
 * sent at once, each followed by its own sync so that one failing statement
 * does not abort the others. Each statement has a client-side deadline
 * (armed when the previous one completes); a server that stops answering
 * loses the connection. An idle connection stays watched for READABLE so a
 * terminated backend is noticed at once.
 *
 * The owner (a target) gets callbacks; every callback may call back into
 * the conn (for example on_down may call pp_conn_connect later, from a
 * timer). At most one batch is in flight.
 */
#ifndef PGPULSE_CONN_H
#define PGPULSE_CONN_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "dsn.h"
#include "log.h"

typedef struct pp_conn pp_conn;

typedef enum pp_conn_state {
    PP_CONN_DOWN,
    PP_CONN_RESOLVING,
    PP_CONN_CONNECTING,
    PP_CONN_IDLE,
    PP_CONN_BUSY,
    PP_CONN_CLOSED,
} pp_conn_state;

typedef struct pp_conn_callbacks {
    /* Connected and ready for batches. */
    void (*on_up)(pp_conn *c, void *data);
    /* A connect failed or an established connection was lost (including a
     * batch whose deadline passed). reason is borrowed, valid during the
     * call, and never contains a password. The conn is DOWN. */
    void (*on_down)(pp_conn *c, void *data, const char *reason);
    /* A result of statement index of the current batch; res is borrowed
     * and valid only during the call. Called for every result the
     * statement yields, in order: in single-row mode one PGRES_SINGLE_TUPLE
     * per row, then PGRES_TUPLES_OK with no rows (or an error). res is NULL
     * once for a statement that yields nothing at all. */
    void (*on_result)(pp_conn *c, void *data, size_t index, const PGresult *res);
    /* Every statement of the batch has completed; the conn is IDLE. */
    void (*on_batch_done)(pp_conn *c, void *data);
} pp_conn_callbacks;

/* One statement of a batch; sql is borrowed until on_batch_done or
 * on_down. timeout is the client-side deadline in seconds. single_row
 * asks for libpq's single-row mode, so a large result is never held whole
 * (when libpq cannot grant it, the rows come in one result). */
typedef struct pp_conn_stmt {
    const char *sql;
    double timeout;
    bool single_row;
} pp_conn_stmt;

/* dsn and log are borrowed and must outlive the conn; cb is copied. */
pp_conn *pp_conn_new(uv_loop_t *loop, const pp_dsn *dsn, const pp_conn_callbacks *cb, void *data,
                     const pp_log *log);

/* Starts connecting (DOWN -> RESOLVING or CONNECTING). timeout bounds the
 * whole attempt in seconds. Extra options (keywords/values, NULL-terminated
 * or NULL) override the DSN's, e.g. application_name and options. */
int pp_conn_connect(pp_conn *c, double timeout, const char *const *extra_keywords,
                    const char *const *extra_values) __attribute__((warn_unused_result));

/* Sends a batch (IDLE -> BUSY). stmts is copied (the sql strings are not). */
int pp_conn_send(pp_conn *c, const pp_conn_stmt *stmts, size_t n)
    __attribute__((warn_unused_result));

/* Drops the connection now (any state but CLOSED -> DOWN) without calling
 * on_down. */
void pp_conn_reset(pp_conn *c);

/* Closes everything and frees the conn once libuv has released its handles;
 * no callback is called after this. Accepts NULL. */
void pp_conn_close(pp_conn *c);

pp_conn_state pp_conn_get_state(const pp_conn *c);
/* PQserverVersion of the current connection, 0 when not connected. */
int pp_conn_server_version(const pp_conn *c);
/* The server's version string (server_version parameter), "" when none. */
const char *pp_conn_server_version_string(const pp_conn *c);
/* Bytes of the largest result libpq held for this connection since the
 * last call (PQresultMemorySize), then resets; for memory accounting. */
size_t pp_conn_take_result_peak(pp_conn *c);

#endif
