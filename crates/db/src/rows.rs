//! Reads that skip the pool's connection threads: [`Database::rows`] runs a `SELECT` on the
//! embedded store inline, on the calling thread, with one of a few read-only connections of its
//! own, and answers [`Row`]s; on Postgres it goes through the pool like every other query.
//!
//! Why: sqlx runs each SQLite connection on a thread of its own and hands every query and every
//! row across threads; for the point and page reads of an authenticated request that handoff,
//! not SQLite, was the cost (9,000 page reads a second on two cores, most of it in futex waits).
//! A read of the embedded store in WAL mode never waits for the writer, and the platform's reads
//! are index lookups of a few rows: microseconds, short enough for an async worker.
//!
//! The same SQL runs on both engines (`$1, $2, …` placeholders, bound by number, in any order).
//! Rows are read through [`Record`], which [`sqlx::any::AnyRow`] implements too, so a record's
//! `from_row` serves both paths.

use std::sync::{Arc, Mutex};

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::{Database, DbError};

/// A value bound to a placeholder of [`Database::rows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param<'a> {
    Text(&'a str),
    Int(i64),
    Null,
}

impl<'a> From<&'a str> for Param<'a> {
    fn from(text: &'a str) -> Param<'a> {
        Param::Text(text)
    }
}

impl<'a> From<&'a String> for Param<'a> {
    fn from(text: &'a String) -> Param<'a> {
        Param::Text(text)
    }
}

impl From<i64> for Param<'_> {
    fn from(n: i64) -> Self {
        Param::Int(n)
    }
}

impl<'a, T: Into<Param<'a>>> From<Option<T>> for Param<'a> {
    fn from(value: Option<T>) -> Param<'a> {
        value.map_or(Param::Null, Into::into)
    }
}

/// One column's value in a [`Row`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Text(String),
}

/// A row of [`Database::rows`]: its values by column name.
#[derive(Debug, Clone)]
pub struct Row {
    names: Arc<[String]>,
    values: Vec<Value>,
}

/// A type a column is read as: text, a 64-bit integer, or either of them nullable.
pub trait Field: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any> + Sized {
    #[doc(hidden)]
    fn from_value(value: &Value) -> Option<Self>;
}

impl Field for String {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Text(text) => Some(text.clone()),
            _ => None,
        }
    }
}

impl Field for i64 {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }
}

impl<T: Field> Field for Option<T> {
    fn from_value(value: &Value) -> Option<Self> {
        match value {
            Value::Null => Some(None),
            value => T::from_value(value).map(Some),
        }
    }
}

/// A row read by column name, from [`Database::rows`] or from an sqlx query.
pub trait Record {
    /// The column `name` as `T`; an error names a missing column or a value of another type.
    fn field<T: Field>(&self, name: &str) -> Result<T, sqlx::Error>;
}

impl Record for AnyRow {
    fn field<T: Field>(&self, name: &str) -> Result<T, sqlx::Error> {
        self.try_get(name)
    }
}

impl Record for Row {
    fn field<T: Field>(&self, name: &str) -> Result<T, sqlx::Error> {
        let at = self
            .names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| sqlx::Error::ColumnNotFound(name.to_string()))?;
        T::from_value(&self.values[at]).ok_or_else(|| sqlx::Error::ColumnDecode {
            index: name.to_string(),
            source: format!("unexpected value {:?}", self.values[at]).into(),
        })
    }
}

/// The embedded store's read-only connections, used by [`Database::rows`].
#[derive(Debug)]
pub(crate) struct Readers {
    path: std::path::PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

/// Read connections kept open (one per async worker is the need on this machine's two cores).
const IDLE_READERS: usize = 4;

impl Readers {
    pub(crate) fn new(path: std::path::PathBuf) -> Readers {
        Readers { path, idle: Mutex::new(Vec::new()) }
    }

    fn open(&self) -> rusqlite::Result<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "cache_size", -1024)?; // KiB
        // Without the query planner stability guarantee, SQLite marks a cached statement whose
        // plan looked at a bound value (a `LIMIT $4`) as expired on every new binding, and parses
        // and plans it again on each use: two thirds of a page read.
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        Ok(conn)
    }

    fn rows(&self, sql: &str, params: &[Param<'_>]) -> rusqlite::Result<Vec<Row>> {
        let idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner).pop();
        let conn = match idle {
            Some(conn) => conn,
            None => self.open()?,
        };
        let rows = query(&conn, sql, params);
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        rows
    }
}

fn query(conn: &rusqlite::Connection, sql: &str, params: &[Param<'_>]) -> rusqlite::Result<Vec<Row>> {
    let mut statement = conn.prepare_cached(sql)?;
    for (n, param) in params.iter().enumerate() {
        // `$n` is a named parameter to SQLite: find its index (placeholders may come in any order).
        let Some(index) = statement.parameter_index(&format!("${}", n + 1))? else { continue };
        match *param {
            Param::Text(text) => statement.raw_bind_parameter(index, text)?,
            Param::Int(n) => statement.raw_bind_parameter(index, n)?,
            Param::Null => statement.raw_bind_parameter(index, rusqlite::types::Null)?,
        }
    }
    let names: Arc<[String]> = statement.column_names().into_iter().map(str::to_string).collect();
    let mut rows = statement.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..names.len())
            .map(|i| {
                Ok(match row.get_ref(i)? {
                    rusqlite::types::ValueRef::Null => Value::Null,
                    rusqlite::types::ValueRef::Integer(n) => Value::Int(n),
                    rusqlite::types::ValueRef::Text(text) => {
                        Value::Text(String::from_utf8_lossy(text).into_owned())
                    }
                    other => {
                        return Err(rusqlite::Error::InvalidColumnType(
                            i,
                            names[i].clone(),
                            other.data_type(),
                        ));
                    }
                })
            })
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(Row { names: names.clone(), values });
    }
    Ok(out)
}

/// An AnyRow as a [`Row`], for the Postgres path.
fn from_any(row: &AnyRow, names: &Arc<[String]>) -> Result<Row, sqlx::Error> {
    let values = (0..names.len())
        .map(|i| {
            if let Ok(n) = row.try_get::<Option<i64>, _>(i) {
                return Ok(n.map_or(Value::Null, Value::Int));
            }
            Ok(row.try_get::<Option<String>, _>(i)?.map_or(Value::Null, Value::Text))
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Row { names: names.clone(), values })
}

impl Database {
    /// The rows of the read-only query `sql` with `params` bound to `$1, $2, …`. On the embedded
    /// store it runs inline (see the module's documentation); it sees every committed write.
    pub async fn rows(&self, sql: &str, params: &[Param<'_>]) -> Result<Vec<Row>, DbError> {
        if let Some(readers) = &self.readers {
            return readers.rows(sql, params).map_err(|e| DbError::Read(e.to_string()));
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for param in params {
            query = match *param {
                Param::Text(text) => query.bind(text),
                Param::Int(n) => query.bind(n),
                Param::Null => query.bind(None::<i64>),
            };
        }
        let rows = query.fetch_all(&self.pool).await?;
        let Some(first) = rows.first() else { return Ok(Vec::new()) };
        let names: Arc<[String]> =
            first.columns().iter().map(|c| sqlx::Column::name(c).to_string()).collect();
        Ok(rows.iter().map(|row| from_any(row, &names)).collect::<Result<Vec<_>, _>>()?)
    }

    /// The first row of [`Database::rows`], if any.
    pub async fn row(&self, sql: &str, params: &[Param<'_>]) -> Result<Option<Row>, DbError> {
        Ok(self.rows(sql, params).await?.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> (tempfile::TempDir, Database) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("ledge.db").display());
        let db = Database::connect(&url).await.unwrap();
        sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT, note TEXT)")
            .execute(db.pool())
            .await
            .unwrap();
        for (id, n, note) in [("a", 1, Some("x")), ("b", 2, None), ("c", 3, Some("z"))] {
            sqlx::query("INSERT INTO t (id, n, note) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(n)
                .bind(note)
                .execute(db.pool())
                .await
                .unwrap();
        }
        (dir, db)
    }

    #[tokio::test]
    async fn rows_bind_placeholders_by_number_whatever_their_order() {
        let (_dir, db) = store().await;
        let rows = db
            .rows("SELECT id, n, note FROM t WHERE n <= $2 AND id <> $1 ORDER BY id", &["a".into(), 2.into()])
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].field::<String>("id").unwrap(), "b");
        assert_eq!(rows[0].field::<i64>("n").unwrap(), 2);
        assert_eq!(rows[0].field::<Option<String>>("note").unwrap(), None);
    }

    #[tokio::test]
    async fn rows_see_every_committed_write() {
        let (_dir, db) = store().await;
        let count = || async { db.row("SELECT count(*) AS n FROM t", &[]).await.unwrap().unwrap() };
        assert_eq!(count().await.field::<i64>("n").unwrap(), 3);
        sqlx::query("DELETE FROM t WHERE id = $1").bind("a").execute(db.pool()).await.unwrap();
        assert_eq!(count().await.field::<i64>("n").unwrap(), 2);
    }

    #[tokio::test]
    async fn a_column_of_another_type_or_name_is_an_error_naming_it() {
        let (_dir, db) = store().await;
        let row = db.row("SELECT id, n FROM t WHERE id = $1", &["a".into()]).await.unwrap().unwrap();
        assert!(row.field::<i64>("id").unwrap_err().to_string().contains("id"));
        assert!(row.field::<String>("missing").unwrap_err().to_string().contains("missing"));
        assert!(db.row("SELECT id FROM t WHERE id = $1", &["zz".into()]).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_write_is_refused_by_the_read_path() {
        let (_dir, db) = store().await;
        assert!(db.rows("DELETE FROM t", &[]).await.is_err());
    }
}
