//! What lockbridge's API simulators (RemoteLock, LibCal) share: a server bound to a port and
//! serving until told to stop or until the last handle is dropped, and their binaries' logging.

use std::{
    io::{self, IsTerminal},
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;
use url::Url;

/// A bound port, before it serves: its URL is known first, since a simulator's state may need
/// it (links it hands out).
pub struct Bound {
    listener: TcpListener,
    pub base_url: Url,
}

/// Binds `listen` (port 0 picks a free one).
pub async fn bind(listen: SocketAddr) -> io::Result<Bound> {
    let listener = TcpListener::bind(listen).await?;
    let base_url = base_url(listener.local_addr()?);
    Ok(Bound { listener, base_url })
}

impl Bound {
    /// Serves `app` until `stop` is cancelled, or until the last clone of the returned
    /// [`Serving`] is dropped.
    pub fn serve(self, app: axum::Router, stop: CancellationToken) -> Serving {
        let serving = Serving {
            base_url: self.base_url,
            _stop_on_drop: Arc::new(StopOnDrop(stop.clone())),
        };
        tokio::spawn(async move {
            let served = axum::serve(self.listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "simulator server failed");
            }
        });
        serving
    }
}

/// A serving simulator, shared by the clones of its handle.
#[derive(Clone)]
pub struct Serving {
    pub base_url: Url,
    _stop_on_drop: Arc<StopOnDrop>,
}

struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// A connectable URL even when listening on all interfaces.
fn base_url(mut addr: SocketAddr) -> Url {
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    Url::parse(&format!("http://{addr}/")).expect("socket address forms a valid URL")
}

/// Human logs on stdout, coloured on a terminal, `RUST_LOG` or `info`.
pub fn init_logging() {
    tracing_subscriber::fmt()
        .with_ansi(io::stdout().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
}
