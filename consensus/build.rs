//! Compiles `proto/consensus.proto` with the pure-Rust `protox` compiler, so no `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/consensus.proto");
    let fds = protox::compile(["consensus.proto"], ["proto"])?;
    prost_build::Config::new().compile_fds(fds)?;
    Ok(())
}
