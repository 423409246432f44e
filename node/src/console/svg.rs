//! Charts as SVG made on the server: no script, no library, the same in every browser.

use maud::{Markup, html};

const WIDTH: f64 = 560.0;
const HEIGHT: f64 = 150.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 20.0;
const TOP: f64 = 8.0;

/// A bar per point `(x label, value)`, oldest first, with the y axis from 0 to the largest
/// value. Each bar carries a `<title>` (the browser's tooltip) with its exact value.
pub fn bars<L: maud::Render>(id: &str, caption: &str, points: &[(L, f64)], unit: &str) -> Markup {
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = if max > 0.0 { nice_ceiling(max) } else { 1.0 };
    let plot_w = WIDTH - LEFT - 4.0;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let n = points.len().max(1) as f64;
    let step = plot_w / n;
    let bar_w = (step * 0.8).clamp(1.0, 40.0);
    let y = |v: f64| TOP + plot_h - plot_h * (v / top);
    html! {
        figure {
            svg id=(id) xmlns="http://www.w3.org/2000/svg" role="img" width=(WIDTH) height=(HEIGHT)
                viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } {
                title { (caption) }
                line x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(TOP + plot_h) stroke="#9aa5b1" {}
                line x1=(LEFT) y1=(TOP + plot_h) x2=(WIDTH) y2=(TOP + plot_h) stroke="#9aa5b1" {}
                text x=(LEFT - 4.0) y=(TOP + 9.0) text-anchor="end" { (fmt(top)) }
                text x=(LEFT - 4.0) y=(TOP + plot_h) text-anchor="end" { "0" }
                text x=(LEFT - 4.0) y=(TOP + plot_h / 2.0 + 4.0) text-anchor="end" { (unit) }
                @for (i, (label, v)) in points.iter().enumerate() {
                    rect class="bar" x=(fmt(LEFT + 2.0 + step * i as f64)) y=(fmt(y(*v)))
                        width=(fmt(bar_w)) height=(fmt(TOP + plot_h - y(*v))) fill="#1f5fa8" {
                        title { (*label) ": " (fmt(*v)) " " (unit) }
                    }
                }
                @if let (Some(first), Some(last)) = (points.first(), points.last()) {
                    text x=(LEFT) y=(HEIGHT - 4.0) { (&first.0) }
                    text x=(WIDTH - 2.0) y=(HEIGHT - 4.0) text-anchor="end" { (&last.0) }
                }
            }
            figcaption class="note" { (caption) }
        }
    }
}

/// The smallest of 1, 2, 5 × 10ⁿ at or above `v` (a round top for the y axis).
fn nice_ceiling(v: f64) -> f64 {
    let mut base = 1.0;
    while base * 10.0 <= v {
        base *= 10.0;
    }
    while base > v {
        base /= 10.0;
    }
    for m in [1.0, 2.0, 5.0, 10.0] {
        if base * m >= v {
            return base * m;
        }
    }
    base * 10.0
}

/// A number with at most two decimals and no trailing zeros.
fn fmt(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        for (v, top) in [(1.0, 1.0), (3.0, 5.0), (11.0, 20.0), (1001.0, 2000.0), (0.3, 0.5)] {
            assert!((nice_ceiling(v) - top).abs() < 1e-9, "{v}: {}", nice_ceiling(v));
        }
    }

    #[test]
    fn one_bar_per_point_each_under_the_axis_top() {
        let pts: Vec<(u64, f64)> = (1..=5).map(|h| (h, h as f64)).collect();
        let svg = bars("c", "caption", &pts, "tx").into_string();
        assert_eq!(svg.matches("<rect").count(), 5);
        assert!(svg.contains("<title>5: 5 tx</title>"), "{svg}");
        // Empty series draw an empty chart, not a division by zero.
        let empty = bars::<u64>("e", "none", &[], "ms").into_string();
        assert!(!empty.contains("NaN") && !empty.contains("inf"));
        assert_eq!(fmt(1.50), "1.5");
    }
}
