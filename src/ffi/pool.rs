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
}
