//! Keyset pagination: a page size and an opaque cursor naming the last row seen.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::ValidationError;

/// Where the next page starts: after the row with this creation time and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// Creation time of the last row of the previous page.
    pub created_at: DateTime<Utc>,
    /// Id of the last row of the previous page (breaks ties between equal times).
    pub id: Uuid,
}

impl Cursor {
    /// The form of an encoded cursor, as a regular expression (for API descriptions): the
    /// creation time in hexadecimal microseconds (14 digits reach past the year 4000), a dot, the
    /// id's 32 hex digits. Every string of this form decodes.
    pub const PATTERN: &'static str = r"^[0-9a-f]{1,14}\.[0-9a-f]{32}$";

    /// The opaque text form handed to clients.
    pub fn encode(&self) -> String {
        format!(
            "{:x}.{}",
            self.created_at.timestamp_micros(),
            self.id.simple()
        )
    }

    /// Parses a cursor a client sent back.
    pub fn decode(s: &str) -> Result<Self, ValidationError> {
        let invalid = || {
            ValidationError::new(
                "cursor",
                "invalid_cursor",
                "is not a cursor this API returned",
            )
        };
        let (micros, id) = s.split_once('.').ok_or_else(invalid)?;
        let micros = i64::from_str_radix(micros, 16).map_err(|_| invalid())?;
        let created_at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?;
        let id = Uuid::try_parse(id).map_err(|_| invalid())?;
        Ok(Self { created_at, id })
    }
}

/// A page size and a starting point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Rows per page, within `1..=MAX_LIMIT`.
    pub limit: u32,
    /// Start after this row; `None` starts at the beginning.
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// Rows per page when the caller does not say.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// The most rows one page may hold.
    pub const MAX_LIMIT: u32 = 500;

    /// Validates a page size and a cursor string.
    pub fn parse(limit: Option<u32>, cursor: Option<&str>) -> Result<Self, ValidationError> {
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(ValidationError::new(
                "limit",
                "out_of_range",
                format!("must be between 1 and {}", Self::MAX_LIMIT),
            ));
        }
        let after = cursor.map(Cursor::decode).transpose()?;
        Ok(Self { limit, after })
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: Self::DEFAULT_LIMIT,
            after: None,
        }
    }
}

/// One page of results and where the next one starts (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// The cursor for the next page.
    pub next_cursor: Option<Cursor>,
}

impl<T> Page<T> {
    /// The page of `rows` fetched with one row more than `limit`: the extra row only tells that
    /// another page follows. `cursor` makes the next page's cursor from the last row kept.
    pub fn from_overfetch<E>(
        mut rows: Vec<T>,
        limit: u32,
        cursor: impl FnOnce(&T) -> Result<Cursor, E>,
    ) -> Result<Self, E> {
        let limit = limit as usize;
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = match rows.last() {
            Some(last) if more => Some(cursor(last)?),
            _ => None,
        };
        Ok(Page {
            items: rows,
            next_cursor,
        })
    }
}

#[cfg(test)]
mod overfetch_tests {
    use super::*;

    fn cursor(n: &u32) -> Result<Cursor, String> {
        Ok(Cursor {
            created_at: chrono::DateTime::from_timestamp(i64::from(*n), 0).ok_or("time")?,
            id: Uuid::nil(),
        })
    }

    #[test]
    fn the_extra_row_only_says_there_is_more() {
        let page = Page::from_overfetch(vec![1, 2, 3], 2, cursor).unwrap();
        assert_eq!(page.items, [1, 2]);
        assert_eq!(page.next_cursor.unwrap().created_at.timestamp(), 2);
        let last = Page::from_overfetch(vec![1, 2], 2, cursor).unwrap();
        assert!(last.next_cursor.is_none());
        let empty = Page::from_overfetch(Vec::<u32>::new(), 2, cursor).unwrap();
        assert!(empty.items.is_empty() && empty.next_cursor.is_none());
        let failing = Page::from_overfetch(vec![1, 2, 3], 2, |_| Err::<Cursor, _>("bad row"));
        assert_eq!(failing.err(), Some("bad row"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let c = Cursor {
            created_at: crate::now(),
            id: Uuid::new_v4(),
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
    }

    #[test]
    fn every_cursor_of_the_documented_form_decodes() {
        for micros in ["0", "1", "ffffffffffffff", "64a1b2c3d4e5f"] {
            let s = format!("{micros}.{}", Uuid::new_v4().simple());
            assert!(Cursor::decode(&s).is_ok(), "{s}");
        }
        let encoded = Cursor {
            created_at: crate::now(),
            id: Uuid::new_v4(),
        }
        .encode();
        let (micros, id) = encoded.split_once('.').unwrap();
        assert!(
            (1..=14).contains(&micros.len()) && id.len() == 32,
            "{encoded}"
        );
    }

    #[test]
    fn bad_cursors_and_limits_are_rejected() {
        for bad in ["", "x", "zz.1", "10.not-a-uuid"] {
            assert_eq!(
                Cursor::decode(bad).unwrap_err().code,
                "invalid_cursor",
                "{bad}"
            );
        }
        assert!(PageRequest::parse(Some(0), None).is_err());
        assert!(PageRequest::parse(Some(501), None).is_err());
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, 50);
    }
}
