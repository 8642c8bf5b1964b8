//! numpy's pairwise summation of float64 arrays, shared by the features that must
//! match numpy bit for bit.

/// Sums `terms` in the order and grouping of numpy's pairwise summation for float64
/// (`add.reduce` on a contiguous array), so that results match numpy bit for bit. Below 8
/// terms it keeps a running sum, up to 128 terms 8 interleaved partial sums, and above that
/// it sums the two halves (split at a multiple of 8) recursively.
pub(crate) fn pairwise_sum(terms: &[f64]) -> f64 {
    const BLOCK: usize = 128;
    const UNROLL: usize = 8;
    let n = terms.len();
    if n < UNROLL {
        let mut sum = -0.0;
        for &term in terms {
            sum += term;
        }
        sum
    } else if n <= BLOCK {
        let mut partial = [0.0; UNROLL];
        partial.copy_from_slice(&terms[..UNROLL]);
        let unrolled_end = n - n % UNROLL;
        for chunk in terms[UNROLL..unrolled_end].chunks_exact(UNROLL) {
            for (accumulator, &term) in partial.iter_mut().zip(chunk) {
                *accumulator += term;
            }
        }
        let mut sum = ((partial[0] + partial[1]) + (partial[2] + partial[3]))
            + ((partial[4] + partial[5]) + (partial[6] + partial[7]));
        for &term in &terms[unrolled_end..] {
            sum += term;
        }
        sum
    } else {
        let mut half = n / 2;
        half -= half % UNROLL;
        pairwise_sum(&terms[..half]) + pairwise_sum(&terms[half..])
    }
}
