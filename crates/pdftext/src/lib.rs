//! The text layer of a PDF, in pure Rust (`lopdf`) so it runs inside the
//! worker component: UTF-8, one page after another separated by form
//! feeds. A hostile file is bounded: pages, what each stream decompresses
//! to, the text produced and the time taken all have limits, and every
//! failure is an error the user can read, never a crash.

use lopdf::{Document, LoadOptions};
use std::time::{Duration, Instant};

/// What one extraction may use.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_pages: usize,
    /// What any one stream may decompress to: the document's own object
    /// streams as it loads, a page's content, a font's character maps.
    pub max_stream_bytes: usize,
    pub max_text_bytes: usize,
    /// Checked between pages.
    pub max_duration: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pages: 2000,
            max_stream_bytes: 16 << 20,
            max_text_bytes: 64 << 20,
            max_duration: Duration::from_secs(60),
        }
    }
}

/// Why there is no text; the message is shown to the user.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PdfError {
    #[error("the file is not a PDF")]
    NotPdf,
    #[error("the PDF is password-protected")]
    Encrypted,
    #[error("the PDF cannot be read: {0}")]
    Broken(String),
    #[error("the PDF has {pages} pages; at most {limit} are read")]
    TooManyPages { pages: usize, limit: usize },
    #[error("the PDF's text is longer than {0} bytes")]
    TooMuchText(usize),
    #[error("reading the PDF took longer than {0:?}")]
    TooSlow(Duration),
    #[error(
        "the PDF has no text layer (are its pages scans?), and PDF pages cannot be rasterised for OCR here: \
         export the pages as images and run ocr on them"
    )]
    NoTextLayer,
    /// OCR was asked of a PDF: no pure-Rust rasteriser fits in the worker.
    #[error(
        "OCR reads images, and PDF pages cannot be rasterised here: use pdf_text for a PDF's text layer, \
         or export its pages as images and run ocr on them"
    )]
    NoRasteriser,
}

/// The text of every page, in order, separated by form feeds (U+000C),
/// with a final newline.
pub fn extract(pdf: &[u8], limits: Limits) -> Result<String, PdfError> {
    let started = Instant::now();
    if !pdf.starts_with(b"%PDF-") {
        return Err(PdfError::NotPdf);
    }
    let options = LoadOptions {
        max_decompressed_size: Some(limits.max_stream_bytes),
        ..LoadOptions::default()
    };
    let document = Document::load_mem_with_options(pdf, options).map_err(|error| match error {
        lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword => PdfError::Encrypted,
        other => PdfError::Broken(other.to_string()),
    })?;
    // An empty user password opens the file on loading; any other leaves
    // it encrypted.
    if document.is_encrypted() {
        return Err(PdfError::Encrypted);
    }
    let pages = document.get_pages();
    if pages.len() > limits.max_pages {
        return Err(PdfError::TooManyPages {
            pages: pages.len(),
            limit: limits.max_pages,
        });
    }
    let mut text = String::new();
    for (index, &number) in pages.keys().enumerate() {
        if started.elapsed() > limits.max_duration {
            return Err(PdfError::TooSlow(limits.max_duration));
        }
        if index > 0 {
            text.push('\u{c}');
        }
        let page_start = text.len();
        // Chunk by chunk, so a font map that multiplies every byte into
        // many characters is stopped at the limit, not after the page.
        for chunk in document.extract_text_chunks_with_limit(&[number], limits.max_stream_bytes) {
            let chunk = chunk.map_err(|error| PdfError::Broken(format!("page {number}: {error}")))?;
            text.push_str(&chunk);
            if text.len() > limits.max_text_bytes {
                return Err(PdfError::TooMuchText(limits.max_text_bytes));
            }
        }
        let kept = page_start + text[page_start..].trim_end_matches('\n').len();
        text.truncate(kept);
    }
    if text.trim().is_empty() {
        return Err(PdfError::NoTextLayer);
    }
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use spindrive_testkit::documents;

    fn pages() -> Vec<Vec<String>> {
        (1..=3)
            .map(|page| {
                (1..=4)
                    .map(|line| format!("Page {page}, line {line}: the quick brown fox (costs $12.50)."))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn every_page_comes_back_exactly_in_order() {
        let pages = pages();
        let expected = documents::text_of_pages(&pages);
        assert_eq!(
            extract(&documents::pdf(&pages), Limits::default()).unwrap(),
            expected
        );
    }

    #[test]
    fn bad_input_gets_a_reason() {
        let pdf = documents::pdf(&pages());
        assert_eq!(extract(b"hello", Limits::default()), Err(PdfError::NotPdf));
        assert!(matches!(
            extract(&pdf[..pdf.len() / 3], Limits::default()),
            Err(PdfError::Broken(_))
        ));
        let locked = documents::encrypted_pdf(&pdf, "secret");
        assert_eq!(extract(&locked, Limits::default()), Err(PdfError::Encrypted));
        let few = Limits {
            max_pages: 2,
            ..Limits::default()
        };
        assert_eq!(
            extract(&pdf, few),
            Err(PdfError::TooManyPages { pages: 3, limit: 2 })
        );
        let short = Limits {
            max_text_bytes: 100,
            ..Limits::default()
        };
        assert_eq!(extract(&pdf, short), Err(PdfError::TooMuchText(100)));
        let blank = documents::pdf(&[vec![], vec![]]);
        assert_eq!(extract(&blank, Limits::default()), Err(PdfError::NoTextLayer));
        let hurried = Limits {
            max_duration: Duration::ZERO,
            ..Limits::default()
        };
        assert_eq!(extract(&pdf, hurried), Err(PdfError::TooSlow(Duration::ZERO)));
        let small_streams = Limits {
            max_stream_bytes: 64,
            ..Limits::default()
        };
        assert!(matches!(extract(&pdf, small_streams), Err(PdfError::Broken(_))));
    }

    #[test]
    fn a_pdf_locked_only_against_editing_opens() {
        let pdf = documents::pdf(&pages());
        let open = documents::encrypted_pdf(&pdf, "");
        assert!(
            extract(&open, Limits::default())
                .unwrap()
                .starts_with("Page 1, line 1:")
        );
    }
}
