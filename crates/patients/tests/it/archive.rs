//! Archiving a month of the audit trail to S3 (a real S3 API: the moto server that
//! scripts/test.sh starts) and bringing it back.

use aws_sdk_s3::{
    Client,
    config::{BehaviorVersion, Credentials, Region},
    primitives::ByteStream,
};
use patients::archive::{self, ArchiveError, ArchiveStore, Month};
use sqlx::PgPool;

use crate::helpers::TestApp;

/// A bucket of its own on the test S3 server (`PMS_TEST_S3_URL`).
async fn store() -> ArchiveStore {
    let url = std::env::var("PMS_TEST_S3_URL")
        .unwrap_or_else(|_| panic!("no S3 server for tests; run ./scripts/test.sh or set PMS_TEST_S3_URL"));
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "tests"))
        .force_path_style(true)
        .build();
    let client = Client::from_conf(config);
    let bucket = format!("audit-{}", uuid::Uuid::new_v4().simple());
    client.create_bucket().bucket(&bucket).send().await.expect("bucket");
    ArchiveStore { client, bucket, prefix: "patients/audit-events/".to_owned() }
}

/// Every row of the trail in `month`, as text, in order.
async fn rows(pool: &PgPool, month: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT a::text FROM patients.audit_events a
         WHERE occurred_at >= $1::timestamptz AND occurred_at < $1::timestamptz + interval '1 month'
         ORDER BY occurred_at, id",
    )
    .bind(format!("{month}-01T00:00:00Z"))
    .fetch_all(pool)
    .await
    .expect("rows")
}

#[tokio::test]
async fn a_past_month_goes_to_s3_verifiably_and_comes_back_whole() {
    let app = TestApp::spawn().await;
    let store = store().await;
    let owner = PgPool::connect_with(app.db_options().clone()).await.expect("owner");
    sqlx::query("SELECT patients.ensure_audit_partitions('2026-02-01T00:00:00Z')")
        .execute(&owner)
        .await
        .expect("months");
    sqlx::query(
        "INSERT INTO patients.audit_events (occurred_at, action, patient_id, actor_id, actor_roles, request_id, outcome,
                                            details, client_address, user_agent)
         SELECT '2026-03-01T00:00:00Z'::timestamptz + g * interval '1 minute', 'read', gen_random_uuid(),
                'user-' || g % 7, '{clinician,admin}', 'req-' || g, 'ok', '{\"note\": \"a, \\\"quoted\\\" value\"}',
                '10.0.0.' || g % 250, 'agent \"' || g || '\", with comma'
         FROM generate_series(1, 2000) g",
    )
    .execute(&owner)
    .await
    .expect("march");
    let march = rows(&owner, "2026-03").await;
    assert_eq!(march.len(), 2000);

    let month = Month::parse("2026-03").expect("month");
    let manifest = archive::archive(&owner, &store, month).await.expect("archive");
    assert_eq!(manifest.rows, 2000);
    assert!(rows(&owner, "2026-03").await.is_empty(), "the month left the database");
    let gone: bool = sqlx::query_scalar("SELECT to_regclass('patients.audit_events_2026_03') IS NULL")
        .fetch_one(&owner)
        .await
        .expect("gone");
    assert!(gone, "its partition is dropped");
    let object = store
        .client
        .get_object()
        .bucket(&store.bucket)
        .key("patients/audit-events/2026-03.csv")
        .send()
        .await
        .expect("object");
    let csv = object.body.collect().await.expect("body").into_bytes();
    assert_eq!(csv.len() as u64, manifest.bytes);
    assert!(csv.starts_with(b"id,occurred_at,action,patient_id"), "a CSV with its header");

    assert!(matches!(archive::archive(&owner, &store, month).await, Err(ArchiveError::NoPartition(_))));
    let restored = archive::restore(&owner, &store, month).await.expect("restore");
    assert_eq!(restored, manifest);
    assert_eq!(rows(&owner, "2026-03").await, march, "every row is back, unchanged");
    assert!(matches!(archive::restore(&owner, &store, month).await, Err(ArchiveError::AlreadyPresent(_))));
    // The restored month is part of the trail again, for the API as well.
    let through_api: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_events WHERE occurred_at >= '2026-03-01T00:00:00Z' AND occurred_at < '2026-04-01T00:00:00Z'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("runtime role reads it");
    assert_eq!(through_api, 2000);
}

#[tokio::test]
async fn a_damaged_archive_is_refused_and_the_current_month_is_never_archived() {
    let app = TestApp::spawn().await;
    let store = store().await;
    let owner = PgPool::connect_with(app.db_options().clone()).await.expect("owner");
    assert!(matches!(
        archive::archive(&owner, &store, Month::current()).await,
        Err(ArchiveError::NotEnded(_))
    ));

    sqlx::query("SELECT patients.ensure_audit_partitions('2026-01-01T00:00:00Z')")
        .execute(&owner)
        .await
        .expect("months");
    sqlx::query(
        "INSERT INTO patients.audit_events (occurred_at, action, outcome)
         SELECT '2026-01-10T00:00:00Z'::timestamptz + g * interval '1 second', 'search', 'ok' FROM generate_series(1, 300) g",
    )
    .execute(&owner)
    .await
    .expect("january");
    let month = Month::parse("2026-01").expect("month");
    archive::archive(&owner, &store, month).await.expect("archive");
    // Someone changes a row of the archived object.
    let key = "patients/audit-events/2026-01.csv";
    let object = store.client.get_object().bucket(&store.bucket).key(key).send().await.expect("get");
    let mut csv = object.body.collect().await.expect("body").into_bytes().to_vec();
    let at = csv.iter().rposition(|b| *b == b's').expect("a letter");
    csv[at] = b'S';
    store
        .client
        .put_object()
        .bucket(&store.bucket)
        .key(key)
        .body(ByteStream::from(csv))
        .send()
        .await
        .expect("put");

    let refused = archive::restore(&owner, &store, month).await;
    assert!(matches!(refused, Err(ArchiveError::Corrupt { .. })), "{refused:?}");
    assert!(rows(&owner, "2026-01").await.is_empty(), "nothing of a damaged archive is loaded");
}
