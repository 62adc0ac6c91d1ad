//! Reading order: boxes whose middles share a band of the page are one
//! row, rows read top to bottom, boxes in a row left to right.

use crate::Line;

fn middle_y(line: &Line) -> f32 {
    line.corners.iter().map(|p| p.y).sum::<f32>() / 4.0
}

fn left_x(line: &Line) -> f32 {
    (line.corners[0].x + line.corners[3].x) / 2.0
}

fn height(line: &Line) -> f32 {
    let [tl, tr, br, bl] = line.corners;
    (tl.distance(bl) + tr.distance(br)) / 2.0
}

/// The lines grouped into rows, in reading order.
pub fn rows(lines: &[Line]) -> Vec<Vec<&Line>> {
    let mut by_height: Vec<&Line> = lines.iter().collect();
    by_height.sort_by(|a, b| middle_y(a).total_cmp(&middle_y(b)));
    let mut rows: Vec<Vec<&Line>> = Vec::new();
    for line in by_height {
        let joins = rows.last().is_some_and(|row| {
            let row_middle = row.iter().map(|l| middle_y(l)).sum::<f32>() / row.len() as f32;
            let row_height = row.iter().map(|l| height(l)).fold(f32::MAX, f32::min);
            (middle_y(line) - row_middle).abs() < 0.5 * row_height.min(height(line))
        });
        match rows.last_mut() {
            Some(row) if joins => row.push(line),
            _ => rows.push(vec![line]),
        }
    }
    for row in &mut rows {
        row.sort_by(|a, b| left_x(a).total_cmp(&left_x(b)));
    }
    rows
}

/// The lines in reading order.
pub fn reading_order(lines: Vec<Line>) -> Vec<Line> {
    rows(&lines).into_iter().flatten().cloned().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Point;

    fn line(text: &str, x: f32, y: f32, w: f32, h: f32) -> Line {
        Line {
            text: text.to_owned(),
            confidence: 1.0,
            corners: [(x, y), (x + w, y), (x + w, y + h), (x, y + h)].map(|(x, y)| Point::new(x, y)),
        }
    }

    #[test]
    fn boxes_are_read_in_rows_left_to_right() {
        let lines = vec![
            line("world", 120.0, 12.0, 80.0, 20.0),
            line("second", 10.0, 40.0, 90.0, 20.0),
            line("hello", 10.0, 10.0, 90.0, 22.0),
            line("row", 110.0, 43.0, 50.0, 18.0),
        ];
        let ordered: Vec<String> = reading_order(lines).into_iter().map(|l| l.text).collect();
        assert_eq!(ordered, ["hello", "world", "second", "row"]);
    }
}
