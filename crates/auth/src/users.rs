//! Users: who may log in, with which roles.

use kit::{FieldError, auth::Role, db::ResultExt, email::Email};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use time::OffsetDateTime;
use utoipa::ToSchema;

pub use crate::user_id::UserId;
use crate::{
    error::{Error, Result},
    passwords, revocations,
};

const COLUMNS: &str = "id, email, display_name, roles, enabled, created_at, updated_at";

/// The unique constraint on `users.email_key` (PostgreSQL's default name for it).
const UNIQUE_EMAIL: &str = "users_email_key_key";

/// A user as the API shows it (never with its password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct User {
    #[schema(value_type = Uuid)]
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub roles: Vec<Role>,
    pub enabled: bool,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

/// A colleague's name, and nothing else about them (what any signed-in user may see).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct UserName {
    #[schema(value_type = Uuid)]
    pub id: UserId,
    pub display_name: String,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    id: UserId,
    email: String,
    display_name: String,
    roles: Vec<String>,
    enabled: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id,
            email: row.email,
            display_name: row.display_name,
            roles: row.roles.iter().filter_map(|r| Role::parse(r)).collect(),
            enabled: row.enabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// What an admin sends to create a user.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NewUser {
    #[schema(example = "frontdesk@clinic.example", format = Email, max_length = 254)]
    pub email: String,
    #[schema(example = "Front Desk", min_length = 1, max_length = 100)]
    pub display_name: String,
    /// 12 to 128 characters.
    #[schema(min_length = 12, max_length = 128)]
    pub password: String,
    /// At least one.
    #[schema(min_items = 1, max_items = 5)]
    pub roles: Vec<Role>,
}

/// What an admin may change; absent members stay as they are.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UserPatch {
    #[schema(min_length = 1, max_length = 100)]
    pub display_name: Option<String>,
    /// At least one.
    #[schema(min_items = 1, max_items = 5)]
    pub roles: Option<Vec<Role>>,
    /// A disabled user cannot log in, and its refresh tokens stop working.
    pub enabled: Option<bool>,
}

fn check_display_name(name: &str, errors: &mut Vec<FieldError>) {
    let length = name.trim().chars().count();
    if length == 0 || length > 100 || name.chars().any(char::is_control) {
        errors
            .push(FieldError::body("/displayName", "must be 1 to 100 characters without control characters"));
    }
}

fn check_roles(roles: &[Role], errors: &mut Vec<FieldError>) {
    if roles.is_empty() {
        errors.push(FieldError::body("/roles", "must name at least one role"));
    } else if roles.len() > Role::ALL.len() {
        errors.push(FieldError::body("/roles", "must name at most 5 roles"));
    }
}

/// A user to create, valid in every field: what [`NewUser::parse`] makes of a request.
#[derive(Debug, Clone)]
pub struct UserDraft {
    pub email: Email,
    pub display_name: String,
    pub password: String,
    pub roles: Vec<Role>,
}

impl NewUser {
    /// Validates every field at once, reporting each invalid one by JSON pointer.
    pub fn parse(self) -> Result<UserDraft> {
        let mut errors = Vec::new();
        let email =
            Email::parse(&self.email).map_err(|detail| errors.push(FieldError::body("/email", detail)));
        check_display_name(&self.display_name, &mut errors);
        errors.extend(passwords::check_policy(&self.password, "/password"));
        check_roles(&self.roles, &mut errors);
        match email {
            Ok(email) if errors.is_empty() => Ok(UserDraft {
                email,
                display_name: self.display_name.trim().to_owned(),
                password: self.password,
                roles: self.roles,
            }),
            _ => Err(Error::Invalid(errors)),
        }
    }
}

impl UserPatch {
    pub fn validate(&self) -> Result<()> {
        let mut errors = Vec::new();
        if let Some(name) = &self.display_name {
            check_display_name(name, &mut errors);
        }
        if let Some(roles) = &self.roles {
            check_roles(roles, &mut errors);
        }
        if errors.is_empty() { Ok(()) } else { Err(Error::Invalid(errors)) }
    }
}

fn role_names(roles: &[Role]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = roles.iter().map(|r| r.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
}

#[derive(Clone)]
pub struct UserRepository {
    pool: PgPool,
}

impl UserRepository {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// Creates a user whose password is already hashed.
    pub async fn create(&self, user: &UserDraft, password_hash: &str) -> Result<User> {
        insert(&self.pool, user, password_hash).await
    }

    pub async fn get(&self, id: UserId) -> Result<User> {
        let row: Option<UserRow> = sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(User::from).ok_or(Error::NotFound)
    }

    /// The user and its password hash, by email (any case).
    pub async fn find_for_login(&self, email: &str) -> Result<Option<(User, String)>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: UserRow,
            password_hash: String,
        }
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS}, password_hash FROM users WHERE email_key = $1"))
                .bind(Email::key_of(email))
                .fetch_optional(&self.pool)
                .await?;
        Ok(row.map(|r| (r.user.into(), r.password_hash)))
    }

    pub async fn password_hash(&self, id: UserId) -> Result<String> {
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(Error::NotFound)
    }

    /// The display names of those of `ids` that are users (disabled ones too: they still
    /// wrote what they wrote), ordered by id.
    pub async fn names(&self, ids: &[UserId]) -> Result<Vec<UserName>> {
        let ids: Vec<uuid::Uuid> = ids.iter().copied().map(uuid::Uuid::from).collect();
        Ok(sqlx::query_as("SELECT id, display_name FROM users WHERE id = ANY($1) ORDER BY id")
            .bind(ids)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Users ordered by email, after `after_email` (keyset paging).
    pub async fn list(&self, limit: u32, after_email: Option<&str>) -> Result<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM users WHERE ($1::text IS NULL OR email_key > $1) ORDER BY email_key LIMIT $2"
        ))
        .bind(after_email)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(User::from).collect())
    }

    /// Applies `patch`; disabling a user also revokes all its refresh tokens, in the same
    /// transaction.
    pub async fn update(&self, id: UserId, patch: &UserPatch, now: OffsetDateTime) -> Result<User> {
        let mut tx = self.pool.begin().await?;
        let row: Option<UserRow> = sqlx::query_as(&format!(
            "UPDATE users SET display_name = coalesce($2, display_name), roles = coalesce($3, roles),
                              enabled = coalesce($4, enabled), updated_at = now()
             WHERE id = $1 RETURNING {COLUMNS}"
        ))
        .bind(id)
        .bind(patch.display_name.as_deref().map(str::trim))
        .bind(patch.roles.as_deref().map(role_names))
        .bind(patch.enabled)
        .fetch_optional(&mut *tx)
        .await?;
        let user = User::from(row.ok_or(Error::NotFound)?);
        if patch.enabled == Some(false) {
            revoke_refresh_tokens(&mut tx, id).await?;
        }
        if patch.enabled == Some(false) || patch.roles.is_some() {
            // Tokens issued before carry the old roles, or belong to a disabled user.
            revocations::refuse_tokens_of(&mut tx, id, now).await?;
        }
        tx.commit().await?;
        Ok(user)
    }

    /// Sets a new password hash and revokes the user's refresh tokens (every session must log
    /// in again with the new password).
    pub async fn set_password(&self, id: UserId, password_hash: &str, now: OffsetDateTime) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1")
            .bind(id)
            .bind(password_hash)
            .execute(&mut *tx)
            .await?;
        revoke_refresh_tokens(&mut tx, id).await?;
        revocations::refuse_tokens_of(&mut tx, id, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Creates the first admin if there are no users at all; never touches existing users.
    /// Returns whether it created one. Safe with several replicas starting at once.
    pub async fn bootstrap_admin(
        &self,
        email: Email,
        password: String,
        hasher: &passwords::Hasher,
    ) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('pms.auth.bootstrap'))").execute(&mut *tx).await?;
        let any: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)").fetch_one(&mut *tx).await?;
        if any {
            return Ok(false);
        }
        let hash = hasher.hash(password.clone()).await?;
        let admin =
            UserDraft { email, display_name: "Administrator".into(), password, roles: vec![Role::Admin] };
        insert(&mut *tx, &admin, &hash).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn any_users(&self) -> Result<bool> {
        Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)").fetch_one(&self.pool).await?)
    }
}

/// The one statement that creates a user.
async fn insert<'e>(
    executor: impl sqlx::PgExecutor<'e>,
    user: &UserDraft,
    password_hash: &str,
) -> Result<User> {
    let row: UserRow = sqlx::query_as(&format!(
        "INSERT INTO users (id, email, email_key, display_name, password_hash, roles, enabled, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, true, now(), now()) RETURNING {COLUMNS}"
    ))
    .bind(UserId::new())
    .bind(user.email.as_str())
    .bind(user.email.key())
    .bind(&user.display_name)
    .bind(password_hash)
    .bind(role_names(&user.roles))
    .fetch_one(executor)
    .await
    .on_constraint(UNIQUE_EMAIL, || Error::DuplicateEmail)?;
    Ok(row.into())
}

/// Revokes every refresh token of a user (disabled, or password changed), in the caller's
/// transaction.
async fn revoke_refresh_tokens(tx: &mut sqlx::PgConnection, user: UserId) -> Result<()> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user)
        .execute(tx)
        .await?;
    Ok(())
}
