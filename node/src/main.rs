//! `dpx`: the dpx node and its command-line tools. See `dpx --help`.

/// mimalloc instead of the C library's allocator: execution, the state tree and the RocksDB
/// bindings allocate and free small buffers by the million from several threads at once, where
/// glibc's malloc spent 16 % of a validator's CPU (BENCHMARKS.md). An allocator changes no
/// result, only how fast memory comes and goes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    dpx_node::cli::main()
}
