/* The httpd and APR headers bindgen reads. Keep this list short: every header
 * added drags more of libc into the generated bindings. */
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_main.h>
#include <http_protocol.h>
#include <http_request.h>
#include <ap_mpm.h>
#include <ap_mmn.h>
#include <util_filter.h>
#include <util_script.h>
#include <apr_buckets.h>
#include <apr_file_io.h>
#include <apr_portable.h>
#include <apr_pools.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_thread_proc.h>
#include <scoreboard.h>
#include <unixd.h>
#include <ap_listen.h>
#include <mpm_common.h>
#include <mod_auth.h>

#include "shim.h"

/* Macro-only values, turned into constants bindgen can see. */
static const unsigned long MRS_MODULE_MAGIC_COOKIE = MODULE_MAGIC_COOKIE;
static const int MRS_MMN_MAJOR = MODULE_MAGIC_NUMBER_MAJOR;
static const int MRS_MMN_MINOR = MODULE_MAGIC_NUMBER_MINOR;
