//! The front cover: a DDEX message's `FrontCoverImage`, or `cover.jpg` / `cover.png` beside a
//! release.json. Checked here (JPEG or PNG that decodes, exactly square, RGB, at least the
//! ladder's `[cover] min_size`, within the bomb limits of `limits.rs`); the press stage derives
//! the sizes a catalog serves from it (`package::artwork`).

use std::io::Cursor;
use std::path::{Path, PathBuf};

use image::{DynamicImage, ExtendedColorType, ImageDecoder, ImageFormat, ImageReader};

use super::findings::Finding;
use crate::limits;

/// The file names a release.json folder's cover may have.
pub const NAMES: [&str; 3] = ["cover.jpg", "cover.jpeg", "cover.png"];

/// What a checked cover is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoverInfo {
    pub width: u32,
    pub height: u32,
    pub format: &'static str,
}

/// A release.json folder's cover file, if it has one (two is an error: which one is meant?).
pub fn beside(dir: &Path, findings: &mut Vec<Finding>) -> Option<PathBuf> {
    let found: Vec<PathBuf> = NAMES
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    if found.len() > 1 {
        findings.push(Finding::error(
            "cover.two-files",
            &found[1],
            format!("{:?} and {:?} are both a front cover", found[0], found[1]),
            "keep one cover file beside release.json",
        ));
        return None;
    }
    found.into_iter().next()
}

/// Check a cover. Findings for every problem; the cover's shape when it can be pressed.
pub fn check(path: &Path, min_size: u32) -> (Option<CoverInfo>, Vec<Finding>) {
    let unreadable = |e: std::io::Error| {
        Finding::error(
            "cover.missing",
            path,
            format!("the front cover cannot be read: {e}"),
            "deliver the cover file the metadata names",
        )
    };
    let size = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) => return (None, vec![unreadable(e)]),
    };
    // Refused before it is read.
    if size > limits::MAX_COVER_BYTES {
        return (None, vec![too_big(path, size)]);
    }
    match std::fs::read(path) {
        Ok(bytes) => check_bytes(path, &bytes, min_size),
        Err(e) => (None, vec![unreadable(e)]),
    }
}

fn too_big(path: &Path, size: u64) -> Finding {
    Finding::error(
        "cover.limit-size",
        path,
        format!(
            "{size} bytes: over the limit of {} for a cover",
            limits::MAX_COVER_BYTES
        ),
        "deliver the cover as a JPEG or PNG under the limit (a 3000 x 3000 JPEG is a few MB)",
    )
}

/// [`check`] of a cover's bytes (`path` names it in the findings).
pub fn check_bytes(path: &Path, bytes: &[u8], min_size: u32) -> (Option<CoverInfo>, Vec<Finding>) {
    let mut findings = Vec::new();
    let err =
        |code: &'static str, message: String, fix: &str| Finding::error(code, path, message, fix);
    if bytes.len() as u64 > limits::MAX_COVER_BYTES {
        return (None, vec![too_big(path, bytes.len() as u64)]);
    }
    let (format, name) = match image::guess_format(bytes) {
        Ok(ImageFormat::Jpeg) => (ImageFormat::Jpeg, "jpeg"),
        Ok(ImageFormat::Png) => (ImageFormat::Png, "png"),
        other => {
            findings.push(err(
                "cover.format",
                format!(
                    "not a JPEG or PNG ({})",
                    other.map_or("unknown format".to_string(), |f| format!("{f:?}"))
                ),
                "deliver the front cover as a JPEG or PNG",
            ));
            return (None, findings);
        }
    };
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(decode_limits());
    let decoder = match reader.into_decoder() {
        Ok(d) => d,
        Err(image::ImageError::Limits(e)) => {
            findings.push(err(
                "cover.limit-pixels",
                format!(
                    "the {name} declares more pixels than a cover may have ({e}; at most {} pixels, {} on a side): a decompression bomb, or far larger than any catalog serves",
                    limits::MAX_COVER_PIXELS,
                    limits::MAX_COVER_SIDE
                ),
                "deliver the cover at 3000 x 3000 (at most 10000 x 10000)",
            ));
            return (None, findings);
        }
        Err(e) => {
            findings.push(err(
                "cover.decode",
                format!("the {name} does not decode: {e}"),
                "export the cover again as a baseline JPEG or a PNG",
            ));
            return (None, findings);
        }
    };
    let (width, height) = decoder.dimensions();
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits::MAX_COVER_PIXELS {
        findings.push(err(
            "cover.limit-pixels",
            format!(
                "{width} x {height} = {pixels} pixels: over the limit of {} (a decompression bomb, or far larger than any catalog serves)",
                limits::MAX_COVER_PIXELS
            ),
            "deliver the cover at 3000 x 3000 (at most 10000 x 10000)",
        ));
        return (None, findings);
    }
    // The JPEG decoder converts CMYK (and Adobe's YCCK) to RGB on its own: the frame header
    // says what was delivered.
    let cmyk = format == ImageFormat::Jpeg && jpeg_components(bytes) == Some(4);
    match decoder.original_color_type() {
        _ if cmyk => findings.push(err(
            "cover.cmyk",
            "the cover is CMYK (a print separation): screens show it in wrong colours".into(),
            "convert the cover to RGB (sRGB) and export it again",
        )),
        ExtendedColorType::Cmyk8 => findings.push(err(
            "cover.cmyk",
            "the cover is CMYK (a print separation): screens show it in wrong colours".into(),
            "convert the cover to RGB (sRGB) and export it again",
        )),
        ExtendedColorType::L8
        | ExtendedColorType::L16
        | ExtendedColorType::La8
        | ExtendedColorType::La16 => findings.push(Finding::warning(
            "cover.grayscale",
            path,
            "the cover is grayscale: it is published as RGB with the same grays".into(),
            "nothing, if the artwork is meant to be gray; otherwise deliver the RGB master",
        )),
        _ => {}
    }
    if decoder.color_type().has_alpha() {
        findings.push(Finding::warning(
            "cover.alpha",
            path,
            "the cover has an alpha channel: it is published flattened on white".into(),
            "deliver the cover without transparency",
        ));
    }
    if width != height {
        findings.push(err(
            "cover.not-square",
            format!("{width} x {height}: a front cover must be exactly square"),
            "crop or pad the cover to a square (3000 x 3000)",
        ));
    }
    if width.min(height) < min_size {
        findings.push(err(
            "cover.too-small",
            format!("{width} x {height}: smaller than the {min_size} x {min_size} the ladder's [cover] min_size asks"),
            "deliver the cover at 3000 x 3000 or larger, from the artwork's master (an upscaled cover is blurred)",
        ));
    }
    if findings.iter().any(|f| f.is_error()) {
        return (None, findings);
    }
    // Every pixel: a truncated or corrupt file fails here, not in the press stage.
    if let Err(e) = DynamicImage::from_decoder(decoder) {
        findings.push(err(
            "cover.decode",
            format!("the {name} does not decode: {e}"),
            "export the cover again as a baseline JPEG or a PNG",
        ));
        return (None, findings);
    }
    let info = CoverInfo {
        width,
        height,
        format: name,
    };
    (Some(info), findings)
}

/// A checked cover's pixels as 8-bit RGB (grays expanded, alpha flattened on white).
pub fn decode_rgb(path: &Path) -> Result<(u32, u32, Vec<u8>), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let mut reader = ImageReader::new(Cursor::new(&bytes))
        .with_guessed_format()
        .map_err(|e| e.to_string())?;
    reader.limits(decode_limits());
    let image = reader.decode().map_err(|e| e.to_string())?;
    let (w, h) = (image.width(), image.height());
    let rgba = image.into_rgba8();
    let mut rgb = Vec::with_capacity(w as usize * h as usize * 3);
    for p in rgba.pixels() {
        let a = u32::from(p[3]);
        for c in &p.0[..3] {
            // Over white: c * a + 255 * (1 - a), rounded.
            rgb.push(((u32::from(*c) * a + 255 * (255 - a) + 127) / 255) as u8);
        }
    }
    Ok((w, h, rgb))
}

/// The component count of a JPEG's frame header (ITU-T T.81 B.2.2: 1 gray, 3 YCbCr or RGB,
/// 4 CMYK or YCCK); `None` when the markers before it do not parse.
fn jpeg_components(bytes: &[u8]) -> Option<u8> {
    let mut at = 2; // after SOI
    while at + 4 <= bytes.len() {
        if bytes[at] != 0xff {
            return None;
        }
        let marker = bytes[at + 1];
        if marker == 0xff {
            at += 1; // fill byte
            continue;
        }
        let len = usize::from(u16::from_be_bytes([bytes[at + 2], bytes[at + 3]]));
        // SOF0..SOF15, except DHT (C4), JPG (C8) and DAC (CC).
        if (0xc0..=0xcf).contains(&marker) && ![0xc4, 0xc8, 0xcc].contains(&marker) {
            return bytes.get(at + 9).copied();
        }
        if marker == 0xda || len < 2 {
            return None; // scan data before any frame header
        }
        at += 2 + len;
    }
    None
}

fn decode_limits() -> image::Limits {
    let mut l = image::Limits::default();
    l.max_image_width = Some(limits::MAX_COVER_SIDE);
    l.max_image_height = Some(limits::MAX_COVER_SIDE);
    // RGBA at 16 bits, the largest a cover decodes to, plus the decoder's own buffers.
    l.max_alloc = Some(limits::MAX_COVER_PIXELS * 8 * 2);
    l
}
