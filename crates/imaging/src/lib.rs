//! Image transformations for the worker, in pure Rust so they run inside a
//! WebAssembly component: decode (JPEG, PNG, WebP, GIF; EXIF orientation
//! applied; the first frame of an animation; JPEGs at reduced scale when
//! shrinking a lot), resize with `fast_image_resize`, encode.
//!
//! Limits are checked from the header before any pixel is decoded, so a
//! decompression bomb or a header claiming gigabytes is refused at once
//! and memory stays bounded by `max_pixels`.

use fast_image_resize::{FilterType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, ImageDecoder, ImageReader};
use spindrive_domain::transform::{Fit, ImageFormat, ImageOperation};
use std::io::Cursor;
use std::time::{Duration, Instant};

/// What one job may use.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_input_bytes: u64,
    /// Width × height of the input, and of the output.
    pub max_pixels: u64,
    pub max_output_bytes: u64,
    pub max_duration: Duration,
}

impl Limits {
    /// Refuses an input of `size` bytes over the limit (before reading it,
    /// when its size is known).
    pub fn check_input(&self, size: u64) -> Result<(), ImagingError> {
        if size > self.max_input_bytes {
            Err(ImagingError::InputTooLarge {
                size,
                limit: self.max_input_bytes,
            })
        } else {
            Ok(())
        }
    }
}

/// Why a transformation failed; the text is shown to the user.
#[derive(Debug, thiserror::Error)]
pub enum ImagingError {
    #[error("the file is {size} bytes; transformations accept at most {limit}")]
    InputTooLarge { size: u64, limit: u64 },
    #[error("the file is not a JPEG, PNG, WebP or GIF image")]
    Unsupported,
    #[error("the image is {width}×{height} pixels; transformations accept at most {limit} pixels")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
    /// A header whose size cannot even be represented here (on wasm32, an
    /// image over 4 GiB): refused without its dimensions.
    #[error("the image is too large: transformations accept at most {limit} pixels")]
    Oversized { limit: u64 },
    #[error("the image cannot be read: {0}")]
    Corrupt(String),
    #[error("the result would be {size} bytes; the limit is {limit}")]
    OutputTooLarge { size: u64, limit: u64 },
    #[error("the transformation took longer than {0:?}")]
    TooSlow(Duration),
    #[error("the result cannot be written: {0}")]
    Encode(String),
}

/// A finished image.
#[derive(Debug)]
pub struct Output {
    pub bytes: Vec<u8>,
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

/// The format of `bytes`, from their signature.
pub fn sniff(bytes: &[u8]) -> Result<ImageFormat, ImagingError> {
    match image::guess_format(bytes) {
        Ok(image::ImageFormat::Png) => Ok(ImageFormat::Png),
        Ok(image::ImageFormat::Jpeg) => Ok(ImageFormat::Jpeg),
        Ok(image::ImageFormat::WebP) => Ok(ImageFormat::Webp),
        Ok(image::ImageFormat::Gif) => Ok(ImageFormat::Gif),
        _ => Err(ImagingError::Unsupported),
    }
}

fn codec(format: ImageFormat) -> image::ImageFormat {
    match format {
        ImageFormat::Png => image::ImageFormat::Png,
        ImageFormat::Jpeg => image::ImageFormat::Jpeg,
        ImageFormat::Webp => image::ImageFormat::WebP,
        ImageFormat::Gif => image::ImageFormat::Gif,
    }
}

/// Runs `transformation` on the image in `input`.
pub fn apply(input: &[u8], transformation: &ImageOperation, limits: &Limits) -> Result<Output, ImagingError> {
    let started = Instant::now();
    let in_time = || {
        if started.elapsed() > limits.max_duration {
            Err(ImagingError::TooSlow(limits.max_duration))
        } else {
            Ok(())
        }
    };
    limits.check_input(input.len() as u64)?;
    let format = sniff(input)?;
    let image = decode(input, format, transformation, limits)?;
    in_time()?;
    let (width, height) = target_size(transformation, image.width(), image.height());
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImagingError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    let image = match transformation {
        ImageOperation::Resize { fit: Fit::Cover, .. } => cover(&image, width, height)?,
        _ if (width, height) == (image.width(), image.height()) => image,
        _ => resize(&image, width, height)?,
    };
    in_time()?;
    let output = transformation.output_format(format);
    let bytes = encode(image, output)?;
    in_time()?;
    if bytes.len() as u64 > limits.max_output_bytes {
        return Err(ImagingError::OutputTooLarge {
            size: bytes.len() as u64,
            limit: limits.max_output_bytes,
        });
    }
    Ok(Output {
        bytes,
        format: output,
        width,
        height,
    })
}

/// The whole image at full size, upright (EXIF orientation applied), as
/// OCR reads it; the same limits as a transformation's input.
pub fn decode_upright(input: &[u8], limits: &Limits) -> Result<DynamicImage, ImagingError> {
    limits.check_input(input.len() as u64)?;
    let format = sniff(input)?;
    // A conversion needs every pixel: nothing is skipped in decoding.
    decode(input, format, &ImageOperation::Convert { format }, limits)
}

fn corrupt(error: image::ImageError) -> ImagingError {
    match error {
        image::ImageError::Limits(_) => ImagingError::Corrupt("it needs more memory than allowed".into()),
        other => ImagingError::Corrupt(other.to_string()),
    }
}

/// Decodes after checking the header's dimensions, orientation applied.
fn decode(
    input: &[u8],
    format: ImageFormat,
    transformation: &ImageOperation,
    limits: &Limits,
) -> Result<DynamicImage, ImagingError> {
    // The header alone first (no pixel buffer is sized from it yet), so a
    // lying or enormous one is refused with its real dimensions.
    let mut probe = ImageReader::with_format(Cursor::new(input), codec(format));
    probe.no_limits();
    let (width, height) = probe.into_dimensions().map_err(|e| match e {
        image::ImageError::Limits(_) => ImagingError::Oversized {
            limit: limits.max_pixels,
        },
        other => corrupt(other),
    })?;
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImagingError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    if width == 0 || height == 0 {
        return Err(ImagingError::Corrupt(format!("it is {width}×{height} pixels")));
    }
    if format == ImageFormat::Jpeg
        && let Some(image) = decode_jpeg(input, transformation)?
    {
        return Ok(image);
    }
    let mut reader = ImageReader::with_format(Cursor::new(input), codec(format));
    let mut decoder_limits = image::Limits::default();
    // Room for the decoded pixels (at most 16 bytes each) and the codec's
    // own buffers.
    decoder_limits.max_alloc = Some(limits.max_pixels.saturating_mul(16).max(64 << 20));
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let orientation = decoder.orientation().map_err(corrupt)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// A JPEG, decoded by `jpeg-decoder`: it scales by 1/2, 1/4 or 1/8 in the
/// inverse DCT when the result is at most half as wide and high (most of a
/// thumbnail's decoding is then never done), and in wasm it runs nearer
/// native speed than `image`'s own JPEG decoder (bench/results/transform.md).
/// `None` for the rare 16-bit and CMYK JPEGs, which `image` decodes.
fn decode_jpeg(input: &[u8], transformation: &ImageOperation) -> Result<Option<DynamicImage>, ImagingError> {
    use image::metadata::Orientation;
    let failed = |e: jpeg_decoder::Error| ImagingError::Corrupt(e.to_string());
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(input));
    decoder.read_info().map_err(failed)?;
    let Some(info) = decoder.info() else {
        return Ok(None);
    };
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => true,
        jpeg_decoder::PixelFormat::L8 => false,
        jpeg_decoder::PixelFormat::L16 | jpeg_decoder::PixelFormat::CMYK32 => return Ok(None),
    };
    let orientation = decoder
        .exif_data()
        .and_then(Orientation::from_exif_chunk)
        .unwrap_or(Orientation::NoTransforms);
    let turned = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    let (upright_w, upright_h) = if turned { (height, width) } else { (width, height) };
    let (need_w, need_h) = needed_size(transformation, upright_w, upright_h);
    let (need_w, need_h) = if turned {
        (need_h, need_w)
    } else {
        (need_w, need_h)
    };
    if need_w * 2 <= width && need_h * 2 <= height {
        // Both fit in u16: they are below the JPEG's own dimensions.
        decoder.scale(need_w as u16, need_h as u16).map_err(failed)?;
    }
    let pixels = decoder.decode().map_err(failed)?;
    let scaled = decoder.info().unwrap_or(info);
    let (w, h) = (u32::from(scaled.width), u32::from(scaled.height));
    let mut image = if rgb {
        image::RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8)
    } else {
        image::GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8)
    }
    .ok_or_else(|| ImagingError::Corrupt("the decoded size does not match the header".into()))?;
    image.apply_orientation(orientation);
    Ok(Some(image))
}

/// The smallest upright size the image must be decoded at for
/// `transformation` to lose nothing: its output size, or for `cover` the
/// size before cropping.
fn needed_size(transformation: &ImageOperation, width: u32, height: u32) -> (u32, u32) {
    match *transformation {
        ImageOperation::Resize {
            width: Some(box_w),
            height: Some(box_h),
            fit: Fit::Cover,
        } => {
            let scale = (f64::from(box_w) / f64::from(width)).max(f64::from(box_h) / f64::from(height));
            (
                (f64::from(width) * scale).ceil() as u32,
                (f64::from(height) * scale).ceil() as u32,
            )
        }
        _ => target_size(transformation, width, height),
    }
}

/// The output size of `transformation` for a `width`×`height` input
/// (after orientation). Never 0; a thumbnail is never enlarged.
pub fn target_size(transformation: &ImageOperation, width: u32, height: u32) -> (u32, u32) {
    let (w, h) = (f64::from(width), f64::from(height));
    let scaled = |scale: f64| {
        (
            ((w * scale).round() as u32).max(1),
            ((h * scale).round() as u32).max(1),
        )
    };
    match *transformation {
        ImageOperation::Thumbnail { size } => {
            let scale = (f64::from(size) / w).min(f64::from(size) / h).min(1.0);
            scaled(scale)
        }
        ImageOperation::Resize {
            width: Some(bw),
            height: Some(bh),
            fit: Fit::Cover | Fit::Exact,
        } => (bw, bh),
        ImageOperation::Resize {
            width: box_w,
            height: box_h,
            ..
        } => {
            let scale_w = box_w.map(|bw| f64::from(bw) / w);
            let scale_h = box_h.map(|bh| f64::from(bh) / h);
            let scale = match (scale_w, scale_h) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) | (None, Some(a)) => a,
                (None, None) => 1.0,
            };
            scaled(scale)
        }
        ImageOperation::Convert { .. } => (width, height),
    }
}

fn resize(image: &DynamicImage, width: u32, height: u32) -> Result<DynamicImage, ImagingError> {
    resize_with(image, width, height, &ResizeOptions::new())
}

/// Scales to cover `width`×`height` and crops the overflow from the centre.
fn cover(image: &DynamicImage, width: u32, height: u32) -> Result<DynamicImage, ImagingError> {
    let options = ResizeOptions::new().fit_into_destination(Some((0.5, 0.5)));
    resize_with(image, width, height, &options)
}

fn resize_with(
    image: &DynamicImage,
    width: u32,
    height: u32,
    options: &ResizeOptions,
) -> Result<DynamicImage, ImagingError> {
    // 8-bit RGB or RGBA (alpha kept, and premultiplied while resizing).
    let source = if image.color().has_alpha() {
        DynamicImage::ImageRgba8(image.to_rgba8())
    } else {
        DynamicImage::ImageRgb8(image.to_rgb8())
    };
    let mut target = DynamicImage::new(width, height, source.color());
    let options = options
        .clone()
        .resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new()
        .resize(&source, &mut target, &options)
        .map_err(|e| ImagingError::Encode(e.to_string()))?;
    Ok(target)
}

fn encode(image: DynamicImage, format: ImageFormat) -> Result<Vec<u8>, ImagingError> {
    let image = match format {
        // JPEG has no alpha: flatten onto white rather than black.
        ImageFormat::Jpeg if image.color().has_alpha() => DynamicImage::ImageRgb8(flatten_on_white(&image)),
        ImageFormat::Jpeg => DynamicImage::ImageRgb8(image.to_rgb8()),
        // The WebP encoder takes 8-bit RGB(A) only.
        ImageFormat::Webp if image.color().has_alpha() => DynamicImage::ImageRgba8(image.to_rgba8()),
        ImageFormat::Webp => DynamicImage::ImageRgb8(image.to_rgb8()),
        ImageFormat::Gif => DynamicImage::ImageRgba8(image.to_rgba8()),
        ImageFormat::Png => image,
    };
    let mut bytes = Cursor::new(Vec::new());
    match format {
        ImageFormat::Jpeg => {
            let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 85);
            image.write_with_encoder(encoder)
        }
        other => image.write_to(&mut bytes, codec(other)),
    }
    .map_err(|e| ImagingError::Encode(e.to_string()))?;
    Ok(bytes.into_inner())
}

fn flatten_on_white(image: &DynamicImage) -> image::RgbImage {
    let rgba = image.to_rgba8();
    image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let over_white = |c: u8| ((u16::from(c) * u16::from(a) + 255 * (255 - u16::from(a))) / 255) as u8;
        image::Rgb([over_white(r), over_white(g), over_white(b)])
    })
}

#[cfg(test)]
mod tests;
