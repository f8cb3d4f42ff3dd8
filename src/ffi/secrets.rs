//! Where the daemon groups' secrets live: one private memory mapping per
//! Apache generation, filled in the parent before anything forks, never
//! copied anywhere else. It is left out of core dumps, and it shows in
//! `/proc/PID/maps` as `/memfd:mod_wsgi_rs secrets (deleted)`, so an
//! operator can check which processes hold which secrets.
//!
//! The mapping is private: after a fork each process has its own copy, and
//! a daemon process wipes every entry but its own group's (each entry is
//! wiped when the [`Secret`] that owns it is dropped).
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::Arc;

use nix::sys::memfd::{memfd_create, MFdFlags};
use nix::sys::mman::{madvise, mmap, munmap, MapFlags, MmapAdvise, ProtFlags};
use wsgi_core::protocol::SECRET_LEN;
use zeroize::Zeroize;

/// The name the mapping shows under in `/proc/PID/maps`.
pub const MAPPING_NAME: &str = "mod_wsgi_rs secrets";

/// The mapping, with room for `count` secrets of `SECRET_LEN` bytes.
pub struct SecretPage {
    base: NonNull<u8>,
    len: NonZeroUsize,
    count: usize,
}

// SAFETY: entries are written only through `&mut SecretPage` (before the
// page is shared) or by the one `Secret` that owns an entry, on drop; every
// other access reads.
unsafe impl Send for SecretPage {}
unsafe impl Sync for SecretPage {}

impl SecretPage {
    pub fn new(count: usize) -> std::io::Result<SecretPage> {
        let len = NonZeroUsize::new((count * SECRET_LEN).max(1)).expect("not zero");
        let fd = memfd_create(MAPPING_NAME, MFdFlags::MFD_CLOEXEC)?;
        nix::unistd::ftruncate(&fd, len.get() as libc::off_t)?;
        // SAFETY: a fresh private mapping of a file of exactly `len` bytes;
        // the file descriptor can go once it is mapped.
        let base = unsafe { mmap(None, len, ProtFlags::PROT_READ | ProtFlags::PROT_WRITE, MapFlags::MAP_PRIVATE, &fd, 0)? };
        // SAFETY: advice on the mapping just made; failure only means the
        // secrets could appear in a core dump.
        let _ = unsafe { madvise(base, len.get(), MmapAdvise::MADV_DONTDUMP) };
        Ok(SecretPage { base: base.cast(), len, count })
    }

    /// Entry `index`, to fill in before the page is shared.
    pub fn entry_mut(&mut self, index: usize) -> &mut [u8; SECRET_LEN] {
        assert!(index < self.count, "secret {index} out of range");
        // SAFETY: in bounds, and `&mut self` makes the borrow unique.
        unsafe { &mut *(self.base.as_ptr().add(index * SECRET_LEN) as *mut [u8; SECRET_LEN]) }
    }

    /// Hands out one owner per entry.
    pub fn share(self) -> Vec<Secret> {
        let count = self.count;
        let page = Arc::new(self);
        (0..count).map(|index| Secret { page: page.clone(), index }).collect()
    }
}

impl Drop for SecretPage {
    fn drop(&mut self) {
        // SAFETY: the whole mapping, no longer shared (this is the last owner).
        unsafe {
            std::slice::from_raw_parts_mut(self.base.as_ptr(), self.len.get()).zeroize();
            let _ = munmap(self.base.cast(), self.len.get());
        }
    }
}

/// One group's secret: an entry of the [`SecretPage`], wiped when dropped.
pub struct Secret {
    page: Arc<SecretPage>,
    index: usize,
}

impl Secret {
    pub fn bytes(&self) -> &[u8; SECRET_LEN] {
        // SAFETY: in bounds (checked when the page handed out the entries);
        // only this Secret writes the entry, and only when dropped.
        unsafe { &*(self.page.base.as_ptr().add(self.index * SECRET_LEN) as *const [u8; SECRET_LEN]) }
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // SAFETY: this Secret owns the entry, and `&mut self` means no
        // borrow of it from `bytes` is alive.
        unsafe { std::slice::from_raw_parts_mut(self.page.base.as_ptr().add(self.index * SECRET_LEN), SECRET_LEN) }.zeroize();
    }
}
