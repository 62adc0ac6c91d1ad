use super::*;
use image::{Rgb, RgbImage, Rgba, RgbaImage};
use spindrive_testkit::images::{encoded, jpeg_with_orientation, png_claiming};

fn limits() -> Limits {
    Limits {
        max_input_bytes: 64 << 20,
        max_pixels: 40_000_000,
        max_output_bytes: 64 << 20,
        max_duration: Duration::from_secs(60),
    }
}

fn gradient(width: u32, height: u32) -> DynamicImage {
    DynamicImage::ImageRgb8(RgbImage::from_fn(width, height, |x, y| {
        Rgb([(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8])
    }))
}

fn decoded(output: &Output) -> DynamicImage {
    assert_eq!(sniff(&output.bytes).unwrap(), output.format);
    let image = image::load_from_memory(&output.bytes).unwrap();
    assert_eq!((image.width(), image.height()), (output.width, output.height));
    image
}

#[test]
fn a_thumbnail_fits_the_box_keeps_transparency_and_is_webp() {
    let transparent = DynamicImage::ImageRgba8(RgbaImage::from_fn(640, 480, |x, _| {
        Rgba([255, 0, 0, (x % 256) as u8])
    }));
    let input = encoded(transparent, image::ImageFormat::Png);
    let output = apply(&input, &ImageOperation::Thumbnail { size: 128 }, &limits()).unwrap();
    assert_eq!(
        (output.format, output.width, output.height),
        (ImageFormat::Webp, 128, 96)
    );
    assert!(decoded(&output).color().has_alpha());
}

#[test]
fn a_thumbnail_never_enlarges() {
    let input = encoded(gradient(50, 20), image::ImageFormat::Png);
    let output = apply(&input, &ImageOperation::Thumbnail { size: 256 }, &limits()).unwrap();
    assert_eq!((output.width, output.height), (50, 20));
}

#[test]
fn exif_orientation_is_applied_before_fitting() {
    let input = jpeg_with_orientation(gradient(400, 200), 6);
    let output = apply(&input, &ImageOperation::Thumbnail { size: 100 }, &limits()).unwrap();
    assert_eq!(
        (output.width, output.height),
        (50, 100),
        "turned upright, then fitted"
    );
}

#[test]
fn a_jpeg_shrunk_a_lot_is_decoded_at_reduced_scale_to_the_same_picture() {
    let source = gradient(1600, 1200);
    let thumbnail = ImageOperation::Thumbnail { size: 100 };
    let from_jpeg = apply(
        &encoded(source.clone(), image::ImageFormat::Jpeg),
        &thumbnail,
        &limits(),
    )
    .unwrap();
    let from_png = apply(&encoded(source, image::ImageFormat::Png), &thumbnail, &limits()).unwrap();
    assert_eq!((from_jpeg.width, from_jpeg.height), (100, 75));
    let (a, b) = (decoded(&from_jpeg).to_rgb8(), decoded(&from_png).to_rgb8());
    let difference: u64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(x, y)| u64::from(x.abs_diff(*y)))
        .sum();
    let mean = difference as f64 / a.as_raw().len() as f64;
    assert!(mean < 8.0, "mean difference {mean}");
    let cover = ImageOperation::Resize {
        width: Some(300),
        height: Some(100),
        fit: Fit::Cover,
    };
    let covered = apply(
        &encoded(gradient(1600, 1200), image::ImageFormat::Jpeg),
        &cover,
        &limits(),
    )
    .unwrap();
    assert_eq!((covered.width, covered.height), (300, 100));
}

#[test]
fn a_grey_jpeg_stays_grey() {
    let grey = DynamicImage::ImageLuma8(image::GrayImage::from_fn(800, 600, |x, _| {
        image::Luma([(x % 256) as u8])
    }));
    let output = apply(
        &encoded(grey, image::ImageFormat::Jpeg),
        &ImageOperation::Thumbnail { size: 80 },
        &limits(),
    )
    .unwrap();
    assert_eq!((output.width, output.height), (80, 60));
    decoded(&output);
}

#[test]
fn resize_fits_covers_or_stretches() {
    let input = encoded(gradient(400, 300), image::ImageFormat::Jpeg);
    let resize = |width, height, fit| ImageOperation::Resize { width, height, fit };
    for (transformation, expected) in [
        (resize(Some(200), None, Fit::Contain), (200, 150)),
        (resize(None, Some(600), Fit::Contain), (800, 600)),
        (resize(Some(100), Some(100), Fit::Contain), (100, 75)),
        (resize(Some(100), Some(100), Fit::Cover), (100, 100)),
        (resize(Some(100), Some(10), Fit::Exact), (100, 10)),
    ] {
        let output = apply(&input, &transformation, &limits()).unwrap();
        assert_eq!(output.format, ImageFormat::Jpeg, "resize keeps the format");
        assert_eq!((output.width, output.height), expected, "{transformation:?}");
        decoded(&output);
    }
}

#[test]
fn convert_writes_every_format_from_every_format() {
    let source = gradient(64, 48);
    for input_format in [
        image::ImageFormat::Png,
        image::ImageFormat::Jpeg,
        image::ImageFormat::WebP,
        image::ImageFormat::Gif,
    ] {
        let input = encoded(source.clone(), input_format);
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Webp,
            ImageFormat::Gif,
        ] {
            let output = apply(&input, &ImageOperation::Convert { format }, &limits()).unwrap();
            assert_eq!((output.format, output.width, output.height), (format, 64, 48));
            decoded(&output);
        }
    }
}

#[test]
fn an_animated_gif_gives_its_first_frame() {
    use image::codecs::gif::GifEncoder;
    use image::{Delay, Frame};
    let mut bytes = Vec::new();
    {
        let mut encoder = GifEncoder::new(&mut bytes);
        for shade in [0u8, 255] {
            let frame = RgbaImage::from_pixel(30, 20, Rgba([shade, shade, shade, 255]));
            encoder
                .encode_frame(Frame::from_parts(frame, 0, 0, Delay::from_numer_denom_ms(100, 1)))
                .unwrap();
        }
    }
    let output = apply(
        &bytes,
        &ImageOperation::Convert {
            format: ImageFormat::Png,
        },
        &limits(),
    )
    .unwrap();
    let first = decoded(&output).to_rgba8();
    assert_eq!(first.get_pixel(0, 0).0, [0, 0, 0, 255]);
}

#[test]
fn bombs_and_lying_headers_are_refused_before_decoding() {
    for (width, height, depth, color) in [(20_000, 20_000, 8, 6), (100_000, 100_000, 16, 6)] {
        let input = png_claiming(width, height, depth, color);
        let started = Instant::now();
        let error = apply(&input, &ImageOperation::Thumbnail { size: 64 }, &limits()).unwrap_err();
        assert!(
            matches!(
                error,
                ImagingError::TooManyPixels { .. } | ImagingError::Oversized { .. }
            ),
            "{error}"
        );
        assert!(started.elapsed() < Duration::from_millis(100));
    }
    let output_too_big = apply(
        &encoded(gradient(100, 100), image::ImageFormat::Png),
        &ImageOperation::Resize {
            width: Some(8000),
            height: Some(8000),
            fit: Fit::Exact,
        },
        &limits(),
    )
    .unwrap_err();
    assert!(matches!(output_too_big, ImagingError::TooManyPixels { .. }));
}

#[test]
fn other_files_fail_with_a_clear_message() {
    let not_an_image = apply(
        b"%PDF-1.7 ...",
        &ImageOperation::Thumbnail { size: 64 },
        &limits(),
    )
    .unwrap_err();
    assert_eq!(
        not_an_image.to_string(),
        "the file is not a JPEG, PNG, WebP or GIF image"
    );
    let mut truncated = encoded(gradient(200, 200), image::ImageFormat::Png);
    truncated.truncate(200);
    let corrupt = apply(&truncated, &ImageOperation::Thumbnail { size: 64 }, &limits()).unwrap_err();
    assert!(matches!(corrupt, ImagingError::Corrupt(_)), "{corrupt}");
    let small = Limits {
        max_input_bytes: 10,
        ..limits()
    };
    assert!(matches!(
        apply(&truncated, &ImageOperation::Thumbnail { size: 64 }, &small),
        Err(ImagingError::InputTooLarge { .. })
    ));
}
