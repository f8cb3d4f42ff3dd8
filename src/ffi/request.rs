//! A safe view of one request: what the environ is built from, and the
//! input and output paths the WSGI adapter drives.
use std::ffi::{c_char, c_void};
use std::marker::PhantomData;

use super::pool::Pool;
use super::{cstr_bytes, cstr_string, sys};
use crate::config::{DirConfig, ServerConfig};

/// A handle on the request_rec Apache passed to a hook. Valid while that
/// hook runs, on its thread: whoever builds one with [`Request::from_raw`]
/// must not let it (or anything holding it) outlive the hook.
#[derive(Clone, Copy)]
pub struct Request {
    raw: *mut sys::request_rec,
}

// SAFETY: a Request is only ever used on the thread running its hook; the
// Send bound is needed only to move it into a GIL-released closure that runs
// synchronously on that same thread.
unsafe impl Send for Request {}

/// Why a write to the client failed.
#[derive(Debug)]
pub struct ClientGone;

pub use wsgi_core::input::ReadFailed;

impl Request {
    /// # Safety
    /// `raw` must be the live request_rec of the running hook.
    pub unsafe fn from_raw(raw: *mut sys::request_rec) -> Self {
        Request { raw }
    }

    pub fn raw(&self) -> *const sys::request_rec {
        self.raw
    }

    fn r(&self) -> &sys::request_rec {
        // SAFETY: valid while the hook runs, by from_raw's contract.
        unsafe { &*self.raw }
    }

    fn conn(&self) -> &sys::conn_rec {
        // SAFETY: every request has a live connection.
        unsafe { &*self.r().connection }
    }

    pub fn pool(&self) -> Pool {
        Pool(self.r().pool)
    }

    fn bytes(&self, p: *const c_char) -> &[u8] {
        // SAFETY: request strings live in r->pool for the request's lifetime.
        unsafe { cstr_bytes(p) }.unwrap_or(b"")
    }

    fn opt_bytes(&self, p: *const c_char) -> Option<&[u8]> {
        // SAFETY: as bytes().
        unsafe { cstr_bytes(p) }
    }

    pub fn handler(&self) -> Option<&[u8]> {
        self.opt_bytes(self.r().handler)
    }
    pub fn set_handler(&self, handler: &[u8]) {
        // SAFETY: the string is copied into r->pool, which outlives the request.
        unsafe { (*self.raw).handler = self.pool().strdup(handler) }
    }
    pub fn filename(&self) -> &[u8] {
        self.bytes(self.r().filename)
    }
    pub fn set_filename(&self, filename: &[u8]) {
        // SAFETY: as set_handler.
        unsafe { (*self.raw).filename = self.pool().strdup(filename) as *mut c_char }
    }
    pub fn uri(&self) -> &[u8] {
        self.bytes(self.r().uri)
    }
    pub fn path_info(&self) -> &[u8] {
        self.bytes(self.r().path_info)
    }
    pub fn args(&self) -> &[u8] {
        self.bytes(self.r().args)
    }
    pub fn method(&self) -> &[u8] {
        self.bytes(self.r().method)
    }
    pub fn protocol(&self) -> &[u8] {
        self.bytes(self.r().protocol)
    }
    pub fn the_request(&self) -> &[u8] {
        self.bytes(self.r().the_request)
    }
    pub fn user(&self) -> Option<&[u8]> {
        self.opt_bytes(self.r().user)
    }
    /// Replaces the authenticated user's name (an auth script's canonical name).
    pub fn set_user(&self, user: &[u8]) {
        // SAFETY: copied into r->pool, which outlives the request.
        unsafe { (*self.raw).user = self.pool().strdup(user) as *mut c_char }
    }
    pub fn auth_type(&self) -> Option<&[u8]> {
        self.opt_bytes(self.r().ap_auth_type)
    }
    /// The request's log id (`%L`), generated now if nothing asked for one
    /// yet, as mod_wsgi does for `mod_wsgi.request_id`.
    pub fn log_id(&self) -> Option<&[u8]> {
        if self.r().log_id.is_null() {
            // SAFETY: the request's own connection and log id slot, on its
            // thread; Apache's generator leaves a pool string (or NULL) there.
            unsafe { sys::ap_run_generate_log_id(self.r().connection, self.raw, &mut (*self.raw).log_id) };
        }
        self.opt_bytes(self.r().log_id)
    }
    pub fn connection_log_id(&self) -> Option<&[u8]> {
        self.opt_bytes(self.conn().log_id)
    }
    pub fn header_only(&self) -> bool {
        self.r().header_only != 0
    }
    /// When Apache received the request, in µs since the epoch.
    pub fn request_time_us(&self) -> i64 {
        self.r().request_time
    }
    /// The same, in seconds (as the environ reports it).
    pub fn request_time(&self) -> f64 {
        self.request_time_us() as f64 / 1e6
    }
    /// `AcceptPathInfo Off` for this request.
    pub fn rejects_path_info(&self) -> bool {
        self.r().used_path_info == sys::AP_REQ_REJECT_PATH_INFO
    }
    pub fn allows_exec_cgi(&self) -> bool {
        // SAFETY: reads the request's merged core options.
        unsafe { sys::ap_allow_options(self.raw) & sys::OPT_EXECCGI != 0 }
    }

    /// What Apache's directory walk found at `filename`.
    pub fn file_kind(&self) -> FileKind {
        let finfo = &self.r().finfo;
        match finfo.filetype {
            sys::apr_filetype_e_APR_NOFILE => FileKind::Missing,
            sys::apr_filetype_e_APR_DIR => FileKind::Directory,
            _ => FileKind::File { mtime_us: finfo.mtime },
        }
    }

    pub fn server(&self) -> super::server::Server {
        super::server::Server(self.r().server)
    }
    pub fn server_config(&self) -> &ServerConfig {
        // SAFETY: r->server's module config holds our ServerConfig, read-only after startup.
        unsafe { &*super::server::server_config_ptr(self.r().server) }
    }
    pub fn dir_config(&self) -> &DirConfig {
        // SAFETY: the merged per-dir vector holds our DirConfig for this request.
        unsafe { &*(sys::mrs_get_module_config(self.r().per_dir_config, crate::module_record::module_ptr()) as *const DirConfig) }
    }

    /// The server name as it goes into a URL (`SERVER_NAME`): the Host the
    /// client asked for under `UseCanonicalName Off`, an IPv6 literal in brackets.
    pub fn server_name_for_url(&self) -> &[u8] {
        // SAFETY: returns a pool or config string.
        self.bytes(unsafe { sys::ap_get_server_name_for_url(self.raw) })
    }
    /// The configured ServerName of the virtual host that took the request.
    pub fn server_hostname(&self) -> &[u8] {
        // SAFETY: r->server is live; its name is a config-pool string.
        self.bytes(unsafe { (*self.r().server).server_hostname })
    }
    /// The host the request named (Host header or absolute URI), lowercased
    /// and without a port; `None` when the client named none.
    pub fn hostname(&self) -> Option<&[u8]> {
        self.opt_bytes(self.r().hostname)
    }
    pub fn server_port(&self) -> u16 {
        // SAFETY: plain query.
        unsafe { sys::ap_get_server_port(self.raw) }
    }
    pub fn server_admin(&self) -> Option<&[u8]> {
        // SAFETY: r->server is live.
        self.opt_bytes(unsafe { (*self.r().server).server_admin })
    }
    pub fn document_root(&self) -> &[u8] {
        // SAFETY: returns a config string.
        self.bytes(unsafe { sys::ap_document_root(self.raw) })
    }
    pub fn context_prefix(&self) -> &[u8] {
        // SAFETY: returns a pool string.
        self.bytes(unsafe { sys::ap_context_prefix(self.raw) })
    }
    pub fn context_document_root(&self) -> &[u8] {
        // SAFETY: returns a pool string.
        self.bytes(unsafe { sys::ap_context_document_root(self.raw) })
    }
    pub fn scheme(&self) -> &[u8] {
        // SAFETY: returns a static or pool string.
        self.bytes(unsafe { sys::ap_run_http_scheme(self.raw) })
    }
    pub fn local_ip(&self) -> &[u8] {
        self.bytes(self.conn().local_ip)
    }
    /// The host named by the `Listen` directive whose socket accepted the
    /// connection ("" for a wildcard `Listen 80`).
    pub fn listener_host(&self) -> &[u8] {
        // SAFETY: local_addr starts as a copy of the listener's address, whose
        // hostname is a string in the process pool (or NULL).
        self.bytes(unsafe { (*self.conn().local_addr).hostname })
    }
    pub fn local_port(&self) -> u16 {
        // SAFETY: local_addr is set for every connection.
        unsafe { (*self.conn().local_addr).port }
    }
    pub fn client_ip(&self) -> &[u8] {
        self.bytes(self.r().useragent_ip)
    }
    pub fn client_port(&self) -> u16 {
        // SAFETY: client_addr is set for every connection.
        unsafe { (*self.conn().client_addr).port }
    }

    fn core_dir_config(&self) -> &sys::core_dir_config {
        // SAFETY: the core module's merged per-directory config is always present.
        unsafe { &*(sys::ap_get_core_module_config(self.r().per_dir_config) as *const sys::core_dir_config) }
    }
    /// `CGIPassAuth On`: the credentials headers may reach the app.
    pub fn cgi_passes_auth(&self) -> bool {
        self.core_dir_config().cgi_pass_auth() == sys::AP_CGI_PASS_AUTH_ON as u32
    }

    /// Where an internal redirect (`ErrorDocument`, mod_rewrite in directory
    /// context) came from, for the `REDIRECT_*` variables.
    pub fn redirected_from(&self) -> Option<RedirectedFrom<'_>> {
        let prev = self.r().prev;
        if prev.is_null() {
            return None;
        }
        // SAFETY: r->prev is the live request this one was redirected from
        // (and each of its own prev links too).
        let prev_r = unsafe { &*prev };
        let user = if self.user().is_some() {
            None
        } else {
            // SAFETY: as above, for every earlier request of the chain.
            std::iter::successors(Some(prev_r), |r| unsafe { r.prev.as_ref() }).find_map(|r| self.opt_bytes(r.user))
        };
        let url = if self.core_dir_config().qualify_redirect_url() == sys::AP_CORE_CONFIG_ON as u32 {
            // SAFETY: a copy of prev's parsed URI, completed the way Apache's
            // CGI does it, unparsed into r->pool.
            Some(self.bytes(unsafe {
                let mut uri = prev_r.parsed_uri;
                if uri.scheme.is_null() {
                    uri.scheme = sys::ap_run_http_scheme(prev) as *mut c_char;
                }
                if uri.port == 0 {
                    uri.port = sys::ap_get_server_port(prev);
                    uri.port_str = self.pool().strdup(uri.port.to_string().as_bytes()) as *mut c_char;
                }
                if uri.hostname.is_null() {
                    uri.hostname = sys::ap_get_server_name_for_url(prev) as *mut c_char;
                }
                sys::apr_uri_unparse(self.r().pool, &uri, 0)
            }))
        } else {
            self.opt_bytes(prev_r.uri)
        };
        Some(RedirectedFrom { url, query: self.opt_bytes(prev_r.args), user })
    }

    pub fn headers_in(&self) -> Table<'_> {
        Table::new(self.r().headers_in)
    }
    pub fn subprocess_env(&self) -> Table<'_> {
        Table::new(self.r().subprocess_env)
    }
    pub fn notes(&self) -> Table<'_> {
        Table::new(self.r().notes)
    }
    pub fn set_note(&self, key: &'static std::ffi::CStr, value: &[u8]) {
        // SAFETY: the key is static, the value copied into r->pool.
        unsafe { sys::apr_table_setn(self.r().notes, key.as_ptr(), self.pool().strdup(value)) }
    }

    /// Whether an output filter below the protocol level (one that could
    /// depend on the body, such as DEFLATE) is in the chain.
    pub fn has_content_filter(&self) -> bool {
        let mut f = self.r().output_filters;
        while !f.is_null() {
            // SAFETY: walking Apache's live filter chain.
            unsafe {
                if !(*f).frec.is_null() && (*(*f).frec).ftype < sys::ap_filter_type_AP_FTYPE_PROTOCOL {
                    return true;
                }
                f = (*f).next;
            }
        }
        false
    }

    // ---- input ----

    /// Prepares to read the body; `Err(status)` is the HTTP error to answer
    /// with (411 for a chunked body when chunked requests are off).
    pub fn setup_body(&self, allow_chunked: bool) -> Result<(), i32> {
        let policy = if allow_chunked { sys::REQUEST_CHUNKED_DECHUNK } else { sys::REQUEST_CHUNKED_ERROR };
        // SAFETY: called once, before any read.
        let rc = unsafe { sys::ap_setup_client_block(self.raw, policy) };
        if rc != 0 {
            return Err(rc);
        }
        // SAFETY: as above; this also arranges 100-continue.
        unsafe { sys::ap_should_client_block(self.raw) };
        Ok(())
    }

    /// The body's length from its Content-Length; `None` for a chunked
    /// body. Only right before the first read (Apache zeroes it at the end).
    pub fn body_length(&self) -> Option<u64> {
        let r = self.r();
        (r.read_chunked == 0).then(|| u64::try_from(r.remaining).unwrap_or(0))
    }

    /// Reads body bytes into `buf`; 0 at the end, `Err` on a client error.
    /// An empty `buf` reads nothing but sends `100 Continue` if the client
    /// waits for it.
    pub fn read_body(&self, buf: &mut [u8]) -> Result<usize, ReadFailed> {
        self.read_body_or_status(buf).map_err(|_| ReadFailed)
    }

    /// As [`Request::read_body`] (what `ap_get_client_block` does), but a
    /// failure comes with the HTTP status that answers it: 413 over
    /// `LimitRequestBody`, 408 on a timeout, 400 for a malformed body, or
    /// `AP_FILTER_ERROR` when Apache's input filter already sent the error
    /// response itself (the handler must then not send another).
    pub fn read_body_or_status(&self, buf: &mut [u8]) -> Result<usize, i32> {
        let r = self.raw;
        // SAFETY: the request's own fields and filters, on its thread; the
        // brigade lives in r->pool and is destroyed before returning, and
        // buf is writable for its length.
        unsafe {
            if (*r).remaining < 0 || ((*r).read_chunked == 0 && (*r).remaining == 0) {
                return Ok(0);
            }
            let bb = sys::apr_brigade_create((*r).pool, self.conn().bucket_alloc);
            let rv = sys::ap_get_brigade((*r).input_filters, bb, sys::ap_input_mode_t_AP_MODE_READBYTES, sys::apr_read_type_e_APR_BLOCK_READ, buf.len() as sys::apr_off_t);
            if rv != 0 {
                sys::apr_brigade_destroy(bb);
                self.close_connection();
                return Err(sys::ap_map_http_request_error(rv, sys::HTTP_BAD_REQUEST));
            }
            if sys::mrs_brigade_ends_with_eos(bb) != 0 {
                // The next call answers 0.
                (*r).remaining = if (*r).read_chunked != 0 { -1 } else { 0 };
            }
            let mut len = buf.len() as sys::apr_size_t;
            let rv = sys::apr_brigade_flatten(bb, buf.as_mut_ptr() as *mut c_char, &mut len);
            sys::apr_brigade_destroy(bb);
            if rv != 0 {
                self.close_connection();
                return Err(sys::HTTP_INTERNAL_SERVER_ERROR);
            }
            (*r).read_length += len as sys::apr_off_t;
            Ok(len as usize)
        }
    }

    // ---- output ----

    pub fn set_status(&self, code: u16, line: &[u8]) {
        // SAFETY: the line is copied into r->pool, which Apache reads later.
        unsafe {
            (*self.raw).status = code as i32;
            (*self.raw).status_line = self.pool().strdup(line);
        }
    }

    /// Adds a response header; `err` ones (WWW-Authenticate) survive error pages.
    pub fn add_header(&self, name: &[u8], value: &[u8], err: bool) {
        let table = if err { self.r().err_headers_out } else { self.r().headers_out };
        let pool = self.pool();
        // SAFETY: both strings are copied into r->pool first.
        unsafe { sys::apr_table_addn(table, pool.strdup(name), pool.strdup(value)) }
    }
    pub fn set_content_type(&self, value: &[u8]) {
        // SAFETY: Apache keeps the pointer, so it must live in r->pool.
        unsafe { sys::ap_set_content_type(self.raw, self.pool().strdup(value)) }
    }
    pub fn set_content_length(&self, length: u64) {
        // SAFETY: plain setter.
        unsafe { sys::ap_set_content_length(self.raw, length as sys::apr_off_t) }
    }
    /// Once headers are out, a late body read must not emit "100 Continue".
    pub fn clear_expecting_100(&self) {
        // SAFETY: a plain field write on our request.
        unsafe { (*self.raw).expecting_100 = 0 }
    }

    /// `EnableSendfile` for this request's directory (Apache's default: off).
    pub fn sendfile_enabled(&self) -> bool {
        // SAFETY: reads the core's merged per-directory config of a live request.
        unsafe { sys::mrs_sendfile_enabled(self.raw) != 0 }
    }

    pub fn client_aborted(&self) -> bool {
        self.conn().aborted != 0
    }

    /// The timeout on the client connection's socket, for writes that
    /// block; None on an HTTP/2 stream, which writes to no socket of its
    /// own (its connection's socket serves every stream).
    pub fn client_socket_timeout(&self) -> Option<std::time::Duration> {
        let socket = self.client_socket()?;
        let mut timeout: sys::apr_interval_time_t = 0;
        // SAFETY: reads the timeout of the connection's live socket.
        let rv = unsafe { sys::apr_socket_timeout_get(socket, &mut timeout) };
        (rv == 0).then(|| std::time::Duration::from_micros(timeout.max(0) as u64))
    }

    /// Sets the client socket's timeout (see `client_socket_timeout`).
    pub fn set_client_socket_timeout(&self, timeout: std::time::Duration) {
        if let Some(socket) = self.client_socket() {
            let micros = sys::apr_interval_time_t::try_from(timeout.as_micros()).unwrap_or(sys::apr_interval_time_t::MAX);
            // SAFETY: the connection's live socket; a timeout is a plain setting.
            unsafe { sys::apr_socket_timeout_set(socket, micros) };
        }
    }

    fn client_socket(&self) -> Option<*mut sys::apr_socket_t> {
        if !self.conn().master.is_null() {
            return None;
        }
        // SAFETY: the core's socket of our own (not an HTTP/2 stream's) connection.
        let socket = unsafe { sys::ap_get_conn_socket(self.r().connection) };
        (!socket.is_null()).then_some(socket)
    }

    /// Stops the connection from being kept alive after this response.
    pub fn close_connection(&self) {
        // SAFETY: a plain field write on our connection.
        unsafe { sys::mrs_conn_set_close(self.r().connection) }
    }

    /// A brigade for this request's output, reused across writes.
    pub fn new_brigade(&self) -> Brigade {
        // SAFETY: created in r->pool with the connection's allocator.
        let bb = unsafe { sys::apr_brigade_create(self.r().pool, self.conn().bucket_alloc) };
        Brigade { bb, req: *self }
    }
}

/// The request an internal redirect started from.
pub struct RedirectedFrom<'r> {
    /// Its URL path (or full URL under `QualifyRedirectURL On`).
    pub url: Option<&'r [u8]>,
    pub query: Option<&'r [u8]>,
    /// The user an earlier request in the chain authenticated, when this one has none.
    pub user: Option<&'r [u8]>,
}

/// What `r->filename` names on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Missing,
    Directory,
    File { mtime_us: i64 },
}

/// An output brigade: each call passes its buckets down the filter chain
/// and empties it again. Call with the GIL released: these block.
pub struct Brigade {
    bb: *mut sys::apr_bucket_brigade,
    req: Request,
}

// SAFETY: as for Request: used only on the request's thread.
unsafe impl Send for Brigade {}

impl Brigade {
    fn alloc(&self) -> *mut sys::apr_bucket_alloc_t {
        self.req.conn().bucket_alloc
    }

    fn pass(&mut self) -> Result<(), ClientGone> {
        // SAFETY: the brigade and the filter chain are live for the request.
        let rv = unsafe { sys::ap_pass_brigade(self.req.r().output_filters, self.bb) };
        // SAFETY: empties the brigade for reuse.
        unsafe { sys::apr_brigade_cleanup(self.bb as *mut c_void) };
        if rv != 0 || self.req.client_aborted() {
            return Err(ClientGone);
        }
        Ok(())
    }

    fn push(&mut self, bucket: *mut sys::apr_bucket) {
        // SAFETY: a freshly created bucket goes to the tail of our brigade.
        unsafe { sys::mrs_brigade_insert_tail(self.bb, bucket) }
    }

    /// Sends `data` and flushes it to the client. `data` may be freed once
    /// this returns: filters that keep data copy transient buckets.
    pub fn write(&mut self, data: &[u8]) -> Result<(), ClientGone> {
        self.push_data(data);
        self.push_flush();
        self.pass()
    }

    /// Passes `data` on without a flush: Apache's core may hold small
    /// amounts back to send with what follows. `data` may be freed once
    /// this returns, as with `write`.
    pub fn write_unflushed(&mut self, data: &[u8]) -> Result<(), ClientGone> {
        self.push_data(data);
        self.pass()
    }

    /// Sends whatever Apache holds back of the data passed so far.
    pub fn flush(&mut self) -> Result<(), ClientGone> {
        self.push_flush();
        self.pass()
    }

    fn push_data(&mut self, data: &[u8]) {
        // SAFETY: a transient bucket borrows data for the pass that follows.
        let b = unsafe { sys::apr_bucket_transient_create(data.as_ptr() as *const c_char, data.len(), self.alloc()) };
        self.push(b);
    }

    fn push_flush(&mut self) {
        // SAFETY: a flush bucket from the connection's allocator.
        let flush = unsafe { sys::apr_bucket_flush_create(self.alloc()) };
        self.push(flush);
    }

    /// Sends `length` bytes of the open file `fd` from `offset`, with file
    /// buckets. Apache's core output filter uses sendfile for a file only
    /// when the file says so, which is ours to decide from `EnableSendfile`
    /// (off for files on network file systems, where it can send stale
    /// data). The descriptor is duplicated, so the caller may close its own
    /// once this returns.
    pub fn send_file(&mut self, fd: i32, offset: u64, length: u64) -> Result<(), ClientGone> {
        const MAX_BUCKET: u64 = 1 << 30;
        let pool = self.req.r().pool;
        let mut borrowed: *mut sys::apr_file_t = std::ptr::null_mut();
        let mut owned: *mut sys::apr_file_t = std::ptr::null_mut();
        let mut os_fd = fd;
        // SAFETY: apr_os_file_put wraps (does not own) fd; apr_file_dup makes
        // a descriptor owned by r->pool, which buckets set aside with the data.
        unsafe {
            let sendfile = if self.req.sendfile_enabled() { sys::APR_FOPEN_SENDFILE_ENABLED } else { 0 };
            let flags = sys::APR_FOPEN_READ | sendfile;
            if sys::apr_os_file_put(&mut borrowed, &mut os_fd, flags, pool) != 0 || sys::apr_file_dup(&mut owned, borrowed, pool) != 0 {
                return Err(ClientGone);
            }
        }
        let (mut at, mut left) = (offset, length);
        while left > 0 {
            let n = left.min(MAX_BUCKET);
            // SAFETY: a file bucket over the owned descriptor.
            let b = unsafe { sys::apr_bucket_file_create(owned, at as sys::apr_off_t, n as sys::apr_size_t, pool, self.alloc()) };
            self.push(b);
            at += n;
            left -= n;
        }
        self.push_flush();
        self.pass()
    }

    /// Ends a response that failed after its headers went out so that the
    /// client sees it cut short: no final chunk, and the connection closes.
    pub fn abort(&mut self) {
        self.req.close_connection();
        // SAFETY: a 502 error bucket tells the chunking filter to withhold
        // the last chunk (as mod_proxy does for a broken backend).
        unsafe {
            let err = sys::ap_bucket_error_create(sys::HTTP_BAD_GATEWAY, std::ptr::null(), self.req.r().pool, self.alloc());
            self.push(err);
            let eos = sys::apr_bucket_eos_create(self.alloc());
            self.push(eos);
        }
        let _ = self.pass();
    }
}

/// A read-only view of an APR table (headers, environment, notes).
#[derive(Clone, Copy)]
pub struct Table<'r> {
    raw: *mut sys::apr_table_t,
    _req: PhantomData<&'r ()>,
}

impl<'r> Table<'r> {
    fn new(raw: *mut sys::apr_table_t) -> Self {
        Table { raw, _req: PhantomData }
    }

    pub fn get(&self, key: &std::ffi::CStr) -> Option<&'r [u8]> {
        // SAFETY: the table and its strings live in r->pool.
        unsafe { cstr_bytes(sys::apr_table_get(self.raw, key.as_ptr())) }
    }

    pub fn get_string(&self, key: &str) -> Option<String> {
        let key = std::ffi::CString::new(key).ok()?;
        // SAFETY: as get().
        unsafe { cstr_string(sys::apr_table_get(self.raw, key.as_ptr())) }
    }

    /// Entries in insertion order, repeated keys included.
    pub fn entries(&self) -> impl Iterator<Item = (&'r [u8], &'r [u8])> + use<'r> {
        // SAFETY: apr_table_elts exposes the table's entry array.
        let (elts, count) = unsafe {
            let arr = &*sys::apr_table_elts(self.raw);
            (arr.elts as *const sys::apr_table_entry_t, arr.nelts.max(0) as usize)
        };
        (0..count).filter_map(move |i| {
            // SAFETY: i < nelts; entries hold pool strings (key may be NULL once deleted).
            let e = unsafe { &*elts.add(i) };
            let key = unsafe { cstr_bytes(e.key) }?;
            let val = unsafe { cstr_bytes(e.val) }.unwrap_or(b"");
            Some((key, val))
        })
    }
}
