//! Gateway sessions seen in events, per tenant: upserted on every event that names one, listed
//! newest activity last, purged once inactive past a TTL.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use tenant_core::{Page, PageRequest, TenantId};
use uuid::Uuid;

use crate::error::unique_violation;
use crate::schema::sessions;
use crate::{AnyConnection, StoreResult, write_transaction};

/// A session as an event names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSeen {
    /// The gateway's session key, e.g. `agent:a1:telegram:acc:direct:42`.
    pub session_key: String,
    /// The channel kind.
    pub channel: String,
    /// The peer (user, group or room id), when the key names one.
    pub peer_id: Option<String>,
    /// `direct`, `group`, `channel`, …
    pub chat_type: String,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = sessions)]
pub struct SessionRow {
    /// UUID text.
    pub id: String,
    /// The owning tenant.
    pub tenant_id: String,
    /// The gateway's session key.
    pub session_key: String,
    /// The channel kind.
    pub channel: String,
    /// The peer id.
    pub peer_id: Option<String>,
    /// `direct`, `group`, `channel`, …
    pub chat_type: String,
    /// First seen (UTC).
    pub created_at: NaiveDateTime,
    /// Last event seen (UTC).
    pub last_activity_at: NaiveDateTime,
}

/// Records activity on a session: creates it or moves its last activity to `now`.
pub fn upsert(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    seen: &SessionSeen,
    now: DateTime<Utc>,
) -> StoreResult<()> {
    let touch = |c: &mut AnyConnection| {
        diesel::update(
            sessions::table
                .filter(sessions::tenant_id.eq(tenant_id.to_string()))
                .filter(sessions::session_key.eq(&seen.session_key)),
        )
        .set(sessions::last_activity_at.eq(now.naive_utc()))
        .execute(c)
    };
    if touch(conn)? > 0 {
        return Ok(());
    }
    let inserted = write_transaction(conn, |c| {
        diesel::insert_into(sessions::table)
            .values((
                sessions::id.eq(Uuid::new_v4().to_string()),
                sessions::tenant_id.eq(tenant_id.to_string()),
                sessions::session_key.eq(&seen.session_key),
                sessions::channel.eq(&seen.channel),
                sessions::peer_id.eq(&seen.peer_id),
                sessions::chat_type.eq(&seen.chat_type),
                sessions::created_at.eq(now.naive_utc()),
                sessions::last_activity_at.eq(now.naive_utc()),
            ))
            .execute(c)
    });
    match inserted {
        Ok(_) => Ok(()),
        // Another request created it meanwhile.
        Err(e) if unique_violation(&e).is_some() => {
            touch(conn)?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// A page of a tenant's sessions, oldest first.
pub fn list(
    conn: &mut AnyConnection,
    tenant_id: &TenantId,
    page: &PageRequest,
) -> StoreResult<Page<SessionRow>> {
    let mut query = sessions::table
        .filter(sessions::tenant_id.eq(tenant_id.to_string()))
        .select(SessionRow::as_select())
        .order((sessions::created_at.asc(), sessions::id.asc()))
        .limit(i64::from(page.limit) + 1)
        .into_boxed();
    if let Some(after) = page.after {
        let at = after.created_at.naive_utc();
        let id = after.id.hyphenated().to_string();
        query = query.filter(
            sessions::created_at
                .gt(at)
                .or(sessions::created_at.eq(at).and(sessions::id.gt(id))),
        );
    }
    let rows = query.load::<SessionRow>(conn)?;
    Page::from_overfetch(rows, page.limit, |last| {
        crate::paging::cursor_of("sessions", last.created_at, &last.id)
    })
}

/// Deletes every session (of every tenant) inactive since before `cutoff`; returns how many.
pub fn purge_inactive(conn: &mut AnyConnection, cutoff: DateTime<Utc>) -> StoreResult<usize> {
    Ok(
        diesel::delete(sessions::table.filter(sessions::last_activity_at.lt(cutoff.naive_utc())))
            .execute(conn)?,
    )
}
