//! Medical record numbers: eight digits from a sequence plus a Damm check digit.
//!
//! The Damm algorithm detects every single mistyped digit and every swap of two adjacent
//! digits, the two errors people make most when reading a number aloud or typing it (Luhn
//! misses 09 <-> 90). A search by MRN whose check digit does not match is answered with a
//! clear 422 instead of an empty result, so the front desk knows to re-read the card.

use std::fmt;

/// Damm's weakly totally anti-symmetric quasigroup of order 10.
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/// The check digit that makes `digits` followed by it valid.
pub fn check_digit(digits: &[u8]) -> u8 {
    digits.iter().fold(0, |interim, &d| DAMM[interim as usize][d as usize])
}

/// The lowest and highest sequence numbers: always eight digits, so every MRN has nine.
pub const FIRST_SEQUENCE: i64 = 10_000_000;
pub const LAST_SEQUENCE: i64 = 99_999_999;

/// A valid medical record number (nine digits, the last one a Damm check digit).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mrn(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MrnError {
    #[error("must be 9 digits")]
    Format,
    #[error("check digit does not match: a digit is probably mistyped")]
    CheckDigit,
}

impl Mrn {
    /// The MRN for sequence number `n` (which must be eight digits).
    pub fn from_sequence(n: i64) -> Self {
        debug_assert!((FIRST_SEQUENCE..=LAST_SEQUENCE).contains(&n));
        let body = format!("{n:08}");
        let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
        Self(format!("{body}{}", check_digit(&digits)))
    }

    /// Reads an MRN as a person types it: spaces and hyphens between digits are ignored.
    pub fn parse(input: &str) -> Result<Self, MrnError> {
        let compact: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if compact.len() != 9 || !compact.bytes().all(|b| b.is_ascii_digit()) {
            return Err(MrnError::Format);
        }
        let digits: Vec<u8> = compact.bytes().map(|b| b - b'0').collect();
        if check_digit(&digits) != 0 {
            return Err(MrnError::CheckDigit);
        }
        Ok(Self(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Mrn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_damm_vector() {
        // The textbook example: 572 has check digit 4.
        assert_eq!(check_digit(&[5, 7, 2]), 4);
        assert_eq!(check_digit(&[5, 7, 2, 4]), 0);
    }

    #[test]
    fn generated_numbers_parse_back() {
        for n in [FIRST_SEQUENCE, 12_345_678, 55_555_555, LAST_SEQUENCE] {
            let mrn = Mrn::from_sequence(n);
            assert_eq!(mrn.as_str().len(), 9);
            assert_eq!(Mrn::parse(mrn.as_str()), Ok(mrn.clone()));
        }
    }

    #[test]
    fn every_single_digit_typo_is_caught() {
        for n in (FIRST_SEQUENCE..FIRST_SEQUENCE + 2_000).step_by(37) {
            let good = Mrn::from_sequence(n).0.into_bytes();
            for pos in 0..good.len() {
                for d in b'0'..=b'9' {
                    if d == good[pos] {
                        continue;
                    }
                    let mut typo = good.clone();
                    typo[pos] = d;
                    let typo = String::from_utf8(typo).expect("ascii");
                    assert_eq!(Mrn::parse(&typo), Err(MrnError::CheckDigit), "{typo}");
                }
            }
        }
    }

    #[test]
    fn every_adjacent_swap_is_caught() {
        for n in (FIRST_SEQUENCE..FIRST_SEQUENCE + 50_000).step_by(101) {
            let good = Mrn::from_sequence(n).0.into_bytes();
            for pos in 0..good.len() - 1 {
                if good[pos] == good[pos + 1] {
                    continue;
                }
                let mut swapped = good.clone();
                swapped.swap(pos, pos + 1);
                let swapped = String::from_utf8(swapped).expect("ascii");
                assert_eq!(Mrn::parse(&swapped), Err(MrnError::CheckDigit), "{swapped}");
            }
        }
    }

    #[test]
    fn separators_are_ignored_and_garbage_is_refused() {
        let mrn = Mrn::from_sequence(12_345_678);
        let spaced = format!("{} {}-{}", &mrn.0[..4], &mrn.0[4..8], &mrn.0[8..]);
        assert_eq!(Mrn::parse(&spaced), Ok(mrn));
        assert_eq!(Mrn::parse("12345"), Err(MrnError::Format));
        assert_eq!(Mrn::parse("12345678x"), Err(MrnError::Format));
    }
}
