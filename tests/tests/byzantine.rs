//! The adversary's short set (issue 14) on the test-profile `dpx` binary: a byzantine peer and
//! hostile clients against one live 4-validator cluster. The whole set, on a release build,
//! is `scripts/byzantine.sh`. One test runs the scenarios in sequence on one cluster (a cluster
//! per test would put eight validators on two cores at once).

use dpx_tests::byzantine::{Opts, Row, SHORT_SET, run_blocking};

#[test]
fn n4_byzantine_peer_short_set() -> anyhow::Result<()> {
    let opts = Opts::new(SHORT_SET.iter().map(|s| (*s).to_owned()).collect(), true);
    println!("{}", Row::header());
    let rows = run_blocking(&opts, |row| println!("{}", row.line()))?;
    let failed: Vec<String> = rows.iter().filter(|r| !r.pass).map(Row::line).collect();
    assert!(failed.is_empty(), "scenarios failed:\n{}", failed.join("\n"));
    Ok(())
}
