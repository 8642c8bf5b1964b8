//! Close-name suggestions for unknown keys in a parameter file.

/// Returns the candidates within a small edit distance of `unknown`, or equal to it apart
/// from letter case, closest first. The limit is a third of the name's length, at least 2,
/// so `binwidht` finds `binWidth` but `label` does not suggest `level`'s neighbours.
pub fn close_names(unknown: &str, candidates: &[&'static str]) -> Vec<&'static str> {
    let limit = (unknown.chars().count() / 3).max(2);
    let lower = unknown.to_lowercase();
    let mut scored: Vec<(usize, &'static str)> = candidates
        .iter()
        .map(|&candidate| (edit_distance(&lower, &candidate.to_lowercase()), candidate))
        .filter(|&(distance, _)| distance <= limit)
        .collect();
    scored.sort();
    scored.into_iter().map(|(_, candidate)| candidate).collect()
}

/// Levenshtein distance over Unicode scalar values.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, a_char) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, &b_char) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(a_char != b_char);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_names_finds_misspelt_key() {
        assert_eq!(
            close_names("binwidht", &["binWidth", "binCount", "label"]),
            ["binWidth"]
        );
    }

    #[test]
    fn close_names_ignores_distant_keys() {
        assert!(close_names("interpolatorX", &["label", "binCount"]).is_empty());
    }

    #[test]
    fn edit_distance_counts_single_edits() {
        // Textbook example: kitten → sitting needs 3 edits.
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
    }
}
