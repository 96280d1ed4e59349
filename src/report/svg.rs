//! The `svg` format: latency by percentile, one line per call, the way
//! HdrHistogram plots are read: the x axis is "1 in N" on a log scale
//! (0%, 90%, 99%, 99.9%, ...), the y axis latency on a log scale labelled
//! with a unit per magnitude. Text is left to the SVG viewer's fonts.

use fadvise_shim_core::call::Call;
use fadvise_shim_core::dump::Dump;
use fadvise_shim_core::histogram::to_hdrhistogram;
use fadvise_shim_core::text::Cell;
use plotters::prelude::*;

use crate::metrics::load::merged;
use crate::Failure;

const SIZE: (u32, u32) = (1000, 620);
/// One colour per call (Tableau's 10, first 8), indexed by `Call::index`,
/// so that a call has the same colour in every report.
const COLOURS: [RGBColor; Call::COUNT] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
];
/// Points per halving of the distance to 100%, as in the `hgrm` output.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// One call's curve: (1 in N, latency in ns) points.
struct Curve {
    call: Call,
    points: Vec<(f64, f64)>,
}

pub fn render(dumps: &[Dump]) -> Result<Vec<u8>, Failure> {
    let curves: Vec<Curve> = merged(dumps)
        .made()
        .filter(|(_, stats)| stats.passed() > 0)
        .map(|(call, stats)| Curve {
            call,
            points: points(&to_hdrhistogram(&stats.buckets)),
        })
        .collect();
    let all = || curves.iter().flat_map(|curve| curve.points.iter());
    // Latency 0 cannot sit on a log axis: the floor is 1 ns.
    let lowest = all()
        .map(|&(_, ns)| ns)
        .fold(f64::INFINITY, f64::min)
        .max(1.0);
    let highest = all().map(|&(_, ns)| ns).fold(1.0, f64::max);
    let widest = all().map(|&(one_in, _)| one_in).fold(10.0, f64::max);
    let x_end = 10f64.powf(widest.log10().ceil());
    let (y_start, y_end) = if lowest.is_finite() {
        (lowest / 1.5, highest * 1.5)
    } else {
        (1.0, 1e3)
    };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let title = format!(
            "fadvise-shim: latency by percentile ({} processes)",
            dumps.len()
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 24))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d((1.0..x_end).log_scale(), (y_start..y_end).log_scale())?;
        chart
            .configure_mesh()
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 16))
            .x_desc("percentile (log scale of 1 in N)")
            .y_desc("latency of passed calls")
            .x_label_formatter(&|one_in| percentile_label(*one_in))
            .y_label_formatter(&|ns| duration_label(*ns))
            .draw()?;
        for curve in &curves {
            let color = COLOURS[curve.call.index()];
            chart
                .draw_series(LineSeries::new(
                    curve.points.iter().copied(),
                    color.stroke_width(2),
                ))?
                .label(curve.call.name())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 15))
            .draw()?;
        root.present()?;
    }
    svg.push('\n');
    Ok(svg.into_bytes())
}

/// The distribution's percentile steps as (1 in N, ns). The maximum, at
/// 100%, has no finite N: it is drawn at the number of calls (its honest
/// "1 in N"), or at the last step if that is further right.
fn points(histogram: &hdrhistogram::Histogram<u64>) -> Vec<(f64, f64)> {
    let mut furthest = histogram.len() as f64;
    let mut points = Vec::new();
    for step in histogram.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
        let quantile = step.quantile_iterated_to();
        let one_in = if quantile < 1.0 {
            1.0 / (1.0 - quantile)
        } else {
            furthest
        };
        furthest = furthest.max(one_in);
        points.push((one_in.max(1.0), (step.value_iterated_to() as f64).max(1.0)));
    }
    points
}

/// `1 in N` as a percentile: 10 -> `90%`, 1000 -> `99.9%`.
fn percentile_label(one_in: f64) -> String {
    let percent = 100.0 * (1.0 - 1.0 / one_in);
    let decimals = (one_in.log10().round() as usize).saturating_sub(2);
    format!("{percent:.decimals$}%")
}

fn duration_label(ns: f64) -> String {
    String::from_utf8_lossy(Cell::duration(ns.round() as u64).as_bytes()).into_owned()
}
