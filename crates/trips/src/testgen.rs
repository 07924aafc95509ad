//! Generators of near-valid texts for the tests that hold a parser to its documented pattern.

use rand::Rng;

/// One of `choices`.
pub fn pick<'a>(rng: &mut impl Rng, choices: &[&'a str]) -> &'a str {
    choices[rng.random_range(0..choices.len())]
}

/// In one case out of four, one random edit of `t` (insert, remove or replace a character of
/// `alphabet`), so a test also sees texts just off the grammar.
pub fn maybe_edit(rng: &mut impl Rng, mut t: String, alphabet: &[u8]) -> String {
    if rng.random_range(0..4) == 0 && !t.is_empty() {
        let at = rng.random_range(0..t.len());
        let c = char::from(alphabet[rng.random_range(0..alphabet.len())]);
        match rng.random_range(0..3) {
            0 => t.insert(at, c),
            1 => {
                t.remove(at);
            }
            _ => t.replace_range(at..=at, &c.to_string()),
        }
    }
    t
}
