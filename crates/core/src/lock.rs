//! One process per profile: an exclusive lock on `<profile>/werkfunk.lock`.
//!
//! Two processes on one profile (two app windows, the app and `werkfunk-cli`) would both run
//! outbox workers, both notify, and both rotate the refresh token until one is signed out.
//! [`ProfileLock::acquire`] takes an advisory exclusive lock (`flock` / `LockFileEx`, crate
//! `fs4`) without waiting: a second opener gets [`crate::Error::ProfileInUse`] at once. The
//! operating system drops the lock when the process ends, however it ends, so a crash never
//! leaves a profile locked; the file itself stays (it holds nothing).

use std::fs::File;
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

use crate::error::{Error, Result};
use crate::session::SessionError;

/// The lock file's name inside the profile folder.
pub const LOCK_FILE: &str = "werkfunk.lock";

/// The held lock; released when dropped.
#[derive(Debug)]
pub struct ProfileLock {
    _file: File,
    path: PathBuf,
}

impl ProfileLock {
    /// Takes the profile's lock, or fails at once with [`Error::ProfileInUse`].
    pub fn acquire(profile: &Path) -> Result<ProfileLock> {
        std::fs::create_dir_all(profile).map_err(|source| SessionError::Io { path: profile.to_owned(), source })?;
        let path = profile.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|source| SessionError::Io { path: path.clone(), source })?;
        match FileExt::try_lock_exclusive(&file) {
            Ok(true) => Ok(ProfileLock { _file: file, path }),
            Ok(false) => Err(Error::ProfileInUse { profile: profile.to_owned() }),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Err(Error::ProfileInUse { profile: profile.to_owned() }),
            Err(source) => Err(SessionError::Io { path, source }.into()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = ProfileLock::acquire(dir.path()).unwrap();
        let second = ProfileLock::acquire(dir.path()).unwrap_err();
        assert_eq!(second.code(), "profile_in_use");
        drop(first);
        ProfileLock::acquire(dir.path()).unwrap();
    }
}
