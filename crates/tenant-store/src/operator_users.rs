//! Operator users: people who run the platform and see every tenant, logging in with an email
//! and an argon2id password.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::Email;
use uuid::Uuid;

use crate::error::unique_violation;
use crate::schema::operator_users;
use crate::{AnyConnection, StoreError, StoreResult};

/// An `operator_users` row. `Debug` leaves out the password hash.
#[derive(Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = operator_users)]
pub struct OperatorUserRow {
    /// UUID text.
    pub id: String,
    /// Normalised email.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// A disabled operator cannot log in or refresh.
    pub disabled: bool,
    /// Creation time (UTC).
    pub created_at: NaiveDateTime,
    /// Last change (UTC).
    pub updated_at: NaiveDateTime,
    /// Last successful login.
    pub last_login_at: Option<NaiveDateTime>,
    /// When the password was last set.
    pub password_changed_at: Option<NaiveDateTime>,
}

impl std::fmt::Debug for OperatorUserRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorUserRow")
            .field("id", &self.id)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

impl OperatorUserRow {
    /// The id as a UUID, or `Corrupt`.
    pub fn uuid(&self) -> StoreResult<Uuid> {
        self.id.parse().map_err(|_| StoreError::Corrupt {
            table: "operator_users",
            id: self.id.clone(),
            reason: "id is not a UUID".into(),
        })
    }
}

/// Creates an operator user; `Conflict` on `email` when the address is taken.
pub fn insert(
    conn: &mut AnyConnection,
    email: &Email,
    password_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<OperatorUserRow> {
    let now = now.naive_utc();
    let row = OperatorUserRow {
        id: Uuid::new_v4().to_string(),
        email: email.as_str().to_owned(),
        password_hash: password_hash.to_owned(),
        disabled: false,
        created_at: now,
        updated_at: now,
        last_login_at: None,
        password_changed_at: Some(now),
    };
    match diesel::insert_into(operator_users::table)
        .values(&row)
        .execute(conn)
    {
        Ok(_) => Ok(row),
        Err(e) if unique_violation(&e).is_some() => Err(StoreError::Conflict {
            field: "email",
            message: "an operator with this email exists".into(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The operator with this id; `NotFound` when there is none.
pub fn find(conn: &mut AnyConnection, id: &Uuid) -> StoreResult<OperatorUserRow> {
    operator_users::table
        .filter(operator_users::id.eq(id.to_string()))
        .select(OperatorUserRow::as_select())
        .first(conn)
        .optional()?
        .ok_or(StoreError::NotFound("operator"))
}

/// The operator with this email, if any.
pub fn find_by_email(
    conn: &mut AnyConnection,
    email: &Email,
) -> StoreResult<Option<OperatorUserRow>> {
    Ok(operator_users::table
        .filter(operator_users::email.eq(email.as_str()))
        .select(OperatorUserRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every operator, oldest first (there are few).
pub fn list(conn: &mut AnyConnection) -> StoreResult<Vec<OperatorUserRow>> {
    Ok(operator_users::table
        .select(OperatorUserRow::as_select())
        .order((operator_users::created_at.asc(), operator_users::id.asc()))
        .load(conn)?)
}

/// Sets an operator's password hash.
pub fn set_password(
    conn: &mut AnyConnection,
    id: &Uuid,
    password_hash: &str,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let now = now.naive_utc();
    let n = diesel::update(operator_users::table.filter(operator_users::id.eq(id.to_string())))
        .set((
            operator_users::password_hash.eq(password_hash),
            operator_users::password_changed_at.eq(Some(now)),
            operator_users::updated_at.eq(now),
        ))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("operator"));
    }
    Ok(())
}

/// Records a successful login.
pub fn touch_login(conn: &mut AnyConnection, id: &Uuid, now: DateTime<Utc>) -> StoreResult<()> {
    diesel::update(operator_users::table.filter(operator_users::id.eq(id.to_string())))
        .set(operator_users::last_login_at.eq(Some(now.naive_utc())))
        .execute(conn)?;
    Ok(())
}

/// Deletes an operator (its refresh tokens go with it).
pub fn delete(conn: &mut AnyConnection, id: &Uuid) -> StoreResult<()> {
    let n = diesel::delete(operator_users::table.filter(operator_users::id.eq(id.to_string())))
        .execute(conn)?;
    if n == 0 {
        return Err(StoreError::NotFound("operator"));
    }
    Ok(())
}
