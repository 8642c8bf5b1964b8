//! The window histogram and its entropy sum S = Σ_l n_l log₂ n_l in exact
//! fixed point.

use super::settings::Boundary;

/// Binary digits after the point in the fixed-point n·log₂ n values of
/// [`Histogram`]. The largest sum, |W| log₂ |W| ≤ 3375 · 11.73 < 2¹⁶ for a
/// 15³ window, times 2⁴⁶ stays below 2⁶², inside `i64`.
const FIXED_POINT_BITS: i32 = 46;

/// A window histogram with the sentinel cell last, and the running sum
/// S = Σ_l n_l log₂ n_l over the non-sentinel cells.
///
/// S is kept in fixed point, each term n log₂ n rounded to a multiple of
/// 2⁻⁴⁶ from a table. Integer sums are exact, so S, and the entropy read
/// from it, depend only on the counts and never on the order of the
/// updates, while each update costs O(1) instead of a pass over the N_b
/// cells.
pub(super) struct Histogram {
    counts: Vec<u32>,
    /// round(c log₂ c · 2⁴⁶) for c = 0..=|W|.
    n_log_n: Vec<i64>,
    /// n_log_n[c + 1] − n_log_n[c] for c = 0..|W|: the change of S when a
    /// cell's count goes from c to c + 1.
    increase: Vec<i64>,
    /// round(log₂ c · 2⁴⁶) for c = 0..=|W|; entry 0 is unused.
    log2: Vec<i64>,
    /// Σ n_log_n[n_l] over every cell, the sentinel included, so that an
    /// update needs no branch or mask on the cell. S is this sum minus the
    /// sentinel's term, taken when the entropy is read.
    sum_all_cells: i64,
    sentinel: usize,
}

impl Histogram {
    pub(super) fn new(bins: usize, window_positions: usize) -> Self {
        let scale = 2f64.powi(FIXED_POINT_BITS);
        let fixed = |value: f64| (value * scale).round() as i64;
        let n_log_n: Vec<i64> = (0..=window_positions)
            .map(|c| {
                let count = c as f64;
                if c == 0 {
                    0
                } else {
                    fixed(count * count.log2())
                }
            })
            .collect();
        Histogram {
            counts: vec![0; bins + 1],
            increase: n_log_n.windows(2).map(|pair| pair[1] - pair[0]).collect(),
            n_log_n,
            log2: (0..=window_positions)
                .map(|c| if c == 0 { 0 } else { fixed((c as f64).log2()) })
                .collect(),
            sum_all_cells: 0,
            sentinel: bins,
        }
    }

    pub(super) fn clear(&mut self) {
        self.counts.fill(0);
        self.sum_all_cells = 0;
    }

    /// Adds the window plane whose first position is `base`, given the
    /// plane's offsets.
    pub(super) fn add_plane(&mut self, levels: &[u16], base: usize, offsets: &[usize]) {
        for &offset in offsets {
            self.add(levels[base + offset] as usize);
        }
    }

    /// Moves the window one step: removes the plane at `leaving` and adds
    /// the plane at `entering`. A position whose level is the same in both
    /// planes is removed and added back, which leaves the counts and S as
    /// they were. Skipping it instead took about 5% longer on the STS MR
    /// lesions, because the test mispredicts often.
    pub(super) fn slide(
        &mut self,
        levels: &[u16],
        leaving: usize,
        entering: usize,
        offsets: &[usize],
    ) {
        // Local slices and a local sum took about 4% less entropy time on
        // the STS MR lesions than per-position `add` and `remove` calls,
        // probably because the sum no longer goes through `self`.
        let counts = self.counts.as_mut_slice();
        let increase = self.increase.as_slice();
        let mut sum = self.sum_all_cells;
        for &offset in offsets {
            let (old, new) = (
                levels[leaving + offset] as usize,
                levels[entering + offset] as usize,
            );
            let count = counts[old] as usize;
            counts[old] -= 1;
            sum -= increase[count - 1];
            let count = counts[new] as usize;
            counts[new] += 1;
            sum += increase[count];
        }
        self.sum_all_cells = sum;
    }

    fn add(&mut self, cell: usize) {
        let count = self.counts[cell] as usize;
        self.counts[cell] += 1;
        self.sum_all_cells += self.increase[count];
    }

    /// Returns the entropy in bits, E = (C log₂ N − S) / N with C the
    /// counted (non-sentinel) positions and N the divisor of the boundary
    /// rule. When N = C the term C log₂ C comes from the same table as S,
    /// so a window with one occupied cell gives exactly 0.
    ///
    /// Rounding: each table entry is within 2⁻⁴⁷ of the fixed-point value
    /// and within about 2⁻⁵³ relative of the exact one, so after the
    /// division by N the result is within about 1e-14 bits of the
    /// textbook −Σ p log₂ p.
    pub(super) fn entropy_bits(&self, window_positions: usize, boundary: Boundary) -> f64 {
        let uncounted = self.counts[self.sentinel] as usize;
        let counted = window_positions - uncounted;
        let sum_n_log_n = self.sum_all_cells - self.n_log_n[uncounted];
        let divisor = match boundary {
            Boundary::Masked => counted,
            Boundary::BoxSymmetric | Boundary::BoxZero => window_positions,
        };
        let total = if divisor == counted {
            self.n_log_n[counted]
        } else {
            counted as i64 * self.log2[divisor]
        };
        let numerator = (total - sum_n_log_n) as f64 * 2f64.powi(-FIXED_POINT_BITS);
        numerator / divisor as f64
    }
}
