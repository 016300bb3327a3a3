//! The audit trail is partitioned by month: rows land in their month, the coming months exist
//! before they begin, the trail stays append-only for its owner too, and rows written before
//! the table was partitioned keep their ids and times.

use std::borrow::Cow;

use kit::{db::Schema, testing::TestDatabase};
use sqlx::{PgPool, migrate::Migrator};
use time::{Duration, OffsetDateTime};

use crate::helpers::TestApp;

/// `audit_events_YYYY_MM`, the partition of the month `months` after the current one (UTC).
fn partition(months: i32) -> String {
    let now = OffsetDateTime::now_utc();
    let index = now.year() * 12 + i32::from(u8::from(now.month())) - 1 + months;
    format!("audit_events_{}_{:02}", index.div_euclid(12), index.rem_euclid(12) + 1)
}

async fn partitions(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'patients.audit_events'::regclass ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .expect("partitions")
}

#[tokio::test]
async fn rows_land_in_their_month_and_the_next_months_exist_before_they_begin() {
    let app = TestApp::spawn().await;
    let id = app.register_named("Parti", "Tioned").await;
    assert_eq!(app.get(&format!("/api/patients/{id}")).await.status(), 200);
    let months = partitions(&app.pool).await;
    for ahead in 0..=2 {
        assert!(months.contains(&partition(ahead)), "{} in {months:?}", partition(ahead));
    }
    let homes: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT c.relname::text FROM audit_events a JOIN pg_class c ON c.oid = a.tableoid",
    )
    .fetch_all(&app.pool)
    .await
    .expect("homes");
    assert_eq!(homes, [partition(0)], "the registration and the read are this month's rows");

    // The service's own role (it owns nothing) keeps the months coming; asking again creates
    // nothing twice, asking for earlier months creates those.
    let again: i32 =
        sqlx::query_scalar("SELECT ensure_audit_partitions()").fetch_one(&app.pool).await.expect("again");
    assert_eq!(again, 0);
    let since = OffsetDateTime::now_utc() - Duration::days(80);
    let earlier: i32 = sqlx::query_scalar("SELECT ensure_audit_partitions($1)")
        .bind(since)
        .fetch_one(&app.pool)
        .await
        .expect("earlier");
    assert!((2..=3).contains(&earlier), "{earlier}");
    assert!(partitions(&app.pool).await.contains(&partition(-2)));
}

#[tokio::test]
async fn the_trail_stays_append_only_for_its_owner_in_every_partition() {
    let app = TestApp::spawn().await;
    app.register_named("Kept", "Forever").await;
    let owner = PgPool::connect_with(app.db_options().clone()).await.expect("owner");
    let this_month = format!("patients.{}", partition(0));
    for statement in [
        "UPDATE patients.audit_events SET outcome = 'tampered'".to_owned(),
        "DELETE FROM patients.audit_events".to_owned(),
        "TRUNCATE patients.audit_events".to_owned(),
        format!("UPDATE {this_month} SET outcome = 'tampered'"),
        format!("DELETE FROM {this_month}"),
        format!("TRUNCATE {this_month}"),
    ] {
        let err = sqlx::query(&statement).execute(&owner).await.expect_err(&statement);
        assert!(err.to_string().contains("append-only"), "{statement}: {err}");
    }
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM patients.audit_events")
        .fetch_one(&owner)
        .await
        .expect("count");
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn rows_written_before_partitioning_keep_their_ids_times_and_order() {
    let db = TestDatabase::create().await;
    // The schema as it was before partitioning: migrations 1 to 3.
    let before: &'static Migrator = Box::leak(Box::new(Migrator {
        migrations: Cow::Owned(patients::MIGRATOR.iter().filter(|m| m.version <= 3).cloned().collect()),
        ignore_missing: false,
        locking: true,
        no_tx: false,
    }));
    let old = Schema { name: "patients", migrator: before, plans: kit::db::Plans::Chosen };
    let pool = old.connect_and_migrate(&db.config()).await.expect("migrations 1-3");
    sqlx::query(
        "INSERT INTO audit_events (occurred_at, action, patient_id, actor_id, outcome)
         VALUES ('2026-01-15T10:00:00Z', 'read', gen_random_uuid(), 'old-reader', 'ok'),
                ('2026-03-02T08:30:00Z', 'search', NULL, 'old-reader', 'ok'),
                (now(), 'read', gen_random_uuid(), 'old-reader', 'not_found')",
    )
    .execute(&pool)
    .await
    .expect("old rows");
    let kept: Vec<(i64, OffsetDateTime, String)> =
        sqlx::query_as("SELECT id, occurred_at, action FROM audit_events ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("old");

    let pool = patients::SCHEMA.connect_and_migrate(&db.config()).await.expect("migration 4");
    let moved: Vec<(i64, OffsetDateTime, String)> =
        sqlx::query_as("SELECT id, occurred_at, action FROM audit_events ORDER BY id")
            .fetch_all(&pool)
            .await
            .expect("new");
    assert_eq!(moved, kept, "every row kept its id, time and action");
    let homes: Vec<String> = sqlx::query_scalar(
        "SELECT c.relname::text FROM audit_events a JOIN pg_class c ON c.oid = a.tableoid ORDER BY a.id",
    )
    .fetch_all(&pool)
    .await
    .expect("homes");
    assert_eq!(homes[..2], ["audit_events_2026_01".to_owned(), "audit_events_2026_03".to_owned()]);
    let next: i64 =
        sqlx::query_scalar("INSERT INTO audit_events (action, outcome) VALUES ('search', 'ok') RETURNING id")
            .fetch_one(&pool)
            .await
            .expect("new row");
    assert!(next > kept.last().map_or(0, |k| k.0), "new ids continue after the old ones");
}
