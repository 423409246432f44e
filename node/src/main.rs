//! `dpx`: the dpx node binary (under construction).
fn main() -> anyhow::Result<()> {
    anyhow::bail!("dpx node: not built yet")
}
