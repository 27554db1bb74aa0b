//! Pictures of speed: line charts written as SVG with `plotters`, for
//! `rostro kiosk-sim --plot`, `rostro bench --plot` and `rostro bench --batch
//! --plot`. A chart is one or more panels side by side, each a set of named
//! series of points; this module knows nothing of what they measure.

use std::path::Path;

use plotters::prelude::*;

/// One named line of points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// One chart of several series over shared axes.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x: String,
    pub y: String,
    pub series: Vec<Series>,
    /// Where the legend goes: the corner the lines leave free.
    pub legend: Corner,
}

/// A corner of a panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Corner {
    UpperLeft,
    LowerRight,
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The range a set of values is drawn over: from zero (or the smallest
/// negative value) to a little above the largest.
fn span(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values.filter(|v| v.is_finite()).fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    // Headroom above the lines for the legend.
    let hi = if hi > lo { hi * 1.3 } else { lo + 1.0 };
    lo..hi
}

/// Writes `panels` side by side, 520 x 400 pixels each, as an SVG file at `path`.
pub fn write_svg(path: &Path, caption: &str, panels: &[Panel]) -> Result<(), String> {
    let width = 520 * panels.len().max(1) as u32;
    let root = SVGBackend::new(path, (width, 430)).into_drawing_area();
    let fail = |e: &dyn std::fmt::Display| format!("cannot draw {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let root = root.titled(caption, ("sans-serif", 18)).map_err(|e| fail(&e))?;
    let areas = root.split_evenly((1, panels.len().max(1)));
    for (panel, area) in panels.iter().zip(areas) {
        let xs = span(panel.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
        let ys = span(panel.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
        let mut chart = ChartBuilder::on(&area)
            .caption(&panel.title, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(xs, ys)
            .map_err(|e| fail(&e))?;
        chart
            .configure_mesh()
            .x_desc(&panel.x)
            .y_desc(&panel.y)
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| fail(&e))?;
        for (i, s) in panel.series.iter().enumerate() {
            let colour = COLOURS[i % COLOURS.len()];
            let points: Vec<(f64, f64)> =
                s.points.iter().copied().filter(|p| p.0.is_finite() && p.1.is_finite()).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
                .map_err(|e| fail(&e))?
                .label(&s.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2)));
            if points.len() <= 40 {
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, colour.filled()))).map_err(|e| fail(&e))?;
            }
        }
        chart
            .configure_series_labels()
            .position(match panel.legend {
                Corner::UpperLeft => SeriesLabelPosition::UpperLeft,
                Corner::LowerRight => SeriesLabelPosition::LowerRight,
            })
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| fail(&e))?;
    }
    root.present().map_err(|e| fail(&e))
}

/// The share of `samples` at or below each value (an empirical CDF), at most
/// `points` points.
pub fn cdf(samples: &[f64], points: usize) -> Vec<(f64, f64)> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return Vec::new();
    }
    let step = n.div_ceil(points.max(2));
    let mut out: Vec<(f64, f64)> = (0..n).step_by(step).map(|i| (sorted[i], (i + 1) as f64 / n as f64)).collect();
    out.push((sorted[n - 1], 1.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_an_svg_with_its_titles_and_series() {
        let dir = std::env::temp_dir().join(format!("rostro-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("chart.svg");
        let panel = |title: &str| Panel {
            title: title.into(),
            x: "sessions".into(),
            y: "ms".into(),
            series: vec![
                Series { name: "p50".into(), points: vec![(1.0, 20.0), (4.0, 95.0), (8.0, 180.0)] },
                Series { name: "p99".into(), points: vec![(1.0, 43.0), (4.0, 190.0), (8.0, f64::NAN)] },
            ],
            legend: Corner::UpperLeft,
        };
        write_svg(&path, "kiosk-sim", &[panel("latency"), panel("answered")]).expect("write");
        let svg = std::fs::read_to_string(&path).expect("read");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{}", &svg[..80.min(svg.len())]);
        for text in ["kiosk-sim", "latency", "answered", "p50", "p99", "sessions"] {
            assert!(svg.contains(text), "{text} missing");
        }
        assert!(svg.matches("<polyline").count() >= 4, "two lines per panel");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn cdf_rises_to_one() {
        let c = cdf(&[3.0, 1.0, 2.0, f64::NAN, 4.0], 10);
        assert_eq!(c.first(), Some(&(1.0, 0.25)));
        assert_eq!(c.last(), Some(&(4.0, 1.0)));
        assert!(c.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert!(cdf(&[], 10).is_empty());
    }
}
