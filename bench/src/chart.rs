//! `dpx-bench chart`: committed vs offered load and latency vs offered load, one series per
//! mode, as a PNG (plotters, bitmap backend; text drawn with a TrueType font read at run time),
//! plus the same figures as CSV.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::prelude::*;

use crate::record::{self, LoadRecord};

/// Where a sans-serif TrueType font is usually found (Debian/Ubuntu `fonts-dejavu-core`,
/// Fedora, Arch, Liberation).
const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
];

#[derive(Debug, Clone, clap::Args)]
pub struct ChartArgs {
    /// Result files (JSON Lines from `load` / `verify-limit`).
    #[arg(long = "in", required = true)]
    pub inputs: Vec<PathBuf>,
    /// The PNG to write.
    #[arg(long)]
    pub png: PathBuf,
    /// Also write the load records as CSV here.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// A TrueType font for the text (default: the first found of the usual system paths).
    #[arg(long)]
    pub font: Option<PathBuf>,
    /// The verification limit line, tx/s (default: from a verify_limit record in the inputs).
    #[arg(long)]
    pub verification_limit: Option<f64>,
}

const FONT: &str = "sans-serif";
/// The verification-limit line is drawn when it is within this factor of the largest rate.
const LIMIT_ON_SCALE: f64 = 3.0;

fn load_font(explicit: Option<&Path>) -> anyhow::Result<()> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => FONT_CANDIDATES.iter().map(PathBuf::from).find(|p| p.exists()).with_context(|| {
            format!(
                "no TrueType font found (looked in {}); install one (Debian/Ubuntu: apt-get install fonts-dejavu-core) or pass --font FILE.ttf",
                FONT_CANDIDATES.join(", ")
            )
        })?,
    };
    let bytes = std::fs::read(&path).with_context(|| format!("reading font {}", path.display()))?;
    // plotters keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FONT, FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{} is not a usable TrueType font", path.display()))
}

pub fn run(args: &ChartArgs) -> anyhow::Result<()> {
    let results = record::read_files(&args.inputs)?;
    anyhow::ensure!(!results.loads.is_empty(), "no load records in the inputs");
    if let Some(csv) = &args.csv {
        std::fs::write(csv, record::to_csv(&results.loads))
            .with_context(|| format!("writing {}", csv.display()))?;
    }
    load_font(args.font.as_deref())?;
    let limit = args.verification_limit.or_else(|| results.verification_limit());
    draw(&args.png, &results.loads, limit)
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", args.png.display()))?;
    println!("wrote {}", args.png.display());
    Ok(())
}

/// Records grouped by mode, each sorted by offered load.
fn by_mode(loads: &[LoadRecord]) -> BTreeMap<String, Vec<&LoadRecord>> {
    let mut m: BTreeMap<String, Vec<&LoadRecord>> = BTreeMap::new();
    for r in loads {
        m.entry(r.mode.clone()).or_default().push(r);
    }
    for v in m.values_mut() {
        v.sort_by(|a, b| a.offered_tx_s.total_cmp(&b.offered_tx_s));
    }
    m
}

fn mode_color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 4] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
    ];
    COLORS[i % COLORS.len()]
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw(png: &Path, loads: &[LoadRecord], limit: Option<f64>) -> DrawResult {
    let root = BitMapBackend::new(png, (1600, 700)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(800);
    let modes = by_mode(loads);
    draw_throughput(&left, &modes, limit)?;
    draw_latency(&right, &modes)?;
    root.present()?;
    Ok(())
}

/// The series legend, the same on both panels.
fn legend<'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 14))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

fn draw_throughput(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    modes: &BTreeMap<String, Vec<&LoadRecord>>,
    limit: Option<f64>,
) -> DrawResult {
    let all = modes.values().flatten();
    let x_max = all.clone().map(|r| r.offered_tx_s).fold(1.0, f64::max) * 1.05;
    let data_max = all.map(|r| r.committed_tx_s.max(r.offered_tx_s)).fold(1.0, f64::max);
    // A limit far above every run would flatten the data: name it instead of drawing it.
    let (limit_line, caption) = match limit {
        Some(l) if l > LIMIT_ON_SCALE * data_max => (
            None,
            format!("committed vs offered load (verification limit {l:.0} tx/s, off the scale)"),
        ),
        _ => (limit, "committed vs offered load".to_owned()),
    };
    let y_max = data_max.max(limit_line.unwrap_or(0.0)) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max)?;
    chart
        .configure_mesh()
        .x_desc("offered tx/s")
        .y_desc("committed tx/s")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .draw()?;
    let grey = RGBColor(150, 150, 150);
    chart
        .draw_series(LineSeries::new([(0.0, 0.0), (x_max, x_max)], grey.stroke_width(1)))?
        .label("y = x")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey));
    if let Some(l) = limit_line {
        let green = RGBColor(0, 140, 70);
        chart
            .draw_series(LineSeries::new([(0.0, l), (x_max, l)], green.stroke_width(2)))?
            .label(format!("verification limit {l:.0} tx/s"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], green));
    }
    for (i, (mode, rs)) in modes.iter().enumerate() {
        let c = mode_color(i);
        let pts: Vec<(f64, f64)> = rs.iter().map(|r| (r.offered_tx_s, r.committed_tx_s)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)).point_size(4))?
            .label(mode.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    legend(&mut chart)
}

fn draw_latency(
    area: &DrawingArea<BitMapBackend<'_>, plotters::coord::Shift>,
    modes: &BTreeMap<String, Vec<&LoadRecord>>,
) -> DrawResult {
    let all = modes.values().flatten();
    let x_max = all.clone().map(|r| r.offered_tx_s).fold(1.0, f64::max) * 1.05;
    // Log scale: a saturated run's tail is orders of magnitude above a light one's median.
    let floor = |v: f64| v.max(1.0);
    let y_max = all.clone().map(|r| floor(r.latency.p99_ms)).fold(10.0, f64::max) * 1.5;
    let y_min = all.map(|r| floor(r.latency.p50_ms)).fold(f64::INFINITY, f64::min) / 1.5;
    let mut chart = ChartBuilder::on(area)
        .caption("submit-to-commit latency", (FONT, 24))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_max, (y_min..y_max).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered tx/s")
        .y_desc("latency, ms (log)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 16))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;
    for (i, (mode, rs)) in modes.iter().enumerate() {
        let c = mode_color(i);
        let light = c.mix(0.45);
        let p50: Vec<(f64, f64)> =
            rs.iter().map(|r| (r.offered_tx_s, floor(r.latency.p50_ms))).collect();
        let p99: Vec<(f64, f64)> =
            rs.iter().map(|r| (r.offered_tx_s, floor(r.latency.p99_ms))).collect();
        chart
            .draw_series(LineSeries::new(p50, light.stroke_width(2)).point_size(3))?
            .label(format!("{mode} p50"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], light.stroke_width(2))
            });
        chart
            .draw_series(LineSeries::new(p99, c.stroke_width(2)).point_size(4))?
            .label(format!("{mode} p99"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
    }
    legend(&mut chart)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::LatencySummary;

    fn rec(mode: &str, offered: f64, committed: f64, p50_us: u64) -> LoadRecord {
        LoadRecord {
            kind: record::KIND_LOAD.into(),
            mode: mode.into(),
            offered_tx_s: offered,
            committed_tx_s: committed,
            latency: LatencySummary::from_micros(vec![p50_us, p50_us * 2, p50_us * 10]),
            ..LoadRecord::default()
        }
    }

    #[test]
    fn groups_by_mode_sorted_by_offered() {
        let loads =
            vec![rec("full", 200.0, 190.0, 1), rec("full", 100.0, 100.0, 1), rec("c", 5.0, 5.0, 1)];
        let m = by_mode(&loads);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["c", "full"]);
        assert_eq!(m["full"].iter().map(|r| r.offered_tx_s).collect::<Vec<_>>(), [100.0, 200.0]);
    }

    /// Draws a real PNG when a system font is present (skipped, with a note, when none is).
    #[test]
    fn draws_a_png() {
        if !FONT_CANDIDATES.iter().any(|p| Path::new(p).exists()) {
            eprintln!("no system font; skipping the PNG test");
            return;
        }
        load_font(None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let png = dir.path().join("c.png");
        let loads = vec![
            rec("full", 100.0, 100.0, 300_000),
            rec("full", 400.0, 310.0, 900_000),
            rec("consensus-only", 100.0, 100.0, 200_000),
            rec("consensus-only", 1000.0, 990.0, 250_000),
        ];
        draw(&png, &loads, Some(500.0)).unwrap();
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
    }

    #[test]
    fn a_missing_font_is_a_clear_error() {
        let e = load_font(Some(Path::new("/nonexistent/font.ttf"))).unwrap_err();
        assert!(e.to_string().contains("reading font"), "{e}");
    }
}
