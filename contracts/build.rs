//! Compiles `proto/dpx_contracts.proto` with the pure-Rust `protox` compiler, so no `protoc`
//! install is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/dpx_contracts.proto");
    let fds = protox::compile(["dpx_contracts.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
