//! Name search keys: case-, accent- and typo-tolerant lookup on plain btree-free GIN keys.
//!
//! A trigram similarity search over 100 000 names runs at about 80 queries per second on two
//! cores (measured, see docs/benchmarks.md), far below what a front desk needs. Instead every
//! patient carries a small array of keys derived from its names, and a search is a GIN lookup
//! of a handful of keys derived from the query:
//!
//! - names are *folded*: lower case, diacritics removed (José -> jose, Müller -> muller,
//!   Øster -> oster), apostrophes dropped (O'Brien -> obrien), split into words;
//! - `e:word` for each word (exact match),
//! - `p:prefix` for each prefix of each word (prefix match: "smi" finds Smith),
//! - `d:word` and `d:word-minus-one-letter` (words of four letters or more): two words within
//!   one edit (a letter missing, extra, wrong, or two letters swapped) share a `d:` key, so
//!   "Jhon" finds John and "Smitson" finds Smithson (the symmetric-deletion idea of SymSpell).
//!
//! A patient matches a query when every query word matches one of its name words at least
//! fuzzily; results rank exact matches first, then prefix matches, then fuzzy ones.

use std::collections::BTreeSet;

use unicode_normalization::{UnicodeNormalization, char::is_combining_mark};

/// Longest word considered; longer ones are cut (no real name part is longer).
const MAX_WORD_CHARS: usize = 32;
/// Words shorter than this get no deletion keys: "li" minus a letter would match everything.
const MIN_FUZZY_CHARS: usize = 4;
/// Most words a name query may have.
pub const MAX_QUERY_WORDS: usize = 5;

/// Lower case without diacritics, apostrophes removed, other punctuation turned into spaces.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.nfkd() {
        if is_combining_mark(c) || matches!(c, '\'' | '\u{2019}' | '\u{02BC}' | '`') {
            continue;
        }
        for lower in c.to_lowercase() {
            match lower {
                'ß' => out.push_str("ss"),
                'æ' => out.push_str("ae"),
                'œ' => out.push_str("oe"),
                'þ' => out.push_str("th"),
                'ø' => out.push('o'),
                'ł' => out.push('l'),
                'đ' | 'ð' => out.push('d'),
                'ı' => out.push('i'),
                c if c.is_alphanumeric() => out.push(c),
                _ => out.push(' '),
            }
        }
    }
    out
}

/// The folded words of `text`, each at most [`MAX_WORD_CHARS`] characters.
pub fn words(text: &str) -> Vec<String> {
    fold(text)
        .split_whitespace()
        .map(|w| w.chars().take(MAX_WORD_CHARS).collect())
        .collect()
}

/// `word` with one character removed, for each position (duplicates removed).
fn deletions(word: &str) -> BTreeSet<String> {
    let chars: Vec<char> = word.chars().collect();
    (0..chars.len())
        .map(|skip| chars.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, c)| c).collect())
        .collect()
}

fn fuzzy_keys(word: &str, keys: &mut BTreeSet<String>) {
    keys.insert(format!("d:{word}"));
    if word.chars().count() >= MIN_FUZZY_CHARS {
        keys.extend(deletions(word).into_iter().map(|d| format!("d:{d}")));
    }
}

/// The search keys stored with a patient whose names are `given` and `family`.
pub fn index_keys(given: &str, family: &str) -> Vec<String> {
    let mut keys = BTreeSet::new();
    for word in words(given).into_iter().chain(words(family)) {
        keys.insert(format!("e:{word}"));
        let mut prefix = String::new();
        for c in word.chars() {
            prefix.push(c);
            keys.insert(format!("p:{prefix}"));
        }
        fuzzy_keys(&word, &mut keys);
    }
    keys.into_iter().collect()
}

/// The sort key of a name: folded words joined by single spaces.
pub fn sort_key(name: &str) -> String {
    words(name).join(" ")
}

/// How well a patient matches a name query; lower ranks first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    Exact = 0,
    Prefix = 1,
    Fuzzy = 2,
}

/// A parsed name query: per word, the keys to look up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameQuery {
    /// `e:` keys, one per word: all present means an exact match.
    pub exact: Vec<String>,
    /// `p:` keys, one per word: all present means every word is a prefix of a name word.
    pub prefix: Vec<String>,
    /// Per word, the keys any of which makes that word match.
    pub fuzzy: Vec<Vec<String>>,
}

impl NameQuery {
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let words = words(text);
        if words.is_empty() {
            return Err("must contain at least one letter or digit");
        }
        if words.len() > MAX_QUERY_WORDS {
            return Err("must have at most 5 words");
        }
        let mut exact = Vec::new();
        let mut prefix = Vec::new();
        let mut fuzzy = Vec::new();
        for word in words {
            exact.push(format!("e:{word}"));
            prefix.push(format!("p:{word}"));
            let mut keys = BTreeSet::from([format!("p:{word}")]);
            fuzzy_keys(&word, &mut keys);
            fuzzy.push(keys.into_iter().collect());
        }
        Ok(Self { exact, prefix, fuzzy })
    }

    /// How a patient with these index keys ranks, or `None` if it does not match. This is the
    /// specification of the SQL in the repository (`@>` for exact and prefix, `&&` per word).
    pub fn rank(&self, patient_keys: &[String]) -> Option<Rank> {
        let has = |k: &String| patient_keys.binary_search(k).is_ok();
        if !self.fuzzy.iter().all(|word_keys| word_keys.iter().any(has)) {
            return None;
        }
        if self.exact.iter().all(has) {
            Some(Rank::Exact)
        } else if self.prefix.iter().all(has) {
            Some(Rank::Prefix)
        } else {
            Some(Rank::Fuzzy)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank(query: &str, given: &str, family: &str) -> Option<Rank> {
        NameQuery::parse(query).expect("valid query").rank(&index_keys(given, family))
    }

    #[test]
    fn folding_removes_case_accents_and_apostrophes() {
        assert_eq!(fold("José"), "jose");
        assert_eq!(fold("MÜLLER"), "muller");
        assert_eq!(fold("O'Brien"), "obrien");
        assert_eq!(fold("Øster-Straße"), "oster strasse");
        assert_eq!(fold("Łukasz"), "lukasz");
        assert_eq!(words("  Mary-Jane   van der Berg "), ["mary", "jane", "van", "der", "berg"]);
        assert_eq!(words("王小明"), ["王小明"]);
    }

    #[test]
    fn exact_beats_prefix_beats_fuzzy() {
        assert_eq!(rank("john", "John", "Smith"), Some(Rank::Exact));
        assert_eq!(rank("jo", "John", "Smith"), Some(Rank::Prefix));
        assert_eq!(rank("jhon", "John", "Smith"), Some(Rank::Fuzzy));
        assert!(Rank::Exact < Rank::Prefix && Rank::Prefix < Rank::Fuzzy);
    }

    #[test]
    fn one_typo_is_tolerated_in_any_form() {
        for typo in ["jhon", "jon", "johnn", "jonh", "joxn"] {
            assert_eq!(rank(typo, "John", "Smith"), Some(Rank::Fuzzy), "{typo}");
        }
        assert!(rank("smitson", "Ann", "Smithson").is_some());
        assert!(rank("smithsonn", "Ann", "Smithson").is_some());
        assert!(rank("anna", "Ana", "Lopez").is_some());
    }

    #[test]
    fn accents_and_case_do_not_matter_either_way() {
        assert_eq!(rank("JOSE", "José", "García"), Some(Rank::Exact));
        assert_eq!(rank("garcía", "Jose", "Garcia"), Some(Rank::Exact));
        assert_eq!(rank("obrien", "Sean", "O'Brien"), Some(Rank::Exact));
    }

    #[test]
    fn every_word_of_the_query_must_match() {
        assert_eq!(rank("john smith", "John", "Smith"), Some(Rank::Exact));
        assert_eq!(rank("smith john", "John", "Smith"), Some(Rank::Exact));
        assert_eq!(rank("john smi", "John", "Smith"), Some(Rank::Prefix));
        assert_eq!(rank("jhon smith", "John", "Smith"), Some(Rank::Fuzzy));
        assert_eq!(rank("john jones", "John", "Smith"), None);
    }

    #[test]
    fn two_typos_or_unrelated_names_do_not_match() {
        assert_eq!(rank("jxyn", "John", "Smith"), None);
        assert_eq!(rank("peter", "John", "Smith"), None);
        assert_eq!(rank("li", "Lo", "Wu"), None);
    }

    #[test]
    fn queries_without_words_or_with_too_many_are_refused() {
        assert!(NameQuery::parse(" - ' ").is_err());
        assert!(NameQuery::parse("a b c d e f").is_err());
    }

    #[test]
    fn keys_are_sorted_and_unique() {
        let keys = index_keys("Anna Anna", "Annan");
        let mut sorted = keys.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(keys, sorted);
    }
}
