//! Recognition: each box cut out of the page and straightened, scaled to
//! the recogniser's height, and its per-column character probabilities
//! read by CTC (best class per step, repeats merged, blanks dropped).

use crate::geometry::{Homography, Point};
use image::{Rgb, RgbImage};
use rten_tensor::{NdTensor, NdTensorView};

/// The recogniser's input height.
pub const LINE_HEIGHT: u32 = 48;
/// The widest line it is given (a ratio of 66:1 holds a full printed line).
const MAX_LINE_WIDTH: u32 = 3200;
/// A box this much taller than wide is vertical text, turned to read.
const VERTICAL_RATIO: f32 = 1.5;

/// The text in the quadrilateral `corners` (top-left, top-right,
/// bottom-right, bottom-left) as an upright image, bilinear-sampled.
pub fn straighten(page: &RgbImage, corners: [Point; 4]) -> Option<RgbImage> {
    let [tl, tr, br, bl] = corners;
    let width = tl.distance(tr).max(bl.distance(br)).round().max(1.0) as u32;
    let height = tl.distance(bl).max(tr.distance(br)).round().max(1.0) as u32;
    let (w, h) = (width as f32, height as f32);
    let target = [(0.0, 0.0), (w, 0.0), (w, h), (0.0, h)].map(|(x, y)| Point::new(x, y));
    let to_page = Homography::between(target, corners)?;
    let crop = RgbImage::from_fn(width, height, |x, y| {
        sample(page, to_page.apply(Point::new(x as f32 + 0.5, y as f32 + 0.5)))
    });
    Some(if h >= VERTICAL_RATIO * w {
        image::imageops::rotate270(&crop)
    } else {
        crop
    })
}

/// The colour at a point between pixel centres; edges repeat outwards.
fn sample(page: &RgbImage, p: Point) -> Rgb<u8> {
    let (max_x, max_y) = (page.width() as f32 - 1.0, page.height() as f32 - 1.0);
    let x = (p.x - 0.5).clamp(0.0, max_x);
    let y = (p.y - 0.5).clamp(0.0, max_y);
    let (x0, y0) = (x.floor(), y.floor());
    let (fx, fy) = (x - x0, y - y0);
    let (x0, y0) = (x0 as u32, y0 as u32);
    let (x1, y1) = ((x0 + 1).min(max_x as u32), (y0 + 1).min(max_y as u32));
    let [a, b, c, d] = [(x0, y0), (x1, y0), (x0, y1), (x1, y1)].map(|(x, y)| page.get_pixel(x, y).0);
    Rgb(std::array::from_fn(|i| {
        let top = a[i] as f32 * (1.0 - fx) + b[i] as f32 * fx;
        let bottom = c[i] as f32 * (1.0 - fx) + d[i] as f32 * fx;
        (top * (1.0 - fy) + bottom * fy).round() as u8
    }))
}

/// A straightened line as the recogniser wants it: `[1, 3, 48, W]`, the
/// aspect kept, values in [-1, 1] (BGR, as PaddleOCR feeds it).
pub fn input(line: &RgbImage) -> NdTensor<f32, 4> {
    let ratio = line.width() as f32 / line.height().max(1) as f32;
    let width = ((LINE_HEIGHT as f32 * ratio).ceil() as u32).clamp(LINE_HEIGHT / 3, MAX_LINE_WIDTH);
    let resized = image::imageops::resize(line, width, LINE_HEIGHT, image::imageops::FilterType::Triangle);
    let (w, h) = (width as usize, LINE_HEIGHT as usize);
    let mut data = vec![0f32; 3 * h * w];
    for (x, y, pixel) in resized.enumerate_pixels() {
        let [r, g, b] = pixel.0;
        for (channel, value) in [b, g, r].into_iter().enumerate() {
            data[channel * h * w + y as usize * w + x as usize] = value as f32 / 127.5 - 1.0;
        }
    }
    NdTensor::from_data([1, 3, h, w], data)
}

/// The text of one line from its class probabilities (`[steps, classes]`,
/// class 0 the CTC blank, class `i` the alphabet's entry `i`), and the
/// mean probability of the characters read. Only classes `allowed` (all,
/// if `None`) are considered.
pub fn decode(
    probabilities: NdTensorView<f32, 2>,
    alphabet: &[String],
    allowed: Option<&[bool]>,
) -> (String, f32) {
    let mut text = String::new();
    let (mut total, mut count) = (0f32, 0usize);
    let mut previous = 0usize;
    for step in probabilities.axis_iter(0) {
        let (class, probability) = step
            .iter()
            .copied()
            .enumerate()
            .filter(|&(i, _)| {
                i == 0 || allowed.is_none_or(|allowed| allowed.get(i).copied().unwrap_or(false))
            })
            .fold(
                (0, f32::MIN),
                |best, (i, p)| if p > best.1 { (i, p) } else { best },
            );
        if class != 0
            && class != previous
            && let Some(symbol) = alphabet.get(class)
        {
            text.push_str(symbol);
            total += probability;
            count += 1;
        }
        previous = class;
    }
    let confidence = if count == 0 { 0.0 } else { total / count as f32 };
    (text, confidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rten_tensor::prelude::*;

    #[test]
    fn ctc_merges_repeats_and_drops_blanks() {
        let alphabet: Vec<String> = ["blank", "a", "b", " "].map(str::to_owned).to_vec();
        // a a _ a b _ " " b
        let steps = [1, 1, 0, 1, 2, 0, 3, 2];
        let mut map = NdTensor::<f32, 2>::zeros([steps.len(), alphabet.len()]);
        for (t, &class) in steps.iter().enumerate() {
            map[[t, class]] = 0.8;
        }
        let (text, confidence) = decode(map.view(), &alphabet, None);
        assert_eq!(text, "aab b");
        assert!((confidence - 0.8).abs() < 1e-6);
        // Without "b", the runner-up wins: "a" (merged with the "a"
        // before it) and then a blank.
        map[[4, 1]] = 0.1;
        let (text, _) = decode(map.view(), &alphabet, Some(&[true, true, false, true]));
        assert_eq!(text, "aa ");
    }

    #[test]
    fn a_tilted_box_comes_out_upright() {
        // A black bar from (20, 10) to (60, 20) in a white page, read back
        // through a box that holds it exactly.
        let page = RgbImage::from_fn(80, 40, |x, y| {
            if (20..60).contains(&x) && (10..20).contains(&y) {
                Rgb([0, 0, 0])
            } else {
                Rgb([255, 255, 255])
            }
        });
        let corners = [(20.0, 10.0), (60.0, 10.0), (60.0, 20.0), (20.0, 20.0)].map(|(x, y)| Point::new(x, y));
        let crop = straighten(&page, corners).unwrap();
        assert_eq!(crop.dimensions(), (40, 10));
        assert!(crop.pixels().all(|p| p.0[0] < 8));
        let tall = straighten(
            &page,
            [(0.0, 0.0), (10.0, 0.0), (10.0, 30.0), (0.0, 30.0)].map(|(x, y)| Point::new(x, y)),
        );
        assert_eq!(tall.unwrap().dimensions(), (30, 10));
        assert_eq!(input(&crop).shape(), [1, 3, 48, 192]);
    }
}
