//! Sponsor logos: what an upload must be, and the safe image we keep.
//!
//! The file's bytes decide its type, never its name: only PNG, JPEG and WebP
//! are decoded. SVG (and anything else, including HTML or script smuggled in
//! a "polyglot" file) is refused. Every accepted logo is decoded to pixels,
//! scaled down to fit the configured box and re-encoded as a fresh PNG, so
//! nothing of the uploaded file but its pixels survives (no metadata, no
//! trailing data, no second format hidden after the image).

use std::io::Cursor;

use image::{ImageFormat, ImageReader, Limits};
use sha2::{Digest, Sha256};

use super::{text, text_enum};
use crate::error::FieldError;

text_enum!(
    /// The logo shown on light backgrounds, or its dark-mode variant.
    LogoVariant { Light => "light", Dark => "dark" }
);

/// The limits from `[sponsors]`.
#[derive(Debug, Clone, Copy)]
pub struct LogoRules {
    pub max_bytes: usize,
    pub max_width: u32,
    pub max_height: u32,
    pub min_side: u32,
}

/// A checked logo, ready to store and serve.
#[derive(Debug, Clone)]
pub struct Logo {
    pub png: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub alt_text: String,
    /// Hex SHA-256 of `png`: the logo's public URL, so it can be cached forever.
    pub sha256: String,
}

/// Largest source image, per side and in all. A logo is shown at 400×200 at
/// most, so 4 megapixels (16 MiB decoded) leave room for any real one. The
/// header is read first: a tiny file that claims enormous dimensions (a
/// decompression bomb) is refused before a pixel is decoded.
pub const MAX_SOURCE_SIDE: u32 = 4096;
pub const MAX_SOURCE_PIXELS: u64 = 4 * 1024 * 1024;

impl Logo {
    pub fn parse(bytes: &[u8], alt_text: &str, rules: &LogoRules) -> Result<Logo, Vec<FieldError>> {
        let mut errors = Vec::new();
        let alt = text("alt_text", alt_text, 1, 200, false)
            .map_err(|e| errors.push(e))
            .ok();
        let image = decode(bytes, rules).map_err(|e| errors.push(e)).ok();
        let (Some(alt_text), Some(image)) = (alt, image) else {
            return Err(errors);
        };
        let image = if image.width() > rules.max_width || image.height() > rules.max_height {
            image.resize(
                rules.max_width,
                rules.max_height,
                image::imageops::FilterType::Triangle,
            )
        } else {
            image
        };
        let rgba = image.to_rgba8();
        let mut png = Vec::new();
        rgba.write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .map_err(|_| vec![FieldError::new("logo", "could not be re-encoded")])?;
        let sha256 = hex::encode(Sha256::digest(&png));
        Ok(Logo {
            width: rgba.width(),
            height: rgba.height(),
            png,
            alt_text,
            sha256,
        })
    }
}

fn decode(bytes: &[u8], rules: &LogoRules) -> Result<image::DynamicImage, FieldError> {
    let field = "logo";
    if bytes.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if bytes.len() > rules.max_bytes {
        return Err(FieldError::new(
            field,
            format!("must be at most {} bytes", rules.max_bytes),
        ));
    }
    let format = image::guess_format(bytes).ok();
    if !matches!(
        format,
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP)
    ) {
        return Err(FieldError::new(
            field,
            "must be a PNG, JPEG or WebP image (SVG and other formats are not accepted)",
        ));
    }
    let unreadable = || FieldError::new(field, "is not a readable PNG, JPEG or WebP image");
    let format = format.expect("matched");
    let mut header = ImageReader::new(Cursor::new(bytes));
    header.set_format(format);
    let (width, height) = header.into_dimensions().map_err(|_| unreadable())?;
    if width > MAX_SOURCE_SIDE
        || height > MAX_SOURCE_SIDE
        || u64::from(width) * u64::from(height) > MAX_SOURCE_PIXELS
    {
        return Err(FieldError::new(
            field,
            format!(
                "is {width}x{height} pixels; at most {MAX_SOURCE_SIDE} a side and {} megapixels are accepted (a logo is shown at {}x{} at most)",
                MAX_SOURCE_PIXELS / (1024 * 1024),
                rules.max_width,
                rules.max_height
            ),
        ));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes));
    reader.set_format(format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SOURCE_SIDE);
    limits.max_image_height = Some(MAX_SOURCE_SIDE);
    limits.max_alloc = Some(4 * MAX_SOURCE_PIXELS + 16 * 1024 * 1024);
    reader.limits(limits);
    let image = reader.decode().map_err(|_| unreadable())?;
    if image.width() < rules.min_side || image.height() < rules.min_side {
        return Err(FieldError::new(
            field,
            format!("must be at least {0}x{0} pixels", rules.min_side),
        ));
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: LogoRules = LogoRules {
        max_bytes: 1 << 20,
        max_width: 400,
        max_height: 200,
        min_side: 16,
    };

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbaImage::from_pixel(w, h, image::Rgba([200, 0, 200, 255]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png)
            .unwrap();
        out
    }

    #[test]
    fn a_logo_is_scaled_to_fit_and_re_encoded() {
        let logo = Logo::parse(&png(1000, 1000), "ACME", &RULES).unwrap();
        assert_eq!((logo.width, logo.height), (200, 200));
        assert!(logo.png.starts_with(b"\x89PNG"));
    }

    #[test]
    fn svg_html_and_polyglots_are_refused_or_reduced_to_pixels() {
        let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#;
        assert!(Logo::parse(svg, "x", &RULES).is_err());
        assert!(Logo::parse(b"<html><script>alert(1)</script>", "x", &RULES).is_err());
        // A real PNG with HTML appended: accepted, but only its pixels remain.
        let mut polyglot = png(32, 32);
        polyglot.extend_from_slice(b"<script>alert(1)</script>");
        let logo = Logo::parse(&polyglot, "x", &RULES).unwrap();
        assert!(!logo.png.windows(7).any(|w| w == b"<script"));
        // A PNG header on garbage is not an image.
        let mut fake = b"\x89PNG\r\n\x1a\n".to_vec();
        fake.extend_from_slice(b"<svg onload=alert(1)>");
        assert!(Logo::parse(&fake, "x", &RULES).is_err());
    }

    #[test]
    fn huge_dimensions_are_refused_from_the_header() {
        // 8 KiB on disk, 8192x8192 once decoded.
        let bomb = include_bytes!("../../tests/fixtures/empty-8192x8192.png");
        let errors = Logo::parse(bomb, "x", &RULES).unwrap_err();
        assert_eq!(errors[0].field, "logo");
        assert!(errors[0].message.contains("8192x8192"), "{errors:?}");
        let wide = png(4097, 16);
        assert!(Logo::parse(&wide, "x", &RULES).is_err());
        assert!(Logo::parse(&png(4096, 16), "x", &RULES).is_ok());
    }

    #[test]
    fn alt_text_and_size_are_required() {
        let errors = Logo::parse(&png(8, 8), " ", &RULES).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["alt_text", "logo"]);
    }
}
