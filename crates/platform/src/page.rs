//! Cursor pagination: lists are ordered by `(created_at, id)` and a cursor is the last row's pair,
//! opaque to clients (base64url of `<created_at>.<id>`).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use serde::Serialize;

use crate::error::{PlatformError, Result};

/// Most items per page, and the default.
pub const MAX_LIMIT: u32 = 100;
pub const DEFAULT_LIMIT: u32 = 50;

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<Cursor>,
    pub limit: u32,
}

impl PageRequest {
    /// From the `cursor` and `limit` query parameters, refusing bad ones by field.
    pub fn parse(cursor: Option<&str>, limit: Option<&str>) -> Result<PageRequest> {
        let after = cursor.filter(|c| !c.is_empty()).map(Cursor::decode).transpose()?;
        let limit = match limit {
            None | Some("") => DEFAULT_LIMIT,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => return Err(PlatformError::invalid("limit", format!("must be 1 to {MAX_LIMIT}"))),
            },
        };
        Ok(PageRequest { after, limit })
    }

    pub fn first(limit: u32) -> PageRequest {
        PageRequest { after: None, limit: limit.clamp(1, MAX_LIMIT) }
    }

    /// The bounds to bind: rows strictly after `(at, id)`; the first page starts below every row.
    pub(crate) fn bounds(&self) -> (i64, String) {
        match &self.after {
            Some(cursor) => (cursor.at, cursor.id.clone()),
            None => (i64::MIN, String::new()),
        }
    }

    /// One more than the page, to know whether another follows.
    pub(crate) fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

/// The position after one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub at: i64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        B64URL.encode(format!("{}.{}", self.at, self.id))
    }

    pub fn decode(text: &str) -> Result<Cursor> {
        let bad = || PlatformError::invalid("cursor", "is not a cursor this list returned");
        let bytes = B64URL.decode(text).map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (at, id) = text.split_once('.').ok_or_else(bad)?;
        let at = at.parse().map_err(|_| bad())?;
        if id.is_empty() || id.len() > 128 {
            return Err(bad());
        }
        Ok(Cursor { at, id: id.to_string() })
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Cuts `rows` (fetched with [`PageRequest::fetch`]) to the page, with the cursor of its last
    /// item if more rows follow.
    pub(crate) fn cut(mut rows: Vec<T>, request: &PageRequest, position: impl Fn(&T) -> Cursor) -> Page<T> {
        let more = rows.len() > request.limit as usize;
        rows.truncate(request.limit as usize);
        let next_cursor = if more { rows.last().map(|last| position(last).encode()) } else { None };
        Page { items: rows, next_cursor }
    }
}

/// One page of an organization's rows of `table` (a table with `org_id`, `created_at` and `id`),
/// oldest first: `columns` selected, each row read by `read`, the cursor taken by `position`.
pub(crate) async fn org_rows<T>(
    db: &ledge_db::Database,
    table: &str,
    columns: &str,
    org_id: &str,
    page: &PageRequest,
    read: fn(&ledge_db::Row) -> Result<T>,
    position: impl Fn(&T) -> Cursor,
) -> Result<Page<T>> {
    let (at, id) = page.bounds();
    let sql = format!(
        "SELECT {columns} FROM {table} WHERE org_id = $1 AND (created_at > $2 OR (created_at = $2 AND id > $3))
         ORDER BY created_at, id LIMIT $4"
    );
    let rows = db.rows(&sql, &[org_id.into(), at.into(), (&id).into(), page.fetch().into()]).await?;
    let items = rows.iter().map(read).collect::<Result<Vec<_>>>()?;
    Ok(Page::cut(items, page, position))
}

impl crate::Platform {
    /// The first page of `owner`'s list of `T` from the record cache, else read by `read` and kept
    /// there; a later page is always read. `read` must not have started (futures are lazy), so the
    /// cache's generation is taken before it runs.
    pub(crate) async fn first_page_cached<T: crate::cache::Listed>(
        &self,
        owner: &str,
        page: &PageRequest,
        read: impl std::future::Future<Output = Result<Page<T>>>,
    ) -> Result<Page<T>> {
        if page.after.is_some() {
            return read.await;
        }
        if let Some(cached) = self.cache.first_page(owner, page.limit) {
            return Ok(cached);
        }
        let generation = self.cache.generation();
        let read = read.await?;
        self.cache.keep_first_page(generation, owner, page.limit, read.clone());
        Ok(read)
    }
}
