//! Text detection: the page as the DBNet model wants it, and the model's
//! probability map turned into boxes (binarise, connected regions, their
//! smallest rotated rectangles, scored, then grown back by the margin the
//! model was trained to shrink text by).

use crate::geometry::{Point, RotatedRect, convex_hull, min_area_rect};
use image::RgbImage;
use rten_tensor::prelude::*;
use rten_tensor::{NdTensor, NdTensorView};

/// A pixel is text above this probability.
const PIXEL_THRESHOLD: f32 = 0.3;
/// A region is kept when its mean probability is above this.
const BOX_THRESHOLD: f32 = 0.6;
/// How far a region is grown: its area × this ÷ its perimeter.
const UNCLIP_RATIO: f32 = 1.5;
/// Regions thinner than this (in model pixels) are noise.
const MIN_SIDE: f32 = 3.0;
/// The model sees at most this many pixels on the long side; larger pages
/// are scaled down (a 300 dpi A4 page keeps its text legible).
const MAX_SIDE: u32 = 2400;
/// ... and at least this many on the short side.
const MIN_SHORT_SIDE: u32 = 64;
/// The model's sides must be multiples of this.
const STRIDE: u32 = 32;

/// The ImageNet statistics the detector was trained with, in the BGR
/// channel order PaddleOCR feeds it.
const MEAN_BGR: [f32; 3] = [0.485, 0.456, 0.406];
const STD_BGR: [f32; 3] = [0.229, 0.224, 0.225];

/// A detected line of text in page coordinates, as read: top-left,
/// top-right, bottom-right, bottom-left.
#[derive(Clone, Debug)]
pub struct TextBox {
    pub corners: [Point; 4],
    pub score: f32,
}

/// Whether a pixel's probability makes it text (never when it is NaN).
fn is_text(probability: f32) -> bool {
    probability > PIXEL_THRESHOLD
}

/// The model's input size for a page of `width`×`height`.
pub fn model_size(width: u32, height: u32) -> (u32, u32) {
    let long = width.max(height) as f32;
    let short = width.min(height) as f32;
    // Down to the long side's bound; up to the short side's, but never past
    // the long side's (a thin strip stays small, whatever its ratio).
    let most = MAX_SIDE as f32 / long;
    let mut scale = most.min(1.0);
    if short * scale < MIN_SHORT_SIDE as f32 {
        scale = (MIN_SHORT_SIDE as f32 / short).min(most);
    }
    let round = |side: u32| -> u32 {
        let scaled = (side as f32 * scale).round() as u32;
        ((scaled + STRIDE / 2) / STRIDE * STRIDE).max(STRIDE)
    };
    (round(width), round(height))
}

/// The page resized to the model's size and normalised, `[1, 3, H, W]`.
pub fn input(page: &RgbImage) -> NdTensor<f32, 4> {
    let (width, height) = model_size(page.width(), page.height());
    let resized = if (width, height) == page.dimensions() {
        page.clone()
    } else {
        image::imageops::resize(page, width, height, image::imageops::FilterType::Triangle)
    };
    let (w, h) = (width as usize, height as usize);
    let mut data = vec![0f32; 3 * h * w];
    for (x, y, pixel) in resized.enumerate_pixels() {
        let [r, g, b] = pixel.0;
        for (channel, value) in [b, g, r].into_iter().enumerate() {
            data[channel * h * w + y as usize * w + x as usize] =
                (value as f32 / 255.0 - MEAN_BGR[channel]) / STD_BGR[channel];
        }
    }
    NdTensor::from_data([1, 3, h, w], data)
}

/// The text boxes in `probabilities` (`[H, W]`, the model's size), in the
/// coordinates of a page of `page_width`×`page_height`.
pub fn boxes(probabilities: NdTensorView<f32, 2>, page_width: u32, page_height: u32) -> Vec<TextBox> {
    let [h, w] = probabilities.shape();
    let (scale_x, scale_y) = (page_width as f32 / w as f32, page_height as f32 / h as f32);
    let probability = |x: usize, y: usize| probabilities[[y, x]];
    let mut seen = vec![false; w * h];
    let mut found = Vec::new();
    let mut stack = Vec::new();
    let mut region = Vec::new();
    for start in 0..w * h {
        if seen[start] || !is_text(probability(start % w, start / w)) {
            continue;
        }
        // One 8-connected region of text pixels, flood-filled.
        seen[start] = true;
        stack.push(start);
        region.clear();
        while let Some(at) = stack.pop() {
            region.push(at);
            let (x, y) = (at % w, at / w);
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let next = ny * w + nx;
                    if !seen[next] && is_text(probability(nx, ny)) {
                        seen[next] = true;
                        stack.push(next);
                    }
                }
            }
        }
        let score = region.iter().map(|&at| probability(at % w, at / w)).sum::<f32>() / region.len() as f32;
        let confident = score >= BOX_THRESHOLD;
        if !confident {
            continue;
        }
        let Some(rect) = region_rect(&region, w) else {
            continue;
        };
        if rect.width().min(rect.height()) < MIN_SIDE {
            continue;
        }
        let area = rect.width() * rect.height();
        let perimeter = 2.0 * (rect.width() + rect.height());
        let grown = rect.expanded(area * UNCLIP_RATIO / perimeter);
        if grown.width().min(grown.height()) < MIN_SIDE + 2.0 {
            continue;
        }
        let corners = grown.corners().map(|p| {
            Point::new(
                (p.x * scale_x).clamp(0.0, page_width as f32),
                (p.y * scale_y).clamp(0.0, page_height as f32),
            )
        });
        found.push(TextBox { corners, score });
    }
    found
}

/// The smallest rotated rectangle around a region of pixels (indices in
/// a map `w` wide). Only the outermost pixel of each row can be on the
/// hull, and each pixel counts as its whole square.
fn region_rect(region: &[usize], w: usize) -> Option<RotatedRect> {
    let top = region.iter().map(|&at| at / w).min()?;
    let bottom = region.iter().map(|&at| at / w).max()?;
    let mut extent = vec![(usize::MAX, 0usize); bottom - top + 1];
    for &at in region {
        let (x, row) = (at % w, at / w - top);
        extent[row] = (extent[row].0.min(x), extent[row].1.max(x));
    }
    let mut points = Vec::with_capacity(extent.len() * 4);
    for (row, &(left, right)) in extent.iter().enumerate() {
        let y = (top + row) as f32;
        for (x, y) in [(left, y), (right + 1, y), (left, y + 1.0), (right + 1, y + 1.0)] {
            points.push(Point::new(x as f32, y));
        }
    }
    min_area_rect(&convex_hull(points))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_sizes_are_multiples_of_the_stride_within_bounds() {
        assert_eq!(model_size(640, 64), (640, 64));
        assert_eq!(model_size(1240, 1754), (1248, 1760));
        let (w, h) = model_size(5000, 7000);
        assert!(h <= MAX_SIDE + STRIDE && w % STRIDE == 0 && h % STRIDE == 0);
        assert_eq!(model_size(300, 20).1, 64);
        assert_eq!(model_size(1, 100_000), (STRIDE, MAX_SIDE));
        assert_eq!(model_size(20_000, 2), (MAX_SIDE, STRIDE));
    }

    #[test]
    fn a_bright_band_becomes_one_grown_box() {
        let (w, h) = (100, 40);
        let mut map = NdTensor::<f32, 2>::zeros([h, w]);
        for y in 15..25 {
            for x in 10..90 {
                map[[y, x]] = 0.9;
            }
        }
        // A speck too faint to keep.
        map[[2, 2]] = 0.4;
        let found = boxes(map.view(), 200, 80);
        assert_eq!(found.len(), 1);
        let [tl, tr, br, bl] = found[0].corners;
        // 80×10 grown by 80·10·1.5 / 180 ≈ 6.7 on each side, then doubled.
        assert!((tl.x - 2.0 * (10.0 - 6.67)).abs() < 0.1, "{tl:?}");
        assert!((tr.x - 2.0 * (90.0 + 6.67)).abs() < 0.1, "{tr:?}");
        assert!((bl.y - 2.0 * (25.0 + 6.67)).abs() < 0.1, "{bl:?}");
        assert!(tl.y < bl.y && tr.y < br.y);
    }
}
