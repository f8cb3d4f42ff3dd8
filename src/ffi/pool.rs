//! Tying Rust values to APR pool lifetimes.
use std::ffi::c_void;

use super::guard::guard;
use super::sys;

/// A non-owning handle to an APR pool.
#[derive(Clone, Copy)]
pub struct Pool(pub(crate) *mut sys::apr_pool_t);

// SAFETY: APR pools are only handed between threads by Apache itself; we
// use a handle only on the thread Apache gave it to us on.
unsafe impl Send for Pool {}

impl Pool {
    /// Moves `value` into the heap and drops it when the pool is cleared.
    /// The returned pointer lives as long as the pool.
    pub fn alloc<T>(self, value: T) -> *mut T {
        let raw = Box::into_raw(Box::new(value));
        unsafe extern "C" fn drop_box<T>(data: *mut c_void) -> sys::apr_status_t {
            guard("pool cleanup", 0, || {
                // SAFETY: data came from Box::into_raw::<T> in alloc and the
                // cleanup runs exactly once.
                drop(unsafe { Box::from_raw(data as *mut T) });
                0
            })
        }
        // SAFETY: the pool is live; the cleanup owns `raw` from here on.
        unsafe {
            sys::apr_pool_cleanup_register(self.0, raw as *const c_void, Some(drop_box::<T>), Some(sys::apr_pool_cleanup_null));
        }
        raw
    }

    /// Runs `f` when the pool is cleared (for a process pool: at exit).
    pub fn on_cleanup(self, f: Box<dyn FnOnce()>) {
        unsafe extern "C" fn run(data: *mut c_void) -> sys::apr_status_t {
            guard("pool cleanup", 0, || {
                // SAFETY: data is the Box<Box<dyn FnOnce()>> leaked below, run once.
                let f = unsafe { Box::from_raw(data as *mut Box<dyn FnOnce()>) };
                f();
                0
            })
        }
        let raw = Box::into_raw(Box::new(f));
        // SAFETY: the pool is live; the cleanup owns `raw`.
        unsafe {
            sys::apr_pool_cleanup_register(self.0, raw as *const c_void, Some(run), Some(sys::apr_pool_cleanup_null));
        }
    }

    /// Copies `s` into the pool, for strings Apache keeps a pointer to.
    pub fn strdup(self, s: &[u8]) -> *const std::ffi::c_char {
        // SAFETY: apr_pstrmemdup copies len bytes and NUL-terminates.
        unsafe { sys::apr_pstrmemdup(self.0, s.as_ptr() as *const _, s.len()) }
    }

    /// Runs `f` on the bytes stored on the pool under `key` with
    /// [`Pool::set_userdata_bytes`], where they are (secrets must not leave
    /// copies behind on the heap).
    fn with_userdata_bytes<R>(self, key: &str, f: impl FnOnce(&mut [u8]) -> R) -> Option<R> {
        let key = std::ffi::CString::new(key).ok()?;
        let mut data: *mut c_void = std::ptr::null_mut();
        // SAFETY: the pool is live; data is NULL or what set_userdata_bytes stored.
        unsafe { sys::apr_pool_userdata_get(&mut data, key.as_ptr(), self.0) };
        if data.is_null() {
            return None;
        }
        // SAFETY: set_userdata_bytes stores a length-prefixed copy in the
        // pool, which outlives this call.
        let stored = unsafe {
            let len = (data as *const usize).read_unaligned();
            std::slice::from_raw_parts_mut((data as *mut u8).add(std::mem::size_of::<usize>()), len)
        };
        Some(f(stored))
    }

    /// Copies the bytes stored under `key` into `out`, if there are exactly
    /// that many.
    pub fn copy_userdata_bytes(self, key: &str, out: &mut [u8]) -> bool {
        self.with_userdata_bytes(key, |stored| {
            let fits = stored.len() == out.len();
            if fits {
                out.copy_from_slice(stored);
            }
            fits
        }) == Some(true)
    }

    /// Overwrites the bytes stored under `key` with zeros, in this process.
    pub fn wipe_userdata_bytes(self, key: &str) {
        self.with_userdata_bytes(key, zeroize::Zeroize::zeroize);
    }

    /// Stores a copy of `value` on the pool under `key` until it is cleared.
    pub fn set_userdata_bytes(self, key: &str, value: &[u8]) {
        let header = std::mem::size_of::<usize>();
        // SAFETY: a pool allocation of header + len bytes holds the length
        // then the bytes; key and value are copied into the pool, which
        // userdata_set requires of the key.
        unsafe {
            let data = sys::apr_palloc(self.0, header + value.len()) as *mut u8;
            (data as *mut usize).write_unaligned(value.len());
            std::ptr::copy_nonoverlapping(value.as_ptr(), data.add(header), value.len());
            let key = self.strdup(key.as_bytes());
            sys::apr_pool_userdata_set(data as *const c_void, key, None, self.0);
        }
    }
}
