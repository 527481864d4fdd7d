//! Serving the router on a listener: plain HTTP or TLS (rustls, ring provider), HTTP/1.1 and
//! HTTP/2, and the drain on shutdown.
//!
//! One accept loop serves both, on hyper-util's connection builder, so TLS and plain HTTP
//! shut down the same way: when `shutdown` resolves the listener is closed at once (new
//! connections are refused), idle keep-alive connections are closed, and requests in flight
//! run to their end — bounded by [`ServeOptions::drain_timeout`]. Each request carries
//! `axum::extract::ConnectInfo<SocketAddr>` (the peer address), as
//! `into_make_service_with_connect_info` would give.

use crate::transport::JsonParseErrorsIo;
use crate::{router, AppState};
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a client may take to send a request's headers (HTTP/1.1; slow-loris bound).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP/2 header list limit, in bytes: HTTP/1.1's head buffer in hyper (8 KiB + 100 ×
/// 4 KiB), so that both protocols leave the same requests to the router's own checks (such as
/// [`crate::MAX_URI_BYTES`]).
const H2_MAX_HEADER_LIST_BYTES: u32 = 8192 + 4096 * 100;

/// How [`serve_with`] serves.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// TLS server configuration (see [`load_tls`]); `None` serves plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Longest wait, after shutdown begins, for requests in flight to finish; connections
    /// still open then are dropped (their clients see a connection error, never a lost 2xx:
    /// a handler answers only after its transaction committed).
    pub drain_timeout: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            tls: None,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// What the drain did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drained {
    /// Connections open when shutdown began.
    pub open_at_shutdown: usize,
    /// Whether all of them closed within the drain timeout.
    pub complete: bool,
}

/// A certificate chain or private key that could not be loaded; the message names the file.
#[derive(Debug)]
pub struct TlsConfigError(pub String);

impl std::fmt::Display for TlsConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsConfigError {}

/// Loads a PEM certificate chain (leaf first) and its PEM private key (PKCS#8, PKCS#1 or
/// SEC1) into a rustls server configuration: TLS 1.2 and 1.3 with rustls' safe defaults on the
/// `ring` provider, no client authentication, ALPN `h2` then `http/1.1`.
///
/// # Errors
/// [`TlsConfigError`] naming the file: unreadable, no certificate / key in it, or a key that
/// does not match the certificate.
pub fn load_tls(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let err = |what: &str, p: &Path, e: &dyn std::fmt::Display| {
        TlsConfigError(format!("TLS {what} {}: {e}", p.display()))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| err("certificate", cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| err("certificate", cert, &e))?;
    if chain.is_empty() {
        return Err(err("certificate", cert, &"no PEM CERTIFICATE block in it"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| err("private key", key, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsConfigError(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            TlsConfigError(format!(
                "TLS certificate {} with key {}: {e}",
                cert.display(),
                key.display()
            ))
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves the application router for `state` on `listener` (TLS when `opts.tls` is set) until
/// `shutdown` resolves, then drains: stops accepting, lets requests in flight finish within
/// `opts.drain_timeout`, and returns. The caller then flushes the vault
/// ([`pivault_core::Vault::shutdown`]).
///
/// # Errors
/// None today besides what the listener reports when it is first polled; accept errors (such
/// as running out of file descriptors) are logged and retried.
pub async fn serve_with(
    listener: TcpListener,
    state: AppState,
    opts: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<Drained> {
    let app = router(state);
    let graceful = GracefulShutdown::new();
    let acceptor = opts.tls.clone().map(TlsAcceptor::from);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req.map(axum::body::Body::new))
            });
        let watcher = graceful.watcher();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let mut builder = Builder::new(TokioExecutor::new());
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT);
            // HTTP/2's default header list limit (16 KiB) answers a 431 with no body before the
            // router sees the request; at HTTP/1.1's head limit (~400 KiB) the router answers
            // a long target with the JSON 414 on both protocols.
            builder
                .http2()
                .max_header_list_size(H2_MAX_HEADER_LIST_BYTES);
            let result = match acceptor {
                None => {
                    let conn = builder.serve_connection_with_upgrades(
                        TokioIo::new(JsonParseErrorsIo::new(tcp)),
                        svc,
                    );
                    watcher.watch(conn).await
                }
                Some(acceptor) => {
                    let tls =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!("TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = builder.serve_connection_with_upgrades(
                        TokioIo::new(JsonParseErrorsIo::new(tls)),
                        svc,
                    );
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    let open_at_shutdown = graceful.count();
    tracing::info!(
        connections = open_at_shutdown,
        timeout_secs = opts.drain_timeout.as_secs_f64(),
        "shutting down: no longer accepting, draining requests in flight"
    );
    let complete = tokio::time::timeout(opts.drain_timeout, graceful.shutdown())
        .await
        .is_ok();
    if !complete {
        tracing::warn!(
            "drain timeout reached: connections still open are dropped (their requests get no \
             answer)"
        );
    }
    Ok(Drained {
        open_at_shutdown,
        complete,
    })
}
