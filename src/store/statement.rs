//! Statements as data: SQL with `$N` placeholders and the values bound to
//! them, built once and run on either backend. The group committer runs
//! them on SQLite through rusqlite on its own thread: through sqlx, every
//! statement is a round trip to the connection's worker thread, which is
//! most of what a small transaction costs (see README, "Where the time
//! goes"). Everything else runs them through sqlx.
//!
//! Over 400 lines with its tests, kept whole: building a statement and its
//! two runners (sqlx, rusqlite with `numbered`) agree on one placeholder
//! and argument scheme, which reads best in one place.

use anyhow::{anyhow, Context};

/// A value bound to a statement. Nulls carry their type, which Postgres
/// needs to know.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Text(String),
    Int(i64),
    Null,
    NullInt,
    /// An array, bound whole: Postgres only (one statement for a whole
    /// batch, through `UNNEST`).
    Texts(Vec<String>),
    Ints(Vec<i64>),
}

impl From<i64> for Arg {
    fn from(v: i64) -> Arg {
        Arg::Int(v)
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Arg {
        v.map_or(Arg::NullInt, Arg::Int)
    }
}

impl From<&str> for Arg {
    fn from(v: &str) -> Arg {
        Arg::Text(v.to_string())
    }
}

impl From<Option<&str>> for Arg {
    fn from(v: Option<&str>) -> Arg {
        v.map_or(Arg::Null, Arg::from)
    }
}

/// SQL and its arguments, in placeholder order.
#[derive(Debug, Clone, Default)]
pub struct Stmt {
    pub sql: String,
    pub args: Vec<Arg>,
}

impl Stmt {
    pub fn new(sql: &str) -> Stmt {
        Stmt {
            sql: sql.to_string(),
            args: Vec::new(),
        }
    }

    /// `sql` with arguments for its `$1…$N`.
    pub fn with_args(sql: &str, args: Vec<Arg>) -> Stmt {
        Stmt {
            sql: sql.to_string(),
            args,
        }
    }

    pub fn push(&mut self, sql: &str) -> &mut Stmt {
        self.sql.push_str(sql);
        self
    }

    /// A placeholder for `arg`.
    pub fn bind(&mut self, arg: impl Into<Arg>) -> &mut Stmt {
        use std::fmt::Write;
        self.args.push(arg.into());
        // Writing to a String cannot fail.
        let _ = write!(self.sql, "${}", self.args.len());
        self
    }

    /// `VALUES (…), (…)`: one group per item, its columns bound by `row`.
    pub fn values<T>(&mut self, items: &[T], mut row: impl FnMut(&mut Group, &T)) -> &mut Stmt {
        self.push("VALUES ");
        for (i, item) in items.iter().enumerate() {
            self.push(if i == 0 { "(" } else { ", (" });
            row(
                &mut Group {
                    stmt: self,
                    first: true,
                },
                item,
            );
            self.push(")");
        }
        self
    }

    /// `(a, b, …)`: a list of placeholders.
    pub fn list(&mut self, items: impl IntoIterator<Item = Arg>) -> &mut Stmt {
        self.push("(");
        for (i, arg) in items.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(arg);
        }
        self.push(")")
    }
}

/// The columns of one `VALUES` group.
pub struct Group<'a> {
    stmt: &'a mut Stmt,
    first: bool,
}

impl Group<'_> {
    fn separate(&mut self) {
        if !std::mem::take(&mut self.first) {
            self.stmt.push(", ");
        }
    }

    pub fn bind(&mut self, arg: impl Into<Arg>) -> &mut Self {
        self.separate();
        self.stmt.bind(arg);
        self
    }

    /// An integer column typed as `BIGINT` (Postgres types a `VALUES` list
    /// from its first row).
    pub fn bind_bigint(&mut self, arg: impl Into<Arg>) -> &mut Self {
        self.separate();
        self.stmt.push("CAST(").bind(arg).push(" AS BIGINT)");
        self
    }
}

/// A column of a result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    Text(String),
    Null,
}

impl Value {
    pub fn int(&self) -> anyhow::Result<i64> {
        match self {
            Value::Int(v) => Ok(*v),
            other => Err(anyhow!("expected an integer, got {other:?}")),
        }
    }

    pub fn opt_int(&self) -> anyhow::Result<Option<i64>> {
        match self {
            Value::Null => Ok(None),
            other => other.int().map(Some),
        }
    }

    pub fn text(self) -> anyhow::Result<String> {
        match self {
            Value::Text(v) => Ok(v),
            other => Err(anyhow!("expected text, got {other:?}")),
        }
    }

    pub fn opt_text(self) -> anyhow::Result<Option<String>> {
        match self {
            Value::Null => Ok(None),
            other => other.text().map(Some),
        }
    }
}

/// A result row, taken apart column by column.
pub struct Columns(std::vec::IntoIter<Value>);

impl Columns {
    pub fn new(row: Vec<Value>) -> Columns {
        Columns(row.into_iter())
    }

    pub fn take(&mut self) -> anyhow::Result<Value> {
        self.0.next().context("a result row has too few columns")
    }
}

/// Something that runs statements: a sqlx connection, or the committer's
/// rusqlite connection.
pub(crate) trait Exec {
    /// Runs `stmt`; the rows it changed.
    async fn run(&mut self, stmt: &Stmt) -> anyhow::Result<u64>;
    /// Runs `stmt`; the rows it returned.
    async fn rows(&mut self, stmt: &Stmt) -> anyhow::Result<Vec<Vec<Value>>>;
}

/// Runs statements on a sqlx connection (or transaction).
pub(crate) struct Sqlx<'c, C>(pub &'c mut C);

macro_rules! sqlx_exec {
    ($conn:ty, $row:ty, $value:expr) => {
        impl Exec for Sqlx<'_, $conn> {
            async fn run(&mut self, stmt: &Stmt) -> anyhow::Result<u64> {
                let query = bind_all(sqlx::query(&stmt.sql), &stmt.args)?;
                Ok(query.execute(&mut *self.0).await?.rows_affected())
            }

            async fn rows(&mut self, stmt: &Stmt) -> anyhow::Result<Vec<Vec<Value>>> {
                use sqlx::Row;
                let query = bind_all(sqlx::query(&stmt.sql), &stmt.args)?;
                let rows: Vec<$row> = query.fetch_all(&mut *self.0).await?;
                rows.iter()
                    .map(|row| (0..row.len()).map(|i| $value(row, i)).collect())
                    .collect()
            }
        }
    };
}

/// Binds `args` in order.
fn bind_all<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>,
    args: &'q [Arg],
) -> anyhow::Result<sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments<'q>>>
where
    DB: BindArrays,
    &'q str: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<&'q str>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    Option<i64>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    for arg in args {
        query = match arg {
            Arg::Text(v) => query.bind(v.as_str()),
            Arg::Int(v) => query.bind(*v),
            Arg::Null => query.bind(None::<&str>),
            Arg::NullInt => query.bind(None::<i64>),
            Arg::Texts(_) | Arg::Ints(_) => DB::bind_array(query, arg)?,
        };
    }
    Ok(query)
}

/// Binding an array argument: Postgres has arrays, SQLite has none.
trait BindArrays: sqlx::Database {
    fn bind_array<'q>(
        query: sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments<'q>>,
        array: &'q Arg,
    ) -> anyhow::Result<sqlx::query::Query<'q, Self, <Self as sqlx::Database>::Arguments<'q>>>;
}

impl BindArrays for sqlx::Postgres {
    fn bind_array<'q>(
        query: sqlx::query::Query<'q, Self, sqlx::postgres::PgArguments>,
        array: &'q Arg,
    ) -> anyhow::Result<sqlx::query::Query<'q, Self, sqlx::postgres::PgArguments>> {
        match array {
            Arg::Texts(v) => Ok(query.bind(v.as_slice())),
            Arg::Ints(v) => Ok(query.bind(v.as_slice())),
            other => Err(anyhow!("not an array: {other:?}")),
        }
    }
}

impl BindArrays for sqlx::Sqlite {
    fn bind_array<'q>(
        _: sqlx::query::Query<'q, Self, sqlx::sqlite::SqliteArguments<'q>>,
        _: &'q Arg,
    ) -> anyhow::Result<sqlx::query::Query<'q, Self, sqlx::sqlite::SqliteArguments<'q>>> {
        Err(anyhow!("SQLite has no arrays to bind"))
    }
}

sqlx_exec!(
    sqlx::SqliteConnection,
    sqlx::sqlite::SqliteRow,
    sqlite_value
);
sqlx_exec!(sqlx::PgConnection, sqlx::postgres::PgRow, postgres_value);

fn sqlite_value(row: &sqlx::sqlite::SqliteRow, i: usize) -> anyhow::Result<Value> {
    use sqlx::{Row, TypeInfo, ValueRef};
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    Ok(match raw.type_info().name() {
        "INTEGER" => Value::Int(row.try_get(i)?),
        _ => Value::Text(row.try_get(i)?),
    })
}

fn postgres_value(row: &sqlx::postgres::PgRow, i: usize) -> anyhow::Result<Value> {
    use sqlx::{Row, TypeInfo, ValueRef};
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Value::Null);
    }
    Ok(match raw.type_info().name() {
        "INT8" => Value::Int(row.try_get(i)?),
        "INT4" => Value::Int(row.try_get::<i32, _>(i)?.into()),
        "INT2" => Value::Int(row.try_get::<i16, _>(i)?.into()),
        _ => Value::Text(row.try_get(i)?),
    })
}

impl Exec for rusqlite::Connection {
    async fn run(&mut self, stmt: &Stmt) -> anyhow::Result<u64> {
        let mut prepared = self.prepare_cached(&numbered(&stmt.sql))?;
        bind_rusqlite(&mut prepared, &stmt.args)?;
        Ok(prepared.raw_execute()? as u64)
    }

    async fn rows(&mut self, stmt: &Stmt) -> anyhow::Result<Vec<Vec<Value>>> {
        use rusqlite::types::ValueRef;
        let mut prepared = self.prepare_cached(&numbered(&stmt.sql))?;
        bind_rusqlite(&mut prepared, &stmt.args)?;
        let width = prepared.column_count();
        let mut rows = prepared.raw_query();
        let mut all = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(match row.get_ref(i)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(v) => Value::Int(v),
                    ValueRef::Text(t) => Value::Text(String::from_utf8(t.to_vec())?),
                    other => anyhow::bail!("unexpected column type {:?}", other.data_type()),
                });
            }
            all.push(values);
        }
        Ok(all)
    }
}

/// `sql` with each `$N` outside quotes and comments written `?N`: SQLite
/// binds `?N` to parameter index N itself, where `$N` is a name that must
/// be looked up (a linear search per parameter, quadratic over a many-row
/// insert). Runs for every statement the committer executes, so it jumps
/// from one `$`, quote or comment to the next with vectorised searches
/// (`memchr`) rather than looking at every byte.
fn numbered(sql: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    static COMMENT: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new("--"));
    let bytes = sql.as_bytes();
    let comment_from = |at: usize| COMMENT.find(&bytes[at..]).map(|c| at + c);
    // The next `--` at or after `at`, once what lies before it is passed.
    let mut comment = comment_from(0);
    let mut out: Option<String> = None;
    // `$`, quotes and `-` are ASCII, so every cut falls on a character
    // boundary.
    let (mut copied, mut at) = (0, 0);
    while let Some(found) = memchr::memchr3(b'$', b'\'', b'"', &bytes[at..]) {
        let i = at + found;
        if let Some(c) = comment.filter(|&c| c < i) {
            // A comment runs to the end of its line, quotes and all.
            at = memchr::memchr(b'\n', &bytes[c..]).map_or(bytes.len(), |end| c + end + 1);
            comment = comment_from(at);
            continue;
        }
        at = i + 1;
        match bytes[i] {
            b'$' if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) => {
                let out = out.get_or_insert_with(|| String::with_capacity(sql.len()));
                out.push_str(&sql[copied..i]);
                out.push('?');
                copied = i + 1;
            }
            b'$' => {}
            // A quoted string or name is skipped whole (an unclosed one runs
            // to the end), and a `--` inside it is no comment.
            quote => {
                at = memchr::memchr(quote, &bytes[at..]).map_or(bytes.len(), |end| at + end + 1);
                if comment.is_some_and(|c| c < at) {
                    comment = comment_from(at);
                }
            }
        }
    }
    match out {
        None => Cow::Borrowed(sql),
        Some(mut out) => {
            out.push_str(&sql[copied..]);
            Cow::Owned(out)
        }
    }
}

/// Binds `args[N-1]` to each `?N` (see `numbered`).
fn bind_rusqlite(
    statement: &mut rusqlite::CachedStatement<'_>,
    args: &[Arg],
) -> anyhow::Result<()> {
    let count = statement.parameter_count();
    if count != args.len() {
        anyhow::bail!(
            "the statement has {count} parameters but {} arguments",
            args.len()
        );
    }
    for (at, arg) in (1..=count).zip(args) {
        match arg {
            Arg::Text(v) => statement.raw_bind_parameter(at, v.as_str())?,
            Arg::Int(v) => statement.raw_bind_parameter(at, v)?,
            Arg::Null | Arg::NullInt => statement.raw_bind_parameter(at, rusqlite::types::Null)?,
            Arg::Texts(_) | Arg::Ints(_) => anyhow::bail!("SQLite has no arrays to bind"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_arguments() {
        let mut stmt = Stmt::new("INSERT INTO t (a, b, c) ");
        stmt.values(&[(1, "x"), (2, "y")], |row, (n, s)| {
            row.bind_bigint(*n as i64).bind(*s).bind(None::<i64>);
        });
        stmt.push(" WHERE k IN ").list([Arg::Int(7), Arg::Null]);
        assert_eq!(
            stmt.sql,
            "INSERT INTO t (a, b, c) VALUES (CAST($1 AS BIGINT), $2, $3), (CAST($4 AS BIGINT), $5, $6) WHERE k IN ($7, $8)"
        );
        assert_eq!(stmt.args[1], Arg::Text("x".into()));
        assert_eq!(stmt.args[2], Arg::NullInt);
        assert_eq!(stmt.args[7], Arg::Null);
    }

    #[test]
    fn placeholders_are_numbered_outside_quotes_and_comments_only() {
        let cases = [
            ("SELECT $1, $2", "SELECT ?1, ?2"),
            ("SELECT 1", "SELECT 1"),
            (
                "SELECT '$1', $2, \"a$3\", $4",
                "SELECT '$1', ?2, \"a$3\", ?4",
            ),
            ("SELECT 'it''s $1', $2", "SELECT 'it''s $1', ?2"),
            ("SELECT $ 1, $a, $12, $", "SELECT $ 1, $a, ?12, $"),
            ("SELECT 'unclosed $1", "SELECT 'unclosed $1"),
            ("SELECT \"unclosed $1", "SELECT \"unclosed $1"),
            (
                "SELECT $1 -- the person's $2\n, $3",
                "SELECT ?1 -- the person's $2\n, ?3",
            ),
            ("SELECT $1 -- to the end $2", "SELECT ?1 -- to the end $2"),
            ("SELECT 'a--b', $1", "SELECT 'a--b', ?1"),
            ("SELECT 'a--b', $1 -- $2\n$3", "SELECT 'a--b', ?1 -- $2\n?3"),
            ("SELECT 'é$1', ü$2, $3é", "SELECT 'é$1', ü?2, ?3é"),
        ];
        for (sql, want) in cases {
            assert_eq!(numbered(sql), want, "{sql}");
        }
        // Nothing to rewrite: the SQL itself, not a copy.
        assert!(matches!(
            numbered("SELECT 1"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[tokio::test]
    async fn rusqlite_runs_statements_and_reads_rows() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")
            .unwrap();
        let mut insert = Stmt::new("INSERT INTO t (name, n) ");
        insert.values(&["a", "b"], |row, name| {
            row.bind(*name).bind(None::<i64>);
        });
        assert_eq!(conn.run(&insert).await.unwrap(), 2);
        let rows = conn
            .rows(&Stmt::with_args(
                "SELECT id, name, n FROM t WHERE name = $1",
                vec![Arg::Text("b".into())],
            ))
            .await
            .unwrap();
        assert_eq!(
            rows,
            vec![vec![Value::Int(2), Value::Text("b".into()), Value::Null]]
        );
        // `$N` takes the N-th argument wherever it first appears.
        let swapped = Stmt::with_args("SELECT $2, $1, $2", vec![Arg::Int(1), Arg::Int(2)]);
        assert_eq!(
            conn.rows(&swapped).await.unwrap(),
            vec![vec![Value::Int(2), Value::Int(1), Value::Int(2)]]
        );
        // A `$` inside a string is text, not a parameter; a comment's
        // apostrophe opens no string.
        let quoted = Stmt::with_args(
            "SELECT '$1', -- the person's\n $2, $1",
            vec![Arg::Int(5), Arg::Int(6)],
        );
        assert_eq!(
            conn.rows(&quoted).await.unwrap(),
            vec![vec![Value::Text("$1".into()), Value::Int(6), Value::Int(5)]]
        );
        let missing = Stmt::with_args("SELECT $1, $2", vec![Arg::Int(5)]);
        assert!(conn.rows(&missing).await.is_err());
        let extra = Stmt::with_args("SELECT $1", vec![Arg::Int(5), Arg::Int(6)]);
        assert!(conn.rows(&extra).await.is_err());
    }
}
