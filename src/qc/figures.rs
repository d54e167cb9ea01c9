//! The QC page's figures, drawn with plotters' SVG backend (axes, labels, lines and areas); a
//! spectrogram's pixels are a JPEG (`image`) laid under its plotters axes by the page.

use image::ImageEncoder;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

use super::signal::{LoudnessCurves, Spectrogram, Waveform, SPECTROGRAM_FLOOR_DB};

pub const WIDTH: u32 = 960;

type Failed = String;

fn failed(e: impl std::fmt::Display) -> Failed {
    format!("plotters: {e}")
}

const ORANGE: RGBColor = RGBColor(230, 140, 0);
const INK: RGBColor = RGBColor(40, 40, 40);

/// The series' legend, in a corner of the plot.
fn legend<'a, DB: DrawingBackend + 'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    position: SeriesLabelPosition,
) -> Result<(), Failed> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(INK)
        .position(position)
        .draw()
        .map_err(failed)
}

/// The peak envelope, with columns whose true peak is above -1 dBTP (orange) or 0 dBTP (red)
/// marked by a bar over the top.
pub fn waveform(w: &Waveform) -> Result<String, Failed> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 220)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let seconds = w.seconds.max(1e-3);
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..seconds, -1.1f64..1.1f64)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("seconds")
            .y_labels(5)
            .draw()
            .map_err(failed)?;
        let n = w.columns.len().max(1);
        let x = |i: usize| seconds * (i as f64 + 0.5) / n as f64;
        let upper = w
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| (x(i), f64::from(c.1)));
        let lower = w
            .columns
            .iter()
            .enumerate()
            .rev()
            .map(|(i, c)| (x(i), f64::from(c.0)));
        let outline: Vec<(f64, f64)> = upper.chain(lower).collect();
        chart
            .draw_series(std::iter::once(Polygon::new(
                outline,
                BLUE.mix(0.75).filled(),
            )))
            .map_err(failed)?;
        chart
            .draw_series(w.overs().map(|(i, db)| {
                let colour = if Waveform::is_over(db) { RED } else { ORANGE };
                Rectangle::new(
                    [
                        (seconds * i as f64 / n as f64, 1.02),
                        (seconds * (i + 1) as f64 / n as f64, 1.1),
                    ],
                    colour.filled(),
                )
            }))
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// Momentary and short-term loudness over time, with the integrated loudness as a line.
pub fn loudness(
    c: &LoudnessCurves,
    seconds: f64,
    integrated: Option<f64>,
) -> Result<String, Failed> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 240)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let values = c.momentary.iter().chain(&c.short_term).map(|p| p.1);
        let top = values
            .clone()
            .fold(-60.0f64, f64::max)
            .max(integrated.unwrap_or(-60.0));
        let top = (top / 5.0).ceil() * 5.0 + 2.0;
        let bottom = (top - 50.0).min(values.fold(top, f64::min).max(-70.0) - 2.0);
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(44)
            .build_cartesian_2d(0.0..seconds.max(1e-3), bottom..top)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("seconds")
            .y_desc("LUFS")
            .draw()
            .map_err(failed)?;
        chart
            .draw_series(LineSeries::new(c.momentary.iter().copied(), BLUE.mix(0.45)))
            .map_err(failed)?
            .label("momentary (400 ms)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE.mix(0.45)));
        chart
            .draw_series(LineSeries::new(
                c.short_term.iter().copied(),
                BLUE.stroke_width(2),
            ))
            .map_err(failed)?
            .label("short-term (3 s)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE.stroke_width(2)));
        if let Some(i) = integrated {
            chart
                .draw_series(LineSeries::new(
                    [(0.0, i), (seconds, i)],
                    RED.stroke_width(1),
                ))
                .map_err(failed)?
                .label("integrated")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
        }
        legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// A spectrogram's axes (SVG) and where its picture goes in them: (svg, left, top, width,
/// height) in pixels.
pub fn spectrogram_axes(s: &Spectrogram, width: u32) -> Result<(String, [i32; 4]), Failed> {
    let mut svg = String::new();
    let area;
    {
        let root = SVGBackend::with_string(&mut svg, (width, 260)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(40)
            .build_cartesian_2d(0.0..s.seconds.max(1e-3), 0.0..s.top_hz / 1000.0)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("seconds")
            .y_desc("kHz")
            .draw()
            .map_err(failed)?;
        let (x, y) = chart.plotting_area().get_pixel_range();
        area = [x.start, y.start, x.end - x.start, y.end - y.start];
        root.present().map_err(failed)?;
    }
    Ok((svg, area))
}

/// A spectrogram's pixels as a JPEG (quality 85: measured at under a third of a PNG's bytes
/// for these noise-like pictures): Viridis from the floor (-120 dB) to 0 dB; gray where the
/// audio has no band (above its Nyquist frequency).
pub fn spectrogram_jpeg(s: &Spectrogram) -> Result<Vec<u8>, Failed> {
    let mut pixels = Vec::with_capacity(s.levels.len() * 3);
    for v in &s.levels {
        let rgb = match v {
            Some(db) => {
                let x = ((db - SPECTROGRAM_FLOOR_DB) / -SPECTROGRAM_FLOOR_DB).clamp(0.0, 1.0);
                let c = ViridisRGB::get_color(x);
                [c.0, c.1, c.2]
            }
            None => [200, 200, 200],
        };
        pixels.extend_from_slice(&rgb);
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
        .write_image(
            &pixels,
            s.columns as u32,
            s.rows as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| format!("jpeg: {e}"))?;
    Ok(jpeg)
}

/// Bit rate per segment of each rendition: (label, [(start seconds, kbit/s)]).
pub fn bitrates(series: &[(String, Vec<(f64, f64)>)], seconds: f64) -> Result<String, Failed> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let top = series
            .iter()
            .flat_map(|s| s.1.iter().map(|p| p.1))
            .fold(64.0f64, f64::max)
            * 1.15;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .x_label_area_size(28)
            .y_label_area_size(52)
            .build_cartesian_2d(0.0..seconds.max(1e-3), (8.0f64..top).log_scale())
            .map_err(failed)?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .x_desc("seconds")
            .y_desc("kbit/s")
            .draw()
            .map_err(failed)?;
        for (i, (label, points)) in series.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            // A step per segment: flat over its span.
            let mut steps = Vec::with_capacity(points.len() * 2);
            for (k, &(t, kbps)) in points.iter().enumerate() {
                let end = points.get(k + 1).map_or(seconds, |p| p.0);
                steps.push((t, kbps.max(8.0)));
                steps.push((end, kbps.max(8.0)));
            }
            chart
                .draw_series(LineSeries::new(steps, colour.stroke_width(2)))
                .map_err(failed)?
                .label(label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], colour.stroke_width(2))
                });
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}
