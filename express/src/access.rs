//! Whether the account Apache's children and the daemons run as can reach
//! the files they need. A script under /root is the classic way to get a
//! server that starts and then answers every request with an error; this
//! says so before Apache starts. Only the permission bits are read (an ACL
//! may grant more), so a refusal is a warning.
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};

pub struct Account {
    pub uid: Uid,
    pub groups: Vec<Gid>,
}

const READ: u32 = 4;
const SEARCH: u32 = 1;

impl Account {
    fn may(&self, meta: &std::fs::Metadata, access: u32) -> bool {
        if self.uid.is_root() {
            return true;
        }
        let mode = meta.mode();
        let bits = if meta.uid() == self.uid.as_raw() {
            mode >> 6
        } else if self.groups.iter().any(|g| g.as_raw() == meta.gid()) {
            mode >> 3
        } else {
            mode
        };
        bits & access == access
    }

    /// None if the account can read `path` (and list it, for a directory);
    /// else the first path on the way that stops it.
    pub fn blocked_at(&self, path: &Path) -> Option<PathBuf> {
        let path = std::path::absolute(path).ok()?;
        for dir in path.ancestors().skip(1) {
            let meta = std::fs::metadata(dir).ok()?;
            if !self.may(&meta, SEARCH) {
                return Some(dir.to_path_buf());
            }
        }
        let meta = std::fs::metadata(&path).ok()?;
        let needed = if meta.is_dir() { READ | SEARCH } else { READ };
        (!self.may(&meta, needed)).then_some(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn permission_bits_decide() {
        let dir = std::env::temp_dir().join(format!("mwe-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("app.wsgi");
        std::fs::write(&file, "").unwrap();
        let owner = std::fs::metadata(&file).unwrap();
        // Someone who is neither the owner nor in the file's group.
        let other = Account { uid: Uid::from_raw(owner.uid() + 12345), groups: vec![Gid::from_raw(owner.gid() + 12345)] };
        let set_mode = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();

        set_mode(&dir, 0o755);
        set_mode(&file, 0o644);
        assert_eq!(other.blocked_at(&file), None);
        set_mode(&file, 0o640);
        assert_eq!(other.blocked_at(&file), Some(file.clone()));
        let member = Account { uid: other.uid, groups: vec![Gid::from_raw(owner.gid())] };
        assert_eq!(member.blocked_at(&file), None);
        set_mode(&file, 0o644);
        set_mode(&dir, 0o700);
        assert_eq!(other.blocked_at(&file), Some(dir.clone()));
        set_mode(&dir, 0o755);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
