//! Outbound HTTP (`wasi:http` client, 0.2 and 0.3), allowed only to the
//! component's `allowed_outbound_hosts`; a denied request gets
//! `HTTP-request-denied`, as on Spin. With `block_networks` set, a 0.3
//! request resolves its host here, drops blocked addresses and connects
//! only to a checked one (`destination-IP-prohibited` when none is left);
//! 0.2 requests are refused outright then, as their connector would
//! resolve the name again.

use crate::allowed_hosts::{AllowedHosts, Destination, report_denied};
use crate::outbound_networking::{BlockedNetworks, Unreachable};
use bytes::Bytes;
use http_body_util::BodyExt;
use http_body_util::combinators::UnsyncBoxBody;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use wasmtime_wasi::TrappableError;
use wasmtime_wasi_http::p2;
use wasmtime_wasi_http::p3;

/// The outbound-HTTP policy of one instance.
#[derive(Clone, Debug)]
pub struct OutboundHttp {
    pub component_id: Arc<str>,
    pub allowed_hosts: Arc<AllowedHosts>,
    pub blocked_networks: Arc<BlockedNetworks>,
}

impl OutboundHttp {
    fn is_allowed(&self, uri: &http::Uri) -> bool {
        let destination = Destination::new(
            uri.scheme_str().unwrap_or("http"),
            uri.host().unwrap_or_default(),
            uri.port_u16(),
        );
        let allowed = self.allowed_hosts.allows(&destination);
        if !allowed {
            report_denied(&self.component_id, &destination);
        }
        allowed
    }
}

type P3Body = UnsyncBoxBody<Bytes, p3::bindings::http::types::ErrorCode>;
type P3ErrorCode = p3::bindings::http::types::ErrorCode;
type P3Io = Box<dyn Future<Output = Result<(), P3ErrorCode>> + Send>;

impl p3::WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<P3Body>,
        options: Option<p3::RequestOptions>,
        _response_result: P3Io,
    ) -> Box<dyn Future<Output = Result<(http::Response<P3Body>, P3Io), TrappableError<P3ErrorCode>>> + Send>
    {
        if !self.is_allowed(request.uri()) {
            return Box::new(async { Err(P3ErrorCode::HttpRequestDenied.into()) });
        }
        let blocked = self.blocked_networks.clone();
        Box::new(async move {
            if blocked.is_empty() {
                let (response, io) = p3::default_send_request(request, options).await?;
                Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as P3Io))
            } else {
                Ok(send_checked(request, options, &blocked).await?)
            }
        })
    }
}

impl p2::WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: hyper::Request<p2::body::HyperOutgoingBody>,
        config: p2::types::OutgoingRequestConfig,
    ) -> p2::HttpResult<p2::types::HostFutureIncomingResponse> {
        if !self.is_allowed(request.uri()) {
            return Err(p2::bindings::http::types::ErrorCode::HttpRequestDenied.into());
        }
        if !self.blocked_networks.is_empty() {
            tracing::error!(
                component = &*self.component_id,
                "wasi:http 0.2 requests are refused while block_networks is set"
            );
            return Err(p2::bindings::http::types::ErrorCode::DestinationIpProhibited.into());
        }
        Ok(p2::default_send_request(request, config))
    }
}

/// What a request may wait for when its options set no limit (as in
/// wasmtime's own connector).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// Sends `request` over a connection to an address `blocked` allows.
async fn send_checked(
    mut request: http::Request<P3Body>,
    options: Option<p3::RequestOptions>,
    blocked: &BlockedNetworks,
) -> Result<(http::Response<P3Body>, P3Io), P3ErrorCode> {
    let uri = request.uri().clone();
    let host = uri.host().ok_or(P3ErrorCode::HttpRequestUriInvalid)?;
    let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let timeout = |pick: fn(&p3::RequestOptions) -> Option<Duration>| {
        options.as_ref().and_then(pick).unwrap_or(DEFAULT_TIMEOUT)
    };
    let connect_timeout = timeout(|o| o.connect_timeout);
    let first_byte_timeout = timeout(|o| o.first_byte_timeout);

    // Resolving, connecting and the TLS handshake share the connect timeout.
    let deadline = tokio::time::Instant::now() + connect_timeout;
    let addresses = tokio::time::timeout_at(deadline, blocked.resolve(host, port))
        .await
        .map_err(|_| P3ErrorCode::ConnectionTimeout)?
        .map_err(|unreachable| match unreachable {
            Unreachable::Blocked => P3ErrorCode::DestinationIpProhibited,
            Unreachable::NotFound(_) => P3ErrorCode::DnsError(p3::bindings::http::types::DnsErrorPayload {
                rcode: Some("address not available".into()),
                info_code: Some(0),
            }),
        })?;
    let stream = tokio::time::timeout_at(deadline, TcpStream::connect(&addresses[..]))
        .await
        .map_err(|_| P3ErrorCode::ConnectionTimeout)?
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::TimedOut => P3ErrorCode::ConnectionTimeout,
            std::io::ErrorKind::ConnectionRefused => P3ErrorCode::ConnectionRefused,
            _ => P3ErrorCode::DestinationUnavailable,
        })?;

    *request.uri_mut() = uri.path_and_query().map_or_else(
        || http::Uri::from_static("/"),
        |path| path.as_str().parse().unwrap_or_default(),
    );
    let (response, io) = if tls {
        let server_name =
            rustls::pki_types::ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']'))
                .map_err(|_| P3ErrorCode::HttpRequestUriInvalid)?
                .to_owned();
        let stream = tokio::time::timeout_at(deadline, tls_connector().connect(server_name, stream))
            .await
            .map_err(|_| P3ErrorCode::ConnectionTimeout)?
            .map_err(|_| P3ErrorCode::TlsProtocolError)?;
        exchange(stream, request, first_byte_timeout).await?
    } else {
        exchange(stream, request, first_byte_timeout).await?
    };
    Ok((response, io))
}

/// TLS with the webpki roots, as wasmtime's own connector has it.
fn tls_connector() -> tokio_rustls::TlsConnector {
    static CONFIG: std::sync::OnceLock<Arc<rustls::ClientConfig>> = std::sync::OnceLock::new();
    let config = CONFIG.get_or_init(|| {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Arc::new(config)
    });
    tokio_rustls::TlsConnector::from(config.clone())
}

/// One HTTP/1.1 exchange on `stream`: the connection is driven while the
/// response head is awaited, then by the returned future, which wasmtime
/// polls while the guest reads the body and drops (closing the socket)
/// when the guest is done with the response.
async fn exchange<S>(
    stream: S,
    request: http::Request<P3Body>,
    first_byte_timeout: Duration,
) -> Result<(http::Response<P3Body>, P3Io), P3ErrorCode>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(P3ErrorCode::from_hyper_request_error)?;
    let mut connection = Box::pin(connection);
    let response = tokio::time::timeout(first_byte_timeout, async {
        let send = sender.send_request(request);
        tokio::pin!(send);
        tokio::select! {
            response = &mut send => response.map_err(P3ErrorCode::from_hyper_request_error),
            // The connection ended before a response: its error, if any.
            ended = &mut connection => match ended {
                Err(error) => Err(P3ErrorCode::from_hyper_request_error(error)),
                Ok(()) => send.await.map_err(P3ErrorCode::from_hyper_request_error),
            },
        }
    })
    .await
    .map_err(|_| P3ErrorCode::ConnectionReadTimeout)??;
    let io: P3Io = Box::new(async move { connection.await.map_err(|error| response_error(&error)) });
    let response = response.map(|body| body.map_err(|e| response_error(&e)).boxed_unsync());
    Ok((response, io))
}

/// A failure while the response arrives.
fn response_error(error: &hyper::Error) -> P3ErrorCode {
    use std::error::Error as _;
    if error.is_timeout() {
        return P3ErrorCode::HttpResponseTimeout;
    }
    match error
        .source()
        .and_then(|cause| cause.downcast_ref::<P3ErrorCode>())
    {
        Some(code) => code.clone(),
        None => P3ErrorCode::HttpProtocolError,
    }
}
