//! Runs one HTTP request through a component instance, wasi:http 0.3 or
//! 0.2, streaming both bodies.

use crate::app::HttpComponent;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::oneshot;
use wasmtime_wasi_http::handler::Proxy;
use wasmtime_wasi_http::{p2, p3};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type ResponseBody = UnsyncBoxBody<Bytes, BoxError>;

/// Why a component produced no response.
#[derive(Debug)]
pub enum Failure {
    /// The guest trapped, returned an error, or never answered.
    Guest,
}

impl HttpComponent {
    /// Hands `request` to an instance and waits for the response head.
    pub async fn call(
        &self,
        request: http::Request<Incoming>,
    ) -> Result<http::Response<ResponseBody>, Failure> {
        if self.is_p3() {
            self.call_p3(request).await
        } else {
            self.call_p2(request).await
        }
    }

    async fn call_p3(
        &self,
        request: http::Request<Incoming>,
    ) -> Result<http::Response<ResponseBody>, Failure> {
        use p3::bindings::http::types::ErrorCode;
        let request = request.map(|body| body.map_err(ErrorCode::from_hyper_request_error));
        let (request, request_io) = p3::Request::from_http(request);
        let (response_tx, response_rx) = oneshot::channel();
        let component_id = self.id.clone();
        self.handler.spawn(
            None,
            Box::new(move |store, proxy| {
                Box::pin(async move {
                    let Proxy::P3(proxy) = proxy else {
                        unreachable!("a wasi:http 0.3 component has a 0.3 instance")
                    };
                    let result = async {
                        let response = match proxy.handle(store, request).await? {
                            Ok(response) => response,
                            Err(code) => {
                                return Err(wasmtime::format_err!("guest returned error code {code:?}"));
                            }
                        };
                        let response =
                            store.with(|mut access| response.into_http(&mut access, request_io))?;
                        // The instance must live until the client has read
                        // the whole body the guest is still writing.
                        let (body_done_tx, body_done_rx) = oneshot::channel();
                        let response = response.map(|body| {
                            NotifyOnDrop {
                                inner: body.map_err(BoxError::from),
                                _done: body_done_tx,
                            }
                            .boxed_unsync()
                        });
                        if response_tx.send(response).is_ok() {
                            let _ = body_done_rx.await;
                        }
                        Ok(())
                    }
                    .await;
                    if let Err(error) = result {
                        tracing::error!(component = %component_id, "Error processing request: {error:?}");
                    }
                })
            }),
        );
        response_rx.await.map_err(|_| Failure::Guest)
    }

    async fn call_p2(
        &self,
        request: http::Request<Incoming>,
    ) -> Result<http::Response<ResponseBody>, Failure> {
        use p2::WasiHttpView;
        let (response_tx, response_rx) = oneshot::channel();
        let component_id = self.id.clone();
        self.handler.spawn(
            None,
            Box::new(move |store, proxy| {
                Box::pin(async move {
                    let Proxy::P2(proxy) = proxy else {
                        unreachable!("a wasi:http 0.2 component has a 0.2 instance")
                    };
                    let result = async {
                        let (request, response_out) = store.with(|mut access| {
                            let mut http = WasiHttpView::http(access.data_mut());
                            let request =
                                http.new_incoming_request(p2::bindings::http::types::Scheme::Http, request)?;
                            let response_out = http.new_response_outparam(response_tx)?;
                            wasmtime::error::Ok((request, response_out))
                        })?;
                        proxy
                            .wasi_http_incoming_handler()
                            .call_handle(store, request, response_out)
                            .await
                    }
                    .await;
                    if let Err(error) = result {
                        tracing::error!(component = %component_id, "Error processing request: {error:?}");
                    }
                })
            }),
        );
        match response_rx.await {
            Ok(Ok(response)) => Ok(response.map(|body| body.map_err(BoxError::from).boxed_unsync())),
            Ok(Err(code)) => {
                tracing::error!(component = %self.id, "Error processing request: guest answered with error code {code:?}");
                Err(Failure::Guest)
            }
            Err(_) => Err(Failure::Guest),
        }
    }
}

/// A body that drops a channel half when it is done, to tell the instance
/// the client has read everything.
struct NotifyOnDrop<B> {
    inner: B,
    _done: oneshot::Sender<()>,
}

impl<B: Body + Unpin> Body for NotifyOnDrop<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
