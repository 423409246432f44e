//! Snapshot import of arbitrary bytes: never panics, never accepts a root it did not compute.
#![no_main]

use dpx_crypto::Hash;
use dpx_ledger::{Store, StoreConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile_dir() else { return };
    let cfg = StoreConfig { sync_writes: false, ..StoreConfig::default() };
    let Ok(store) = Store::open(&dir, "fuzz", cfg) else { return };
    let _ = store.import_snapshot(&mut &data[..], Hash([0x11; 32]));
    let _ = std::fs::remove_dir_all(&dir);
});

fn tempfile_dir() -> std::io::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("dpx-fuzz-snap-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
