//! The row stream `query-async` hands the guest.

use crate::bindings::spin::postgres::postgres::DbValue;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use wasmtime::StoreContextMut;
use wasmtime::component::{Destination, StreamProducer, StreamResult, VecBuffer};

/// Delivers the rows read ahead, then the reader task's, as the guest
/// reads.
pub struct RowProducer {
    ready: std::collections::VecDeque<Vec<DbValue>>,
    rest: Option<mpsc::Receiver<Vec<DbValue>>>,
}

impl RowProducer {
    pub fn new(ready: Vec<Vec<DbValue>>, rest: Option<mpsc::Receiver<Vec<DbValue>>>) -> Self {
        RowProducer {
            ready: ready.into(),
            rest,
        }
    }
}

impl<D> StreamProducer<D> for RowProducer {
    type Item = Vec<DbValue>;
    type Buffer = VecBuffer<Vec<DbValue>>;

    fn poll_produce<'a>(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut store: StoreContextMut<'a, D>,
        mut destination: Destination<'a, Self::Item, Self::Buffer>,
        finish: bool,
    ) -> Poll<wasmtime::Result<StreamResult>> {
        let capacity = destination.remaining(&mut store).unwrap_or(usize::MAX).min(64);
        if capacity == 0 {
            return Poll::Ready(Ok(StreamResult::Completed));
        }
        let this = &mut *self;
        let mut batch: Vec<Vec<DbValue>> = Vec::new();
        while batch.len() < capacity {
            match this.ready.pop_front() {
                Some(row) => batch.push(row),
                None => break,
            }
        }
        if batch.is_empty() {
            let Some(rest) = this.rest.as_mut() else {
                return Poll::Ready(Ok(StreamResult::Dropped));
            };
            match rest.poll_recv(cx) {
                Poll::Ready(Some(row)) => batch.push(row),
                Poll::Ready(None) => return Poll::Ready(Ok(StreamResult::Dropped)),
                Poll::Pending if finish => return Poll::Ready(Ok(StreamResult::Cancelled)),
                Poll::Pending => return Poll::Pending,
            }
            while batch.len() < capacity {
                match rest.try_recv() {
                    Ok(row) => batch.push(row),
                    Err(_) => break,
                }
            }
        }
        destination.set_buffer(batch.into());
        Poll::Ready(Ok(StreamResult::Completed))
    }
}
