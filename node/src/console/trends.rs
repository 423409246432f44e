//! Counts over time for supervisors, from the node's aggregate index (`crate::aggregates`):
//! the last 14 days by day, or by hour while the chain is younger than two days. Each bucket is
//! two index reads; nothing scans the chain.

use maud::{Markup, html};

use super::Who;
use super::svg;
use crate::aggregates::{Aggregates, COUNTERS};
use crate::node::Shared;

const DAY_MS: u64 = 86_400_000;
const HOUR_MS: u64 = 3_600_000;
const DAYS: u64 = 14;

/// One bucket: its start (ms) and its counts by counter.
pub struct Bucket {
    pub start_ms: u64,
    pub counts: Vec<u64>,
}

impl Bucket {
    pub fn get(&self, counter: &str) -> u64 {
        COUNTERS.iter().position(|c| *c == counter).map_or(0, |i| self.counts[i])
    }
}

/// The buckets up to the last indexed block's time, and the bucket length.
pub fn buckets(s: &Shared, a: &Aggregates) -> anyhow::Result<(Vec<Bucket>, u64)> {
    let tip = a.indexed();
    let now = s.store.header(tip)?.map_or(s.genesis_time_ms, |h| h.time_ms);
    let start = now.saturating_sub(DAYS * DAY_MS).max(s.genesis_time_ms);
    let interval = if now - start > 2 * DAY_MS { DAY_MS } else { HOUR_MS };
    let mut t = start - start % interval;
    let mut out = Vec::new();
    while t <= now {
        let r = a.times(t, t + interval)?;
        out.push(Bucket { start_ms: t, counts: r.counts.to_vec() });
        t += interval;
    }
    Ok((out, interval))
}

fn label(start_ms: u64, interval: u64) -> String {
    let t = dpx_contracts::rfc3339_ms(start_ms);
    // "2026-11-30T19:00:00.000Z": the day, or the day and hour.
    if interval == DAY_MS { t[..10].to_owned() } else { format!("{} {}:00", &t[5..10], &t[11..13]) }
}

/// A table of `columns` (counter, heading) per bucket and a bar chart of `chart` (counter,
/// caption, unit); for supervisors only.
pub fn section(
    s: &Shared,
    who: &Who,
    id: &str,
    title: &str,
    columns: &[(&str, &str)],
    chart: (&str, &str, &str),
) -> Markup {
    if !who.reader.sees_all() {
        return html! {
            section class="card" id=(id) {
                h2 { (title) }
                p class="note" { "Counts over time are for supervisors: per block, they would tell what kind of transaction a block holds." }
            }
        };
    }
    let unavailable = |why: &str| {
        html! {
            section class="card" id=(id) {
                h2 { (title) }
                p class="note" { "Counts over time are unavailable on this node: " (why) }
            }
        }
    };
    let Some(a) = &s.aggregates else {
        return unavailable("it keeps no aggregate index (see its log)");
    };
    let (buckets, interval) = match buckets(s, a) {
        Ok(b) => b,
        Err(e) => return unavailable(&format!("{e:#}")),
    };
    let unit = if interval == DAY_MS { "day" } else { "hour" };
    let points: Vec<(String, f64)> =
        buckets.iter().map(|b| (label(b.start_ms, interval), b.get(chart.0) as f64)).collect();
    html! {
        section class="card" id=(id) {
            h2 { (title) " per " (unit) }
            (svg::bars(&format!("{id}-chart"), chart.1, &points, chart.2))
            table class="trend" {
                thead { tr { th { (unit) " (UTC)" } @for (_, h) in columns { th { (h) } } } }
                tbody {
                    @for b in buckets.iter().rev() {
                        tr { td { (label(b.start_ms, interval)) } @for (c, _) in columns { td { (b.get(c)) } } }
                    }
                }
            }
            p class="note" {
                "From the node's aggregate index, kept up to date as blocks commit (through height "
                (a.indexed()) "; counted from height " (a.counted_from()) ")."
            }
        }
    }
}
