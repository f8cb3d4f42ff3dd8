//! The one panic boundary: every `extern "C"` entry point runs its body
//! through [`guard`], so a Rust panic is logged and mapped to a safe result
//! instead of unwinding into Apache (which would abort the whole child).
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use super::log::{self, Level};

/// Runs `body`; on panic logs `what` with the panic message to the main
/// error log and returns `fallback`.
pub fn guard<R>(what: &str, fallback: R, body: impl FnOnce() -> R) -> R {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(value) => value,
        Err(payload) => {
            log::server(None, Level::Crit, &format!("internal error (Rust panic) in {what}: {}", panic_message(&payload)));
            fallback
        }
    }
}

pub fn panic_message(payload: &Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}
