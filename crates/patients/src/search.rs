//! Searching patient records: the SQL of every search, read through ordered indexes (see
//! docs/adr/0001-name-search-keys.md for why the name search works this way).

use serde::{Deserialize, Serialize};
use sqlx::{Postgres, QueryBuilder};
use time::Date;

use crate::{
    domain::{Patient, PatientId, Phone},
    error::Result,
    mrn::Mrn,
    names::{NameQuery, WordQuery, WordTier, WordsQuery},
    records::{COLUMNS, PatientRepository, PatientRow},
};

/// What to search for; every given filter must match.
#[derive(Debug, Clone, Default)]
pub struct SearchFilter {
    pub name: Option<NameQuery>,
    pub birth_date: Option<Date>,
    pub mrn: Option<Mrn>,
    /// Lower-cased.
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<Phone>,
}

impl SearchFilter {
    /// The names of the filters used: what the audit trail keeps instead of the values.
    pub fn used(&self) -> Vec<&'static str> {
        let mut used = Vec::new();
        if self.name.is_some() {
            used.push("name");
        }
        if self.birth_date.is_some() {
            used.push("birthDate");
        }
        if self.mrn.is_some() {
            used.push("mrn");
        }
        if self.email.is_some() {
            used.push("email");
        }
        if self.phone.is_some() {
            used.push("phone");
        }
        used
    }
}

/// Where the next page starts: the rank and sort key of the last row returned (the sort key
/// is family then given name, or given then family in the given-prefix tier). Sent to clients
/// as a [`kit::json::Cursor`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    #[serde(rename = "r")]
    rank: i16,
    #[serde(rename = "a")]
    first: String,
    #[serde(rename = "b")]
    second: String,
    #[serde(rename = "i")]
    id: PatientId,
}

/// One page of search results.
#[derive(Debug)]
pub struct SearchPage {
    pub items: Vec<Patient>,
    pub next: Option<Position>,
}

#[derive(sqlx::FromRow)]
struct SearchRow {
    #[sqlx(flatten)]
    patient: PatientRow,
    rank: i16,
    /// The row's sort key within its rank.
    k1: String,
    k2: String,
}

impl PatientRepository {
    /// One page of active patients matching `filter`, best matches first (see
    /// [`NameQuery::rank`]); without a name, by family then given name.
    pub async fn search(
        &self,
        filter: &SearchFilter,
        limit: u32,
        after: Option<&Position>,
    ) -> Result<SearchPage> {
        let mut rows = match &filter.name {
            Some(NameQuery::Word(word)) => {
                self.search_ranks(WordTier::ALL, limit, after, |tier, rows, cursor| {
                    tier_query(filter, word, tier, rows, cursor)
                })
                .await?
            }
            Some(NameQuery::Words(words)) => {
                self.search_ranks(0..=4i16, limit, after, |rank, rows, cursor| {
                    words_rank_query(filter, words, rank, rows, cursor)
                })
                .await?
            }
            None => {
                unnamed_query(filter, limit, after).build_query_as().fetch_all(self.search_pool()).await?
            }
        };
        let next = kit::json::next_page(&mut rows, limit, |last| Position {
            rank: last.rank,
            first: last.k1.clone(),
            second: last.k2.clone(),
            id: last.patient.id,
        });
        Ok(SearchPage { items: rows.into_iter().map(|r| Patient::from(r.patient)).collect(), next })
    }

    /// Reads the ranks of a name query in order, from the cursor's rank on, and stops as soon
    /// as the page (plus one row, to know whether there is a next page) is full: a page of a
    /// common name reads only its exact matches, and the prefix or typo ranks only when they
    /// are needed. `query(rank, rows, cursor)` is the SQL of one rank; every rank asks for the
    /// whole page (not only the rows still missing), so that each rank's statement text is the
    /// same for every search with that page size (see [`push_page`]).
    async fn search_ranks<'a, R: Copy + Into<i16>>(
        &self,
        ranks: impl IntoIterator<Item = R>,
        limit: u32,
        after: Option<&'a Position>,
        query: impl Fn(R, usize, Option<&'a Position>) -> QueryBuilder<'a, Postgres>,
    ) -> Result<Vec<SearchRow>> {
        let wanted = limit as usize + 1;
        let mut rows: Vec<SearchRow> = Vec::with_capacity(wanted);
        for rank in ranks {
            let number: i16 = rank.into();
            if after.is_some_and(|c| c.rank > number) {
                continue;
            }
            let cursor = after.filter(|c| c.rank == number);
            let found = query(rank, wanted, cursor)
                .build_query_as::<SearchRow>()
                .fetch_all(self.search_pool())
                .await?;
            let room = wanted - rows.len();
            rows.extend(found.into_iter().take(room));
            if rows.len() >= wanted {
                break;
            }
        }
        Ok(rows)
    }
}

/// One rank of a query of several words ([`NameQuery::rank`]): 0, the family name is the
/// words ("van dijk": Anna Van Dijk); 1, every word is a whole name word (and not rank 0);
/// 2, every word starts a name word (and not rank 1); 3, the family name alone matches every
/// word with at most one typo ("van dijkk": Anna Van Dijk; and not rank 2); 4, every word
/// matches a word of either name with at most one typo (and not rank 2 or 3).
///
/// Ranks 0 and 3 are ranges of the family-ordered index, read in order like a one-word
/// query's family tiers (rank 3 first finds the family names in `name_dictionary`), so a page
/// of a common family name costs about its own rows. The other ranks read their matches
/// through the GIN index and sort only them; a whole word is also a prefix, and a prefix also
/// a typo match, so ranks 1 and 2 need only their own keys. (Before rank 0 existed, a query
/// naming a common two-word family name sorted every patient of that family: 14 ms a search
/// among a million patients; before rank 3, a typo in one ("d eboer") sorted all 4 600 De
/// Boers: 30-40 ms; docs/benchmarks.md.)
fn words_rank_query<'a>(
    filter: &'a SearchFilter,
    q: &'a WordsQuery,
    rank: i16,
    rows: usize,
    cursor: Option<&'a Position>,
) -> QueryBuilder<'a, Postgres> {
    if rank == 0 || rank == 3 {
        let mut sql = QueryBuilder::new(select_rank(rank, BY_FAMILY));
        if rank == 0 {
            sql.push(" AND family_sort = ").push_bind(&q.family);
        } else {
            sql.push(" AND family_sort = ");
            push_similar_names(&mut sql, &q.fuzzy);
            sql.push(" AND NOT name_keys @> ").push_bind(&q.prefix);
        }
        push_filters(&mut sql, filter);
        push_page(&mut sql, BY_FAMILY, false, cursor, rows);
        return sql;
    }
    // The matches are found through the GIN index and then sorted (`OFFSET 0` keeps the
    // planner from walking the whole name-ordered index instead, filtering row by row, which
    // took seconds when matches were rare among a million patients).
    let mut sql = QueryBuilder::new(format!("SELECT * FROM ({}", select_rank(rank, BY_FAMILY)));
    match rank {
        1 => {
            sql.push(" AND name_keys @> ").push_bind(&q.exact);
            sql.push(" AND family_sort <> ").push_bind(&q.family);
        }
        2 => {
            sql.push(" AND name_keys @> ").push_bind(&q.prefix);
            sql.push(" AND NOT name_keys @> ").push_bind(&q.exact);
        }
        _ => {
            for word_keys in &q.fuzzy {
                sql.push(" AND name_keys && ").push_bind(word_keys);
            }
            sql.push(" AND NOT name_keys @> ").push_bind(&q.prefix);
            sql.push(" AND NOT family_sort = ");
            push_similar_names(&mut sql, &q.fuzzy);
        }
    }
    push_filters(&mut sql, filter);
    sql.push(" OFFSET 0) AS matches WHERE true");
    push_page(&mut sql, ("k1", "k2"), false, cursor, rows);
    sql
}

/// `SELECT` of a search's rows of rank `rank`, sorted within it by `keys`, up to its `WHERE`.
fn select_rank(rank: i16, keys: (&str, &str)) -> String {
    format!(
        "SELECT {COLUMNS}, {rank}::smallint AS rank, {} AS k1, {} AS k2 FROM patients WHERE active",
        keys.0, keys.1
    )
}

/// The sort keys of every rank but the given-name tiers: family, then given name.
const BY_FAMILY: (&str, &str) = ("family_sort", "given_sort");

/// `ANY(<names>)`: the names of `name_dictionary` that have, for each of `words`, one of its
/// keys (a word's `p:` and `d:` keys: it starts a word of the name or is one typo away), in
/// index order, so that `family_sort = ANY(...)` reads them as ranges of the ordered index.
fn push_similar_names<'a>(sql: &mut QueryBuilder<'a, Postgres>, words: &'a [Vec<String>]) {
    sql.push("ANY(ARRAY(SELECT name FROM name_dictionary WHERE ");
    let mut conditions = sql.separated(" AND ");
    for word_keys in words {
        conditions.push("keys && ").push_bind_unseparated(word_keys);
    }
    sql.push(" ORDER BY name))");
}

/// The filters other than the name, as `AND` conditions.
fn push_filters<'a>(sql: &mut QueryBuilder<'a, Postgres>, filter: &'a SearchFilter) {
    if let Some(birth_date) = filter.birth_date {
        sql.push(" AND birth_date = ").push_bind(birth_date);
    }
    if let Some(mrn) = &filter.mrn {
        sql.push(" AND mrn = ").push_bind(mrn.as_str());
    }
    if let Some(email) = &filter.email {
        sql.push(" AND email_key = ").push_bind(email);
    }
    if let Some(phone) = &filter.phone {
        sql.push(" AND phone = ").push_bind(phone.as_str());
    }
}

/// `AND ([rank,] k1, k2, id) > (cursor)`, then the order and the limit. `ranked` puts the
/// rank first, for queries whose rows carry several ranks.
///
/// The limit is written into the statement, not bound: PostgreSQL plans a statement whose
/// `LIMIT` is a parameter afresh on every call (it costs a generic plan as if it returned a
/// tenth of the matches, so the plan for the actual limit always looks cheaper), and that
/// planning took as long as running the search (docs/benchmarks.md, 2026-12-05 sixth
/// session). With the limit in the text, a pooled connection plans each statement five
/// times, then keeps its generic plan. The texts number one per page size in use.
fn push_page<'a>(
    sql: &mut QueryBuilder<'a, Postgres>,
    keys: (&str, &str),
    ranked: bool,
    cursor: Option<&'a Position>,
    rows: usize,
) {
    let (k1, k2) = keys;
    let lead = if ranked { "rank, " } else { "" };
    if let Some(cursor) = cursor {
        sql.push(format!(" AND ({lead}{k1}, {k2}, id) > ("));
        if ranked {
            sql.push_bind(cursor.rank).push(", ");
        }
        sql.push_bind(&cursor.first)
            .push(", ")
            .push_bind(&cursor.second)
            .push(", ")
            .push_bind(cursor.id)
            .push(")");
    }
    sql.push(format!(" ORDER BY {lead}{k1}, {k2}, id LIMIT {rows}"));
}

/// One tier of a one-word query. The tiers are disjoint (each excludes what a better tier
/// holds) and each reads `patients_sort` or `patients_given_sort` in order, so a page costs
/// about as many rows as it returns:
///
/// - exact and prefix tiers are ranges of the folded names;
/// - the `*Other` tiers first find, in `name_dictionary`, the distinct names with a word that
///   starts with the query word or is one typo away (a handful), then read exactly those
///   names (`= ANY(sorted names)` on the leading index column keeps the index order).
fn tier_query<'a>(
    filter: &'a SearchFilter,
    q: &'a WordQuery,
    tier: WordTier,
    rows: usize,
    cursor: Option<&'a Position>,
) -> QueryBuilder<'a, Postgres> {
    let keys = match tier {
        WordTier::GivenPrefix | WordTier::GivenOther => ("given_sort", "family_sort"),
        _ => BY_FAMILY,
    };
    let mut sql = QueryBuilder::new(select_rank(tier as i16, keys));
    let (w, end) = (&q.word, &q.prefix_end);
    let not_prefixed = |sql: &mut QueryBuilder<'a, Postgres>, column: &str| {
        sql.push(format!(" AND NOT ({column} >= "))
            .push_bind(w)
            .push(format!(" AND {column} < "))
            .push_bind(end)
            .push(")");
    };
    let similar_names =
        |sql: &mut QueryBuilder<'a, Postgres>| push_similar_names(sql, std::slice::from_ref(&q.keys));
    match tier {
        WordTier::FamilyExact => {
            sql.push(" AND family_sort = ").push_bind(w);
        }
        WordTier::GivenExact => {
            sql.push(" AND given_sort = ").push_bind(w).push(" AND family_sort <> ").push_bind(w);
        }
        // Prefixed but not the word itself: `> w`, not `>= w AND <> w`, so the index range
        // starts after the exact matches instead of reading each of them to drop it.
        WordTier::FamilyPrefix => {
            sql.push(" AND family_sort > ").push_bind(w).push(" AND family_sort < ").push_bind(end);
            sql.push(" AND given_sort <> ").push_bind(w);
        }
        WordTier::GivenPrefix => {
            sql.push(" AND given_sort > ").push_bind(w).push(" AND given_sort < ").push_bind(end);
            not_prefixed(&mut sql, "family_sort");
        }
        WordTier::FamilyOther => {
            sql.push(" AND family_sort = ");
            similar_names(&mut sql);
            not_prefixed(&mut sql, "family_sort");
            not_prefixed(&mut sql, "given_sort");
        }
        WordTier::GivenOther => {
            sql.push(" AND given_sort = ");
            similar_names(&mut sql);
            not_prefixed(&mut sql, "family_sort");
            not_prefixed(&mut sql, "given_sort");
            sql.push(" AND NOT family_sort = ");
            similar_names(&mut sql);
        }
    }
    push_filters(&mut sql, filter);
    push_page(&mut sql, keys, false, cursor, rows);
    sql
}

/// Searches without a name: rank 0, in the indexed order of family and given name.
fn unnamed_query<'a>(
    filter: &'a SearchFilter,
    limit: u32,
    after: Option<&'a Position>,
) -> QueryBuilder<'a, Postgres> {
    let mut sql = QueryBuilder::new(select_rank(0, BY_FAMILY));
    push_filters(&mut sql, filter);
    push_page(&mut sql, BY_FAMILY, false, after, limit as usize + 1);
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_word_tiers_use_ordered_ranges_and_later_tiers_exclude_earlier_ones() {
        let filter = SearchFilter { name: NameQuery::parse("smi").ok(), ..Default::default() };
        let Some(NameQuery::Word(word)) = &filter.name else { panic!("one word") };
        let sql = tier_query(&filter, word, WordTier::FamilyPrefix, 21, None).into_sql();
        // The range itself leaves out the exact matches (rank 0), not a filter after it.
        assert!(sql.contains("family_sort > $1 AND family_sort < $2 AND given_sort <> $3"), "{sql}");
        assert!(!sql.contains("family_sort <>"), "{sql}");
        // The limit is in the text (a bound LIMIT is planned afresh on every call).
        assert!(sql.ends_with("ORDER BY family_sort, given_sort, id LIMIT 21"), "{sql}");
        let cursor = Position {
            rank: 3,
            first: "smith".into(),
            second: "a".into(),
            id: PatientId::from(uuid::Uuid::nil()),
        };
        let sql = tier_query(&filter, word, WordTier::GivenPrefix, 21, Some(&cursor)).into_sql();
        assert!(sql.contains("(given_sort, family_sort, id) > ("), "{sql}");
        assert!(sql.contains("NOT (family_sort >= "), "{sql}");
        let sql = tier_query(&filter, word, WordTier::GivenOther, 21, None).into_sql();
        assert!(
            sql.contains("given_sort = ANY(ARRAY(SELECT name FROM name_dictionary WHERE keys && $1"),
            "{sql}"
        );
        assert!(sql.contains("AND NOT family_sort = ANY(ARRAY("), "{sql}");
        assert!(sql.contains("ORDER BY given_sort, family_sort, id"), "{sql}");
    }

    #[test]
    fn searches_without_a_name_page_on_the_indexed_order() {
        let by_date =
            SearchFilter { birth_date: Some(time::macros::date!(1980 - 01 - 01)), ..Default::default() };
        let cursor = Position {
            rank: 0,
            first: "a".into(),
            second: "b".into(),
            id: PatientId::from(uuid::Uuid::nil()),
        };
        let sql = unnamed_query(&by_date, 20, Some(&cursor)).into_sql();
        assert!(sql.contains("AND (family_sort, given_sort, id) > ("), "{sql}");
        assert!(sql.contains("ORDER BY family_sort, given_sort, id"), "{sql}");
    }

    #[test]
    fn each_rank_of_several_words_reads_only_its_own_matches() {
        let filter = SearchFilter { name: NameQuery::parse("anna smith").ok(), ..Default::default() };
        let Some(NameQuery::Words(words)) = &filter.name else { panic!("two words") };
        let family = words_rank_query(&filter, words, 0, 21, None).into_sql();
        assert!(
            family
                .contains("WHERE active AND family_sort = $1 ORDER BY family_sort, given_sort, id LIMIT 21"),
            "{family}"
        );
        assert!(!family.contains("name_keys"), "{family}");
        let exact = words_rank_query(&filter, words, 1, 21, None).into_sql();
        assert!(exact.contains("AND name_keys @> $1 AND family_sort <> $2 OFFSET 0) AS matches"), "{exact}");
        assert!(exact.ends_with("ORDER BY k1, k2, id LIMIT 21"), "{exact}");
        let prefix = words_rank_query(&filter, words, 2, 21, None).into_sql();
        assert!(prefix.contains("name_keys @> $1 AND NOT name_keys @> $2"), "{prefix}");
        let family_typos = words_rank_query(&filter, words, 3, 21, None).into_sql();
        assert!(
            family_typos.contains(
                "AND family_sort = ANY(ARRAY(SELECT name FROM name_dictionary WHERE keys && $1 \
                 AND keys && $2 ORDER BY name)) AND NOT name_keys @> $3 ORDER BY family_sort, given_sort, id"
            ),
            "{family_typos}"
        );
        let typos = words_rank_query(&filter, words, 4, 21, None).into_sql();
        assert!(typos.contains("name_keys && $1 AND name_keys && $2 AND NOT name_keys @> $3"), "{typos}");
        assert!(
            typos.contains("AND NOT family_sort = ANY(ARRAY(SELECT name FROM name_dictionary"),
            "{typos}"
        );
    }
}
