//! Key files on disk: a small JSON document, written with mode 0600.
//!
//! ```json
//! { "type": "dpx-ed25519-v1", "public_key": "<hex>", "secret_seed": "<hex>" }
//! ```
//! Loading checks the type, the lengths, that the public key matches the seed, and (on Unix)
//! that the file is not readable by group or others.

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{CryptoError, Keypair, PublicKey};

const KEY_TYPE: &str = "dpx-ed25519-v1";
/// Key files are tiny; anything bigger is not one of ours.
const KEY_FILE_BYTES_MAX: u64 = 4096;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    public_key: String,
    secret_seed: String,
}

fn err(path: &Path, reason: impl Into<String>) -> CryptoError {
    CryptoError::KeyFile { path: path.to_path_buf(), reason: reason.into() }
}

/// Write `key` to a new file at `path` with mode 0600. Refuses to overwrite an existing file.
pub fn save(path: &Path, key: &Keypair) -> Result<(), CryptoError> {
    let doc = KeyFile {
        kind: KEY_TYPE.to_owned(),
        public_key: key.public().to_hex(),
        secret_seed: hex::encode(key.seed()),
    };
    let json = render(&doc);
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(|e| err(path, format!("cannot create: {e}")))?;
    f.write_all(json.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| err(path, format!("cannot write: {e}")))
}

/// Read a key written by [`save`].
pub fn load(path: &Path) -> Result<Keypair, CryptoError> {
    let meta = fs::metadata(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    if meta.len() > KEY_FILE_BYTES_MAX {
        return Err(err(path, format!("{} bytes is too large for a key file", meta.len())));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(err(
                path,
                format!("permissions {mode:o} are too open; run `chmod 600 {}`", path.display()),
            ));
        }
    }
    let text = fs::read_to_string(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let doc: KeyFile = parse(&text).ok_or_else(|| err(path, "not a dpx key file (bad JSON)"))?;
    if doc.kind != KEY_TYPE {
        return Err(err(path, format!("unknown key type {:?}, expected {KEY_TYPE:?}", doc.kind)));
    }
    let mut seed = [0u8; 32];
    hex::decode_to_slice(&doc.secret_seed, &mut seed)
        .map_err(|_| err(path, "secret_seed is not 32 bytes of hex"))?;
    let key = Keypair::from_seed(seed);
    let public: PublicKey =
        doc.public_key.parse().map_err(|e| err(path, format!("public_key: {e}")))?;
    if public != key.public() {
        return Err(err(path, "public_key does not match secret_seed (corrupted file?)"));
    }
    Ok(key)
}

/// Read only the public key of a key file, without the permission check.
pub fn load_public(path: &Path) -> Result<PublicKey, CryptoError> {
    let text = fs::read_to_string(path).map_err(|e| err(path, format!("cannot read: {e}")))?;
    let doc: KeyFile = parse(&text).ok_or_else(|| err(path, "not a dpx key file (bad JSON)"))?;
    doc.public_key.parse().map_err(|e| err(path, format!("public_key: {e}")))
}

fn render(doc: &KeyFile) -> String {
    serde_json::to_string_pretty(doc).expect("a struct of strings always serializes") + "\n"
}

fn parse(text: &str) -> Option<KeyFile> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_with_0600() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        let k = Keypair::from_seed([3; 32]);
        save(&p, &k).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(load(&p).unwrap().public(), k.public());
        assert_eq!(load_public(&p).unwrap(), k.public());
        // Never overwrite.
        assert!(save(&p, &k).is_err());
    }

    #[test]
    fn corrupted_or_foreign_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        let k = Keypair::from_seed([3; 32]);
        save(&p, &k).unwrap();
        let good = fs::read_to_string(&p).unwrap();

        let write = |text: &str| {
            fs::write(&p, text).unwrap();
        };
        write(&good.replace(&k.public().to_hex(), &Keypair::from_seed([4; 32]).public().to_hex()));
        assert!(load(&p).unwrap_err().to_string().contains("does not match"));
        write("garbage");
        assert!(load(&p).unwrap_err().to_string().contains("not a dpx key file"));
        write(&good.replace(KEY_TYPE, "rsa"));
        assert!(load(&p).unwrap_err().to_string().contains("unknown key type"));
        write(&good.replace(&hex::encode(k.seed()), "abcd"));
        assert!(load(&p).unwrap_err().to_string().contains("secret_seed"));
        assert!(load(&dir.path().join("missing")).unwrap_err().to_string().contains("cannot read"));
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_key_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.json");
        save(&p, &Keypair::from_seed([5; 32])).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load(&p).unwrap_err().to_string().contains("too open"));
    }
}
