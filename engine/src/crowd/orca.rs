//! Optimal Reciprocal Collision Avoidance (ORCA; van den Berg, Guy, Lin, Manocha 2011, "Reciprocal n-body
//! collision avoidance", Robotics Research, STAR 70, pp. 3–19).
//!
//! Every agent picks the velocity closest to the one it prefers among those that keep it collision-free with
//! each neighbour for a time horizon τ, taking its share of the avoidance (half when both sides are alike).
//! Each neighbour and each static obstacle contributes one half-plane in velocity space; the velocity is the
//! solution of a small 2D linear program (randomisation is not needed at these sizes; constraints are added
//! in order, obstacles first). When the half-planes leave no room, a 3D program finds the velocity that
//! violates the agents' half-planes least, while the obstacles' stay hard.
//!
//! Conventions: a [`HalfPlane`] allows the velocities on the left of its directed line.

use glam::Vec2;

/// Tolerance under which two lines count as parallel.
const PARALLEL_EPS: f32 = 1e-5;

/// An allowed half-plane of velocities (m/s): the left side of the line through `point` along `direction`
/// (unit vector).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HalfPlane {
    /// A point on the boundary (m/s).
    pub point: Vec2,
    /// Unit direction of the boundary; allowed velocities lie to its left.
    pub direction: Vec2,
}

impl HalfPlane {
    /// How far `v` lies outside the half-plane (m/s; ≤ 0 inside).
    pub fn violation(&self, v: Vec2) -> f32 {
        self.direction.perp_dot(self.point - v)
    }
}

/// One agent as its neighbours see it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Disc {
    /// Centre (m).
    pub pos: Vec2,
    /// Current velocity (m/s).
    pub vel: Vec2,
    /// Radius (m).
    pub radius: f32,
}

/// The half-plane agent `me` must keep to avoid `other` for `horizon_s`, taking `share` of the avoidance
/// (0.5 when both are alike). `step_s` is the time step, used when the two already overlap.
pub fn agent_half_plane(me: &Disc, other: &Disc, share: f32, horizon_s: f32, step_s: f32) -> HalfPlane {
    let rel_pos = other.pos - me.pos;
    let rel_vel = me.vel - other.vel;
    let dist_sq = rel_pos.length_squared();
    let r = me.radius + other.radius;
    let r_sq = r * r;
    let (direction, u);
    if dist_sq > r_sq {
        // No collision yet: the velocity obstacle is a truncated cone; find the closest point of its boundary.
        let inv_tau = 1.0 / horizon_s;
        let w = rel_vel - inv_tau * rel_pos;
        let w_len_sq = w.length_squared();
        let dot = w.dot(rel_pos);
        if dot < 0.0 && dot * dot > r_sq * w_len_sq {
            // Closest to the cut-off circle.
            let w_len = w_len_sq.sqrt();
            let unit_w = w / w_len;
            direction = Vec2::new(unit_w.y, -unit_w.x);
            u = (r * inv_tau - w_len) * unit_w;
        } else {
            // Closest to one of the legs.
            let leg = (dist_sq - r_sq).sqrt();
            direction = if rel_pos.perp_dot(w) > 0.0 {
                Vec2::new(rel_pos.x * leg - rel_pos.y * r, rel_pos.x * r + rel_pos.y * leg) / dist_sq
            } else {
                -Vec2::new(rel_pos.x * leg + rel_pos.y * r, -rel_pos.x * r + rel_pos.y * leg) / dist_sq
            };
            u = rel_vel.dot(direction) * direction - rel_vel;
        }
    } else {
        // Already overlapping: separate within one step.
        let inv_dt = 1.0 / step_s;
        let w = rel_vel - inv_dt * rel_pos;
        let w_len = w.length().max(f32::MIN_POSITIVE);
        let unit_w = w / w_len;
        direction = Vec2::new(unit_w.y, -unit_w.x);
        u = (r * inv_dt - w_len) * unit_w;
    }
    HalfPlane { point: me.vel + share * u, direction }
}

/// The half-plane that keeps an agent of `radius` at `pos` from reaching a static obstacle whose closest
/// point is `closest` within `horizon_s`: the velocity towards it is at most (distance − radius) / horizon.
pub fn obstacle_half_plane(pos: Vec2, radius: f32, closest: Vec2, horizon_s: f32) -> Option<HalfPlane> {
    let away = pos - closest;
    let d = away.length();
    if d <= f32::EPSILON {
        return None;
    }
    let n = away / d;
    Some(HalfPlane { point: -n * ((d - radius) / horizon_s), direction: Vec2::new(n.y, -n.x) })
}

/// The ORCA velocity solver; its scratch space is reused between agents ([`Solver::solve`]).
#[derive(Default)]
pub struct Solver {
    projected: Vec<HalfPlane>,
}

impl Solver {
    /// The velocity closest to `preferred` within `max_speed` that satisfies `planes` (the first
    /// `obstacles` of them hard). Returns the velocity and whether every half-plane holds.
    pub fn solve(&mut self, planes: &[HalfPlane], obstacles: usize, max_speed: f32, preferred: Vec2) -> (Vec2, bool) {
        let mut v = Vec2::ZERO;
        let failed = lp2(planes, max_speed, preferred, false, &mut v);
        if failed < planes.len() {
            lp3(planes, obstacles, failed, max_speed, &mut v, &mut self.projected);
            return (v, false);
        }
        (v, true)
    }
}

/// Optimises on the boundary of plane `i`, subject to planes `..i` and the speed disc. False when infeasible.
fn lp1(planes: &[HalfPlane], i: usize, max_speed: f32, opt: Vec2, direction_opt: bool, v: &mut Vec2) -> bool {
    let line = planes[i];
    let dot = line.point.dot(line.direction);
    let disc = dot * dot + max_speed * max_speed - line.point.length_squared();
    if disc < 0.0 {
        return false;
    }
    let sq = disc.sqrt();
    let (mut t_left, mut t_right) = (-dot - sq, -dot + sq);
    for other in &planes[..i] {
        let denom = line.direction.perp_dot(other.direction);
        let numer = other.direction.perp_dot(line.point - other.point);
        if denom.abs() <= PARALLEL_EPS {
            if numer < 0.0 {
                return false;
            }
            continue;
        }
        let t = numer / denom;
        if denom >= 0.0 {
            t_right = t_right.min(t);
        } else {
            t_left = t_left.max(t);
        }
        if t_left > t_right {
            return false;
        }
    }
    let t = if direction_opt {
        if opt.dot(line.direction) > 0.0 {
            t_right
        } else {
            t_left
        }
    } else {
        line.direction.dot(opt - line.point).clamp(t_left, t_right)
    };
    *v = line.point + t * line.direction;
    true
}

/// Adds the planes in order; returns the index of the first that cannot be satisfied (or the count).
fn lp2(planes: &[HalfPlane], max_speed: f32, opt: Vec2, direction_opt: bool, v: &mut Vec2) -> usize {
    *v = if direction_opt {
        opt * max_speed
    } else if opt.length_squared() > max_speed * max_speed {
        opt.normalize() * max_speed
    } else {
        opt
    };
    for i in 0..planes.len() {
        if planes[i].violation(*v) > 0.0 {
            let before = *v;
            if !lp1(planes, i, max_speed, opt, direction_opt, v) {
                *v = before;
                return i;
            }
        }
    }
    planes.len()
}

/// Minimises the largest violation of the agents' planes from `begin` on, keeping the obstacles' planes.
fn lp3(
    planes: &[HalfPlane],
    obstacles: usize,
    begin: usize,
    max_speed: f32,
    v: &mut Vec2,
    projected: &mut Vec<HalfPlane>,
) {
    let mut distance = 0.0;
    for i in begin..planes.len() {
        if planes[i].violation(*v) <= distance {
            continue;
        }
        projected.clear();
        projected.extend_from_slice(&planes[..obstacles]);
        let line = planes[i];
        for other in &planes[obstacles..i] {
            let denom = line.direction.perp_dot(other.direction);
            let point = if denom.abs() <= PARALLEL_EPS {
                if line.direction.dot(other.direction) > 0.0 {
                    continue;
                }
                0.5 * (line.point + other.point)
            } else {
                line.point + (other.direction.perp_dot(line.point - other.point) / denom) * line.direction
            };
            let direction = (other.direction - line.direction).normalize_or_zero();
            if direction == Vec2::ZERO {
                continue;
            }
            projected.push(HalfPlane { point, direction });
        }
        let before = *v;
        let towards = Vec2::new(-line.direction.y, line.direction.x);
        if lp2(projected, max_speed, towards, true, v) < projected.len() {
            // Only floating-point round-off gets here; the previous velocity is the best known.
            *v = before;
        }
        distance = line.violation(*v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disc(x: f32, y: f32, vx: f32, vy: f32) -> Disc {
        Disc { pos: Vec2::new(x, y), vel: Vec2::new(vx, vy), radius: 0.3 }
    }

    #[test]
    fn free_agent_keeps_its_preferred_velocity() {
        let (v, ok) = Solver::default().solve(&[], 0, 1.5, Vec2::new(1.0, 0.5));
        assert!(ok);
        assert_eq!(v, Vec2::new(1.0, 0.5));
        // Clamped to the speed limit.
        let (v, _) = Solver::default().solve(&[], 0, 1.0, Vec2::new(3.0, 4.0));
        assert!((v - Vec2::new(0.6, 0.8)).length() < 1e-6);
    }

    #[test]
    fn head_on_agents_turn_opposite_ways_and_miss() {
        // Two agents walking at each other on the same line: both deviate, to opposite sides.
        let a = disc(0.0, 0.0, 1.0, 0.0);
        let b = disc(4.0, 0.0, -1.0, 0.0);
        let pa = agent_half_plane(&a, &b, 0.5, 2.0, 0.25);
        let pb = agent_half_plane(&b, &a, 0.5, 2.0, 0.25);
        let (va, _) = Solver::default().solve(&[pa], 0, 1.5, a.vel);
        let (vb, _) = Solver::default().solve(&[pb], 0, 1.5, b.vel);
        assert!(va.y * vb.y < 0.0, "they turn opposite ways: {va} {vb}");
        // With the new velocities they stay apart for the whole horizon.
        for k in 0..=40 {
            let t = k as f32 * 0.05;
            let gap = ((b.pos + vb * t) - (a.pos + va * t)).length();
            assert!(gap >= 0.6 - 1e-3, "gap {gap} at {t} s");
        }
    }

    #[test]
    fn wall_limits_the_speed_towards_it() {
        // A wall 1.0 m north; the agent wants to walk straight at it.
        let plane = obstacle_half_plane(Vec2::ZERO, 0.3, Vec2::new(0.0, 1.0), 1.0).unwrap();
        let (v, ok) = Solver::default().solve(&[plane], 1, 1.5, Vec2::new(0.0, 1.5));
        assert!(ok);
        assert!((v.y - 0.7).abs() < 1e-5, "at most (1.0 - 0.3) / 1 s towards the wall: {v}");
        // Walking along the wall is not restricted.
        let (v, _) = Solver::default().solve(&[plane], 1, 1.5, Vec2::new(1.2, 0.0));
        assert_eq!(v, Vec2::new(1.2, 0.0));
    }

    #[test]
    fn infeasible_crowd_keeps_walls_hard() {
        // Boxed in by a wall to the north and four agents closing in: the 3D program runs, the wall holds.
        let me = disc(0.0, 0.0, 0.0, 0.0);
        let wall = obstacle_half_plane(me.pos, 0.3, Vec2::new(0.0, 0.5), 0.5).unwrap();
        let mut planes = vec![wall];
        for (x, y) in [(0.7, 0.0), (-0.7, 0.0), (0.0, -0.7), (0.5, -0.5)] {
            let other = disc(x, y, -x, -y);
            planes.push(agent_half_plane(&me, &other, 0.5, 2.0, 0.25));
        }
        let (v, _) = Solver::default().solve(&planes, 1, 1.5, Vec2::new(0.0, 1.0));
        assert!(wall.violation(v) <= 1e-4, "the wall's half-plane is kept: {v}");
        assert!(v.length() <= 1.5 + 1e-4);
    }
}
