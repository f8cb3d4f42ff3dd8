#include "shim.h"
#include <http_config.h>
#include <http_core.h>

void mrs_brigade_insert_tail(apr_bucket_brigade *bb, apr_bucket *b)
{
    APR_BRIGADE_INSERT_TAIL(bb, b);
}

int mrs_brigade_ends_with_eos(apr_bucket_brigade *bb)
{
    return !APR_BRIGADE_EMPTY(bb) && APR_BUCKET_IS_EOS(APR_BRIGADE_LAST(bb));
}

/* The ap_log_*error macros fill in file, line and module index; the Rust
 * caller passes its own, so "LogLevel wsgi:debug" applies and debug lines
 * name the Rust source. The message always goes through "%s" so that a '%'
 * in it is never read as a format directive. */
void mrs_log_rerror(const char *file, int line, int module_index, int level,
                    apr_status_t status, const request_rec *r, const char *msg)
{
    ap_log_rerror_(file, line, module_index, level, status, r, "%s", msg);
}

void mrs_log_error(const char *file, int line, int module_index, int level,
                   apr_status_t status, const server_rec *s, const char *msg)
{
    ap_log_error_(file, line, module_index, level, status, s, "%s", msg);
}

int mrs_log_is_enabled(int module_index, int level, const server_rec *s)
{
    return APLOG_MODULE_IS_LEVEL(s, module_index, level);
}

void *mrs_get_module_config(const ap_conf_vector_t *cv, const module *m)
{
    return ((void **)cv)[m->module_index];
}

void mrs_set_module_config(ap_conf_vector_t *cv, const module *m, void *val)
{
    ((void **)cv)[m->module_index] = val;
}

apr_pool_t *mrs_pool_create(apr_pool_t *parent)
{
    apr_pool_t *p = NULL;
    if (apr_pool_create(&p, parent) != APR_SUCCESS)
        return NULL;
    return p;
}

const char *mrs_decline_cmd(void)
{
    return DECLINE_CMD;
}

void mrs_conn_set_close(conn_rec *c)
{
    c->keepalive = AP_CONN_CLOSE;
}

/* EnableSendfile for the request's directory: the core keeps it in a
 * bitfield of its per-directory config, which bindgen cannot read. */
int mrs_sendfile_enabled(const request_rec *r)
{
    const core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    return AP_SENDFILE_ENABLED(d->enable_sendfile) != 0;
}
