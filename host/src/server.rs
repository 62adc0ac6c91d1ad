//! The HTTP front: accepts connections, answers Spin's well-known paths,
//! routes, adds Spin's request headers, runs the component, and writes one
//! access-log line per request.

use crate::app::App;
use crate::dispatch::{BoxError, ResponseBody};
use crate::routes::{RouteMatch, Target, WELL_KNOWN_PREFIX};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// How long in-flight requests may take to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight
/// connections finish.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, client_addr) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!("accept failed: {err}");
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = hyper::service::service_fn(move |request| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(app.handle(request, client_addr).await) }
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .serve_connection(TokioIo::new(LingeringClose(Some(stream))), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!("connection from {client_addr} ended: {err}");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: waiting for in-flight requests");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("in-flight requests still running after {SHUTDOWN_GRACE:?}; stopping anyway");
    }
    Ok(())
}

/// A client connection closed the way nginx's "lingering close" does. When
/// a response is sent before the request body was read (a 413 for an upload
/// over the limit, a 401 on a big upload), hyper closes the connection with
/// the rest of the body unread; closing a socket with unread input makes the
/// kernel send a reset, which can destroy the response before the client
/// reads it, and the client sees a broken pipe instead of the error. So on
/// drop the write side is shut down (the response is complete) and the input
/// is read and discarded until the client closes, stalls for `LINGER_IDLE`,
/// or `LINGER_TOTAL` passes. A client that closed first costs one read that
/// returns end-of-stream at once.
struct LingeringClose(Option<TcpStream>);

const LINGER_IDLE: Duration = Duration::from_secs(5);
const LINGER_TOTAL: Duration = Duration::from_secs(30);

impl LingeringClose {
    fn stream(self: Pin<&mut Self>) -> Pin<&mut TcpStream> {
        Pin::new(self.get_mut().0.as_mut().expect("taken only on drop"))
    }

    async fn linger(mut stream: TcpStream) {
        let _ = stream.shutdown().await;
        let deadline = tokio::time::Instant::now() + LINGER_TOTAL;
        let mut discard = vec![0u8; 64 << 10];
        loop {
            let idle_deadline = (tokio::time::Instant::now() + LINGER_IDLE).min(deadline);
            match tokio::time::timeout_at(idle_deadline, stream.read(&mut discard)).await {
                Ok(Ok(read)) if read > 0 => continue,
                _ => break,
            }
        }
    }
}

impl Drop for LingeringClose {
    fn drop(&mut self) {
        if let (Some(stream), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current()) {
            runtime.spawn(Self::linger(stream));
        }
    }
}

impl AsyncRead for LingeringClose {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        self.stream().poll_read(cx, buf)
    }
}

impl AsyncWrite for LingeringClose {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.stream().poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        self.stream().poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.as_ref().is_some_and(TcpStream::is_write_vectored)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.stream().poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.stream().poll_shutdown(cx)
    }
}

impl App {
    /// Answers one request; never fails (errors become 4xx/5xx responses).
    pub async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
        client_addr: SocketAddr,
    ) -> Response<ResponseBody> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_owned();
        let (handled_by, response) = self.respond(request, client_addr).await;
        let status = response.status();
        // What a complete body carries: hyper stops polling a body once it
        // has written its Content-Length, and sends none for HEAD, 204, 304.
        let expected_bytes = if method == Method::HEAD
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            Some(0)
        } else {
            response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|length| length.to_str().ok()?.parse().ok())
        };
        response.map(|body| {
            AccessLog {
                inner: body,
                method,
                path,
                handled_by,
                status,
                started,
                bytes: 0,
                expected_bytes,
                ended: false,
            }
            .boxed_unsync()
        })
    }

    async fn respond(
        &self,
        mut request: Request<Incoming>,
        client_addr: SocketAddr,
    ) -> (String, Response<ResponseBody>) {
        let path = request.uri().path().to_owned();
        if let Some(name) = path.strip_prefix(WELL_KNOWN_PREFIX) {
            return ("runtime".into(), self.well_known(name));
        }
        let Some(route) = self.router.route(&path) else {
            return ("-".into(), empty(StatusCode::NOT_FOUND));
        };
        let target = route.target().clone();
        match &target {
            Target::StaticResponse(index) => (target.to_string(), self.static_response(*index)),
            Target::Component(id) => {
                if let Err(status) = prepare_request(&mut request, &route, client_addr) {
                    return (id.clone(), empty(status));
                }
                let Some(component) = self.http_components.get(id) else {
                    tracing::error!("route {} names unknown component {id}", route.raw_route());
                    return (id.clone(), empty(StatusCode::INTERNAL_SERVER_ERROR));
                };
                (id.clone(), self.run(component, request).await)
            }
        }
    }

    async fn run(
        &self,
        component: &crate::app::HttpComponent,
        request: Request<Incoming>,
    ) -> Response<ResponseBody> {
        let started = Instant::now();
        let outcome = match self.request_timeout {
            Some(limit) => tokio::time::timeout(limit, component.call(request)).await.ok(),
            None => Some(component.call(request).await),
        };
        match outcome {
            Some(Ok(response)) => response,
            Some(Err(_)) if self.request_timeout.is_none_or(|limit| started.elapsed() < limit) => {
                empty(StatusCode::INTERNAL_SERVER_ERROR)
            }
            _ => {
                tracing::error!(
                    component = %component.id,
                    "request timed out after {:?} (--request-timeout)",
                    self.request_timeout.unwrap_or_default()
                );
                empty(StatusCode::GATEWAY_TIMEOUT)
            }
        }
    }

    fn well_known(&self, name: &str) -> Response<ResponseBody> {
        match name {
            "health" => full(StatusCode::OK, None, Bytes::from_static(b"OK")),
            "info" => {
                let mut info = serde_json::json!({ "name": self.name });
                if let Some(version) = &self.version {
                    info["version"] = version.clone().into();
                }
                let body = serde_json::to_vec_pretty(&info).unwrap_or_default();
                full(StatusCode::OK, Some("application/json"), body.into())
            }
            _ => empty(StatusCode::NOT_FOUND),
        }
    }

    fn static_response(&self, index: usize) -> Response<ResponseBody> {
        let Some(spec) = self.static_responses.get(&index) else {
            return empty(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let mut builder = Response::builder().status(spec.status_code.unwrap_or(200));
        for (name, value) in &spec.headers {
            builder = builder.header(name, value);
        }
        let body = spec.body.clone().unwrap_or_default();
        builder
            .body(
                Full::new(Bytes::from(body))
                    .map_err(|never| match never {})
                    .boxed_unsync(),
            )
            .unwrap_or_else(|_| empty(StatusCode::INTERNAL_SERVER_ERROR))
    }
}

/// Adds Spin's request headers (after the client's own) and makes the URI
/// absolute, as Spin's HTTP trigger does.
fn prepare_request(
    request: &mut Request<Incoming>,
    route: &RouteMatch,
    client_addr: SocketAddr,
) -> Result<(), StatusCode> {
    if request.headers().values().any(|value| value.to_str().is_err()) {
        tracing::error!("Error processing request: a header value is not valid UTF-8");
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let host = match request.headers().get(HOST) {
        Some(host) => host.to_str().map_err(|_| StatusCode::BAD_REQUEST)?.to_owned(),
        None => match request.uri().authority() {
            Some(authority) => authority.to_string(),
            None => return Err(StatusCode::BAD_REQUEST),
        },
    };
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let full_url = format!("http://{host}{path_and_query}");
    *request.uri_mut() = full_url.parse().map_err(|_| StatusCode::BAD_REQUEST)?;

    let mut spin_headers: Vec<(String, String)> = vec![
        ("spin-path-info".into(), route.path_info().to_owned()),
        ("spin-full-url".into(), full_url),
        ("spin-matched-route".into(), route.matched_route().to_owned()),
        ("spin-base-path".into(), "/".into()),
        ("spin-raw-component-route".into(), route.raw_route().to_owned()),
        ("spin-component-route".into(), route.component_route().to_owned()),
        ("spin-client-addr".into(), client_addr.to_string()),
    ];
    for (name, value) in route.captures() {
        let header = format!("spin-path-match-{}", name.replace('_', "-").to_ascii_lowercase());
        spin_headers.push((header, (*value).to_owned()));
    }
    let headers = request.headers_mut();
    for (name, value) in spin_headers {
        // Names or values that cannot be headers are skipped, as in Spin.
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.append(name, value);
        }
    }
    Ok(())
}

fn empty(status: StatusCode) -> Response<ResponseBody> {
    let mut response = Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    response
}

fn full(status: StatusCode, content_type: Option<&'static str>, body: Bytes) -> Response<ResponseBody> {
    let mut response = Response::new(Full::new(body).map_err(|never| match never {}).boxed_unsync());
    *response.status_mut() = status;
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response
}

/// Wraps a response body and logs the request once the body is finished
/// (or abandoned): method, path, component, status, duration, bytes, and
/// whether the whole body went out.
struct AccessLog {
    inner: ResponseBody,
    method: Method,
    path: String,
    handled_by: String,
    status: StatusCode,
    started: Instant,
    bytes: u64,
    expected_bytes: Option<u64>,
    ended: bool,
}

impl Body for AccessLog {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => self.ended = true,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        tracing::info!(
            target: "spindrive_host::access",
            method = %self.method,
            path = %self.path,
            component = %self.handled_by,
            status = self.status.as_u16(),
            duration_ms = self.started.elapsed().as_secs_f64() * 1000.0,
            bytes = self.bytes,
            complete = self.ended
                || self.inner.is_end_stream()
                || self.expected_bytes.is_some_and(|expected| expected == self.bytes),
            "request"
        );
    }
}
