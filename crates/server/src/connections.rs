//! The HTTP/1.1 serve loop: a bound on connections served at once, a header-read timeout,
//! an idle keep-alive timeout and a bounded graceful shutdown (`axum::serve` has none of
//! these).
//!
//! Each connection has an [`Activity`]: the requests in flight (a request is in flight from
//! its head until its response body is dropped, so a streaming SSE response keeps its
//! connection busy however long it runs) and the deadline of the phase it is in:
//! - awaiting a head (from the accept, or from the first byte read while nothing is in
//!   flight): closed `header_read_timeout` after the phase began;
//! - idle (nothing in flight, nothing of a next request read): closed `idle_timeout` after
//!   the last response ended;
//! - busy: no deadline.
//!
//! hyper's own `header_read_timeout` is not used: its timer starts as soon as a keep-alive
//! connection goes idle, so it would also close idle connections after the header timeout.
//!
//! A connection holds its semaphore permit in its IO, so an upgraded WebSocket (which takes
//! the IO over from hyper) keeps counting until it closes.

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use hyper::body::{Body as HttpBody, Bytes, Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt;

/// How long a shutdown waits for in-flight requests (an open SSE stream never ends by
/// itself) before the remaining connections are closed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// After an accept error that is not about one connection (out of file descriptors), the
/// loop waits this long before accepting again rather than spinning.
const ACCEPT_RETRY: Duration = Duration::from_secs(1);

/// The connection limits of [`crate::serve`].
#[derive(Clone, Copy, Debug)]
pub struct ConnLimits {
    /// How long a client may take to send a request's head; `None`: unbounded.
    pub header_read_timeout: Option<Duration>,
    /// How long a keep-alive connection may stay idle; `None`: unbounded.
    pub idle_timeout: Option<Duration>,
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
}

impl ConnLimits {
    /// The limits of `settings`; a timeout of 0 s means none.
    pub fn from_settings(settings: &sluice_core::Settings) -> ConnLimits {
        let secs = |s: u64| (s > 0).then(|| Duration::from_secs(s));
        ConnLimits {
            header_read_timeout: secs(settings.header_read_timeout_secs),
            idle_timeout: secs(settings.idle_timeout_secs),
            max_connections: settings.max_connections,
        }
    }
}

pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    // A semaphore cannot have 0 permits here (no connection would ever be served) nor more
    // than it supports; the settings refuse 0 already.
    let permits = Arc::new(Semaphore::new(
        limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
    ));
    // Every connection task holds a receiver: a sent value asks it to shut down gracefully,
    // the sender dropped (this function returned or was dropped) closes it at once, and
    // `closed()` tells when every connection has ended.
    let (stop, stop_rx) = watch::channel(());
    let mut shutdown = pin!(shutdown);
    loop {
        let (permit, stream) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = accept(&listener, &permits) => accepted,
        };
        tokio::spawn(connection(
            stream,
            permit,
            app.clone(),
            limits,
            stop_rx.clone(),
        ));
    }
    drop(listener);
    drop(stop_rx);
    stop.send_replace(());
    if tokio::time::timeout(SHUTDOWN_GRACE, stop.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = stop.receiver_count(),
            "closing connections still busy after the shutdown grace"
        );
    }
}

/// Waits for a permit, then for a connection.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> (OwnedSemaphorePermit, TcpStream) {
    let permit = Arc::clone(permits)
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    loop {
        match listener.accept().await {
            Ok((stream, _)) => return (permit, stream),
            // The client gave up before its connection was accepted.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::error!(error = %e, "cannot accept a connection; retrying");
                tokio::time::sleep(ACCEPT_RETRY).await;
            }
        }
    }
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

async fn connection(
    stream: TcpStream,
    permit: OwnedSemaphorePermit,
    app: Router,
    limits: ConnLimits,
    mut stop: watch::Receiver<()>,
) {
    let activity = Arc::new(Activity::new(limits));
    let io = TokioIo::new(TrackedIo {
        stream,
        activity: Arc::clone(&activity),
        _permit: permit,
    });
    let in_flight = Arc::clone(&activity);
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = InFlight::start(Arc::clone(&in_flight));
        let app = app.clone();
        async move {
            let response = app.oneshot(req).await?;
            Ok::<_, std::convert::Infallible>(response.map(|body| TrackedBody {
                body,
                _in_flight: guard,
            }))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        // Timeouts are this module's (see the module doc), not hyper's.
        .header_read_timeout(None)
        .serve_connection(io, service)
        .with_upgrades();
    let mut conn = pin!(conn);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            phase = activity.expired() => {
                // Dropping the connection closes its socket.
                tracing::debug!(phase, "closing a connection past its timeout");
                return;
            }
            changed = stop.changed() => match changed {
                // Finishes the requests in flight, then closes (an idle connection at once).
                Ok(()) => conn.as_mut().graceful_shutdown(),
                Err(_) => return,
            },
        }
    }
}

/// What a connection is doing, shared by its IO, its requests' guards and its task.
struct Activity {
    limits: ConnLimits,
    state: Mutex<State>,
    /// Woken when a deadline is set, which may be earlier than the one being waited for.
    deadline_set: Notify,
}

struct State {
    in_flight: usize,
    awaiting_head: bool,
    deadline: Option<Instant>,
}

impl Activity {
    /// A new connection awaits its first head.
    fn new(limits: ConnLimits) -> Activity {
        Activity {
            limits,
            state: Mutex::new(State {
                in_flight: 0,
                awaiting_head: true,
                deadline: limits.header_read_timeout.map(|t| Instant::now() + t),
            }),
            deadline_set: Notify::new(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes were read: with nothing in flight they begin a next request's head.
    fn read(&self) {
        let mut s = self.state();
        if s.in_flight == 0 && !s.awaiting_head {
            s.awaiting_head = true;
            s.deadline = self.limits.header_read_timeout.map(|t| Instant::now() + t);
            drop(s);
            self.deadline_set.notify_one();
        }
    }

    fn request_started(&self) {
        let mut s = self.state();
        s.in_flight += 1;
        s.awaiting_head = false;
        s.deadline = None;
    }

    fn request_ended(&self) {
        let mut s = self.state();
        s.in_flight -= 1;
        if s.in_flight == 0 {
            s.deadline = self.limits.idle_timeout.map(|t| Instant::now() + t);
            drop(s);
            self.deadline_set.notify_one();
        }
    }

    /// Resolves once the current phase's deadline has passed; names the phase.
    async fn expired(&self) -> &'static str {
        loop {
            // `notify_one` keeps a permit when nobody waits, so a deadline set between
            // reading the state and waiting is not missed.
            let (deadline, phase) = {
                let s = self.state();
                let phase = if s.awaiting_head {
                    "awaiting a request head"
                } else {
                    "idle"
                };
                (s.deadline, phase)
            };
            match deadline {
                Some(d) if d <= Instant::now() => return phase,
                Some(d) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(d) => {}
                        () = self.deadline_set.notified() => {}
                    }
                }
                None => self.deadline_set.notified().await,
            }
        }
    }
}

/// Keeps a request in flight while it lives: in the handler's future, then in the response
/// body until hyper drops it (sent, or the connection gone).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: Arc<Activity>) -> InFlight {
        activity.request_started();
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.request_ended();
    }
}

struct TrackedBody {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The socket, reporting reads to the connection's activity and holding its permit.
struct TrackedIo {
    stream: TcpStream,
    activity: Arc<Activity>,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.stream).poll_read(cx, buf))?;
        if buf.filled().len() > before {
            this.activity.read();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
