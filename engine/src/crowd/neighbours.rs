//! A uniform grid over agent positions kept as a list sorted by (row, column, agent), with the list's
//! start of every row between the lowest and highest occupied: a square of cells around a point is, per
//! row, a short binary search within the row and a contiguous scan. No table of cells to clear, no bounds.
//!
//! Agents move less than a cell per step, so last step's order is nearly sorted: the list is rebuilt in
//! that order and finished by insertion sort, which costs about one pass. The order is total (agent id
//! breaks ties), so the result does not depend on how it was reached.

use glam::Vec2;

/// Offset that makes cell coordinates non-negative in the key (cells of a city are far fewer).
const CELL_OFFSET: i64 = 1 << 30;
/// Agents new to the list above which a full sort is cheaper than insertion.
const INSERTION_LIMIT: usize = 64;

/// Agents sorted by grid cell.
#[derive(Default)]
pub(crate) struct CellGrid {
    cell_m: f32,
    order: Vec<(u64, u32)>,
    pos: Vec<Vec2>,
    seen: Vec<bool>,
    /// Lowest occupied row.
    first_row: i64,
    /// Index in `order` where each row from `first_row` on starts (one more entry than rows).
    row_start: Vec<u32>,
}

impl CellGrid {
    fn cell(&self, p: Vec2) -> (i64, i64) {
        ((p.x / self.cell_m).floor() as i64, (p.y / self.cell_m).floor() as i64)
    }

    fn key(cx: i64, cy: i64) -> u64 {
        (((cy + CELL_OFFSET) as u64) << 32) | (cx + CELL_OFFSET) as u64
    }

    /// Rebuilds the grid with cells of `cell_m` over the `members` (agent indices) at `pos[member]`.
    pub(crate) fn rebuild(&mut self, cell_m: f32, pos: &[Vec2], members: &[u32]) {
        let resized = cell_m != self.cell_m;
        self.cell_m = cell_m;
        self.seen.clear();
        self.seen.resize(pos.len(), false);
        let mut member = std::mem::take(&mut self.seen);
        for &m in members {
            member[m as usize] = true;
        }
        // Last step's order first, then the newcomers.
        let mut next: Vec<(u64, u32)> = Vec::with_capacity(members.len());
        for &(_, id) in &self.order {
            if (id as usize) < member.len() && member[id as usize] {
                member[id as usize] = false;
                let (cx, cy) = self.cell(pos[id as usize]);
                next.push((Self::key(cx, cy), id));
            }
        }
        let kept = next.len();
        for &m in members {
            if member[m as usize] {
                member[m as usize] = false;
                let (cx, cy) = self.cell(pos[m as usize]);
                next.push((Self::key(cx, cy), m));
            }
        }
        if resized || next.len() - kept > INSERTION_LIMIT {
            next.sort_unstable();
        } else {
            insertion_sort(&mut next);
        }
        self.pos.clear();
        self.pos.extend(next.iter().map(|&(_, id)| pos[id as usize]));
        self.order = next;
        self.seen = member;
        // Row starts.
        self.row_start.clear();
        let row_of = |key: u64| (key >> 32) as i64 - CELL_OFFSET;
        if let (Some(first), Some(last)) = (self.order.first(), self.order.last()) {
            self.first_row = row_of(first.0);
            let rows = (row_of(last.0) - self.first_row + 1) as usize;
            self.row_start.resize(rows + 1, 0);
            for &(key, _) in &self.order {
                self.row_start[(row_of(key) - self.first_row) as usize + 1] += 1;
            }
            for r in 0..rows {
                self.row_start[r + 1] += self.row_start[r];
            }
        }
    }

    /// Cell size (m).
    pub(crate) fn cell_m(&self) -> f32 {
        self.cell_m
    }

    /// The members in grid order: a member's place in it is its *slot*.
    pub(crate) fn ids(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.order.iter().map(|&(_, id)| id)
    }

    /// Calls `f(slot, position)` for every member in the cells within Chebyshev distance `k` of `p`'s cell,
    /// each once, in grid order. Every member within `k` cell sizes of `p` is among them.
    pub(crate) fn for_each_within(&self, p: Vec2, k: i64, mut f: impl FnMut(usize, Vec2)) {
        let (cx, cy) = self.cell(p);
        let rows = self.row_start.len() as i64 - 1;
        for row in (cy - k).max(self.first_row)..=(cy + k).min(self.first_row + rows - 1) {
            let r = (row - self.first_row) as usize;
            let (start, end) = (self.row_start[r] as usize, self.row_start[r + 1] as usize);
            let (lo, hi) = (Self::key(cx - k, row), Self::key(cx + k, row));
            let mut at = start + self.order[start..end].partition_point(|&(key, _)| key < lo);
            while at < end && self.order[at].0 <= hi {
                f(at, self.pos[at]);
                at += 1;
            }
        }
    }

    /// Calls `f(slot, position)` for every member in the cells at Chebyshev distance exactly `k` from `p`'s
    /// cell (the ring around the square [`CellGrid::for_each_within`] `k - 1` visits), each once, row by row.
    pub(crate) fn for_each_in_ring(&self, p: Vec2, k: i64, mut f: impl FnMut(usize, Vec2)) {
        if k == 0 {
            return self.for_each_within(p, 0, f);
        }
        let (cx, cy) = self.cell(p);
        let rows = self.row_start.len() as i64 - 1;
        for row in (cy - k).max(self.first_row)..=(cy + k).min(self.first_row + rows - 1) {
            let r = (row - self.first_row) as usize;
            let (start, end) = (self.row_start[r] as usize, self.row_start[r + 1] as usize);
            let spans: [(i64, i64); 2] =
                if (row - cy).abs() == k { [(cx - k, cx + k), (1, 0)] } else { [(cx - k, cx - k), (cx + k, cx + k)] };
            for (from, to) in spans.into_iter().filter(|(from, to)| from <= to) {
                let (lo, hi) = (Self::key(from, row), Self::key(to, row));
                let mut at = start + self.order[start..end].partition_point(|&(key, _)| key < lo);
                while at < end && self.order[at].0 <= hi {
                    f(at, self.pos[at]);
                    at += 1;
                }
            }
        }
    }

    /// Calls `f(slot, position)` for every member in the 3 × 3 cells around `p`, which includes every member
    /// within one cell size of `p`.
    pub(crate) fn for_each_near(&self, p: Vec2, f: impl FnMut(usize, Vec2)) {
        self.for_each_within(p, 1, f);
    }
}

/// Sorts a nearly sorted list in about one pass.
fn insertion_sort(items: &mut [(u64, u32)]) {
    for i in 1..items.len() {
        let item = items[i];
        let mut j = i;
        while j > 0 && items[j - 1] > item {
            items[j] = items[j - 1];
            j -= 1;
        }
        items[j] = item;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(grid: &CellGrid, pos: &[Vec2], members: &[u32], probe: Vec2, k: i64) {
        let mut seen = Vec::new();
        let ids: Vec<u32> = grid.ids().collect();
        grid.for_each_within(probe, k, |slot, p| {
            let m = ids[slot];
            assert_eq!(p, pos[m as usize]);
            seen.push(m);
        });
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "no member twice");
        for &m in members {
            if pos[m as usize].distance(probe) <= k as f32 * grid.cell_m() {
                assert!(seen.contains(&m), "member {m} within {k} cells of {probe} missed");
            }
        }
    }

    #[test]
    fn rings_around_a_square_make_the_next_square() {
        let pos: Vec<Vec2> =
            (0..900).map(|k| Vec2::new((k % 30) as f32 * 0.9 - 13.0, (k / 30) as f32 * 0.8 - 12.0)).collect();
        let members: Vec<u32> = (0..900).collect();
        let mut grid = CellGrid::default();
        grid.rebuild(1.5, &pos, &members);
        for probe in [Vec2::ZERO, Vec2::new(5.5, -3.2), Vec2::new(-20.0, 20.0), Vec2::new(13.0, 11.0)] {
            for k in 1..=3 {
                let mut square = Vec::new();
                grid.for_each_within(probe, k, |slot, _| square.push(slot));
                let mut rings = Vec::new();
                grid.for_each_within(probe, k - 1, |slot, _| rings.push(slot));
                grid.for_each_in_ring(probe, k, |slot, _| rings.push(slot));
                square.sort_unstable();
                rings.sort_unstable();
                assert_eq!(square, rings, "probe {probe}, k {k}");
            }
        }
    }

    #[test]
    fn squares_hold_every_member_within_reach_once_as_agents_come_move_and_go() {
        let mut pos: Vec<Vec2> =
            (0..900).map(|k| Vec2::new((k % 30) as f32 * 0.9 - 13.0, (k / 30) as f32 * 0.8 - 12.0)).collect();
        let mut grid = CellGrid::default();
        let mut members: Vec<u32> = (0..900).filter(|k| k % 3 != 0).collect();
        grid.rebuild(1.5, &pos, &members);
        for step in 0..3 {
            for (k, p) in pos.iter_mut().enumerate() {
                *p += Vec2::new(((k * 7 + step) % 5) as f32 * 0.1 - 0.2, ((k * 3 + step) % 7) as f32 * 0.1 - 0.3);
            }
            // Some leave, some arrive.
            members.retain(|m| !(m + step as u32).is_multiple_of(11));
            members.extend((0..900u32).filter(|k| k.is_multiple_of(3) && (k / 3 + step as u32).is_multiple_of(4)));
            members.sort_unstable();
            members.dedup();
            grid.rebuild(1.5, &pos, &members);
            for probe in [Vec2::ZERO, Vec2::new(5.5, -3.2), Vec2::new(-20.0, 20.0)] {
                for k in 0..=3 {
                    check(&grid, &pos, &members, probe, k);
                }
            }
        }
    }
}
