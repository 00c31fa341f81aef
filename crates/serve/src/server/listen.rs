//! The accept loop: HTTP/1.1 connections with a header-read timeout (which also bounds the idle
//! wait between requests on a keep-alive connection), at most `max_connections` at once (more
//! wait in the listen backlog until one closes), and a graceful stop on SIGTERM or Ctrl-C.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};

use super::Server;

/// How long requests in flight may take to finish after a stop signal.
const DRAIN: Duration = Duration::from_secs(30);

/// Resolves on SIGTERM or Ctrl-C.
pub(super) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Accept connections on `listener` and serve `app` on each until `stop` resolves; then stop
/// accepting and let open connections finish their requests (at most [`DRAIN`]).
pub(super) async fn accept_loop(
    listener: tokio::net::TcpListener,
    server: Arc<Server>,
    app: axum::Router,
    stop: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(server.opts.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        // A free slot first: at the limit, new clients wait in the backlog, not in our memory.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            () = &mut stop => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of descriptors and the like: wait a moment rather than spin.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(server.opts.header_timeout).keep_alive(true);
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let s = server.clone();
        s.metrics.connections_total.fetch_add(1, Ordering::Relaxed);
        s.metrics.connections_open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection closed: {e}");
            }
            s.metrics.connections_open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still open after {DRAIN:?}; stopping anyway");
    }
}
