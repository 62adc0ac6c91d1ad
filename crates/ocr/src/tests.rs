//! Reading pages rendered here with DejaVu Sans, with the real models.

use crate::{Engine, Options};
use spindrive_testkit::documents::{a4_page, character_error_rate, report_lines, scanned};
use std::path::PathBuf;

fn engine() -> Engine {
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/ocr");
    Engine::load(&models).unwrap_or_else(|e| panic!("{e}: run `make models` first"))
}

#[test]
fn a_clean_page_is_read_with_under_two_percent_errors() {
    let lines = report_lines();
    let page = engine().read(&a4_page(&lines), Options::default()).unwrap();
    let cer = character_error_rate(&lines.join("\n"), &page.text());
    eprintln!("clean page: CER {cer:.4}");
    assert!(cer <= 0.02, "CER {cer:.4}:\n{}", page.text());
    assert_eq!(page.lines.len(), lines.len());
    assert!(page.lines.iter().all(|line| line.confidence > 0.5));
}

#[test]
fn a_turned_noisy_scan_is_read_with_under_five_percent_errors() {
    let lines = report_lines();
    let engine = engine();
    for (degrees, seed) in [(5.0, 7), (-5.0, 11)] {
        let page = engine
            .read(
                &scanned(&a4_page(&lines), degrees, 40, seed),
                Options {
                    latin_only: true,
                    ..Options::default()
                },
            )
            .unwrap();
        let cer = character_error_rate(&lines.join("\n"), &page.text());
        eprintln!("{degrees}° noisy scan: CER {cer:.4}");
        assert!(cer <= 0.05, "{degrees}°: CER {cer:.4}:\n{}", page.text());
    }
}

#[test]
fn a_page_that_takes_too_long_is_given_up() {
    let options = Options {
        time_limit: Some(std::time::Duration::ZERO),
        ..Options::default()
    };
    let error = engine().read(&a4_page(&report_lines()), options).unwrap_err();
    assert!(matches!(error, crate::OcrError::TooSlow(_)), "{error}");
}

#[test]
fn a_thin_strip_stays_small() {
    let strip = image::RgbImage::from_pixel(1, 60_000, image::Rgb([255, 255, 255]));
    let page = engine().read(&strip, Options::default()).unwrap();
    assert!(page.lines.is_empty());
}

#[test]
fn missing_models_are_named() {
    let error = Engine::load(std::path::Path::new("/nonexistent")).unwrap_err();
    assert!(
        error.to_string().contains("ppocrv5_det.onnx") || error.to_string().contains("ppocr_keys_v5.txt")
    );
}
