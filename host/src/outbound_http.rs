//! Outbound HTTP (`wasi:http` client, 0.2 and 0.3), allowed only to the
//! component's `allowed_outbound_hosts`; a denied request gets
//! `HTTP-request-denied`, as on Spin.

use crate::allowed_hosts::{AllowedHosts, Destination, report_denied};
use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use std::sync::Arc;
use wasmtime_wasi::TrappableError;
use wasmtime_wasi_http::p2;
use wasmtime_wasi_http::p3;

/// The outbound-HTTP policy of one instance.
#[derive(Clone, Debug)]
pub struct OutboundHttp {
    pub component_id: Arc<str>,
    pub allowed_hosts: Arc<AllowedHosts>,
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
        Box::new(async move {
            use http_body_util::BodyExt;
            let (response, io) = p3::default_send_request(request, options).await?;
            Ok((response.map(BodyExt::boxed_unsync), Box::new(io) as P3Io))
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
        Ok(p2::default_send_request(request, config))
    }
}
