//! The fleet's HTTP servers' connection handling (fleet manager API, healthcheck, auditor):
//! hyper's HTTP/1.1 with limits `axum::serve` does not have, so that a few slow or idle clients
//! cannot hold a server's connections:
//!
//! - **header read timeout**: from a request's first byte (or the TLS handshake's) until its head
//!   is read;
//! - **idle timeout**: a keep-alive connection with no request and no byte moving is closed;
//! - **request timeout**: a request (its body included) must be answered within this time (a
//!   long poll waits at most 60 s, below the default);
//! - **connection limit**: past it, connections wait in the kernel's backlog instead of being
//!   accepted.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::response::IntoResponse;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tower::ServiceExt;

/// How long a server waits for in-flight requests once told to stop.
const DRAIN: Duration = Duration::from_secs(10);

/// A server's connection limits (every field has a flag or config field where the server is set up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(90),
            max_connections: 1024,
        }
    }
}

/// What a connection's watchdog reads: when bytes last moved, whether a request is being
/// answered, and when the head of the next one began arriving.
#[derive(Default)]
struct Activity {
    /// Milliseconds since the connection was accepted.
    last_io_ms: AtomicU64,
    /// 0: no request head in progress; else its first byte's time + 1.
    head_started_ms: AtomicU64,
    in_flight: AtomicUsize,
}

struct Tracked<IO> {
    io: IO,
    activity: Arc<Activity>,
    accepted: Instant,
}

impl<IO> Tracked<IO> {
    fn touch(&self, read: bool) {
        let now = self.accepted.elapsed().as_millis() as u64;
        self.activity.last_io_ms.store(now, Ordering::Relaxed);
        if read && self.activity.in_flight.load(Ordering::Relaxed) == 0 {
            let _ = self.activity.head_started_ms.compare_exchange(0, now + 1, Ordering::Relaxed, Ordering::Relaxed);
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.touch(true);
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.touch(false);
        }
        polled
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Why a connection's watchdog closed it (logged at debug).
fn overdue(activity: &Activity, elapsed_ms: u64, limits: &ServeLimits) -> Option<&'static str> {
    if activity.in_flight.load(Ordering::Relaxed) > 0 {
        return None;
    }
    let head = activity.head_started_ms.load(Ordering::Relaxed);
    if head != 0 {
        return (elapsed_ms.saturating_sub(head - 1) > limits.header_read_timeout.as_millis() as u64).then_some("header read timeout");
    }
    (elapsed_ms.saturating_sub(activity.last_io_ms.load(Ordering::Relaxed)) > limits.idle_timeout.as_millis() as u64).then_some("idle timeout")
}

/// The first bytes of a connection to a TLS server: a TLS handshake goes on to rustls; anything
/// else is most likely plain HTTP, answered with a 400 that names https (as nginx does).
async fn handshake(mut stream: TcpStream, acceptor: tokio_rustls::TlsAcceptor) -> Option<TlsStream<TcpStream>> {
    let mut first = [0u8; 1];
    // 0x16: a TLS handshake record.
    match stream.peek(&mut first).await {
        Ok(1) if first[0] == 0x16 => {}
        Ok(1) => {
            let body = "this server speaks HTTPS only: use an https:// URL\n";
            let answer = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
            return None;
        }
        _ => return None,
    }
    match acceptor.accept(stream).await {
        Ok(tls) => Some(tls),
        Err(e) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
    }
}

/// Serves `router` on `tcp` (through `tls` when given) until `shutdown` resolves.
pub async fn serve(
    tcp: TcpListener,
    router: axum::Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = tcp.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let router = router.clone();
        let tls = tls.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => connection(stream, router, limits, stop).await,
                Some(acceptor) => match tokio::time::timeout(limits.header_read_timeout, handshake(stream, acceptor)).await {
                    Ok(Some(tls)) => connection(tls, router, limits, stop).await,
                    Ok(None) => {}
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                },
            }
        });
    }
    drop(tcp);
    let _ = stop_tx.send(true);
    // Every connection holds a permit: all of them back means all connections ended.
    let all = u32::try_from(limits.max_connections.max(1)).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(DRAIN + Duration::from_secs(1), permits.acquire_many(all)).await;
    Ok(())
}

async fn connection<IO>(io: IO, router: axum::Router, limits: ServeLimits, mut stop: tokio::sync::watch::Receiver<bool>)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let io = Tracked { io, activity: activity.clone(), accepted: Instant::now() };
    let accepted = io.accepted;
    let in_service = activity.clone();
    let service = hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let router = router.clone();
        let activity = in_service.clone();
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.head_started_ms.store(0, Ordering::Relaxed);
        async move {
            let answered = tokio::time::timeout(limits.request_timeout, router.oneshot(request.map(axum::body::Body::new))).await;
            activity.in_flight.fetch_sub(1, Ordering::Relaxed);
            activity.last_io_ms.store(accepted.elapsed().as_millis() as u64, Ordering::Relaxed);
            Ok::<_, std::convert::Infallible>(match answered {
                Ok(Ok(response)) => response,
                Ok(Err(never)) => match never {},
                Err(_) => (
                    axum::http::StatusCode::REQUEST_TIMEOUT,
                    [(axum::http::header::CONNECTION, "close")],
                    format!("the request was not completed within {} s", limits.request_timeout.as_secs()),
                )
                    .into_response(),
            })
        }
    });
    // No hyper timer: its header-read timeout would also close idle keep-alive connections; the
    // watchdog below times heads and idleness apart.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let check = (limits.header_read_timeout.min(limits.idle_timeout) / 4).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut tick = tokio::time::interval(check);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            served = conn.as_mut() => {
                if let Err(e) = served {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = tick.tick() => {
                if let Some(why) = overdue(&activity, accepted.elapsed().as_millis() as u64, &limits) {
                    tracing::debug!(why, "closing connection");
                    return;
                }
            }
            _ = stop.changed() => {
                // The server is stopping (or gone): finish the request in flight, take no other.
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(DRAIN, conn.as_mut()).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_watchdog_closes_slow_heads_and_idle_connections_but_not_requests_in_flight() {
        let limits = ServeLimits { header_read_timeout: Duration::from_secs(10), idle_timeout: Duration::from_secs(60), ..Default::default() };
        let a = Activity::default();
        assert_eq!(overdue(&a, 59_000, &limits), None, "idle, within the idle timeout");
        assert_eq!(overdue(&a, 61_000, &limits), Some("idle timeout"));
        a.head_started_ms.store(1_000 + 1, Ordering::Relaxed);
        assert_eq!(overdue(&a, 10_500, &limits), None, "a head arriving for 9.5 s");
        assert_eq!(overdue(&a, 11_500, &limits), Some("header read timeout"));
        a.in_flight.store(1, Ordering::Relaxed);
        assert_eq!(overdue(&a, 100_000, &limits), None, "a request in flight is the request timeout's");
    }
}
