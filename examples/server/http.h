/* kuiper-server's HTTP side, on libmicrohttpd (one thread per connection). */
#ifndef KS_HTTP_H
#define KS_HTTP_H

#include "api.h"

typedef struct ks_http ks_http;

/* Listens on o->host:o->port; *port_out gets the bound port. */
int ks_http_start(const ks_ctx *c, ks_sched *s, ks_http **out, int *port_out);
void ks_http_stop(ks_http *h);

#endif
