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
        (floor_i64(p.x / self.cell_m), floor_i64(p.y / self.cell_m))
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
    #[cfg(test)]
    pub(crate) fn cell_m(&self) -> f32 {
        self.cell_m
    }

    /// The members in grid order: a member's place in it is its *slot*.
    pub(crate) fn ids(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.order.iter().map(|&(_, id)| id)
    }

    /// Calls `f(slot, position)` for every member in the cells that meet the square of half-side `half_m`
    /// (m) centred on `p`, each once, in grid order: per row, a binary search for the first column, then a
    /// scan. Every member within `half_m` of `p` is among them.
    pub(crate) fn for_each_in_square(&self, p: Vec2, half_m: f32, mut f: impl FnMut(usize, Vec2)) {
        let (lo, hi) = (self.cell(p - Vec2::splat(half_m)), self.cell(p + Vec2::splat(half_m)));
        // Columns beyond the keys' domain hold no one (an unbounded square reaches them).
        let cols = (lo.0.max(-CELL_OFFSET), hi.0.min(CELL_OFFSET));
        let occupied = self.row_start.len() as i64 - 1;
        for row in lo.1.max(self.first_row)..=hi.1.min(self.first_row + occupied - 1) {
            let r = (row - self.first_row) as usize;
            let (start, end) = (self.row_start[r] as usize, self.row_start[r + 1] as usize);
            let (first, last) = (Self::key(cols.0, row), Self::key(cols.1, row));
            let mut at = start + self.order[start..end].partition_point(|&(key, _)| key < first);
            while at < end && self.order[at].0 <= last {
                f(at, self.pos[at]);
                at += 1;
            }
        }
    }
}

/// `x.floor() as i64`, without the call to the C library's `floorf` that `floor` makes on the baseline x86-64
/// target (which has no rounding instruction): truncation, one lower for a negative non-integer.
fn floor_i64(x: f32) -> i64 {
    let t = x as i64;
    t.saturating_sub((x < t as f32) as i64)
}

/// Puts every item at its rank: `ids[i]` names item `i`, and `rank[id]` maps the ids one to one onto
/// `0..items.len()`; `ids` is reordered with the items. By insertion while that moves items little (the order
/// is nearly the ranks' already, as it is from step to step), else by moving each item straight to its place.
/// Only `ids` and `rank` are read to compare, not the items.
pub(crate) fn order_by_rank<T>(items: &mut Vec<T>, ids: &mut [u32], rank: &[u32]) {
    // Insertion moves up to this many items per item on average before the items are moved to their places
    // (chosen, not tuned: a step moves few agents past others, so insertion rarely comes near it).
    const MOVES_PER_ITEM: usize = 4;
    let budget = MOVES_PER_ITEM * items.len();
    let mut moves = 0;
    for i in 1..items.len() {
        let k = rank[ids[i] as usize];
        let mut j = i;
        while j > 0 && rank[ids[j - 1] as usize] > k {
            j -= 1;
        }
        if j < i {
            items[j..=i].rotate_right(1);
            ids[j..=i].rotate_right(1);
            moves += i - j;
            if moves > budget {
                let mut placed: Vec<Option<T>> = std::iter::repeat_with(|| None).take(items.len()).collect();
                for (item, &id) in items.drain(..).zip(ids.iter()) {
                    placed[rank[id as usize] as usize] = Some(item);
                }
                items.extend(placed.into_iter().map(|item| item.expect("the ranks are a permutation")));
                for id in 0..ids.len() as u32 {
                    ids[rank[id as usize] as usize] = id;
                }
                return;
            }
        }
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

    #[test]
    fn floor_i64_is_floor() {
        for x in [0.0f32, -0.0, 0.5, -0.5, 1.0, -1.0, 2.75, -2.75, 1e9, -1e9, 3e20, -3e20, f32::NAN] {
            assert_eq!(floor_i64(x), x.floor() as i64, "{x}");
        }
        assert_eq!(floor_i64(f32::INFINITY), i64::MAX);
        assert_eq!(floor_i64(f32::NEG_INFINITY), i64::MIN);
    }

    #[test]
    fn order_by_rank_puts_items_at_their_ranks_nearly_sorted_or_not() {
        // Nearly sorted (two neighbours swapped), and reversed (more moves than insertion is allowed).
        // Items are their ids' squares; rank: reversed ids.
        let rank: Vec<u32> = (0..100).rev().collect();
        let nearly: Vec<u32> = (0..100)
            .rev()
            .map(|k| {
                if k == 40 {
                    41
                } else if k == 41 {
                    40
                } else {
                    k
                }
            })
            .collect();
        let reversed: Vec<u32> = (0..100).collect();
        for mut ids in [nearly, reversed] {
            let mut items: Vec<u64> = ids.iter().map(|&id| id as u64 * id as u64).collect();
            order_by_rank(&mut items, &mut ids, &rank);
            assert_eq!(ids, (0..100).rev().collect::<Vec<u32>>());
            assert_eq!(items, ids.iter().map(|&id| id as u64 * id as u64).collect::<Vec<u64>>());
        }
    }

    fn check(grid: &CellGrid, pos: &[Vec2], members: &[u32], probe: Vec2, half_m: f32) {
        let mut seen = Vec::new();
        let ids: Vec<u32> = grid.ids().collect();
        grid.for_each_in_square(probe, half_m, |slot, p| {
            let m = ids[slot];
            assert_eq!(p, pos[m as usize]);
            seen.push(m);
        });
        let mut unique = seen.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), seen.len(), "no member twice");
        for &m in members {
            let off = (pos[m as usize] - probe).abs();
            if off.x <= half_m && off.y <= half_m {
                assert!(seen.contains(&m), "member {m} within {half_m} m of {probe} missed");
            }
            // Nothing is visited that lies beyond the cells meeting the square.
            if seen.contains(&m) {
                assert!(off.x <= half_m + grid.cell_m() && off.y <= half_m + grid.cell_m());
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
                for half_m in [0.0, 0.7, 1.5, 2.6, 4.5] {
                    check(&grid, &pos, &members, probe, half_m);
                }
            }
        }
    }
}
