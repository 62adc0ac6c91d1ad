//! Plane geometry for text boxes: the convex hull of a region, its
//! smallest enclosing rotated rectangle, and the perspective transform
//! that maps a straight rectangle onto a box in the page.

use serde::Serialize;

/// A point in pixels (x to the right, y down).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Point {
    pub x: f32,
    pub y: f32,
}

impl Point {
    pub fn new(x: f32, y: f32) -> Self {
        Point { x, y }
    }

    fn minus(self, other: Point) -> Point {
        Point::new(self.x - other.x, self.y - other.y)
    }

    pub fn distance(self, other: Point) -> f32 {
        let d = self.minus(other);
        d.x.hypot(d.y)
    }
}

/// A rectangle at any angle: its centre, the unit vector along its width
/// (the one nearer the horizontal, pointing right) and its half sizes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RotatedRect {
    pub center: Point,
    pub axis: Point,
    pub half_width: f32,
    pub half_height: f32,
}

impl RotatedRect {
    pub fn width(&self) -> f32 {
        2.0 * self.half_width
    }

    pub fn height(&self) -> f32 {
        2.0 * self.half_height
    }

    /// The rectangle grown by `distance` on every side.
    pub fn expanded(&self, distance: f32) -> Self {
        RotatedRect {
            half_width: self.half_width + distance,
            half_height: self.half_height + distance,
            ..*self
        }
    }

    /// Top-left, top-right, bottom-right, bottom-left, as read.
    pub fn corners(&self) -> [Point; 4] {
        let u = self.axis;
        // Perpendicular to the width, pointing down the page.
        let v = Point::new(-u.y, u.x);
        let at = |a: f32, b: f32| {
            Point::new(
                self.center.x + u.x * a * self.half_width + v.x * b * self.half_height,
                self.center.y + u.y * a * self.half_width + v.y * b * self.half_height,
            )
        };
        [at(-1.0, -1.0), at(1.0, -1.0), at(1.0, 1.0), at(-1.0, 1.0)]
    }
}

fn cross(o: Point, a: Point, b: Point) -> f32 {
    (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x)
}

/// The convex hull, counter-clockwise (Andrew's monotone chain).
pub fn convex_hull(mut points: Vec<Point>) -> Vec<Point> {
    points.sort_by(|a, b| a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y)));
    points.dedup();
    if points.len() < 3 {
        return points;
    }
    let mut hull: Vec<Point> = Vec::with_capacity(2 * points.len());
    for pass in [&points[..], &points.iter().rev().copied().collect::<Vec<_>>()[..]] {
        let floor = hull.len();
        for &p in pass {
            while hull.len() >= floor + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
                hull.pop();
            }
            hull.push(p);
        }
        // Each pass ends where the next begins.
        hull.pop();
    }
    hull
}

/// The smallest rectangle holding the convex polygon `hull`: one of its
/// sides lies along an edge of the hull, so each edge is tried.
pub fn min_area_rect(hull: &[Point]) -> Option<RotatedRect> {
    let mut best: Option<(f32, RotatedRect)> = None;
    for (i, &a) in hull.iter().enumerate() {
        let b = hull[(i + 1) % hull.len()];
        let edge = b.minus(a);
        let length = edge.x.hypot(edge.y);
        if length == 0.0 {
            continue;
        }
        let u = Point::new(edge.x / length, edge.y / length);
        let v = Point::new(-u.y, u.x);
        let (mut u_min, mut u_max, mut v_min, mut v_max) = (f32::MAX, f32::MIN, f32::MAX, f32::MIN);
        for p in hull {
            let (pu, pv) = (p.x * u.x + p.y * u.y, p.x * v.x + p.y * v.y);
            (u_min, u_max) = (u_min.min(pu), u_max.max(pu));
            (v_min, v_max) = (v_min.min(pv), v_max.max(pv));
        }
        let area = (u_max - u_min) * (v_max - v_min);
        if best.as_ref().is_some_and(|(smallest, _)| *smallest <= area) {
            continue;
        }
        let (cu, cv) = ((u_min + u_max) / 2.0, (v_min + v_max) / 2.0);
        let center = Point::new(cu * u.x + cv * v.x, cu * u.y + cv * v.y);
        let rect = upright(center, u, (u_max - u_min) / 2.0, (v_max - v_min) / 2.0);
        best = Some((area, rect));
    }
    best.map(|(_, rect)| rect)
}

/// The same rectangle described with its width along the axis nearer the
/// horizontal, pointing right.
fn upright(center: Point, u: Point, half_u: f32, half_v: f32) -> RotatedRect {
    let (axis, half_width, half_height) = if u.x.abs() >= u.y.abs() {
        (u, half_u, half_v)
    } else {
        (Point::new(u.y, -u.x), half_v, half_u)
    };
    let axis = if axis.x < 0.0 {
        Point::new(-axis.x, -axis.y)
    } else {
        axis
    };
    RotatedRect {
        center,
        axis,
        half_width,
        half_height,
    }
}

/// A projective transform of the plane, as its 3×3 matrix.
#[derive(Clone, Copy, Debug)]
pub struct Homography([f32; 9]);

impl Homography {
    /// The transform taking `from[i]` to `to[i]`, solved as the 8×8 linear
    /// system of the four correspondences; `None` if degenerate.
    pub fn between(from: [Point; 4], to: [Point; 4]) -> Option<Self> {
        let mut system = [[0f64; 9]; 8];
        for (i, (p, q)) in from.iter().zip(to.iter()).enumerate() {
            let (x, y, u, v) = (p.x as f64, p.y as f64, q.x as f64, q.y as f64);
            system[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
            system[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
        }
        let solution = solve(system)?;
        let mut m = [1f32; 9];
        for (slot, value) in m.iter_mut().zip(solution) {
            *slot = value as f32;
        }
        Some(Homography(m))
    }

    pub fn apply(&self, p: Point) -> Point {
        let m = &self.0;
        let w = m[6] * p.x + m[7] * p.y + m[8];
        Point::new(
            (m[0] * p.x + m[1] * p.y + m[2]) / w,
            (m[3] * p.x + m[4] * p.y + m[5]) / w,
        )
    }
}

/// Gaussian elimination with partial pivoting on an augmented 8×9 matrix.
fn solve(mut a: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let pivot_row = a[col];
        for (row, values) in a.iter_mut().enumerate() {
            if row != col {
                let factor = values[col] / pivot_row[col];
                for (value, above) in values.iter_mut().zip(pivot_row).skip(col) {
                    *value -= factor * above;
                }
            }
        }
    }
    let mut x = [0f64; 8];
    for (i, value) in x.iter_mut().enumerate() {
        *value = a[i][8] / a[i][i];
    }
    Some(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: Point, b: Point) -> bool {
        a.distance(b) < 1e-3
    }

    #[test]
    fn the_hull_of_a_square_with_inner_points_is_its_corners() {
        let mut points = vec![Point::new(1.0, 1.0), Point::new(2.0, 2.0)];
        points.extend(
            [(0.0, 0.0), (4.0, 0.0), (4.0, 4.0), (0.0, 4.0), (2.0, 0.0)].map(|(x, y)| Point::new(x, y)),
        );
        let hull = convex_hull(points);
        assert_eq!(hull.len(), 4);
    }

    #[test]
    fn a_tilted_rectangle_is_found_with_its_width_along_the_text() {
        // 40×10, turned by 5°.
        let (angle, cx, cy) = (5f32.to_radians(), 50.0, 30.0);
        let u = Point::new(angle.cos(), angle.sin());
        let v = Point::new(-u.y, u.x);
        let corner = |a: f32, b: f32| Point::new(cx + u.x * a + v.x * b, cy + u.y * a + v.y * b);
        let points = vec![
            corner(-20.0, -5.0),
            corner(20.0, -5.0),
            corner(20.0, 5.0),
            corner(-20.0, 5.0),
        ];
        let rect = min_area_rect(&convex_hull(points.clone())).unwrap();
        assert!((rect.width() - 40.0).abs() < 1e-3 && (rect.height() - 10.0).abs() < 1e-3);
        for (found, expected) in rect.corners().iter().zip(&points) {
            assert!(close(*found, *expected), "{found:?} vs {expected:?}");
        }
    }

    #[test]
    fn a_homography_maps_the_corners_it_was_solved_for() {
        let from = [(0.0, 0.0), (100.0, 0.0), (100.0, 20.0), (0.0, 20.0)].map(|(x, y)| Point::new(x, y));
        let to = [(10.0, 12.0), (108.0, 20.0), (104.0, 41.0), (8.0, 33.0)].map(|(x, y)| Point::new(x, y));
        let h = Homography::between(from, to).unwrap();
        for (p, q) in from.iter().zip(&to) {
            assert!(close(h.apply(*p), *q));
        }
        let flat = [Point::new(0.0, 0.0); 4];
        assert!(Homography::between(flat, to).is_none());
    }
}
