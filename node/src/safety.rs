//! Durable storage of the consensus safety state ("persist before you speak").
//!
//! The state is small and rewritten on every step, so it lives in its own file rather than in
//! the ledger's RocksDB: write a temporary file, fsync it, rename it over the old one, fsync the
//! directory. A crash at any point leaves either the old or the new state, never a torn one.
//! The file carries a blake3 checksum so a corrupted file is detected instead of trusted.
//!
//! The same durable, checksummed file also keeps the block of this validator's last proposal
//! (`data/proposal.bin`, see `driver::propose`), with a larger size bound.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use dpx_crypto::Hash;

const MAGIC: &[u8; 8] = b"dpxsafe1";
/// The safety state is a few hundred bytes; anything larger is not ours.
const SAFETY_FILE_BYTES_MAX: u64 = 64 * 1024;

#[derive(Debug, Clone)]
pub struct SafetyFile {
    path: PathBuf,
    /// Larger files are refused on load, before they are read.
    max_bytes: u64,
}

impl SafetyFile {
    pub fn new(path: PathBuf) -> Self {
        Self { path, max_bytes: SAFETY_FILE_BYTES_MAX }
    }

    /// A file named `name` in the same directory, written the same way, holding at most
    /// `max_bytes` of body.
    #[must_use]
    pub fn sibling(&self, name: &str, max_bytes: usize) -> Self {
        let overhead = (MAGIC.len() + 32) as u64;
        Self {
            path: self.path.with_file_name(name),
            max_bytes: (max_bytes as u64).saturating_add(overhead),
        }
    }

    /// The last stored state, `None` if never written.
    pub fn load(&self) -> anyhow::Result<Option<Vec<u8>>> {
        let meta = match fs::metadata(&self.path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context("reading the safety state"),
        };
        if meta.len() > self.max_bytes {
            bail!("{} is too large ({} bytes)", self.path.display(), meta.len());
        }
        let bytes = fs::read(&self.path)?;
        if bytes.len() < MAGIC.len() + 32 || &bytes[..8] != MAGIC {
            bail!(
                "{} is not a dpx safety state (refusing to start: it could let this validator double-sign)",
                self.path.display()
            );
        }
        let (body, sum) = bytes[8..].split_at(bytes.len() - 8 - 32);
        if Hash::digest(body).as_bytes() != sum {
            bail!("{} is corrupted (checksum mismatch); refusing to start", self.path.display());
        }
        Ok(Some(body.to_vec()))
    }

    /// Durably replace the stored state. Returns only once it is on disk.
    pub fn store(&self, body: &[u8]) -> anyhow::Result<()> {
        let bytes = [MAGIC.as_slice(), body, Hash::digest(body).as_bytes()].concat();
        write_durably(&self.path, &bytes).context("writing the safety state")
    }
}

/// Replace `path` with `bytes` so that a crash at any point leaves the old file or the new one,
/// never a torn or empty one, and the new one is on disk when this returns: write a temporary
/// file beside it, fsync it, rename it over `path`, fsync the directory.
pub fn write_durably(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes)?;
    f.sync_all().with_context(|| format!("syncing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming onto {}", path.display()))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)?.sync_all().context("syncing the data directory")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_load_and_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let f = SafetyFile::new(dir.path().join("safety.bin"));
        assert!(f.load().unwrap().is_none());
        f.store(b"state-1").unwrap();
        f.store(b"state-2").unwrap();
        assert_eq!(f.load().unwrap().unwrap(), b"state-2");
        let mut raw = fs::read(dir.path().join("safety.bin")).unwrap();
        raw[9] ^= 1;
        fs::write(dir.path().join("safety.bin"), &raw).unwrap();
        assert!(f.load().unwrap_err().to_string().contains("corrupted"));
        fs::write(dir.path().join("safety.bin"), b"junk").unwrap();
        assert!(f.load().is_err());
    }

    #[test]
    fn a_sibling_has_its_own_size_bound() {
        let dir = tempfile::tempdir().unwrap();
        let safety = SafetyFile::new(dir.path().join("safety.bin"));
        let big = safety.sibling("proposal.bin", 200_000);
        let body = vec![7u8; 150_000];
        big.store(&body).unwrap();
        assert_eq!(big.load().unwrap().unwrap(), body);
        assert!(dir.path().join("proposal.bin").exists());
        assert!(safety.load().unwrap().is_none(), "a separate file");
        let small = safety.sibling("proposal.bin", 100_000);
        assert!(small.load().unwrap_err().to_string().contains("too large"));
    }

    #[test]
    fn durable_write_replaces_whole_files_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("genesis.hash");
        write_durably(&p, b"first, longer content").unwrap();
        write_durably(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        let names: Vec<_> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("genesis.hash")]);
        // A missing directory is an error, not a panic.
        assert!(write_durably(&dir.path().join("nope").join("x"), b"x").is_err());
    }
}
