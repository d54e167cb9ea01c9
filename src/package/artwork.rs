//! The front cover's derived sizes: square JPEGs (sRGB, baseline, no metadata) a catalog
//! serves, each size resampled from the delivered cover with Lanczos-3 (`fast_image_resize`),
//! never upscaled, under a content-keyed version folder (`layout::cover_file`).

use std::path::Path;

use fast_image_resize as fr;
use image::codecs::jpeg::JpegEncoder;
use image::ExtendedColorType;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ladder::CoverPolicy;
use crate::layout;

/// The derived sizes of one cover.
#[derive(Clone, Debug)]
pub struct Artwork {
    /// The version folder: a digest of every derived image's bytes.
    pub version: String,
    pub images: Vec<DerivedImage>,
}

#[derive(Clone, Debug)]
pub struct DerivedImage {
    pub size: u32,
    pub jpeg: Vec<u8>,
}

/// One derived size in the report, the catalog record and the notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoverImage {
    /// Key relative to the package (as every path of the report).
    pub path: String,
    pub width: u32,
    pub height: u32,
    pub bytes: u64,
}

/// Derive the sizes the ladder asks for from a checked cover (`ingest::cover::check`): every
/// size not larger than the cover, largest first; a cover smaller than every size (a ladder
/// whose `min_size` is below its sizes) gives its own size alone.
pub fn derive(cover: &Path, policy: &CoverPolicy) -> Result<Artwork, String> {
    let (side, _, rgb) = crate::ingest::cover::decode_rgb(cover)?;
    let source = fr::images::Image::from_vec_u8(side, side, rgb, fr::PixelType::U8x3)
        .map_err(|e| e.to_string())?;
    let mut sizes: Vec<u32> = policy
        .sizes
        .iter()
        .copied()
        .filter(|&s| s <= side)
        .collect();
    if sizes.is_empty() {
        sizes.push(side);
    }
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    sizes.dedup();
    let mut resizer = fr::Resizer::new();
    let options =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
    let mut images = Vec::with_capacity(sizes.len());
    let mut digest = Sha256::new();
    for size in sizes {
        let pixels = if size == side {
            source.buffer().to_vec()
        } else {
            let mut dst = fr::images::Image::new(size, size, fr::PixelType::U8x3);
            resizer
                .resize(&source, &mut dst, &options)
                .map_err(|e| e.to_string())?;
            dst.into_vec()
        };
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, policy.quality)
            .encode(&pixels, size, size, ExtendedColorType::Rgb8)
            .map_err(|e| e.to_string())?;
        digest.update(size.to_be_bytes());
        digest.update((jpeg.len() as u64).to_be_bytes());
        digest.update(&jpeg);
        images.push(DerivedImage { size, jpeg });
    }
    Ok(Artwork {
        version: layout::version_name(&digest.finalize()),
        images,
    })
}

impl Artwork {
    /// Each image's key relative to a track folder.
    pub fn files(&self) -> impl Iterator<Item = (String, &DerivedImage)> {
        self.images
            .iter()
            .map(|i| (layout::cover_file(&self.version, i.size), i))
    }
}
