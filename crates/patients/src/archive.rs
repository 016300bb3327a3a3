//! Months of the audit trail archived to S3-compatible object storage, and brought back.
//!
//! `pms audit-archive YYYY-MM` exports a month that has ended (its partition, in the order of
//! its primary key, as CSV with a header) inside one snapshot, counts its rows in the same
//! snapshot, and uploads the file with its SHA-256 (S3 verifies it on arrival) and a manifest
//! (month, rows, bytes, SHA-256, columns). Only after S3 reports the same checksum and size does
//! it detach and drop the partition, and only if the month still has the counted rows.
//!
//! `pms audit-restore YYYY-MM` downloads the month, checks size and SHA-256 against the
//! manifest, creates the month's partition again and loads the rows (with their ids and times)
//! in one transaction, which commits only if the row count matches: the month is then part of
//! the trail again, readable through `GET /api/audit-events` for an investigation.
//!
//! Both run as the schema's owner (they detach, drop and create partitions). The month goes
//! through a temporary file, never whole in memory; one object is written with one PUT, which
//! S3 allows up to 5 GB (larger months need a multipart upload: not built yet).

use std::fmt;

use aws_sdk_s3::{
    Client,
    primitives::ByteStream,
    types::{ChecksumAlgorithm, ChecksumMode},
};
use base64::{Engine as _, engine::general_purpose::STANDARD as BASE64};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Connection, PgPool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The trail's columns, in the archive's order.
const COLUMNS: &str = "id, occurred_at, action, patient_id, actor_id, actor_roles, request_id, outcome, details, \
                       client_address, user_agent, client_request_id";

/// A calendar month (UTC), as `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    year: i32,
    month: u8,
}

impl Month {
    pub fn parse(text: &str) -> Result<Self, ArchiveError> {
        let invalid = || ArchiveError::Month(text.to_owned());
        let (year, month) = text.split_once('-').ok_or_else(invalid)?;
        let (year, month): (i32, u8) =
            (year.parse().map_err(|_| invalid())?, month.parse().map_err(|_| invalid())?);
        if year.to_string().len() != 4 || !(1..=12).contains(&month) || text.len() != 7 {
            return Err(invalid());
        }
        Ok(Self { year, month })
    }

    /// The current month (UTC).
    pub fn current() -> Self {
        let today = time::OffsetDateTime::now_utc();
        Self { year: today.year(), month: u8::from(today.month()) }
    }

    /// The name of its partition.
    pub fn partition(self) -> String {
        format!("audit_events_{}_{:02}", self.year, self.month)
    }

    /// Its first instant, as PostgreSQL reads a timestamp with time zone.
    fn start(self) -> String {
        format!("{}-{:02}-01T00:00:00Z", self.year, self.month)
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:02}", self.year, self.month)
    }
}

/// What an archived month holds; stored beside its rows and checked when they come back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub month: String,
    pub rows: i64,
    pub bytes: u64,
    /// Hex SHA-256 of the CSV object.
    pub sha256: String,
    pub columns: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{0}: a month is written YYYY-MM")]
    Month(String),
    #[error("{0} has not ended: only past months are archived")]
    NotEnded(Month),
    #[error("{0} has no partition in the trail (archived already, or never written)")]
    NoPartition(Month),
    #[error("{0} is in the trail already: nothing to restore")]
    AlreadyPresent(Month),
    #[error(
        "{month} changed while it was archived ({counted} rows counted, {now} now): nothing was removed; run it again"
    )]
    Changed { month: Month, counted: i64, now: i64 },
    #[error("the archive of {month} does not match its manifest ({what}): nothing was restored")]
    Corrupt { month: Month, what: String },
    #[error("object storage: {0}")]
    Storage(String),
    #[error("temporary file: {0}")]
    File(#[from] std::io::Error),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

fn storage(err: impl std::error::Error) -> ArchiveError {
    // The SDK's Display is terse ("service error"); the source chain says what happened.
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    ArchiveError::Storage(text)
}

/// Where archived months go: a bucket and a key prefix.
#[derive(Clone)]
pub struct ArchiveStore {
    pub client: Client,
    pub bucket: String,
    pub prefix: String,
}

impl ArchiveStore {
    fn key(&self, month: Month, suffix: &str) -> String {
        format!("{}{month}{suffix}", self.prefix)
    }

    /// The body of the month's object ending in `suffix`.
    async fn get(&self, month: Month, suffix: &str) -> Result<ByteStream, ArchiveError> {
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.key(month, suffix))
            .send()
            .await
            .map_err(storage)?;
        Ok(object.body)
    }
}

/// A month on its way through a temporary file: what was written, its SHA-256 and size.
struct Spool {
    file: TempFile,
    out: tokio::fs::File,
    hasher: Sha256,
    bytes: u64,
}

impl Spool {
    async fn new(month: Month) -> std::io::Result<Self> {
        let file = TempFile::new(month);
        let out = tokio::fs::File::create(&file.0).await?;
        Ok(Self { file, out, hasher: Sha256::new(), bytes: 0 })
    }

    async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.hasher.update(chunk);
        self.bytes += chunk.len() as u64;
        self.out.write_all(chunk).await
    }

    /// The file, the SHA-256 of its content and its size.
    async fn finish(mut self) -> std::io::Result<(TempFile, Vec<u8>, u64)> {
        self.out.flush().await?;
        Ok((self.file, self.hasher.finalize().to_vec(), self.bytes))
    }
}

/// The rows of `partition` as `executor` sees them.
async fn count_rows(executor: &mut sqlx::PgConnection, partition: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(&format!("SELECT count(*) FROM patients.{partition}")).fetch_one(executor).await
}

/// A temporary file, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(month: Month) -> Self {
        Self(std::env::temp_dir().join(format!("pms-audit-{month}-{}.csv", uuid::Uuid::new_v4())))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Archives `month` (which must have ended) and removes it from the trail. `owner` connects as
/// the schema's owner.
pub async fn archive(owner: &PgPool, store: &ArchiveStore, month: Month) -> Result<Manifest, ArchiveError> {
    if month >= Month::current() {
        return Err(ArchiveError::NotEnded(month));
    }
    let partition = month.partition();
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('patients.' || $1) IS NOT NULL")
        .bind(&partition)
        .fetch_one(owner)
        .await?;
    if !exists {
        return Err(ArchiveError::NoPartition(month));
    }

    // One snapshot for the count and the rows.
    let mut conn = owner.acquire().await?;
    let mut snapshot = conn.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *snapshot).await?;
    let rows = count_rows(&mut snapshot, &partition).await?;
    let mut spool = Spool::new(month).await?;
    {
        let mut stream = snapshot
            .copy_out_raw(&format!(
                "COPY (SELECT {COLUMNS} FROM patients.{partition} ORDER BY occurred_at, id) TO STDOUT WITH (FORMAT csv, HEADER)"
            ))
            .await?;
        while let Some(chunk) = stream.try_next().await? {
            spool.write(&chunk).await?;
        }
    }
    snapshot.commit().await?;
    let (file, digest, bytes) = spool.finish().await?;
    let manifest = Manifest {
        month: month.to_string(),
        rows,
        bytes,
        sha256: hex(&digest),
        columns: COLUMNS.split(',').map(str::trim).collect::<Vec<_>>().join(","),
    };

    // S3 checks the SHA-256 on arrival and keeps it; the head below reads back what it kept.
    let data_key = store.key(month, ".csv");
    store
        .client
        .put_object()
        .bucket(&store.bucket)
        .key(&data_key)
        .content_type("text/csv")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_sha256(BASE64.encode(&digest))
        .body(ByteStream::from_path(&file.0).await.map_err(storage)?)
        .send()
        .await
        .map_err(storage)?;
    let manifest_json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| ArchiveError::Storage(e.to_string()))?;
    store
        .client
        .put_object()
        .bucket(&store.bucket)
        .key(store.key(month, ".manifest.json"))
        .content_type("application/json")
        .body(ByteStream::from(manifest_json))
        .send()
        .await
        .map_err(storage)?;
    let stored = store
        .client
        .head_object()
        .bucket(&store.bucket)
        .key(&data_key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .map_err(storage)?;
    let stored_sha = stored.checksum_sha256().map(str::to_owned);
    if stored.content_length() != Some(manifest.bytes as i64)
        || stored_sha.as_deref() != Some(&BASE64.encode(&digest))
    {
        return Err(ArchiveError::Corrupt {
            month,
            what: format!("stored {:?} bytes, checksum {stored_sha:?}", stored.content_length()),
        });
    }

    // Remove the month only if it still holds exactly what was archived.
    let mut detach = conn.begin().await?;
    sqlx::query(&format!("LOCK TABLE patients.{partition} IN ACCESS EXCLUSIVE MODE"))
        .execute(&mut *detach)
        .await?;
    let now = count_rows(&mut detach, &partition).await?;
    if now != rows {
        return Err(ArchiveError::Changed { month, counted: rows, now });
    }
    sqlx::query(&format!("ALTER TABLE patients.audit_events DETACH PARTITION patients.{partition}"))
        .execute(&mut *detach)
        .await?;
    sqlx::query(&format!("DROP TABLE patients.{partition}")).execute(&mut *detach).await?;
    detach.commit().await?;
    Ok(manifest)
}

/// Brings an archived `month` back into the trail, after checking it against its manifest.
pub async fn restore(owner: &PgPool, store: &ArchiveStore, month: Month) -> Result<Manifest, ArchiveError> {
    let manifest = store.get(month, ".manifest.json").await?.collect().await.map_err(storage)?.into_bytes();
    let manifest: Manifest = serde_json::from_slice(&manifest)
        .map_err(|e| ArchiveError::Corrupt { month, what: format!("unreadable manifest: {e}") })?;
    let mut body = store.get(month, ".csv").await?;
    let mut spool = Spool::new(month).await?;
    while let Some(chunk) = body.try_next().await.map_err(storage)? {
        spool.write(&chunk).await?;
    }
    let (file, digest, bytes) = spool.finish().await?;
    let sha256 = hex(&digest);
    if bytes != manifest.bytes || sha256 != manifest.sha256 {
        return Err(ArchiveError::Corrupt {
            month,
            what: format!(
                "{bytes} bytes with SHA-256 {sha256}, the manifest says {} and {}",
                manifest.bytes, manifest.sha256
            ),
        });
    }

    let partition = month.partition();
    let mut conn = owner.acquire().await?;
    let mut load = conn.begin().await?;
    sqlx::query("SELECT patients.ensure_audit_partitions($1::timestamptz)")
        .bind(month.start())
        .execute(&mut *load)
        .await?;
    let present = count_rows(&mut load, &partition).await?;
    if present > 0 {
        return Err(ArchiveError::AlreadyPresent(month));
    }
    let mut copy = load
        .copy_in_raw(&format!("COPY patients.audit_events ({COLUMNS}) FROM STDIN WITH (FORMAT csv, HEADER)"))
        .await?;
    let mut input = tokio::fs::File::open(&file.0).await?;
    let mut buffer = vec![0; 1 << 20];
    loop {
        let read = input.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        copy.send(&buffer[..read]).await?;
    }
    let loaded = copy.finish().await?;
    let counted = count_rows(&mut load, &partition).await?;
    if loaded as i64 != manifest.rows || counted != manifest.rows {
        return Err(ArchiveError::Corrupt {
            month,
            what: format!(
                "{loaded} rows loaded, {counted} in the month, the manifest says {}",
                manifest.rows
            ),
        });
    }
    load.commit().await?;
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_read_as_yyyy_mm_only() {
        assert_eq!(
            Month::parse("2026-03").map(|m| m.partition()).ok(),
            Some("audit_events_2026_03".to_owned())
        );
        for bad in ["2026-3", "2026-13", "2026-00", "26-03", "2026/03", "2026-03-01", "abcd-ef", ""] {
            assert!(Month::parse(bad).is_err(), "{bad}");
        }
        assert!(Month::parse("2025-12").ok() < Month::parse("2026-01").ok());
    }
}
