//! Running statements: parameters converted with Spin's mapping, prepared
//! through the connection's statement cache, rows read ahead or streamed.

use super::{Lease, compat_warning, convert, query_failed, query_failed_text};
use crate::bindings::spin::postgres::postgres::{Column, DbValue, Error, ParameterValue, RowSet};
use futures::StreamExt;
use postgres_types::ToSql;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Spin's limit on what a query may buffer in the host.
const MAX_RESULT_BYTES: usize = 128 << 20;

/// How a parameter conversion failure is reported: Spin says
/// `bad-parameter` in `query` but `value-conversion-failed` in `execute`.
#[derive(Clone, Copy)]
pub(super) enum Call {
    Query,
    Execute,
}

pub(super) fn sql_parameters(
    component_id: &str,
    values: &[ParameterValue],
    call: Call,
) -> Result<Vec<convert::SqlParameter>, Error> {
    let mut compat = Vec::new();
    let converted = convert::parameters(values, &mut compat).map_err(|err| match call {
        Call::Query => Error::BadParameter(format!("{err:?}")),
        Call::Execute => Error::ValueConversionFailed(format!("{err:?}")),
    })?;
    for message in compat {
        compat_warning(component_id, &message);
    }
    Ok(converted)
}

fn as_refs(parameters: &[convert::SqlParameter]) -> Vec<&(dyn ToSql + Sync)> {
    parameters
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// A plan made stale by a schema change: the cached statement is dropped
/// and prepared again.
fn is_stale_plan(err: &tokio_postgres::Error) -> bool {
    err.code() == Some(&tokio_postgres::error::SqlState::FEATURE_NOT_SUPPORTED)
        && err
            .to_string()
            .contains("cached plan must not change result type")
}

pub(super) async fn execute(
    lease: &Lease,
    statement: &str,
    parameters: &[convert::SqlParameter],
) -> Result<u64, Error> {
    let before = lease.session();
    let client = lease.client_for(statement);
    let result = async {
        for attempt in 0..2 {
            let prepared = client
                .prepare_cached(statement)
                .await
                .map_err(|e| query_failed(&e))?;
            match client.execute(&prepared, &as_refs(parameters)).await {
                Err(err) if attempt == 0 && is_stale_plan(&err) => client.statement_cache.clear(),
                result => return result.map_err(|e| query_failed(&e)),
            }
        }
        unreachable!("the second attempt returns")
    }
    .await;
    if result.is_err() {
        lease.failed(statement, before);
    }
    result
}

/// Rows read before answering: results this small need no reader task.
const READ_AHEAD_ROWS: usize = 8;

/// A query's result: the columns (taken from the first row, as Spin does),
/// the rows read ahead, and for larger results a reader task's rows.
pub(super) struct RowStream {
    pub(super) columns: Vec<Column>,
    pub(super) ready: Vec<Vec<DbValue>>,
    pub(super) rest: Option<mpsc::Receiver<Vec<DbValue>>>,
    pub(super) outcome: Outcome,
}

/// How the query ended: known already, or when the reader task finishes.
pub(super) enum Outcome {
    Known(Result<(), Error>),
    Pending(oneshot::Receiver<Result<(), Error>>),
}

impl Outcome {
    pub(super) async fn wait(self) -> Result<(), Error> {
        match self {
            Outcome::Known(result) => result,
            Outcome::Pending(receiver) => receiver.await.unwrap_or(Ok(())),
        }
    }
}

/// The next row, converted with Spin's mapping and within its size limit;
/// `columns`, if given and still empty, are taken from it.
async fn next_row(
    rows: &mut std::pin::Pin<Box<tokio_postgres::RowStream>>,
    component_id: &str,
    columns: Option<&mut Vec<Column>>,
) -> Option<Result<Vec<DbValue>, Error>> {
    let row = match rows.next().await? {
        Ok(row) => row,
        Err(err) => return Some(Err(query_failed(&err))),
    };
    if let Some(columns) = columns
        && columns.is_empty()
    {
        *columns = convert::columns(&row);
    }
    let mut compat = Vec::new();
    let values = match convert::row(&row, &mut compat) {
        Ok(values) => values,
        Err(err) => return Some(Err(query_failed_text(format!("{err:?}")))),
    };
    for message in compat {
        compat_warning(component_id, &message);
    }
    if values.iter().map(convert::memory_size).sum::<usize>() > MAX_RESULT_BYTES {
        return Some(Err(query_failed_text(format!(
            "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
        ))));
    }
    Some(Ok(values))
}

pub(super) async fn query(
    lease: Arc<Lease>,
    statement: &str,
    parameters: Vec<convert::SqlParameter>,
) -> Result<RowStream, Error> {
    let before = lease.session();
    let client = lease.client_for(statement);
    let mut attempt = 0;
    let started = loop {
        let prepared = match client.prepare_cached(statement).await {
            Ok(prepared) => prepared,
            Err(err) => break Err(err),
        };
        match client
            .query_raw(
                &prepared,
                parameters.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)),
            )
            .await
        {
            Err(err) if attempt == 0 && is_stale_plan(&err) => {
                client.statement_cache.clear();
                attempt += 1;
            }
            result => break result,
        }
    };
    let rows = started.map_err(|e| {
        lease.failed(statement, before);
        query_failed(&e)
    })?;
    let mut rows = Box::pin(rows);
    let component_id = lease.component_id.clone();
    let mut columns = Vec::new();
    let mut ready = Vec::new();
    while ready.len() < READ_AHEAD_ROWS {
        let outcome = match next_row(&mut rows, &component_id, Some(&mut columns)).await {
            Some(Ok(values)) => {
                ready.push(values);
                continue;
            }
            Some(Err(err)) => Err(err),
            None => Ok(()),
        };
        return Ok(RowStream {
            columns,
            ready,
            rest: None,
            outcome: Outcome::Known(outcome),
        });
    }
    let (row_tx, row_rx) = mpsc::channel(16);
    let (outcome_tx, outcome_rx) = oneshot::channel();
    tokio::spawn(async move {
        // The task owns the lease until the last row is read.
        let _lease = lease;
        let outcome = loop {
            match next_row(&mut rows, &component_id, None).await {
                None => break Ok(()),
                Some(Err(err)) => break Err(err),
                Some(Ok(values)) => {
                    if row_tx.send(values).await.is_err() {
                        // The guest stopped reading; nothing waits for the rest.
                        break Ok(());
                    }
                }
            }
        };
        let _ = outcome_tx.send(outcome);
    });
    Ok(RowStream {
        columns,
        ready,
        rest: Some(row_rx),
        outcome: Outcome::Pending(outcome_rx),
    })
}

/// Collects a whole result (the sync `query`), within Spin's size limit.
pub(super) async fn query_buffered(
    component_id: &str,
    lease: Arc<Lease>,
    statement: &str,
    parameters: Vec<convert::SqlParameter>,
) -> Result<RowSet, Error> {
    let RowStream {
        columns,
        mut ready,
        rest,
        outcome,
    } = query(lease, statement, parameters).await?;
    let mut bytes = ready.iter().flatten().map(convert::memory_size).sum::<usize>();
    if let Some(mut rest) = rest {
        while let Some(row) = rest.recv().await {
            bytes += row.iter().map(convert::memory_size).sum::<usize>();
            if bytes > MAX_RESULT_BYTES {
                return Err(query_failed_text(format!(
                    "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
                )));
            }
            ready.push(row);
        }
    }
    outcome.wait().await?;
    let rows = ready;
    if rows.is_empty() {
        compat_warning(
            component_id,
            "a synchronous `query` returned no rows; this host answers it, but Spin 4.0.2 never returns \
             from it and the request hangs. Use `query-async` (spin-sdk 6's `Connection::query`).",
        );
    }
    Ok(RowSet { columns, rows })
}
