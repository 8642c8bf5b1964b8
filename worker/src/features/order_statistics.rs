//! Order statistics of a sample without sorting it: the values that a full ascending sort
//! would put at a few chosen ranks, and numpy's percentile and median computed from them.
//!
//! Each rank is found with `select_nth_unstable_by` on the part of the sample that lies
//! above the previous rank, so k ranks cost about k linear passes instead of one
//! O(n log n) sort. The comparison is `f64::total_cmp`, the one the sort used before, so
//! every selected value is the one the sorted array contains at that rank, bit for bit.

/// Values of a sample at chosen ranks of its ascending order (0-based, by `f64::total_cmp`).
pub(crate) struct OrderStatistics {
    /// Number of values in the sample.
    count: usize,
    /// Selected ranks, ascending and distinct, each below `count`.
    ranks: Vec<usize>,
    /// Value at each rank of `ranks`.
    values: Vec<f64>,
}

impl OrderStatistics {
    /// Selects the values of `sample` at `ranks` (any order, repeats allowed). Ranks at or
    /// beyond the sample size are ignored.
    pub(crate) fn select(sample: &[f64], ranks: &[usize]) -> Self {
        let count = sample.len();
        let mut ranks: Vec<usize> = ranks.iter().copied().filter(|&rank| rank < count).collect();
        ranks.sort_unstable();
        ranks.dedup();

        let mut work = sample.to_vec();
        let mut values = Vec::with_capacity(ranks.len());
        // After selecting rank r, every value at a rank above r lies in work[r + 1..].
        let mut start = 0;
        for &rank in &ranks {
            let (_, nth, _) = work[start..].select_nth_unstable_by(rank - start, f64::total_cmp);
            values.push(*nth);
            start = rank + 1;
        }
        OrderStatistics {
            count,
            ranks,
            values,
        }
    }

    /// Returns the number of values in the sample.
    pub(crate) fn count(&self) -> usize {
        self.count
    }

    /// Returns the value at `rank`, or NaN when `rank` was not selected.
    pub(crate) fn at(&self, rank: usize) -> f64 {
        match self.ranks.binary_search(&rank) {
            Ok(position) => self.values[position],
            Err(_) => {
                debug_assert!(false, "rank {rank} was not selected");
                f64::NAN
            }
        }
    }
}

/// Returns the ranks that [`percentile`] reads for the q-th percentile of `count` values.
pub(crate) fn percentile_ranks(count: usize, q: f64) -> [usize; 2] {
    let last = count.saturating_sub(1);
    let virtual_index = last as f64 * (q / 100.0);
    if virtual_index >= last as f64 {
        return [last, last];
    }
    let lower = virtual_index.floor() as usize;
    [lower, lower + 1]
}

/// Returns the ranks that [`median`] reads for `count` values.
pub(crate) fn median_ranks(count: usize) -> [usize; 2] {
    [count / 2, (count / 2).saturating_sub(1)]
}

/// Returns the q-th percentile of a non-empty sample with numpy's default `linear`
/// interpolation, including numpy's way of evaluating the interpolation. `sample` must hold
/// the ranks of [`percentile_ranks`].
pub(crate) fn percentile(sample: &OrderStatistics, q: f64) -> f64 {
    let last = sample.count() - 1;
    let virtual_index = last as f64 * (q / 100.0);
    if virtual_index >= last as f64 {
        return sample.at(last);
    }
    let lower = virtual_index.floor();
    let gamma = virtual_index - lower;
    let below = sample.at(lower as usize);
    let above = sample.at(lower as usize + 1);
    let difference = above - below;
    if gamma >= 0.5 {
        above - difference * (1.0 - gamma)
    } else {
        below + difference * gamma
    }
}

/// Returns the median of a non-empty sample as numpy computes it: the middle value, or the
/// mean of the two middle values. `sample` must hold the ranks of [`median_ranks`].
pub(crate) fn median(sample: &OrderStatistics) -> f64 {
    let n = sample.count();
    let upper = sample.at(n / 2);
    let lower = if n.is_multiple_of(2) {
        sample.at(n / 2 - 1)
    } else {
        upper
    };
    let sum = lower + upper;
    if sum.is_finite() {
        sum / 2.0
    } else {
        // Two huge values of the same sign overflow the sum; halving first is exact.
        lower / 2.0 + upper / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Selects every rank, which is the sorted sample.
    fn all_ranks(sample: &[f64]) -> OrderStatistics {
        let ranks: Vec<usize> = (0..sample.len()).collect();
        OrderStatistics::select(sample, &ranks)
    }

    #[test]
    fn selection_equals_sort_at_every_rank() {
        // Repeats, signed zeros and a spread of magnitudes; expected values from a full sort.
        let sample: Vec<f64> = (0..200)
            .map(|n| {
                let x = ((n * 7919) % 211) as f64 - 100.0;
                if n % 13 == 0 { -0.0 } else { x * 0.37 }
            })
            .collect();
        let mut sorted = sample.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        let ranks = [199, 0, 57, 57, 20, 180, 100, 99, 500];
        let selected = OrderStatistics::select(&sample, &ranks);
        for rank in [0, 20, 57, 99, 100, 180, 199] {
            assert_eq!(
                selected.at(rank).to_bits(),
                sorted[rank].to_bits(),
                "rank {rank}"
            );
        }
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], [10, 25, 50, 75, 90]) = [1.3, 1.75, 2.5, 3.25, 3.7]
        let sample = all_ranks(&[4.0, 2.0, 1.0, 3.0]);
        assert_eq!(percentile(&sample, 10.0), 1.3);
        assert_eq!(percentile(&sample, 25.0), 1.75);
        assert_eq!(percentile(&sample, 75.0), 3.25);
        assert_eq!(percentile(&sample, 90.0), 3.7);
        assert_eq!(median(&sample), 2.5);
        assert_eq!(percentile(&all_ranks(&[5.0]), 90.0), 5.0);
    }

    #[test]
    fn percentile_ranks_cover_interpolation() {
        assert_eq!(percentile_ranks(4, 10.0), [0, 1]);
        assert_eq!(percentile_ranks(4, 90.0), [2, 3]);
        assert_eq!(percentile_ranks(1, 90.0), [0, 0]);
        assert_eq!(median_ranks(4), [2, 1]);
        assert_eq!(median_ranks(1), [0, 0]);
    }

    #[test]
    fn median_of_huge_values_stays_finite() {
        assert_eq!(median(&all_ranks(&[f64::MAX, f64::MAX])), f64::MAX);
    }
}
