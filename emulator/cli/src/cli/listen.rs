//! Where a network front end listens (`--grpc`, `--http`): the flag's value, the loopback pair a
//! default means, and the rule every listener follows when binding (docs/architecture.md): an
//! address the user gave must bind or the command fails naming it; a default whose port is
//! taken leaves the emulator running without that front end; the IPv6 twin of a default is a
//! convenience that may fail alone. Knows nothing of what is served on the sockets.

use std::fmt::Display;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A parsed `--grpc` / `--http`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    Off,
    At(SocketAddr),
}

/// Parses `off`, a port alone (127.0.0.1), `localhost:PORT` or `host:port`; the error's
/// examples use `example_port`.
pub fn parse(text: &str, example_port: u16) -> Result<Listen, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("off") {
        return Ok(Listen::Off);
    }
    let loopback = |port| Listen::At(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port));
    if let Ok(port) = text.parse::<u16>() {
        return Ok(loopback(port));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(Listen::At(addr));
    }
    if let Some(Ok(port)) = text.strip_prefix("localhost:").map(str::parse::<u16>) {
        return Ok(loopback(port));
    }
    let port = example_port;
    Err(format!(
        "'{text}' is not an address to listen on: give host:port (127.0.0.1:{port}, \
         [::1]:{port}, 0.0.0.0:{port}), a port, or off"
    ))
}

/// What binding came to.
pub enum Bound<T> {
    /// Off by request.
    Off,
    /// Every address that bound (at least the first).
    Listening(Vec<T>),
    /// The default address was taken: the front end stays off, for this reason.
    DefaultTaken(String),
}

/// Binds `listen` (None: the default, 127.0.0.1 and [::1] on `default_port`) with `bind` on
/// `runtime`. An address the user gave that does not bind is an error made by `explicit_error`;
/// a taken default is [`Bound::DefaultTaken`] with `default_taken`'s reason.
pub fn bind_each<T, E, F>(
    runtime: &tokio::runtime::Runtime,
    listen: Option<Listen>,
    default_port: u16,
    bind: impl Fn(SocketAddr) -> F,
    explicit_error: impl Fn(SocketAddr, E) -> String,
    default_taken: impl Fn(SocketAddr, E) -> String,
) -> anyhow::Result<Bound<T>>
where
    F: Future<Output = Result<T, E>>,
    E: Display,
{
    let (addrs, explicit) = match listen {
        Some(Listen::Off) => return Ok(Bound::Off),
        Some(Listen::At(addr)) => (vec![addr], true),
        None => (
            vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), default_port),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), default_port),
            ],
            false,
        ),
    };
    let mut bound = Vec::new();
    for (index, addr) in addrs.iter().enumerate() {
        match runtime.block_on(bind(*addr)) {
            Ok(listener) => bound.push(listener),
            Err(error) if explicit => anyhow::bail!("{}", explicit_error(*addr, error)),
            // The IPv6 twin of the default is a convenience: a machine without ::1, or with
            // its port taken, still gets the IPv4 listener.
            Err(_) if index > 0 => {}
            Err(error) => return Ok(Bound::DefaultTaken(default_taken(*addr, error))),
        }
    }
    Ok(Bound::Listening(bound))
}

/// "the address is in use" for the common case, the system's words otherwise.
pub fn in_use(error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::AddrInUse {
        "the address is in use".to_string()
    } else {
        error.to_string()
    }
}

/// A front end serving its bound sockets on a thread of its own: dropping it stops accepting
/// connections. The thread is not joined: an open connection (a client polling, a worker
/// waiting for work) must not hold up the emulator's exit.
#[derive(Debug, Default)]
pub struct Serving {
    stop: Option<tokio::sync::watch::Sender<bool>>,
    _thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Serving {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}

/// Resolves once the front end is told to stop.
pub type Stopped = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// Serves every socket in `bound` with `serve_one(socket, stopped)` on `runtime`, on a thread
/// named `name`, until the returned [`Serving`] drops. `serve_one` reports its own errors.
pub fn serve_on_thread<T, F, S>(
    name: &str,
    runtime: tokio::runtime::Runtime,
    bound: Vec<T>,
    serve_one: S,
) -> std::io::Result<Serving>
where
    T: Send + 'static,
    F: Future<Output = ()> + Send + 'static,
    S: Fn(T, Stopped) -> F + Send + 'static,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let thread = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            runtime.block_on(async move {
                let mut serving = tokio::task::JoinSet::new();
                for socket in bound {
                    let mut stop = stop_rx.clone();
                    let stopped: Stopped = Box::pin(async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                    });
                    serving.spawn(serve_one(socket, stopped));
                }
                while serving.join_next().await.is_some() {}
            });
            runtime.shutdown_background();
        })?;
    Ok(Serving {
        stop: Some(stop_tx),
        _thread: Some(thread),
    })
}
