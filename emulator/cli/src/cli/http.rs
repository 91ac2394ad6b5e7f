//! `--http ADDR|PORT|off` and `--http-key KEY` for the UI and `serve`: where the Durable
//! Functions HTTP management API listens, and starting it beside the engine.
//!
//! The default, `127.0.0.1:7071` plus `[::1]:7071`, is where Azure Functions' local host
//! listens, so scripts and clients written against `func start` find the emulator there. As
//! with `--grpc` (sidecar.rs): the sockets are bound before the database opens; a default port
//! that is taken does not stop the emulator (it runs without the API and says why); an address
//! the user gave must work, or the command fails (exit 2) naming it and the flag. Loopback
//! unless an address says otherwise, and a wider one is printed with a warning. Owns no routes
//! or payloads: that is `durable-emu-http`.

use super::endpoint::EndpointGuard;
use super::listen::{self, Bound, Listen, Serving, in_use};
use anyhow::Context;
use clap::Args;
use durable_emu_engine::DbLocation;
use durable_emu_engine::engine::AsyncEngineHandle;
use durable_emu_http::HttpConfig;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Azure Functions' local port.
pub const DEFAULT_PORT: u16 = 7071;

/// Where the HTTP API listens, and its key.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Serve the Durable Functions HTTP API on ADDR (host:port, or a port alone for
    /// 127.0.0.1), or `off`; default: 127.0.0.1:7071 and [::1]:7071. Anything but loopback is
    /// reachable from other machines.
    #[arg(long, value_name = "ADDR|PORT|off", value_parser = parse_listen)]
    http: Option<Listen>,
    /// Require this key on every HTTP call (Azure's `code=KEY` query parameter or the
    /// `x-functions-key` header); without it a call is refused with 401.
    #[arg(long, value_name = "KEY")]
    http_key: Option<String>,
}

impl HttpArgs {
    /// The API on exactly `addr`, without a key (what `bench http` serves on).
    pub fn at(addr: SocketAddr) -> HttpArgs {
        HttpArgs {
            http: Some(Listen::At(addr)),
            http_key: None,
        }
    }
}

fn parse_listen(text: &str) -> Result<Listen, String> {
    listen::parse(text, DEFAULT_PORT)
}

/// What became of the HTTP API, for the UI's status line and serve's stderr.
#[derive(Debug)]
pub enum HttpState {
    /// Listening on these addresses; `keyed`: whether calls need the key.
    Listening { addrs: Vec<SocketAddr>, keyed: bool },
    /// Turned off with `--http off`.
    Off,
    /// The default address could not be used; the emulator runs without the API.
    Unavailable(String),
}

impl HttpState {
    /// One line that says where HTTP clients connect, or why they cannot.
    pub fn describe(&self) -> String {
        match self {
            HttpState::Listening { addrs, keyed } => {
                let list: Vec<String> = addrs.iter().map(|addr| format!("http://{addr}")).collect();
                let wide = addrs.iter().any(|addr| !addr.ip().is_loopback());
                let warning = match (wide, keyed) {
                    (false, _) => "",
                    (true, true) => " (NOT loopback: reachable from other machines)",
                    (true, false) => {
                        " (NOT loopback: reachable from other machines, and no --http-key)"
                    }
                };
                format!(
                    "Durable Functions HTTP API on {} (/runtime/webhooks/durabletask/){}{warning}",
                    list.join(" and "),
                    if *keyed { ", key required" } else { "" },
                )
            }
            HttpState::Off => "Durable Functions HTTP API off (--http off)".to_string(),
            HttpState::Unavailable(why) => format!("Durable Functions HTTP API off: {why}"),
        }
    }
}

/// The running API: dropping it stops accepting connections.
#[derive(Debug)]
pub struct HttpServer {
    pub state: HttpState,
    _serving: Serving,
}

impl HttpServer {
    /// The base URL other processes reach the API at (`http://127.0.0.1:7071`), if it listens:
    /// the first address bound, with an unspecified one (`0.0.0.0`, `[::]`) given as the
    /// loopback address of its family, which always reaches it from this machine.
    pub fn url(&self) -> Option<String> {
        let HttpState::Listening { addrs, .. } = &self.state else {
            return None;
        };
        let mut addr = *addrs.first()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr.ip() {
                IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        Some(format!("http://{addr}"))
    }

    /// Publishes where the API listens for `db` (the endpoint file other `durable-emu`
    /// commands look for, `endpoint.rs`); call it once the database is open. Nothing when the
    /// API does not listen. A file that cannot be written is warned about on stderr and is not
    /// fatal: the API still serves, other commands just do not find it by themselves.
    pub fn publish(&self, db: &DbLocation) -> Option<EndpointGuard> {
        let url = self.url()?;
        match super::endpoint::publish(db, &url) {
            Ok(guard) => Some(guard),
            Err(error) => {
                eprintln!(
                    "warning: the HTTP API serves on {url}, but other durable-emu commands will \
                     not find it: {error:#}"
                );
                None
            }
        }
    }
}

/// The sockets bound for the API (or why there are none), before the engine starts.
#[derive(Debug)]
pub struct HttpListeners {
    state: HttpState,
    runtime: Option<tokio::runtime::Runtime>,
    bound: Vec<tokio::net::TcpListener>,
    config: HttpConfig,
}

impl HttpArgs {
    /// Binds the API's addresses on its own runtime (serving starts with
    /// [`HttpListeners::serve`], once the engine runs).
    pub fn bind(&self) -> anyhow::Result<HttpListeners> {
        let config = HttpConfig {
            key: self.http_key.clone(),
            ..HttpConfig::default()
        };
        let off = |state, config| HttpListeners {
            state,
            runtime: None,
            bound: Vec::new(),
            config,
        };
        if self.http == Some(Listen::Off) {
            return Ok(off(HttpState::Off, config));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("durable-emu-http")
            .enable_all()
            .build()
            .context("starting the HTTP API's runtime")?;
        let bound = listen::bind_each(
            &runtime,
            self.http,
            DEFAULT_PORT,
            tokio::net::TcpListener::bind,
            |addr, error| {
                format!(
                    "cannot listen for HTTP on {addr}: {}; pick another address with --http \
                     ADDR or turn the HTTP API off with --http off",
                    in_use(&error)
                )
            },
            |addr, error| {
                format!(
                    "cannot listen on {addr}: {} (another durable-emu or `func start`?); \
                     start with --http ADDR to serve elsewhere",
                    in_use(&error)
                )
            },
        )?;
        let bound = match bound {
            Bound::Listening(bound) => bound,
            Bound::Off => return Ok(off(HttpState::Off, config)),
            Bound::DefaultTaken(why) => return Ok(off(HttpState::Unavailable(why), config)),
        };
        let addrs = bound
            .iter()
            .filter_map(|listener| listener.local_addr().ok())
            .collect();
        Ok(HttpListeners {
            state: HttpState::Listening {
                addrs,
                keyed: config.key.is_some(),
            },
            runtime: Some(runtime),
            bound,
            config,
        })
    }
}

impl HttpListeners {
    /// Serves the bound sockets over `engine` on the API's own thread.
    pub fn serve(self, engine: AsyncEngineHandle) -> anyhow::Result<HttpServer> {
        let HttpListeners {
            state,
            runtime,
            bound,
            config,
        } = self;
        let Some(runtime) = runtime else {
            return Ok(HttpServer {
                state,
                _serving: Serving::default(),
            });
        };
        let app = durable_emu_http::router(engine, config);
        let serving = listen::serve_on_thread("durable-emu-http", runtime, bound, move |listener, stopped| {
            let app = app.clone();
            async move {
                if let Err(error) = durable_emu_http::serve(listener, app, stopped).await {
                    tracing::warn!(target: "durable_emu::http", "the HTTP API stopped: {error}");
                }
            }
        })
        .context("starting the HTTP API's thread")?;
        Ok(HttpServer {
            state,
            _serving: serving,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_alone_listens_on_ipv4_loopback() {
        assert_eq!(
            parse_listen("7100"),
            Ok(Listen::At("127.0.0.1:7100".parse().unwrap()))
        );
    }

    #[test]
    fn off_and_addresses_parse_and_nonsense_says_what_to_give() {
        assert_eq!(parse_listen("Off"), Ok(Listen::Off));
        assert_eq!(
            parse_listen("[::1]:7071"),
            Ok(Listen::At("[::1]:7071".parse().unwrap()))
        );
        assert_eq!(
            parse_listen("localhost:7072"),
            Ok(Listen::At("127.0.0.1:7072".parse().unwrap()))
        );
        let error = parse_listen("there").unwrap_err();
        assert!(error.contains("host:port"), "{error}");
    }

    #[test]
    fn the_published_url_reaches_an_unspecified_address_through_loopback() {
        let server = |addr: &str| HttpServer {
            state: HttpState::Listening {
                addrs: vec![addr.parse().unwrap()],
                keyed: false,
            },
            _serving: Serving::default(),
        };
        assert_eq!(
            server("0.0.0.0:7071").url().unwrap(),
            "http://127.0.0.1:7071"
        );
        assert_eq!(server("[::]:7072").url().unwrap(), "http://[::1]:7072");
        assert_eq!(
            server("127.0.0.1:7073").url().unwrap(),
            "http://127.0.0.1:7073"
        );
        let off = HttpServer {
            state: HttpState::Off,
            _serving: Serving::default(),
        };
        assert_eq!(off.url(), None);
    }

    #[test]
    fn a_wide_address_is_called_out_and_more_loudly_without_a_key() {
        let wide = |keyed| HttpState::Listening {
            addrs: vec!["0.0.0.0:7071".parse().unwrap()],
            keyed,
        };
        assert!(wide(true).describe().contains("NOT loopback"));
        assert!(!wide(true).describe().contains("no --http-key"));
        assert!(wide(false).describe().contains("no --http-key"));
        let local = HttpState::Listening {
            addrs: vec!["127.0.0.1:7071".parse().unwrap()],
            keyed: false,
        };
        assert!(!local.describe().contains("NOT"), "{}", local.describe());
    }
}
