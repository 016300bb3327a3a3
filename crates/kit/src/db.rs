//! PostgreSQL: one pool per service, confined to the service's own schema.
//!
//! Each service owns a schema (`patients`, `auth`, ...). Its pool sets `search_path` to that
//! schema, so its queries and its migration history table (`_sqlx_migrations`) live there and
//! never collide with another service sharing the same database; pointing a service at a
//! database of its own in production needs no code change.

use std::time::Duration;

use sqlx::{
    PgPool,
    migrate::{MigrateError, Migrator},
    postgres::{PgConnectOptions, PgPoolOptions},
};

use crate::config::{self, ConfigError};

/// A pooled connection idle at least this long is pinged before it is handed out (it may have
/// been closed by the server or a proxy meanwhile). Busy connections are not: under load a
/// ping per query is a whole extra round trip to PostgreSQL for every request.
const PING_IF_IDLE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct DbConfig {
    /// A `postgres://` URL: what the service runs as. Secret: never logged.
    pub url: String,
    /// What migrations run as (they own the schema), when not `url`'s user. Secret.
    pub migration_url: Option<String>,
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    pub statement_timeout: Duration,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbConfig")
            .field("url", &"<redacted>")
            .field("max_connections", &self.max_connections)
            .field("acquire_timeout", &self.acquire_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// `url` with `password` in it, if one is given: secret stores hand out the password alone
/// (`PMS_DATABASE_PASSWORD`, `PMS_MIGRATION_DATABASE_PASSWORD`), the rest of the URL is
/// configuration. `name` is the variable `url` came from, for the error.
fn with_password(name: &str, url: String, password: Option<String>) -> Result<String, ConfigError> {
    let Some(password) = password else { return Ok(url) };
    let invalid = |reason: &str| ConfigError::Invalid { name: name.to_owned(), reason: reason.to_owned() };
    let mut parsed = url::Url::parse(&url).map_err(|_| invalid("not a URL"))?;
    parsed
        .set_password(Some(&password))
        .map_err(|()| invalid("a URL without a host cannot take a password"))?;
    Ok(parsed.into())
}

impl DbConfig {
    /// The database of `service`: `PMS_<SERVICE>_DATABASE_URL`, else the shared
    /// `PMS_DATABASE_URL` (one is required), tuned by the shared `PMS_DB_*` variables.
    pub fn from_env(service: &str) -> Result<Self, ConfigError> {
        let own = format!("PMS_{}_DATABASE_URL", service.to_ascii_uppercase());
        let url = config::var(&own)
            .or_else(|| config::var("PMS_DATABASE_URL"))
            .ok_or_else(|| ConfigError::Missing { name: format!("{own} or PMS_DATABASE_URL") })?;
        let url = with_password(&own, url, config::var("PMS_DATABASE_PASSWORD"))?;
        let mut config = Self::with_url(url).tuned_from_env()?;
        let own = format!("PMS_{}_MIGRATION_DATABASE_URL", service.to_ascii_uppercase());
        config.migration_url = match config::var(&own).or_else(|| config::var("PMS_MIGRATION_DATABASE_URL")) {
            Some(url) => Some(with_password(&own, url, config::var("PMS_MIGRATION_DATABASE_PASSWORD"))?),
            None => None,
        };
        Ok(config)
    }

    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            migration_url: None,
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
            statement_timeout: Duration::from_secs(5),
        }
    }

    fn tuned_from_env(mut self) -> Result<Self, ConfigError> {
        self.max_connections = config::parse_or("PMS_DB_MAX_CONNECTIONS", self.max_connections)?;
        self.acquire_timeout = config::millis_or("PMS_DB_ACQUIRE_TIMEOUT_MS", self.acquire_timeout)?;
        self.statement_timeout = config::millis_or("PMS_DB_STATEMENT_TIMEOUT_MS", self.statement_timeout)?;
        Ok(self)
    }
}

/// How PostgreSQL plans a pool's prepared statements (`plan_cache_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plans {
    /// PostgreSQL's default: five plans for each call's parameters, then the statement's
    /// generic plan if it is estimated to cost no more.
    Chosen,
    /// Plan every call for its parameters (`force_custom_plan`). For a service whose
    /// statements each handle a batch (planning costs little against the rows) on tables that
    /// start empty: a generic plan made while a table was nearly empty scans it sequentially,
    /// and a pooled connection keeps that plan until the table is next analyzed
    /// (docs/benchmarks.md, 2026-12-04, fourth session).
    Custom,
    /// Keep each statement's generic plan from its first call (`force_generic_plan`). For
    /// short statements whose planning costs as much as running them and whose good plan does
    /// not depend on the values: PostgreSQL's own choice plans a statement with a bound
    /// `LIMIT` or a range of parameters afresh on every call, because its generic plan's
    /// estimate looks worse (docs/benchmarks.md, 2026-12-05, sixth session).
    Generic,
}

impl Plans {
    fn setting(self) -> Option<&'static str> {
        match self {
            Plans::Chosen => None,
            Plans::Custom => Some("force_custom_plan"),
            Plans::Generic => Some("force_generic_plan"),
        }
    }
}

/// The schema a service owns and the migrations that build it (embedded in the binary).
#[derive(Debug)]
pub struct Schema {
    /// The schema's name, which is also the service's name (`patients`, `auth`).
    pub name: &'static str,
    pub migrator: &'static Migrator,
    /// How the service's pool plans its statements.
    pub plans: Plans,
}

/// A pool of a schema's connections other than the service's own ([`Schema::connect_for`]).
#[derive(Debug, Clone, Copy)]
pub struct Purpose {
    /// What the pool's statements are for: its connections' `application_name` is
    /// `pms-<schema>-<name>`.
    pub name: &'static str,
    pub plans: Plans,
    /// The pool's size, at most the configured one.
    pub max_connections: u32,
}

impl Schema {
    /// Opens a pool whose connections see only this schema (plus `public` for extensions).
    pub async fn connect(&self, config: &DbConfig) -> Result<PgPool, sqlx::Error> {
        self.connect_with(config.url.parse()?, config).await
    }

    /// As [`connect`](Self::connect), with options already parsed (tests pick a fresh database).
    pub async fn connect_with(
        &self,
        options: PgConnectOptions,
        config: &DbConfig,
    ) -> Result<PgPool, sqlx::Error> {
        self.open(options, config, None).await
    }

    /// A second pool of this schema, for the statements of one `purpose` that need other
    /// plans than the service's pool gives (a setting of a connection, not of a statement).
    pub async fn connect_for(&self, config: &DbConfig, purpose: Purpose) -> Result<PgPool, sqlx::Error> {
        self.open(config.url.parse()?, config, Some(purpose)).await
    }

    /// Opens the service's own pool (`purpose` `None`) or the pool of one purpose.
    async fn open(
        &self,
        options: PgConnectOptions,
        config: &DbConfig,
        purpose: Option<Purpose>,
    ) -> Result<PgPool, sqlx::Error> {
        let statement_timeout = format!("{}", config.statement_timeout.as_millis());
        let (name, plans, max_connections) = match purpose {
            None => (format!("pms-{}", self.name), self.plans, config.max_connections),
            Some(purpose) => {
                (format!("pms-{}-{}", self.name, purpose.name), purpose.plans, purpose.max_connections)
            }
        };
        let mut options = options.application_name(&name).options([
            ("search_path", format!("{},public", self.name)),
            ("statement_timeout", statement_timeout),
        ]);
        if let Some(mode) = plans.setting() {
            options = options.options([("plan_cache_mode", mode)]);
        }
        PgPoolOptions::new()
            .max_connections(max_connections.clamp(1, config.max_connections.max(1)))
            .acquire_timeout(config.acquire_timeout)
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for >= PING_IF_IDLE {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            })
            .connect_with(options)
            .await
    }

    /// Creates the schema if needed and applies its migrations. Safe to run from several
    /// replicas at once: sqlx serialises them with an advisory lock.
    pub async fn migrate(&self, pool: &PgPool) -> Result<(), MigrateError> {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                .bind(self.name)
                .fetch_one(pool)
                .await?;
        if !exists {
            // IF NOT EXISTS still matters: another replica may create it between check and create.
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {}", quote_ident(self.name)))
                .execute(pool)
                .await?;
        }
        self.migrator.run(pool).await
    }

    /// The group role whose privileges the service runs with (`pms_<schema>_runtime`): created
    /// and granted by the schema's own migrations, never owner of anything, and on the audit
    /// tables allowed to `INSERT` and `SELECT` only.
    pub fn runtime_role(&self) -> String {
        format!("pms_{}_runtime", self.name)
    }

    /// Migrates as `config.migration_url` (or `config.url`), then, when the service runs as
    /// another user, makes that user a member of [`runtime_role`](Self::runtime_role): what
    /// `pms migrate` and `pms <service>` do first. Returns the migrator's pool.
    pub async fn connect_and_migrate(&self, config: &DbConfig) -> Result<PgPool, MigrateError> {
        let migrator = match &config.migration_url {
            Some(url) => DbConfig { url: url.clone(), ..config.clone() },
            None => config.clone(),
        };
        let pool = self.connect(&migrator).await?;
        self.migrate(&pool).await?;
        let runtime: PgConnectOptions = config.url.parse()?;
        let owner: PgConnectOptions = migrator.url.parse()?;
        if runtime.get_username() != owner.get_username() {
            ensure_login(&pool, runtime.get_username(), url_password(&config.url).as_deref()).await?;
            self.grant_runtime_role(&pool, runtime.get_username()).await?;
        }
        Ok(pool)
    }

    async fn grant_runtime_role(&self, pool: &PgPool, user: &str) -> Result<(), sqlx::Error> {
        let member = || async {
            sqlx::query_scalar::<_, bool>("SELECT pg_has_role($1, $2, 'MEMBER')")
                .bind(user)
                .bind(self.runtime_role())
                .fetch_one(pool)
                .await
        };
        if member().await? {
            return Ok(());
        }
        let grant = format!("GRANT {} TO {}", quote_ident(&self.runtime_role()), quote_ident(user));
        match sqlx::query(&grant).execute(pool).await {
            Ok(_) => Ok(()),
            // Several databases of one cluster may be migrated at once (tests): a concurrent
            // grant of the same membership is as good as ours.
            Err(err) => {
                if member().await? {
                    Ok(())
                } else {
                    Err(err)
                }
            }
        }
    }
}

/// The password in a `postgres://` URL, decoded.
fn url_password(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let password = parsed.password()?;
    Some(percent_encoding::percent_decode_str(password).decode_utf8_lossy().into_owned())
}

/// Creates the login role `user` (with `password`, if any) unless it exists: a deployment
/// gives the migration step the runtime user's URL and needs no SQL of its own. Several
/// replicas may race; a role created meanwhile is as good as ours.
async fn ensure_login(pool: &PgPool, user: &str, password: Option<&str>) -> Result<(), sqlx::Error> {
    let exists = || async {
        sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)")
            .bind(user)
            .fetch_one(pool)
            .await
    };
    if exists().await? {
        return Ok(());
    }
    let mut create = format!("CREATE ROLE {} LOGIN", quote_ident(user));
    if let Some(password) = password {
        create.push_str(&format!(" PASSWORD {}", quote_literal(password)));
    }
    match sqlx::query(&create).execute(pool).await {
        Ok(_) => {
            tracing::info!(role = user, "created the runtime login role");
            Ok(())
        }
        Err(err) => {
            if exists().await? {
                Ok(())
            } else {
                Err(err)
            }
        }
    }
}

/// Quotes an SQL string literal.
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Quotes an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// True when the error means "the database is unreachable or too busy" (answer 503), as
/// opposed to a bug (answer 500).
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => {
            // 57014 query_canceled (statement timeout), 53xxx insufficient resources,
            // 57P0x admin shutdown / cannot connect now, 08xxx connection exceptions.
            db.code().is_some_and(|c| {
                c == "57014" || c.starts_with("53") || c.starts_with("57P") || c.starts_with("08")
            })
        }
        _ => false,
    }
}

/// True when the database refused a value as given (a NUL or an unconvertible character in
/// text, a value too long to store or index): the client's input, not a fault of ours.
pub fn is_unacceptable_value(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            // 22021 character_not_in_repertoire (NUL), 22P05 untranslatable_character,
            // 22001 string_data_right_truncation, 54000 program_limit_exceeded (index row size).
            db.code().is_some_and(|c| matches!(c.as_ref(), "22021" | "22P05" | "22001" | "54000"))
        }
        _ => false,
    }
}

/// The answer for a database error that no caller handled: 503 (with `Retry-After`) when the
/// database is unreachable or busy; 422 when it refused a value of the request (a safety
/// net: validation should have caught it first); else 500 with the cause logged, never sent.
pub fn problem(err: sqlx::Error) -> crate::Problem {
    if is_unavailable(&err) {
        tracing::warn!(error = %err, "database unavailable");
        crate::Problem::unavailable("the database is unavailable or busy")
    } else if is_unacceptable_value(&err) {
        tracing::warn!(error = %err, "the database refused a value of the request");
        let mut problem = crate::Problem::validation(Vec::new());
        problem.detail = Some("a value of the request cannot be stored or searched as given".into());
        problem
    } else {
        crate::Problem::internal(&err)
    }
}

/// The name of the violated constraint, for unique, check and exclusion violations.
pub fn violated_constraint(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) => db.constraint(),
        _ => None,
    }
}

/// Turns the violation of a named constraint into a domain error (a 409 or 422 at the edge),
/// so that a repository says which constraint means what once, next to its query.
pub trait ResultExt<T> {
    /// `Err(on_violation())` if the error is a violation of `constraint`; any other database
    /// error converts into `E` as usual.
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        constraint: &str,
        on_violation: impl FnOnce() -> E,
    ) -> Result<T, E>;
}

impl<T> ResultExt<T> for Result<T, sqlx::Error> {
    fn on_constraint<E: From<sqlx::Error>>(
        self,
        constraint: &str,
        on_violation: impl FnOnce() -> E,
    ) -> Result<T, E> {
        self.map_err(|err| {
            if violated_constraint(&err) == Some(constraint) { on_violation() } else { E::from(err) }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_from_a_secret_store_goes_into_the_url_whatever_its_characters() {
        let password = "p@ss:w/rd?#% ü'";
        let url = with_password(
            "PMS_DATABASE_URL",
            "postgres://pms_app@db.internal:5432/pms?sslmode=require".into(),
            Some(password.into()),
        )
        .expect("a URL");
        assert_eq!(url_password(&url).as_deref(), Some(password));
        let options: PgConnectOptions = url.parse().expect("sqlx reads it");
        assert_eq!(
            (options.get_host(), options.get_username(), options.get_database()),
            ("db.internal", "pms_app", Some("pms"))
        );
        assert_eq!(
            with_password("PMS_DATABASE_URL", "postgres://u:old@h/d".into(), None).expect("unchanged"),
            "postgres://u:old@h/d"
        );
        assert!(with_password("PMS_DATABASE_URL", "not a url".into(), Some("x".into())).is_err());
    }

    #[test]
    fn literals_are_quoted_for_sql() {
        assert_eq!(quote_literal("it's"), "'it''s'");
    }
}
