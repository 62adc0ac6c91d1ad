//! Documents with known text, made by the test itself with Debian's
//! DejaVu Sans (`fonts-dejavu-core`): pages rendered to pixels (straight,
//! or turned and noisy like a scan), PDFs with a text layer, and the
//! character error rate of what OCR read back.

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use image::{Rgb, RgbImage};
use lopdf::content::{Content, Operation};
use lopdf::{Document, FontData, Object, Stream, dictionary};

pub const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

fn font_bytes() -> Vec<u8> {
    std::fs::read(FONT).unwrap_or_else(|e| panic!("{FONT}: {e} (install fonts-dejavu-core)"))
}

/// Thirty lines of ordinary prose, as a page of a report would have.
pub fn report_lines() -> Vec<String> {
    let sentences = [
        "The quarterly report shows revenue growth of 12 percent",
        "across all regions, led by strong demand in the north.",
        "Operating costs fell slightly as the new warehouse opened",
        "in March and shipping times improved by two days.",
        "Customer satisfaction reached 91 points in the survey,",
        "the highest score since the program started in 2019.",
    ];
    (0..30)
        .map(|i| sentences[i % sentences.len()].to_owned())
        .collect()
}

/// `lines` in black on white, `size` pixels high, on a `width`×`height`
/// page with `margin` pixels around.
pub fn render(lines: &[String], width: u32, height: u32, size: f32, margin: f32) -> RgbImage {
    let data = font_bytes();
    let font = FontRef::try_from_slice(&data).unwrap();
    let scale = PxScale::from(size);
    let scaled = font.as_scaled(scale);
    let mut coverage = vec![0f32; (width * height) as usize];
    let pitch = (scaled.height() + scaled.line_gap()) * 1.3;
    for (row, line) in lines.iter().enumerate() {
        let baseline = margin + scaled.ascent() + row as f32 * pitch;
        let mut x = margin;
        let mut previous = None;
        for c in line.chars() {
            let id = font.glyph_id(c);
            if let Some(previous) = previous {
                x += scaled.kern(previous, id);
            }
            let glyph = id.with_scale_and_position(scale, point(x, baseline));
            if let Some(outline) = font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                outline.draw(|gx, gy, c| {
                    let (px, py) = (bounds.min.x as i64 + gx as i64, bounds.min.y as i64 + gy as i64);
                    if (0..width as i64).contains(&px) && (0..height as i64).contains(&py) {
                        let at = (py as u32 * width + px as u32) as usize;
                        coverage[at] = (coverage[at] + c).min(1.0);
                    }
                });
            }
            x += scaled.h_advance(id);
            previous = Some(id);
        }
    }
    RgbImage::from_fn(width, height, |x, y| {
        let ink = (255.0 * (1.0 - coverage[(y * width + x) as usize])).round() as u8;
        Rgb([ink, ink, ink])
    })
}

/// An A4 page at 150 dpi (1240×1754) holding `lines` in 11 pt type.
pub fn a4_page(lines: &[String]) -> RgbImage {
    render(lines, 1240, 1754, 30.0, 90.0)
}

/// `page` turned by `degrees` about its centre (white behind), with
/// pseudo-random noise of up to ±`noise` levels on every pixel.
pub fn scanned(page: &RgbImage, degrees: f32, noise: u8, seed: u64) -> RgbImage {
    let (sin, cos) = degrees.to_radians().sin_cos();
    let (cx, cy) = (page.width() as f32 / 2.0, page.height() as f32 / 2.0);
    let mut state = seed | 1;
    let mut random = move || {
        // xorshift64: reproducible noise without a dependency.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    RgbImage::from_fn(page.width(), page.height(), |x, y| {
        let (dx, dy) = (x as f32 - cx, y as f32 - cy);
        let (sx, sy) = (cos * dx + sin * dy + cx, -sin * dx + cos * dy + cy);
        let base = if sx >= 0.0 && sy >= 0.0 && (sx as u32) < page.width() && (sy as u32) < page.height() {
            page.get_pixel(sx as u32, sy as u32).0[0] as i32
        } else {
            255
        };
        let jitter = (random() % (2 * noise as u64 + 1)) as i32 - noise as i32;
        let value = (base + jitter).clamp(0, 255) as u8;
        Rgb([value, value, value])
    })
}

/// Edit distance between `expected` and `actual` over characters, divided
/// by the length of `expected`; runs of whitespace count as one space.
pub fn character_error_rate(expected: &str, actual: &str) -> f64 {
    let normal = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let (a, b): (Vec<char>, Vec<char>) = (
        normal(expected).chars().collect(),
        normal(actual).chars().collect(),
    );
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()] as f64 / a.len().max(1) as f64
}

/// A PDF whose pages hold `pages`' lines as text in DejaVu Sans (embedded,
/// WinAnsi-encoded, so the text is ASCII), one line per text object.
pub fn pdf(pages: &[Vec<String>]) -> Vec<u8> {
    let mut doc = Document::with_version("1.7");
    let font = doc
        .add_font(FontData::new(&font_bytes(), "DejaVuSans".into()))
        .unwrap();
    let pages_id = doc.new_object_id();
    let resources = doc.add_object(dictionary! { "Font" => dictionary! { "F1" => font } });
    let mut kids = Vec::new();
    for lines in pages {
        let mut operations = Vec::new();
        for (row, line) in lines.iter().enumerate() {
            operations.extend([
                Operation::new("BT", vec![]),
                Operation::new("Tf", vec!["F1".into(), 12.into()]),
                Operation::new("Td", vec![72.into(), (770 - 18 * row as i64).into()]),
                Operation::new("Tj", vec![Object::string_literal(line.as_str())]),
                Operation::new("ET", vec![]),
            ]);
        }
        let content = Content { operations }.encode().unwrap();
        let content = doc.add_object(Stream::new(dictionary! {}, content));
        kids.push(Object::Reference(doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content,
            "Resources" => resources,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        })));
    }
    let count = kids.len() as i64;
    doc.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! { "Type" => "Pages", "Kids" => kids, "Count" => count }),
    );
    let catalog = doc.add_object(dictionary! { "Type" => "Catalog", "Pages" => pages_id });
    doc.trailer.set("Root", catalog);
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}

/// What `pdf_text` gives for a PDF made by [`pdf`] from `pages`: their
/// lines, pages separated by form feeds, and a final newline.
pub fn text_of_pages(pages: &[Vec<String>]) -> String {
    let pages: Vec<String> = pages.iter().map(|lines| lines.join("\n")).collect();
    pages.join("\u{c}") + "\n"
}

/// `pdf` encrypted (RC4, 128-bit) so that it opens only with `password`.
pub fn encrypted_pdf(pdf: &[u8], password: &str) -> Vec<u8> {
    let mut doc = Document::load_mem(pdf).unwrap();
    doc.trailer
        .set("ID", vec![Object::string_literal("spindrive-test-id"); 2]);
    let version = lopdf::encryption::EncryptionVersion::V2 {
        document: &doc,
        owner_password: "owner",
        user_password: password,
        key_length: 128,
        permissions: lopdf::encryption::Permissions::all(),
    };
    let state = lopdf::encryption::EncryptionState::try_from(version).unwrap();
    doc.encrypt(&state).unwrap();
    let mut bytes = Vec::new();
    doc.save_to(&mut bytes).unwrap();
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_rates_count_edits_per_expected_character() {
        assert_eq!(character_error_rate("hello world", "hello  world\n"), 0.0);
        assert!((character_error_rate("abcd", "abed") - 0.25).abs() < 1e-9);
        assert!((character_error_rate("abcd", "") - 1.0).abs() < 1e-9);
    }
}
