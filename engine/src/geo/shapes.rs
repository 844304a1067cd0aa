//! Planar geometry on the local frame (metres): polygon area and centroid (shoelace formula), point in
//! polygon (even–odd rule), distances from points to segments and polylines, polyline length.

use glam::Vec2;

/// Signed area of a ring (m²), positive when counter-clockwise. The ring may or may not repeat its first
/// point at the end. Computed in f64 about the first vertex to keep precision for small footprints.
pub fn signed_area(ring: &[Vec2]) -> f64 {
    if ring.len() < 3 {
        return 0.0;
    }
    let o = ring[0].as_dvec2();
    let mut twice = 0.0;
    for w in ring.windows(2) {
        let a = w[0].as_dvec2() - o;
        let b = w[1].as_dvec2() - o;
        twice += a.x * b.y - b.x * a.y;
    }
    // The closing edge (last → first) contributes nothing: its end is the origin `o`.
    0.5 * twice
}

/// Unsigned area of a ring (m²).
pub fn area(ring: &[Vec2]) -> f64 {
    signed_area(ring).abs()
}

/// Area centroid of a ring; the vertex mean for a degenerate (zero-area) ring.
pub fn centroid(ring: &[Vec2]) -> Vec2 {
    let n = ring.len();
    if n == 0 {
        return Vec2::ZERO;
    }
    let o = ring[0].as_dvec2();
    let (mut cx, mut cy, mut twice) = (0.0, 0.0, 0.0);
    for i in 0..n {
        let a = ring[i].as_dvec2() - o;
        let b = ring[(i + 1) % n].as_dvec2() - o;
        let cross = a.x * b.y - b.x * a.y;
        twice += cross;
        cx += (a.x + b.x) * cross;
        cy += (a.y + b.y) * cross;
    }
    if twice.abs() < 1e-9 {
        let sum: glam::DVec2 = ring.iter().map(|p| p.as_dvec2()).sum();
        return (sum / n as f64).as_vec2();
    }
    glam::DVec2::new(o.x + cx / (3.0 * twice), o.y + cy / (3.0 * twice)).as_vec2()
}

/// Whether `p` lies inside the ring (even–odd rule; points exactly on an edge may go either way).
pub fn contains(ring: &[Vec2], p: Vec2) -> bool {
    let n = ring.len();
    let mut inside = false;
    let mut j = n.wrapping_sub(1);
    for i in 0..n {
        let (a, b) = (ring[i], ring[j]);
        if (a.y > p.y) != (b.y > p.y) && p.x < (b.x - a.x) * (p.y - a.y) / (b.y - a.y) + a.x {
            inside = !inside;
        }
        j = i;
    }
    inside
}

/// Closest point to `p` on segment `a`–`b`, and the parameter t ∈ [0, 1] along it.
pub fn closest_on_segment(a: Vec2, b: Vec2, p: Vec2) -> (Vec2, f32) {
    let ab = b - a;
    let len2 = ab.length_squared();
    let t = if len2 > 0.0 { ((p - a).dot(ab) / len2).clamp(0.0, 1.0) } else { 0.0 };
    (a + ab * t, t)
}

/// Squared distance (m²) from `p` to a polyline.
pub fn distance2_to_polyline(line: &[Vec2], p: Vec2) -> f32 {
    match line {
        [] => f32::INFINITY,
        [only] => only.distance_squared(p),
        _ => line
            .windows(2)
            .map(|w| closest_on_segment(w[0], w[1], p).0.distance_squared(p))
            .fold(f32::INFINITY, f32::min),
    }
}

/// Length of a polyline (m), summed in f64.
pub fn polyline_length(line: &[Vec2]) -> f64 {
    line.windows(2).map(|w| w[0].as_dvec2().distance(w[1].as_dvec2())).sum()
}

/// The point at `share` (0–1) of a polyline's length, and the unit direction of travel there.
pub fn point_along(line: &[Vec2], share: f32) -> (Vec2, Vec2) {
    let total = polyline_length(line) as f32;
    let mut left = share.clamp(0.0, 1.0) * total;
    for w in line.windows(2) {
        let seg = w[0].distance(w[1]);
        if left <= seg && seg > 0.0 {
            return (w[0].lerp(w[1], left / seg), (w[1] - w[0]) / seg);
        }
        left -= seg;
    }
    let n = line.len();
    let dir = if n >= 2 { (line[n - 1] - line[n - 2]).normalize_or_zero() } else { Vec2::ZERO };
    (line.last().copied().unwrap_or(Vec2::ZERO), dir)
}

/// Axis-aligned bounds (min, max) of a set of points; `None` when empty.
pub fn bounds(points: impl IntoIterator<Item = Vec2>) -> Option<(Vec2, Vec2)> {
    let mut it = points.into_iter();
    let first = it.next()?;
    Some(it.fold((first, first), |(lo, hi), p| (lo.min(p), hi.max(p))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn square() -> Vec<Vec2> {
        vec![Vec2::new(0.0, 0.0), Vec2::new(10.0, 0.0), Vec2::new(10.0, 10.0), Vec2::new(0.0, 10.0)]
    }

    #[test]
    fn area_and_centroid_of_a_square_either_closed_or_not() {
        let mut s = square();
        assert_eq!(signed_area(&s), 100.0);
        assert_eq!(centroid(&s), Vec2::new(5.0, 5.0));
        s.push(s[0]);
        assert_eq!(area(&s), 100.0);
        s.reverse();
        assert_eq!(signed_area(&s), -100.0);
        assert_eq!(centroid(&s), Vec2::new(5.0, 5.0));
    }

    #[test]
    fn point_in_polygon_and_distances() {
        let s = square();
        assert!(contains(&s, Vec2::new(5.0, 5.0)));
        assert!(!contains(&s, Vec2::new(15.0, 5.0)));
        let line = [Vec2::new(0.0, 0.0), Vec2::new(10.0, 0.0), Vec2::new(10.0, 10.0)];
        assert_eq!(distance2_to_polyline(&line, Vec2::new(5.0, 3.0)), 9.0);
        assert_eq!(distance2_to_polyline(&line, Vec2::new(12.0, 5.0)), 4.0);
        assert_eq!(polyline_length(&line), 20.0);
    }
}
