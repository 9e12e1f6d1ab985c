/* embed.c: a small program embedding libbroker on a loop of its own.
 *
 * It listens on 127.0.0.1 (port from argv[1], default 0 = any free port), subscribes
 * in-process to /queue/embed and /topic/embed, publishes a greeting to each, prints what
 * arrives, and stops cleanly on SIGINT/SIGTERM (or after the greetings with --once).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

typedef struct app {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    broker *b;
    int once;
    int received;
} app;

static void on_log(void *ctx, broker_log_level level, uint64_t conn_id, broker_event event,
                   const char *text)
{
    (void)ctx;
    if (level > BROKER_LOG_INFO)
        return;
    if (conn_id)
        fprintf(stderr, "embed: %s (connection %llu): %s\n", broker_event_name(event),
                (unsigned long long)conn_id, text);
    else
        fprintf(stderr, "embed: %s: %s\n", broker_event_name(event), text);
}

static void on_stopped(broker *b, void *arg)
{
    (void)b;
    app *a = arg;
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
}

static void stop(app *a)
{
    if (broker_stop(a->b, on_stopped, a) != BROKER_OK)
        return; /* already stopping */
}

static void on_message(void *arg, const broker_message *m)
{
    app *a = arg;
    const char *from = broker_message_header(m, "x-from");
    printf("embed: %s: %.*s (from %s)\n", m->destination, (int)m->body_len,
           (const char *)m->body, from ? from : "a client");
    fflush(stdout);
    if (a->once && ++a->received == 2)
        stop(a);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    stop(s->data);
}

int main(int argc, char **argv)
{
    app a;
    memset(&a, 0, sizeof a);
    int port = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--once") == 0)
            a.once = 1;
        else
            port = atoi(argv[i]);
    }
    if (uv_loop_init(&a.loop) != 0)
        return 1;
    broker_options o;
    broker_options_init(&o);
    o.log = on_log;
    o.server_name = "embed-example";
    broker_err rc = broker_create(&a.loop, &o, &a.b);
    if (rc != BROKER_OK) {
        fprintf(stderr, "embed: %s\n", broker_strerror(rc));
        return 1;
    }
    int bound = 0;
    broker_sub *qs = NULL, *ts = NULL;
    broker_header h = { "x-from", "embed" };
    if ((rc = broker_listen(a.b, "127.0.0.1", port, &bound)) != BROKER_OK ||
        (rc = broker_subscribe(a.b, "/queue/embed", on_message, &a, &qs)) != BROKER_OK ||
        (rc = broker_subscribe(a.b, "/topic/embed", on_message, &a, &ts)) != BROKER_OK ||
        (rc = broker_publish(a.b, "/queue/embed", &h, 1, "hello queue", 11)) != BROKER_OK ||
        (rc = broker_publish(a.b, "/topic/embed", &h, 1, "hello topic", 11)) != BROKER_OK) {
        fprintf(stderr, "embed: %s\n", broker_strerror(rc));
        a.once = 0;
        stop(&a);
    } else {
        printf("embed: listening on 127.0.0.1:%d\n", bound);
        fflush(stdout);
    }
    uv_signal_init(&a.loop, &a.sigint);
    uv_signal_init(&a.loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    broker_free(a.b);
    return uv_loop_close(&a.loop) == 0 ? 0 : 1;
}
