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
//! A one-word query ranks in tiers ([`WordTier`]): family name equal to the word, given name
//! equal, family name starting with it, given name starting with it, then family names and
//! given names with a word that starts with it or is one typo away. The first four tiers are
//! ordered btree ranges on the folded names; the last two look the word's keys up in a small
//! dictionary of distinct names (`name_dictionary`) and read those names through the same
//! ordered indexes, so every tier reads only the rows of its page. A query
//! of several words needs every word to match a name word at least with one typo, and ranks
//! all-exact, then all-prefix, then the rest; the intersection keeps its candidates few.

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
    fold(text).split_whitespace().map(|w| w.chars().take(MAX_WORD_CHARS).collect()).collect()
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

/// The keys of one name (a family or a given name) for the name dictionary.
pub fn name_keys(name: &str) -> Vec<String> {
    index_keys("", name)
}

/// The sort key of a name: folded words joined by single spaces.
pub fn sort_key(name: &str) -> String {
    words(name).join(" ")
}

/// The smallest string greater than every string starting with `prefix` (byte order), so
/// `prefix <= x < successor(prefix)` selects the strings that start with `prefix`.
pub fn successor(prefix: &str) -> String {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last as u32 + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return chars.into_iter().collect();
        }
    }
    // Only reached for a prefix of U+10FFFF characters: nothing sorts after it.
    "\u{10FFFF}\u{10FFFF}".to_owned()
}

/// How a one-word query ranks a patient, best first. Each tier is one ordered index range, so
/// a page of a common name reads only the rows it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WordTier {
    /// The family name is the word ("smith": Smith).
    FamilyExact = 0,
    /// The given name is the word ("john": John Adams).
    GivenExact = 1,
    /// The family name starts with the word ("smi": Smithson).
    FamilyPrefix = 2,
    /// The given name starts with the word ("jo": Johnny).
    GivenPrefix = 3,
    /// A word of the family name starts with the word or is one typo away ("smitson":
    /// Smithson, "marquez": García Márquez).
    FamilyOther = 4,
    /// The same for a word of the given name ("jhon": John).
    GivenOther = 5,
}

impl From<WordTier> for i16 {
    /// The tier's rank, as search results and cursors carry it.
    fn from(tier: WordTier) -> i16 {
        tier as i16
    }
}

impl WordTier {
    pub const ALL: [WordTier; 6] = [
        WordTier::FamilyExact,
        WordTier::GivenExact,
        WordTier::FamilyPrefix,
        WordTier::GivenPrefix,
        WordTier::FamilyOther,
        WordTier::GivenOther,
    ];
}

/// A one-word name query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordQuery {
    /// The folded word.
    pub word: String,
    /// [`successor`] of the word: the end of its prefix range.
    pub prefix_end: String,
    /// `p:` and `d:` keys: a name having any of them matches in the `*Other` tiers.
    pub keys: Vec<String>,
}

/// A query of several words: every word must match a name word at least with one typo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordsQuery {
    /// The words joined as a family name's sort key: a family name that is exactly the query
    /// ranks first (rank 0, "van dijk": Anna Van Dijk), read in order like a one-word query.
    pub family: String,
    /// `e:` keys, one per word: all present means every word is a whole name word (rank 1).
    pub exact: Vec<String>,
    /// `p:` keys, one per word: all present means every word is a prefix (rank 2).
    pub prefix: Vec<String>,
    /// Per word, the keys any of which makes that word match with at most one typo: rank 3
    /// if the family name alone matches every word so, else rank 4 (or no match).
    pub fuzzy: Vec<Vec<String>>,
}

/// A parsed name query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameQuery {
    Word(WordQuery),
    Words(WordsQuery),
}

fn word_keys(word: &str) -> Vec<String> {
    let mut keys = BTreeSet::from([format!("p:{word}")]);
    fuzzy_keys(word, &mut keys);
    keys.into_iter().collect()
}

impl NameQuery {
    pub fn parse(text: &str) -> Result<Self, &'static str> {
        let words = words(text);
        match words.len() {
            0 => Err("must contain at least one letter or digit"),
            1 => {
                let word = words.into_iter().next().unwrap_or_default();
                Ok(NameQuery::Word(WordQuery { prefix_end: successor(&word), keys: word_keys(&word), word }))
            }
            n if n > MAX_QUERY_WORDS => Err("must have at most 5 words"),
            _ => Ok(NameQuery::Words(WordsQuery {
                family: words.join(" "),
                exact: words.iter().map(|w| format!("e:{w}")).collect(),
                prefix: words.iter().map(|w| format!("p:{w}")).collect(),
                fuzzy: words.iter().map(|w| word_keys(w)).collect(),
            })),
        }
    }

    /// How a patient with these names ranks (lower first), or `None` if it does not match.
    /// This is the specification the repository's SQL implements.
    pub fn rank(&self, given: &str, family: &str) -> Option<i16> {
        let patient_keys = index_keys(given, family);
        let has = |k: &String| patient_keys.binary_search(k).is_ok();
        match self {
            NameQuery::Word(q) => {
                let name_matches = |name: &str| {
                    let keys = name_keys(name);
                    q.keys.iter().any(|k| keys.binary_search(k).is_ok())
                };
                let (given_sort, family_sort) = (sort_key(given), sort_key(family));
                let tier = if family_sort == q.word {
                    WordTier::FamilyExact
                } else if given_sort == q.word {
                    WordTier::GivenExact
                } else if family_sort.starts_with(&q.word) {
                    WordTier::FamilyPrefix
                } else if given_sort.starts_with(&q.word) {
                    WordTier::GivenPrefix
                } else if name_matches(family) {
                    WordTier::FamilyOther
                } else if name_matches(given) {
                    WordTier::GivenOther
                } else {
                    return None;
                };
                Some(tier as i16)
            }
            NameQuery::Words(q) => {
                let family_keys = name_keys(family);
                if !q.fuzzy.iter().all(|word_keys| word_keys.iter().any(has)) {
                    None
                } else if sort_key(family) == q.family {
                    Some(0)
                } else if q.exact.iter().all(has) {
                    Some(1)
                } else if q.prefix.iter().all(has) {
                    Some(2)
                } else if q
                    .fuzzy
                    .iter()
                    .all(|word_keys| word_keys.iter().any(|k| family_keys.binary_search(k).is_ok()))
                {
                    Some(3)
                } else {
                    Some(4)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rank(query: &str, given: &str, family: &str) -> Option<i16> {
        NameQuery::parse(query).expect("valid query").rank(given, family)
    }

    const FAMILY_EXACT: Option<i16> = Some(WordTier::FamilyExact as i16);
    const GIVEN_EXACT: Option<i16> = Some(WordTier::GivenExact as i16);
    const FAMILY_PREFIX: Option<i16> = Some(WordTier::FamilyPrefix as i16);
    const GIVEN_PREFIX: Option<i16> = Some(WordTier::GivenPrefix as i16);
    const FAMILY_OTHER: Option<i16> = Some(WordTier::FamilyOther as i16);
    const GIVEN_OTHER: Option<i16> = Some(WordTier::GivenOther as i16);

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
    fn one_word_ranks_family_then_given_exact_then_prefixes_then_the_rest() {
        assert_eq!(rank("smith", "John", "Smith"), FAMILY_EXACT);
        assert_eq!(rank("john", "John", "Smith"), GIVEN_EXACT);
        assert_eq!(rank("smi", "John", "Smith"), FAMILY_PREFIX);
        assert_eq!(rank("jo", "John", "Smith"), GIVEN_PREFIX);
        assert_eq!(rank("jhon", "John", "Smith"), GIVEN_OTHER);
        assert_eq!(rank("smiht", "John", "Smith"), FAMILY_OTHER);
        assert_eq!(rank("marquez", "Gabriel", "García Márquez"), FAMILY_OTHER);
        assert_eq!(rank("maria", "Anna Maria", "Lopez"), GIVEN_OTHER);
        assert_eq!(rank("garcia", "Gabriel", "García Márquez"), FAMILY_PREFIX);
        assert!(FAMILY_EXACT < GIVEN_EXACT && GIVEN_EXACT < FAMILY_PREFIX);
        assert!(FAMILY_PREFIX < GIVEN_PREFIX && GIVEN_PREFIX < FAMILY_OTHER && FAMILY_OTHER < GIVEN_OTHER);
    }

    #[test]
    fn one_typo_is_tolerated_in_any_form() {
        for typo in ["jhon", "jon", "johnn", "jonh", "joxn"] {
            assert_eq!(rank(typo, "John", "Smith"), GIVEN_OTHER, "{typo}");
        }
        assert!(rank("smitson", "Ann", "Smithson").is_some());
        assert!(rank("smithsonn", "Ann", "Smithson").is_some());
        assert!(rank("anna", "Ana", "Lopez").is_some());
    }

    #[test]
    fn accents_and_case_do_not_matter_either_way() {
        assert_eq!(rank("JOSE", "José", "García"), GIVEN_EXACT);
        assert_eq!(rank("garcía", "Jose", "Garcia"), FAMILY_EXACT);
        assert_eq!(rank("obrien", "Sean", "O'Brien"), FAMILY_EXACT);
    }

    #[test]
    fn every_word_of_the_query_must_match() {
        assert_eq!(rank("john smith", "John", "Smith"), Some(1));
        assert_eq!(rank("smith john", "John", "Smith"), Some(1));
        assert_eq!(rank("john smi", "John", "Smith"), Some(2));
        assert_eq!(rank("jhon smith", "John", "Smith"), Some(4));
        assert_eq!(rank("john jones", "John", "Smith"), None);
    }

    #[test]
    fn typos_within_the_family_name_rank_before_typos_across_both_names() {
        // "d eboer": each word one edit from a word of the family name De Boer.
        assert_eq!(rank("d eboer", "Anna", "De Boer"), Some(3));
        assert_eq!(rank("van dijkk", "Piet", "van Dijk"), Some(3));
        // The same typos, the words split between given and family name.
        assert_eq!(rank("van dijkk", "Van", "Dijk"), Some(4));
        // A prefix of every word still ranks as a prefix, whichever name holds it.
        assert_eq!(rank("de boe", "Anna", "De Boer"), Some(2));
    }

    #[test]
    fn words_that_are_the_whole_family_name_rank_first() {
        assert_eq!(rank("van dijk", "Anna", "Van Dijk"), Some(0));
        assert_eq!(rank("VAN-DIJK", "Anna", "van Dijk"), Some(0));
        // The same words split between given and family name, or in another order.
        assert_eq!(rank("van dijk", "Van", "Dijk"), Some(1));
        assert_eq!(rank("dijk van", "Anna", "Van Dijk"), Some(1));
        assert_eq!(rank("van dijk", "Anna", "Van Dijkstra"), Some(2));
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
    fn the_successor_bounds_exactly_the_strings_with_the_prefix() {
        let end = successor("smi");
        assert_eq!(end, "smj");
        for inside in ["smi", "smith", "smi\u{10FFFF}"] {
            assert!("smi" <= inside && inside < end.as_str(), "{inside}");
        }
        assert!("smj" >= end.as_str());
        assert_eq!(successor("a\u{D7FF}"), "a\u{E000}");
        assert_eq!(successor("b\u{10FFFF}"), "c");
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
