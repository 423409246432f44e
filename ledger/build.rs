//! Compiles `proto/ledger.proto` with the pure-Rust `protox` compiler (no `protoc` needed), and,
//! when dpx links a distribution's shared RocksDB, the C stand-in of `compat/rocksdb_compat.c`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/ledger.proto");
    let fds = protox::compile(["ledger.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;

    // librocksdb-sys links a shared RocksDB from ROCKSDB_LIB_DIR unless ROCKSDB_STATIC is set
    // (scripts/prereqs.sh chooses). An older library lacks one C function rust-rocksdb names.
    println!("cargo:rerun-if-env-changed=ROCKSDB_LIB_DIR");
    println!("cargo:rerun-if-env-changed=ROCKSDB_STATIC");
    println!("cargo:rerun-if-changed=compat/rocksdb_compat.c");
    if std::env::var_os("ROCKSDB_LIB_DIR").is_some() && std::env::var_os("ROCKSDB_STATIC").is_none()
    {
        cc::Build::new().file("compat/rocksdb_compat.c").compile("dpx_rocksdb_compat");
    }
    Ok(())
}
