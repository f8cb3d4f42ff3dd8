//! Apache's PCRE wrapper, so `WSGIScriptAliasMatch` patterns mean exactly
//! what they mean in `AliasMatch`.
use std::ffi::CString;

use super::pool::Pool;
use super::sys;

/// A compiled pattern, allocated in the configuration pool and freed with it.
pub struct Regex(*mut sys::ap_regex_t);

// SAFETY: a compiled ap_regex_t is immutable; ap_regexec is thread-safe.
unsafe impl Send for Regex {}
unsafe impl Sync for Regex {}

impl Regex {
    pub fn compile(pool: Pool, pattern: &str) -> Option<Regex> {
        let pattern = CString::new(pattern).ok()?;
        // SAFETY: the pool is live; ap_pregcomp registers its own cleanup.
        let raw = unsafe { sys::ap_pregcomp(pool.0, pattern.as_ptr(), 0) };
        (!raw.is_null()).then_some(Regex(raw))
    }

    /// The byte ranges of the match and its groups ($0..$9), if it matches.
    pub fn captures(&self, subject: &[u8]) -> Option<Vec<Option<(usize, usize)>>> {
        let subject_c = CString::new(subject).ok()?;
        let mut matches = [sys::ap_regmatch_t { rm_so: -1, rm_eo: -1 }; 10];
        // SAFETY: the regex is live (config pool) and `matches` has room for 10.
        let rc = unsafe { sys::ap_regexec(self.0, subject_c.as_ptr(), matches.len(), matches.as_mut_ptr(), 0) };
        if rc != 0 {
            return None;
        }
        Some(matches.iter().map(|m| (m.rm_so >= 0).then_some((m.rm_so as usize, m.rm_eo as usize))).collect())
    }
}
