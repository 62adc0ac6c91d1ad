//! Postgres over `spin:postgres`: one connection per request from the
//! runtime's pool, typed row access, and errors mapped to the API's (a
//! named constraint to 409, a lost database to 503, the rest to 500).

use crate::config::Config;
use crate::error::ApiError;
use futures::future::Either;
use spin_sdk::pg::{self, Connection, Decode, ParameterValue, Row};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which server a connection reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The Patroni leader: every write, and every read of a route not
    /// listed as a replica read.
    Leader,
    /// The read address: synchronous standbys, which apply each commit
    /// before it is acknowledged (`synchronous_commit = remote_apply`), so
    /// they show every write a client has been told of; the leader when
    /// none answers, or when the read address is not set apart.
    Replica,
}

/// A request's database connection.
pub struct Db {
    connection: Connection,
    /// For a replica connection: the settings to open another with.
    replica: Option<Config>,
    /// Set when a statement wrote a notification that waits for webhook
    /// delivery, so the caller wakes the deliverer once done.
    deliveries_due: std::sync::atomic::AtomicBool,
}

/// A failed statement, whether the database itself was unavailable, and
/// whether a fresh connection may succeed where this one failed.
#[derive(Debug)]
pub struct DbError {
    error: pg::Error,
    unavailable: bool,
    /// The server went away (a connection refused or cut, a shutdown): not
    /// a full pool or a refused slot, which waiting would only add to.
    server_lost: bool,
}

/// How long a replica read keeps trying fresh connections, and the pause
/// between tries: the read address needs about a second to stop routing to
/// a member that left the synchronous set.
const REPLICA_PATIENCE: Duration = Duration::from_secs(3);
const REPLICA_RETRY_PAUSE: Duration = Duration::from_millis(250);
/// After the read address failed, how long an instance reads from the
/// leader without trying it again.
const READ_ADDRESS_BACKOFF: Duration = Duration::from_secs(1);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.error)
    }
}

impl DbError {
    fn db_error(&self) -> Option<&pg::DbError> {
        match &self.error {
            pg::Error::PgError(pg::PgError::QueryFailed(pg::QueryError::DbError(db))) => Some(db),
            _ => None,
        }
    }

    /// The SQLSTATE, if the server reported one.
    pub fn code(&self) -> Option<&str> {
        self.db_error().map(|db| db.code.as_str())
    }

    /// The violated constraint's name, if any.
    pub fn constraint(&self) -> Option<&str> {
        self.db_error()?
            .extras
            .iter()
            .find(|(key, _)| key == "constraint")
            .map(|(_, value)| value.as_str())
    }

    /// Whether the database is (momentarily) unreachable or read-only, as
    /// during a failover: the request may be retried.
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }

    /// Whether a read on another replica connection may succeed: the
    /// server went away, or a standby cancelled the read to go on replaying
    /// (a recovery conflict; the next try gets a fresh snapshot).
    fn worth_another_replica(&self) -> bool {
        // 40P01: the same conflict, reported as a deadlock.
        self.server_lost || matches!(self.code(), Some("40001" | "40P01"))
    }

    /// The constraint an integrity violation (SQLSTATE class 23: unique,
    /// check, foreign key) broke, if that is what failed.
    pub fn violated_constraint(&self) -> Option<&str> {
        if self.code().is_some_and(|code| code.starts_with("23")) {
            self.constraint()
        } else {
            None
        }
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        // 53100: the content store's disk is full. Nothing was stored (the
        // statement failed whole); reads and deletes, which free space,
        // go on.
        if error.code() == Some("53100") {
            eprintln!("database out of space: {error}");
            return ApiError::insufficient_storage();
        }
        if error.unavailable {
            eprintln!("database unavailable: {error}");
            return ApiError::unavailable(
                "database_unavailable",
                "the database is unavailable; retry shortly",
            );
        }
        ApiError::internal(error)
    }
}

impl Db {
    /// Takes a leader connection from the runtime's pool.
    pub async fn connect(config: &Config) -> Result<Self, DbError> {
        Self::open(config, Target::Leader).await
    }

    /// Takes a connection to `target`. A replica connection reads from the
    /// leader when the read address cannot be reached, and its statements
    /// (single reads, never in a transaction) are tried again on a fresh
    /// connection for a moment when the server goes away under them, as
    /// when a standby is promoted or leaves the synchronous set.
    pub async fn open(config: &Config, target: Target) -> Result<Self, DbError> {
        let connection = match target {
            Target::Leader => checkout(config, config.db_address()).await?,
            Target::Replica => match on_replica(config, None).await? {
                Fresh::Connection(connection) => connection,
                Fresh::Answer(_) => unreachable!("asked for a connection"),
            },
        };
        Ok(Db {
            connection,
            replica: (target == Target::Replica).then(|| config.clone()),
            deliveries_due: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Runs one statement; on a replica connection, again on fresh ones
    /// while the server is lost (see [`Db::open`]).
    async fn run(&self, statement: Statement<'_>) -> Result<Outcome, DbError> {
        let error = match statement.run(&self.connection).await {
            Ok(outcome) => return Ok(outcome),
            Err(error) => failed(&self.connection, error).await,
        };
        let Some(config) = &self.replica else {
            return Err(error);
        };
        match error.code() {
            // A write sent to a standby: our bug, not a lost server.
            Some("25006") => Err(DbError {
                unavailable: false,
                ..error
            }),
            _ if error.worth_another_replica() => match on_replica(config, Some(statement)).await? {
                Fresh::Answer(outcome) => Ok(outcome),
                Fresh::Connection(_) => unreachable!("asked for an answer"),
            },
            _ => Err(error),
        }
    }

    /// Every row of a query.
    pub async fn rows(&self, sql: &str, params: &[ParameterValue]) -> Result<Vec<Row>, DbError> {
        match self.run(Statement::Rows(sql, params)).await? {
            Outcome::Rows(rows) => Ok(rows),
            _ => unreachable!("a query answers rows"),
        }
    }

    /// The first column of a query's first row, if any, as bytes. Taken
    /// as the host delivered it: `Row::get` would copy, and a content chunk
    /// is a MiB.
    pub async fn first_bytes(
        &self,
        sql: &str,
        params: &[ParameterValue],
    ) -> Result<Option<Vec<u8>>, DbError> {
        match self.run(Statement::FirstBytes(sql, params)).await? {
            Outcome::Bytes(bytes) => Ok(bytes),
            _ => unreachable!("a bytes query answers bytes"),
        }
    }

    /// The first row of a query, if any.
    pub async fn row(&self, sql: &str, params: &[ParameterValue]) -> Result<Option<Row>, DbError> {
        Ok(self.rows(sql, params).await?.into_iter().next())
    }

    /// Runs a statement; returns the rows it affected.
    pub async fn execute(&self, sql: &str, params: &[ParameterValue]) -> Result<u64, DbError> {
        match self.run(Statement::Execute(sql, params)).await? {
            Outcome::Affected(count) => Ok(count),
            _ => unreachable!("a statement answers a count"),
        }
    }

    /// Records that a notification written here waits for the deliverer.
    pub fn note_deliveries_due(&self) {
        self.deliveries_due
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a notification written here waits for the deliverer (even
    /// if its transaction rolled back: a needless wake-up finds nothing).
    pub fn deliveries_due(&self) -> bool {
        self.deliveries_due.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `work` in a transaction that is always finished: committed if
    /// it succeeds, rolled back if it fails.
    pub async fn transaction<T, E: From<DbError>>(
        &self,
        work: impl AsyncFnOnce(&Db) -> Result<T, E>,
    ) -> Result<T, E> {
        // A replica connection's statements may each run on another
        // connection: no transaction can span them.
        if self.replica.is_some() {
            return Err(DbError {
                error: pg::Error::PgError(pg::PgError::Other("a transaction on a replica connection".into())),
                unavailable: false,
                server_lost: false,
            }
            .into());
        }
        self.execute("BEGIN", &[]).await?;
        match work(self).await {
            Ok(value) => {
                self.execute("COMMIT", &[]).await?;
                Ok(value)
            }
            Err(error) => {
                if let Err(rollback) = self.execute("ROLLBACK", &[]).await {
                    eprintln!("rollback failed: {rollback}");
                }
                Err(error)
            }
        }
    }
}

/// One statement, as [`Db`]'s methods send it (a value, so that it can be
/// sent again on another connection).
#[derive(Clone, Copy)]
enum Statement<'a> {
    Rows(&'a str, &'a [ParameterValue]),
    FirstBytes(&'a str, &'a [ParameterValue]),
    Execute(&'a str, &'a [ParameterValue]),
}

/// What a [`Statement`] answered.
enum Outcome {
    Rows(Vec<Row>),
    Bytes(Option<Vec<u8>>),
    Affected(u64),
}

impl Statement<'_> {
    async fn run(self, connection: &Connection) -> Result<Outcome, pg::Error> {
        match self {
            Statement::Rows(sql, params) => Ok(Outcome::Rows(
                connection.query(sql, params.to_vec()).await?.collect().await?,
            )),
            Statement::FirstBytes(sql, params) => {
                let mut result = connection.query(sql, params.to_vec()).await?;
                let mut first = None;
                while let Some(values) = result.rows().next().await {
                    first = first.or_else(|| values.into_iter().next());
                }
                result.result().await?;
                match first {
                    None => Ok(Outcome::Bytes(None)),
                    Some(pg::DbValue::Binary(bytes)) => Ok(Outcome::Bytes(Some(bytes))),
                    Some(_) => Err(pg::Error::Decode("the first column is not bytea".into())),
                }
            }
            Statement::Execute(sql, params) => {
                Ok(Outcome::Affected(connection.execute(sql, params.to_vec()).await?))
            }
        }
    }
}

/// Classifies a failed statement. A server error says what it is by its
/// SQLSTATE: 25006 is a write that reached a member still read-only just
/// after promotion, 53300 a server out of connection slots, 57P0x an
/// administrator or crash shutdown, 08xxx a connection failure. A failure
/// without one (a client-side error) is either our bug or a lost
/// connection; asking the same connection again tells them apart without
/// reading any error text.
async fn failed(connection: &Connection, error: pg::Error) -> DbError {
    let (unavailable, server_lost) = match &error {
        pg::Error::PgError(pg::PgError::ConnectionFailed(_)) => (true, true),
        pg::Error::PgError(pg::PgError::QueryFailed(pg::QueryError::DbError(db))) => {
            let code = db.code.as_str();
            let lost = code.starts_with("57P0") || code.starts_with("08");
            (lost || code == "25006" || code == "53300", lost)
        }
        pg::Error::PgError(pg::PgError::QueryFailed(pg::QueryError::Text(_))) => {
            let lost = connection.execute("SELECT 1", vec![]).await.is_err();
            (lost, lost)
        }
        _ => (false, false),
    };
    DbError {
        error,
        unavailable,
        server_lost,
    }
}

/// What [`on_replica`] got.
enum Fresh {
    Connection(Connection),
    Answer(Outcome),
}

/// A fresh replica connection, or `statement`'s answer on one, tried again
/// while it fails by a lost server (or, for a statement, a recovery
/// conflict), for [`REPLICA_PATIENCE`] in all, waiting included.
async fn on_replica(config: &Config, statement: Option<Statement<'_>>) -> Result<Fresh, DbError> {
    let tries = std::pin::pin!(async {
        loop {
            let error = match (replica_checkout(config).await, statement) {
                (Ok(connection), None) => return Ok(Fresh::Connection(connection)),
                (Ok(connection), Some(statement)) => match statement.run(&connection).await {
                    Ok(outcome) => return Ok(Fresh::Answer(outcome)),
                    Err(error) => failed(&connection, error).await,
                },
                (Err(error), _) => error,
            };
            if !error.worth_another_replica() {
                return Err(error);
            }
            eprintln!("replica read failed, trying a fresh connection: {error}");
            spin_sdk::time::sleep(REPLICA_RETRY_PAUSE).await;
        }
    });
    let patience = std::pin::pin!(spin_sdk::time::sleep(REPLICA_PATIENCE));
    match futures::future::select(tries, patience).await {
        Either::Left((outcome, _)) => outcome,
        Either::Right(_) => Err(DbError {
            error: pg::Error::PgError(pg::PgError::ConnectionFailed(format!(
                "no replica read succeeded within {REPLICA_PATIENCE:?}"
            ))),
            unavailable: true,
            server_lost: true,
        }),
    }
}

/// When this instance last found the read address unreachable.
static READ_ADDRESS_FAILED: Mutex<Option<Instant>> = Mutex::new(None);

/// A connection to the read address, else to the leader. After a failure
/// the read address rests for [`READ_ADDRESS_BACKOFF`] in this instance
/// (the rest of a download's chunks, on Spin, where an instance serves one
/// request), so that they do not each pay (and log) a refused connection.
async fn replica_checkout(config: &Config) -> Result<Connection, DbError> {
    let resting = || {
        let failed = *READ_ADDRESS_FAILED.lock().unwrap_or_else(|e| e.into_inner());
        failed.is_some_and(|at| at.elapsed() < READ_ADDRESS_BACKOFF)
    };
    if let Some(read_address) = config.db_read_address()
        && !resting()
    {
        match checkout(config, read_address).await {
            Ok(connection) => return Ok(connection),
            Err(error) => {
                eprintln!("read address unavailable, reading from the leader: {error}");
                *READ_ADDRESS_FAILED.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
            }
        }
    }
    checkout(config, config.db_address()).await
}

/// Takes a connection to `address` from the runtime's pool, waiting at
/// most `db_checkout_timeout_ms`: Spin's pool (64 connections an address)
/// waits without limit, so when it is exhausted a request answers 503
/// with `Retry-After` instead of hanging.
async fn checkout(config: &Config, address: String) -> Result<Connection, DbError> {
    let open = std::pin::pin!(Connection::open(address));
    let deadline = std::pin::pin!(spin_sdk::time::sleep(config.db_checkout_timeout));
    let (error, server_lost) = match futures::future::select(open, deadline).await {
        Either::Left((Ok(connection), _)) => return Ok(connection),
        Either::Left((Err(error), _)) => (error, true),
        Either::Right(_) => (
            pg::Error::PgError(pg::PgError::ConnectionFailed(format!(
                "no pooled connection free within {:?}",
                config.db_checkout_timeout
            ))),
            false,
        ),
    };
    Err(DbError {
        error,
        unavailable: true,
        server_lost,
    })
}

/// A column of a row, typed; a missing column or wrong type is our bug (500).
pub fn column<T: Decode>(row: &Row, name: &str) -> Result<T, DbError> {
    row.get::<T>(name).ok_or_else(|| DbError {
        error: pg::Error::Decode(format!("column {name} is missing or of another type")),
        unavailable: false,
        server_lost: false,
    })
}
