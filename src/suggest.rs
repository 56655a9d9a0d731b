//! "Did you mean …?" for mistyped names, as git and cargo offer: the
//! closest known word by edit distance, if it is close enough.

/// Optimal string alignment distance (Levenshtein plus swapping two
/// neighbours, so `pyhton` is one edit from `python`), over chars.
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: two back (for swaps), the previous one, the current one.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        current[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(before[j - 2] + 1);
            }
            current[j] = best;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

/// The candidate closest to `word`, when it is at most a third of
/// `word`'s length away (at least 1, as cargo allows); ties go to the
/// first candidate. An exact match is no suggestion.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// `"; did you mean 'X'?"`, or nothing.
pub fn hint<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates)
        .map(|c| format!("; did you mean '{}'?", crate::text::printable(c.as_bytes())))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("python-3.10", "python-3.10"), 0);
        assert_eq!(distance("pyton-3.10", "python-3.10"), 1);
        assert_eq!(distance("pyhton", "python"), 1);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_only_close_words() {
        let names = ["python-3.10", "python-3.12", "node-22"];
        assert_eq!(closest("pyton-3.10", names), Some("python-3.10"));
        assert_eq!(closest("nod-22", names), Some("node-22"));
        assert_eq!(closest("gcc", names), None);
        assert_eq!(closest("node-22", names), None);
        assert_eq!(
            hint("slice-ad", ["sandbox", "slice-add"]),
            "; did you mean 'slice-add'?"
        );
        assert_eq!(hint("zzz", ["sandbox"]), "");
    }
}
