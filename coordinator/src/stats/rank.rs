//! Mid-ranks (average ranks of tied values), as `scipy.stats.rankdata(method="average")`.

use super::validate::compare_finite;

/// Mid-ranks of a sample and the sizes of its tie groups.
pub(crate) struct MidRanks {
    /// 1-based rank of each value, in input order. Tied values share the mean
    /// of the ranks they span.
    pub ranks: Vec<f64>,
    /// Size of every group of equal values, including groups of size 1.
    pub tie_group_sizes: Vec<usize>,
}

/// Computes mid-ranks in O(n log n). The values must be finite.
pub(crate) fn mid_ranks(values: &[f64]) -> MidRanks {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| compare_finite(values[a], values[b]));

    let mut ranks = vec![0.0; values.len()];
    let mut tie_group_sizes = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && compare_finite(values[order[end]], values[order[start]]).is_eq()
        {
            end += 1;
        }

        // Positions start..end hold ranks start+1 ..= end, whose mean is below.
        let mid_rank = (start + 1 + end) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = mid_rank;
        }
        tie_group_sizes.push(end - start);
        start = end;
    }

    MidRanks {
        ranks,
        tie_group_sizes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mid_ranks_average_ties() {
        // scipy 1.17.1: rankdata([3, 1, 3, 2, 3]) -> [4., 1., 4., 2., 4.]
        let result = mid_ranks(&[3.0, 1.0, 3.0, 2.0, 3.0]);
        assert_eq!(result.ranks, vec![4.0, 1.0, 4.0, 2.0, 4.0]);
        assert_eq!(result.tie_group_sizes, vec![1, 1, 3]);
    }

    #[test]
    fn mid_ranks_treat_signed_zeros_as_tied() {
        let result = mid_ranks(&[0.0, -0.0, 1.0]);
        assert_eq!(result.ranks, vec![1.5, 1.5, 3.0]);
    }

    #[test]
    fn mid_ranks_of_empty_input() {
        let result = mid_ranks(&[]);
        assert!(result.ranks.is_empty());
        assert!(result.tie_group_sizes.is_empty());
    }
}
