#ifndef MOD_WSGI_RS_SHIM_H
#define MOD_WSGI_RS_SHIM_H
/* C functions standing in for httpd/APR macros and static inlines, which
 * bindgen cannot translate. Each is a one-liner over the macro it names. */
#include <httpd.h>
#include <http_log.h>
#include <apr_buckets.h>

void mrs_brigade_insert_tail(apr_bucket_brigade *bb, apr_bucket *b);
int mrs_brigade_ends_with_eos(apr_bucket_brigade *bb);
void mrs_log_rerror(const char *file, int line, int module_index, int level,
                    apr_status_t status, const request_rec *r, const char *msg);
void mrs_log_error(const char *file, int line, int module_index, int level,
                   apr_status_t status, const server_rec *s, const char *msg);
int mrs_log_is_enabled(int module_index, int level, const server_rec *s);
void *mrs_get_module_config(const ap_conf_vector_t *cv, const module *m);
void mrs_set_module_config(ap_conf_vector_t *cv, const module *m, void *val);
apr_pool_t *mrs_pool_create(apr_pool_t *parent);
const char *mrs_decline_cmd(void);
void mrs_conn_set_close(conn_rec *c);
int mrs_sendfile_enabled(const request_rec *r);
#endif
