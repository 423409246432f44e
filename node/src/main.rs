//! `dpx`: the dpx node and its command-line tools. See `dpx --help`.

fn main() -> std::process::ExitCode {
    dpx_node::cli::main()
}
