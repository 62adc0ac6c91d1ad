//! Transformations a user may ask for, parsed once: the type, its
//! parameters (unknown fields refused, defaults filled in), the name of the
//! file it produces, and the job states.

use crate::ValidationError;
use crate::fields::{Whole, present};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The largest edge a thumbnail or resize may ask for, in pixels.
pub const MAX_EDGE: u32 = 8192;

/// Image formats the worker writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Png,
    Jpeg,
    Webp,
    Gif,
}

impl ImageFormat {
    pub fn extension(self) -> &'static str {
        match self {
            ImageFormat::Png => "png",
            ImageFormat::Jpeg => "jpg",
            ImageFormat::Webp => "webp",
            ImageFormat::Gif => "gif",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Webp => "image/webp",
            ImageFormat::Gif => "image/gif",
        }
    }
}

/// How `resize` fits the image into the box it is given.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// Within the box, aspect kept.
    #[default]
    Contain,
    /// Fills the box, aspect kept, the overflow cropped from the centre.
    Cover,
    /// Exactly the box, stretched.
    Exact,
}

/// A transformation of an image into another image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageOperation {
    /// Fit in size×size (never enlarged), EXIF orientation applied; WebP.
    Thumbnail { size: u32 },
    /// To a width and/or height; the input's format.
    Resize {
        width: Option<u32>,
        height: Option<u32>,
        fit: Fit,
    },
    /// The same pixels in another format.
    Convert { format: ImageFormat },
}

/// Scripts the OCR model reads (PP-OCRv5 mobile: one model for all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OcrLanguage {
    #[serde(rename = "en")]
    English,
    #[serde(rename = "zh")]
    Chinese,
    #[serde(rename = "zh-Hant")]
    TraditionalChinese,
    #[serde(rename = "ja")]
    Japanese,
}

/// The text search configurations of PostgreSQL 15 a job may index its
/// text with (`simple` does no stemming and suits any language).
pub const SEARCH_LANGUAGES: &[&str] = &[
    "simple",
    "arabic",
    "armenian",
    "basque",
    "catalan",
    "danish",
    "dutch",
    "english",
    "finnish",
    "french",
    "german",
    "greek",
    "hindi",
    "hungarian",
    "indonesian",
    "irish",
    "italian",
    "lithuanian",
    "nepali",
    "norwegian",
    "portuguese",
    "romanian",
    "russian",
    "serbian",
    "spanish",
    "swedish",
    "tamil",
    "turkish",
    "yiddish",
];

/// A transformation of a document into its text (a `text/plain` file,
/// also indexed for search under the source file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TextExtraction {
    /// A PDF's text layer.
    PdfText { search_language: &'static str },
    /// The text in an image, read by OCR; `languages` empty means any the
    /// model reads.
    Ocr {
        languages: Vec<OcrLanguage>,
        search_language: &'static str,
    },
}

impl TextExtraction {
    /// The text search configuration the text is indexed with.
    pub fn search_language(&self) -> &'static str {
        match self {
            TextExtraction::PdfText { search_language } | TextExtraction::Ocr { search_language, .. } => {
                search_language
            }
        }
    }

    /// Where the text comes from, as search records it (`file_texts.source`).
    pub fn source(&self) -> &'static str {
        match self {
            TextExtraction::PdfText { .. } => "pdf_text",
            TextExtraction::Ocr { .. } => "ocr",
        }
    }

    /// Whether only Latin-script text is expected (OCR then ignores the
    /// model's other characters).
    pub fn latin_only(&self) -> bool {
        matches!(self, TextExtraction::Ocr { languages, .. }
            if !languages.is_empty() && languages.iter().all(|l| *l == OcrLanguage::English))
    }
}

/// One transformation, valid by construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transformation {
    Image(ImageOperation),
    Text(TextExtraction),
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ThumbnailParams {
    size: Whole<u32>,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ResizeParams {
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    width: Option<Whole<u32>>,
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    height: Option<Whole<u32>>,
    #[serde(default)]
    fit: Fit,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ConvertParams {
    format: ImageFormat,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PdfTextParams {
    #[serde(default = "simple")]
    search_language: String,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct OcrParams {
    #[serde(default)]
    languages: Vec<OcrLanguage>,
    #[serde(default = "simple")]
    search_language: String,
}

fn simple() -> String {
    "simple".to_owned()
}

/// The type names, as the API and the `transformation_jobs` table spell them.
pub const TYPES: &[&str] = &["thumbnail", "resize", "convert", "pdf_text", "ocr"];

fn params<T: for<'de> Deserialize<'de>>(params: &Value) -> Result<T, ValidationError> {
    let params = if params.is_null() {
        &Value::Object(Default::default())
    } else {
        params
    };
    T::deserialize(params).map_err(|e| ValidationError::new("params", e.to_string()))
}

fn edge(field: &'static str, value: u32) -> Result<u32, ValidationError> {
    if (1..=MAX_EDGE).contains(&value) {
        Ok(value)
    } else {
        Err(ValidationError::new(
            field,
            format!("must be 1 to {MAX_EDGE} pixels"),
        ))
    }
}

fn search_language(name: &str) -> Result<&'static str, ValidationError> {
    SEARCH_LANGUAGES
        .iter()
        .copied()
        .find(|known| *known == name)
        .ok_or_else(|| {
            ValidationError::new(
                "params.search_language",
                format!("must be one of: {}", SEARCH_LANGUAGES.join(", ")),
            )
        })
}

impl Transformation {
    /// Parses a request's `type` and `params`.
    pub fn parse(kind: &str, raw: &Value) -> Result<Self, ValidationError> {
        let image = match kind {
            "thumbnail" => {
                let p: ThumbnailParams = params(raw)?;
                ImageOperation::Thumbnail {
                    size: edge("params.size", p.size.0)?,
                }
            }
            "resize" => {
                let p: ResizeParams = params(raw)?;
                let width = p.width.map(|w| edge("params.width", w.0)).transpose()?;
                let height = p.height.map(|h| edge("params.height", h.0)).transpose()?;
                match (width, height, p.fit) {
                    (None, None, _) => {
                        return Err(ValidationError::new("params", "give a width, a height or both"));
                    }
                    (Some(_), Some(_), _) | (_, _, Fit::Contain) => ImageOperation::Resize {
                        width,
                        height,
                        fit: p.fit,
                    },
                    _ => {
                        return Err(ValidationError::new(
                            "params.fit",
                            "cover and exact need both a width and a height",
                        ));
                    }
                }
            }
            "convert" => {
                let p: ConvertParams = params(raw)?;
                ImageOperation::Convert { format: p.format }
            }
            "pdf_text" => {
                let p: PdfTextParams = params(raw)?;
                return Ok(Transformation::Text(TextExtraction::PdfText {
                    search_language: search_language(&p.search_language)?,
                }));
            }
            "ocr" => {
                let mut p: OcrParams = params(raw)?;
                p.languages.sort();
                p.languages.dedup();
                return Ok(Transformation::Text(TextExtraction::Ocr {
                    languages: p.languages,
                    search_language: search_language(&p.search_language)?,
                }));
            }
            _ => {
                return Err(ValidationError::new(
                    "type",
                    format!("must be one of: {}", TYPES.join(", ")),
                ));
            }
        };
        Ok(Transformation::Image(image))
    }

    /// The type name.
    pub fn kind(&self) -> &'static str {
        match self {
            Transformation::Image(ImageOperation::Thumbnail { .. }) => "thumbnail",
            Transformation::Image(ImageOperation::Resize { .. }) => "resize",
            Transformation::Image(ImageOperation::Convert { .. }) => "convert",
            Transformation::Text(TextExtraction::PdfText { .. }) => "pdf_text",
            Transformation::Text(TextExtraction::Ocr { .. }) => "ocr",
        }
    }

    /// The parameters as stored, defaults filled in.
    pub fn params(&self) -> Value {
        let value = match self {
            Transformation::Image(ImageOperation::Thumbnail { size }) => {
                serde_json::to_value(ThumbnailParams { size: Whole(*size) })
            }
            Transformation::Image(ImageOperation::Resize { width, height, fit }) => {
                serde_json::to_value(ResizeParams {
                    width: width.map(Whole),
                    height: height.map(Whole),
                    fit: *fit,
                })
            }
            Transformation::Image(ImageOperation::Convert { format }) => {
                serde_json::to_value(ConvertParams { format: *format })
            }
            Transformation::Text(TextExtraction::PdfText { search_language }) => {
                serde_json::to_value(PdfTextParams {
                    search_language: (*search_language).to_owned(),
                })
            }
            Transformation::Text(TextExtraction::Ocr {
                languages,
                search_language,
            }) => serde_json::to_value(OcrParams {
                languages: languages.clone(),
                search_language: (*search_language).to_owned(),
            }),
        };
        value.expect("parameters serialize")
    }

    /// The result's file name, with `extension`: `photo (thumbnail
    /// 256).webp` for `photo.jpg`, `scan (OCR).txt` for `scan.png`.
    pub fn result_name(&self, source: &str, extension: &str) -> String {
        let stem = match source.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem,
            _ => source,
        };
        let label = match self {
            Transformation::Image(ImageOperation::Thumbnail { size }) => Some(format!("thumbnail {size}")),
            Transformation::Image(ImageOperation::Resize { width, height, fit }) => {
                let dimension = |d: &Option<u32>| d.map_or("auto".to_owned(), |d| d.to_string());
                let fit = match fit {
                    Fit::Contain => "",
                    Fit::Cover => " cover",
                    Fit::Exact => " exact",
                };
                Some(format!("{}x{}{fit}", dimension(width), dimension(height)))
            }
            Transformation::Image(ImageOperation::Convert { .. }) => None,
            Transformation::Text(TextExtraction::PdfText { .. }) => Some("text".to_owned()),
            Transformation::Text(TextExtraction::Ocr { .. }) => Some("OCR".to_owned()),
        };
        // Names are at most 255 bytes: a long stem is cut on a character
        // boundary to leave room for the label and extension.
        let suffix = match &label {
            Some(label) => format!(" ({label}).{extension}"),
            None => format!(".{extension}"),
        };
        let mut stem_len = stem.len().min(255 - suffix.len());
        while !stem.is_char_boundary(stem_len) {
            stem_len -= 1;
        }
        format!("{}{suffix}", &stem[..stem_len])
    }
}

impl ImageOperation {
    /// The output format for an input in `input` format.
    pub fn output_format(&self, input: ImageFormat) -> ImageFormat {
        match *self {
            ImageOperation::Thumbnail { .. } => ImageFormat::Webp,
            ImageOperation::Resize { .. } => input,
            ImageOperation::Convert { format } => format,
        }
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobStatus {
    Pending,
    Running,
    Complete,
    Failed,
}

impl JobStatus {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        match input {
            "pending" => Ok(JobStatus::Pending),
            "running" => Ok(JobStatus::Running),
            "complete" => Ok(JobStatus::Complete),
            "failed" => Ok(JobStatus::Failed),
            _ => Err(ValidationError::new(
                "status",
                "must be pending, running, complete or failed",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Running => "running",
            JobStatus::Complete => "complete",
            JobStatus::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parameters_are_checked_and_completed() {
        let resize = Transformation::parse("resize", &json!({"width": 800})).unwrap();
        assert_eq!(resize.params(), json!({"width": 800, "fit": "contain"}));
        assert!(Transformation::parse("resize", &json!({})).is_err());
        assert!(Transformation::parse("resize", &json!({"width": 8, "fit": "cover"})).is_err());
        assert!(Transformation::parse("resize", &json!({"width": 0})).is_err());
        assert!(Transformation::parse("thumbnail", &json!({"size": 99999})).is_err());
        assert!(Transformation::parse("thumbnail", &json!({"size": 64, "extra": 1})).is_err());
        assert!(Transformation::parse("thumbnail", &Value::Null).is_err());
        assert!(Transformation::parse("convert", &json!({"format": "bmp"})).is_err());
        assert!(Transformation::parse("sharpen", &json!({})).is_err());
        let convert = ImageOperation::Convert {
            format: ImageFormat::Png,
        };
        assert_eq!(convert.output_format(ImageFormat::Jpeg), ImageFormat::Png);
        let ocr = Transformation::parse("ocr", &json!({"languages": ["en", "en"]})).unwrap();
        assert_eq!(
            ocr.params(),
            json!({"languages": ["en"], "search_language": "simple"})
        );
        assert!(matches!(&ocr, Transformation::Text(text) if text.latin_only() && text.source() == "ocr"));
        assert!(Transformation::parse("ocr", &json!({"languages": ["xx"]})).is_err());
        assert!(Transformation::parse("pdf_text", &json!({"search_language": "klingon"})).is_err());
        let pdf = Transformation::parse("pdf_text", &json!({"search_language": "english"})).unwrap();
        assert_eq!(
            pdf,
            Transformation::Text(TextExtraction::PdfText {
                search_language: "english"
            })
        );
        assert!(matches!(&pdf, Transformation::Text(text) if text.source() == "pdf_text"));
    }

    #[test]
    fn result_names_say_what_was_done() {
        let thumbnail = Transformation::Image(ImageOperation::Thumbnail { size: 256 });
        assert_eq!(
            thumbnail.result_name("photo.jpg", "webp"),
            "photo (thumbnail 256).webp"
        );
        let resize = Transformation::Image(ImageOperation::Resize {
            width: Some(800),
            height: None,
            fit: Fit::Contain,
        });
        assert_eq!(resize.result_name("a.b.png", "png"), "a.b (800xauto).png");
        let convert = Transformation::Image(ImageOperation::Convert {
            format: ImageFormat::Png,
        });
        assert_eq!(convert.result_name(".hidden", "png"), ".hidden.png");
        let ocr = Transformation::parse("ocr", &json!({})).unwrap();
        assert_eq!(ocr.result_name("scan.png", "txt"), "scan (OCR).txt");
        let long = "é".repeat(200);
        let name = thumbnail.result_name(&long, "webp");
        assert!(name.len() <= 255 && name.ends_with(" (thumbnail 256).webp"));
    }
}
