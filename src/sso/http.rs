//! The HTTP client that talks to the OpenID Provider: hyper with rustls on
//! aws-lc-rs (the stack the AWS SDK already builds; no second TLS or crypto
//! build), the system's trust store (`SSL_CERT_FILE` and `SSL_CERT_DIR` are
//! honoured), bounded in time and size, and never following a redirect (a
//! redirect-following client can be steered at internal hosts).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// A whole exchange with the provider (discovery, JWKS, token) is bounded.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Provider answers (discovery, keys, tokens) are small; more is refused.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("no TLS protocol version is available")]
    Tls,
    #[error("the provider did not answer in time")]
    Timeout,
    #[error("the request to the provider failed")]
    Request(#[source] hyper_util::client::legacy::Error),
    #[error("the provider's answer could not be read (or is over 1 MiB)")]
    Body,
}

/// The provider's client: cheap to clone.
#[derive(Clone)]
pub struct ProviderHttp {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl std::fmt::Debug for ProviderHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ProviderHttp")
    }
}

impl ProviderHttp {
    pub fn new() -> Result<Self, HttpClientError> {
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        for e in &native.errors {
            tracing::warn!(error = %e, "a system CA certificate could not be loaded");
        }
        let (added, ignored) = roots.add_parsable_certificates(native.certs);
        if added == 0 {
            tracing::warn!(
                ignored,
                "no system CA certificates: https OpenID Providers cannot be reached"
            );
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|_| HttpClientError::Tls)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        // http:// is only ever configured for loopback (config::parse_url).
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(https),
        })
    }

    async fn send(
        client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
        request: openidconnect::HttpRequest,
    ) -> Result<openidconnect::HttpResponse, HttpClientError> {
        let (parts, body) = request.into_parts();
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(body)));
        let exchange = async {
            let response = client
                .request(request)
                .await
                .map_err(HttpClientError::Request)?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|_| HttpClientError::Body)?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body.to_vec()))
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .map_err(|_| HttpClientError::Timeout)?
    }
}

impl<'c> openidconnect::AsyncHttpClient<'c> for ProviderHttp {
    type Error = HttpClientError;
    type Future = Pin<
        Box<dyn Future<Output = Result<openidconnect::HttpResponse, HttpClientError>> + Send + 'c>,
    >;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(Self::send(self.client.clone(), request))
    }
}

#[cfg(test)]
mod tests {
    use openidconnect::AsyncHttpClient as _;

    use super::*;

    async fn one_answer(answer: Vec<u8>) -> std::net::SocketAddr {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = sock.read(&mut buf).await.unwrap();
            let _ = sock.write_all(&answer).await;
        });
        addr
    }

    fn get(url: String) -> openidconnect::HttpRequest {
        http::Request::get(url).body(Vec::new()).unwrap()
    }

    #[tokio::test]
    async fn the_provider_client_does_not_follow_redirects() {
        let addr = one_answer(
            b"HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\n\r\n".to_vec(),
        )
        .await;
        let http = ProviderHttp::new().unwrap();
        let resp = http
            .call(get(format!(
                "http://{addr}/.well-known/openid-configuration"
            )))
            .await
            .unwrap();
        assert_eq!(resp.status(), http::StatusCode::FOUND);
    }

    #[tokio::test]
    async fn an_oversized_answer_is_refused() {
        let mut answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n".to_vec();
        answer.resize(answer.len() + 2_000_000, b'x');
        let addr = one_answer(answer).await;
        let http = ProviderHttp::new().unwrap();
        let err = http
            .call(get(format!("http://{addr}/jwks")))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpClientError::Body), "{err:?}");
    }

    #[tokio::test]
    async fn nothing_listening_is_a_request_error_not_a_hang() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let err = ProviderHttp::new()
            .unwrap()
            .call(get(format!("http://127.0.0.1:{port}/")))
            .await
            .unwrap_err();
        assert!(matches!(err, HttpClientError::Request(_)), "{err:?}");
    }
}
