//! Transformations a user may ask for, parsed once: the type, its
//! parameters (unknown fields refused, defaults filled in), the name of the
//! file it produces, and the job states.

use crate::ValidationError;
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

/// One transformation, valid by construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transformation {
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

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ThumbnailParams {
    size: u32,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ResizeParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    height: Option<u32>,
    #[serde(default)]
    fit: Fit,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ConvertParams {
    format: ImageFormat,
}

/// The type names, as the API and the `transformation_jobs` table spell them.
pub const TYPES: &[&str] = &["thumbnail", "resize", "convert"];

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

impl Transformation {
    /// Parses a request's `type` and `params`.
    pub fn parse(kind: &str, raw: &Value) -> Result<Self, ValidationError> {
        match kind {
            "thumbnail" => {
                let p: ThumbnailParams = params(raw)?;
                Ok(Transformation::Thumbnail {
                    size: edge("params.size", p.size)?,
                })
            }
            "resize" => {
                let p: ResizeParams = params(raw)?;
                let width = p.width.map(|w| edge("params.width", w)).transpose()?;
                let height = p.height.map(|h| edge("params.height", h)).transpose()?;
                match (width, height, p.fit) {
                    (None, None, _) => Err(ValidationError::new("params", "give a width, a height or both")),
                    (Some(_), Some(_), _) | (_, _, Fit::Contain) => Ok(Transformation::Resize {
                        width,
                        height,
                        fit: p.fit,
                    }),
                    _ => Err(ValidationError::new(
                        "params.fit",
                        "cover and exact need both a width and a height",
                    )),
                }
            }
            "convert" => {
                let p: ConvertParams = params(raw)?;
                Ok(Transformation::Convert { format: p.format })
            }
            "pdf_text" | "ocr" => Err(ValidationError::new(
                "type",
                format!("{kind} is not available yet"),
            )),
            _ => Err(ValidationError::new(
                "type",
                format!("must be one of: {}", TYPES.join(", ")),
            )),
        }
    }

    /// The type name.
    pub fn kind(&self) -> &'static str {
        match self {
            Transformation::Thumbnail { .. } => "thumbnail",
            Transformation::Resize { .. } => "resize",
            Transformation::Convert { .. } => "convert",
        }
    }

    /// The parameters as stored, defaults filled in.
    pub fn params(&self) -> Value {
        let value = match *self {
            Transformation::Thumbnail { size } => serde_json::to_value(ThumbnailParams { size }),
            Transformation::Resize { width, height, fit } => {
                serde_json::to_value(ResizeParams { width, height, fit })
            }
            Transformation::Convert { format } => serde_json::to_value(ConvertParams { format }),
        };
        value.expect("parameters serialize")
    }

    /// The output format for an input in `input` format.
    pub fn output_format(&self, input: ImageFormat) -> ImageFormat {
        match *self {
            Transformation::Thumbnail { .. } => ImageFormat::Webp,
            Transformation::Resize { .. } => input,
            Transformation::Convert { format } => format,
        }
    }

    /// The result's file name: `photo (thumbnail 256).webp` for `photo.jpg`.
    pub fn result_name(&self, source: &str, output: ImageFormat) -> String {
        let stem = match source.rsplit_once('.') {
            Some((stem, _)) if !stem.is_empty() => stem,
            _ => source,
        };
        let label = match *self {
            Transformation::Thumbnail { size } => Some(format!("thumbnail {size}")),
            Transformation::Resize { width, height, fit } => {
                let dimension = |d: Option<u32>| d.map_or("auto".to_owned(), |d| d.to_string());
                let fit = match fit {
                    Fit::Contain => "",
                    Fit::Cover => " cover",
                    Fit::Exact => " exact",
                };
                Some(format!("{}x{}{fit}", dimension(width), dimension(height)))
            }
            Transformation::Convert { .. } => None,
        };
        let extension = output.extension();
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
        let convert = Transformation::parse("convert", &json!({"format": "png"})).unwrap();
        assert_eq!(convert.output_format(ImageFormat::Jpeg), ImageFormat::Png);
    }

    #[test]
    fn result_names_say_what_was_done() {
        let thumbnail = Transformation::Thumbnail { size: 256 };
        assert_eq!(
            thumbnail.result_name("photo.jpg", ImageFormat::Webp),
            "photo (thumbnail 256).webp"
        );
        let resize = Transformation::Resize {
            width: Some(800),
            height: None,
            fit: Fit::Contain,
        };
        assert_eq!(
            resize.result_name("a.b.png", ImageFormat::Png),
            "a.b (800xauto).png"
        );
        let convert = Transformation::Convert {
            format: ImageFormat::Png,
        };
        assert_eq!(convert.result_name(".hidden", ImageFormat::Png), ".hidden.png");
        let long = "é".repeat(200);
        let name = thumbnail.result_name(&long, ImageFormat::Webp);
        assert!(name.len() <= 255 && name.ends_with(" (thumbnail 256).webp"));
    }
}
