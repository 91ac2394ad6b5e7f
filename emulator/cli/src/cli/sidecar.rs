//! `--grpc ADDR|off` for the UI and `serve`: where the Durable Task sidecar (the
//! TaskHubSidecarService the official SDKs talk to) listens, and starting it beside the engine.
//!
//! The default, `127.0.0.1:4001` plus `[::1]:4001`, is what the SDKs dial (`localhost:4001`
//! may resolve to either). A default port that is taken does not stop the emulator: it starts
//! without the sidecar and says why. An address the user gave must work, or the command fails
//! naming the port and the flag. Owns no protocol: that is `durable-emu-grpc`.

use super::listen::{self, Bound, Listen, Serving};
use anyhow::Context;
use clap::Args;
use durable_emu_engine::engine::AsyncEngineHandle;
use durable_emu_grpc::DEFAULT_PORT;
use std::net::SocketAddr;

/// Where the sidecar listens.
#[derive(Debug, Clone, Args)]
pub struct GrpcArgs {
    /// Serve the Durable Task gRPC protocol (TaskHubSidecarService) on ADDR (host:port, or a
    /// port alone for 127.0.0.1), or `off`; default: 127.0.0.1:4001 and [::1]:4001, the
    /// official SDKs' default address. Anything but loopback is reachable from other machines.
    #[arg(long, value_name = "ADDR|off", value_parser = parse_listen)]
    grpc: Option<Listen>,
}

fn parse_listen(text: &str) -> Result<Listen, String> {
    listen::parse(text, DEFAULT_PORT)
}

/// What became of the sidecar, for the UI's status line and serve's stderr.
#[derive(Debug)]
pub enum SidecarState {
    /// Listening on these addresses.
    Listening(Vec<SocketAddr>),
    /// Turned off with `--grpc off`.
    Off,
    /// The default address could not be used; the emulator runs without the sidecar.
    Unavailable(String),
}

impl SidecarState {
    /// One line that says where SDK workers and clients connect, or why they cannot.
    pub fn describe(&self) -> String {
        match self {
            SidecarState::Listening(addrs) => {
                let list: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                let wide = addrs.iter().any(|addr| !addr.ip().is_loopback());
                format!(
                    "Durable Task gRPC sidecar on {}{}",
                    list.join(" and "),
                    if wide {
                        " (NOT loopback: reachable from other machines)"
                    } else {
                        ""
                    }
                )
            }
            SidecarState::Off => "Durable Task gRPC sidecar off (--grpc off)".to_string(),
            SidecarState::Unavailable(why) => format!("Durable Task gRPC sidecar off: {why}"),
        }
    }
}

/// The running sidecar: dropping it stops accepting connections.
#[derive(Debug)]
pub struct Sidecar {
    pub state: SidecarState,
    _serving: Serving,
}

/// The sockets bound for the sidecar (or why there are none), before the engine starts: a port
/// named with `--grpc` that cannot be had fails the command before the database is touched.
#[derive(Debug)]
pub struct Listeners {
    state: SidecarState,
    runtime: Option<tokio::runtime::Runtime>,
    bound: Vec<durable_emu_grpc::BoundSidecar>,
}

impl GrpcArgs {
    /// Binds the sidecar's addresses on its own runtime (serving starts with
    /// [`Listeners::serve`], once the engine runs).
    pub fn bind(&self) -> anyhow::Result<Listeners> {
        let off = |state| Listeners {
            state,
            runtime: None,
            bound: Vec::new(),
        };
        if self.grpc == Some(Listen::Off) {
            return Ok(off(SidecarState::Off));
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("durable-emu-grpc")
            .enable_all()
            .build()
            .context("starting the gRPC sidecar's runtime")?;
        let bound = listen::bind_each(
            &runtime,
            self.grpc,
            DEFAULT_PORT,
            durable_emu_grpc::bind,
            // The error names the address given with --grpc (SidecarError's message).
            |_, error| {
                format!(
                    "{error}; pick another address with --grpc ADDR or turn the sidecar off \
                     with --grpc off"
                )
            },
            |_, error| {
                format!(
                    "{error} (another durable-emu or a DTS emulator?); start with --grpc ADDR \
                     to serve elsewhere"
                )
            },
        )?;
        let bound = match bound {
            Bound::Listening(bound) => bound,
            Bound::Off => return Ok(off(SidecarState::Off)),
            Bound::DefaultTaken(why) => return Ok(off(SidecarState::Unavailable(why))),
        };
        let listening = bound
            .iter()
            .map(durable_emu_grpc::BoundSidecar::local_addr)
            .collect();
        Ok(Listeners {
            state: SidecarState::Listening(listening),
            runtime: Some(runtime),
            bound,
        })
    }
}

impl Listeners {
    /// Whether the sidecar will serve (so the engine should take work for remote workers).
    pub fn listening(&self) -> bool {
        matches!(self.state, SidecarState::Listening(_))
    }

    /// Serves the bound sockets over `engine` on the sidecar's own thread.
    pub fn serve(self, engine: AsyncEngineHandle) -> anyhow::Result<Sidecar> {
        let Listeners {
            state,
            runtime,
            bound,
        } = self;
        let Some(runtime) = runtime else {
            return Ok(Sidecar {
                state,
                _serving: Serving::default(),
            });
        };
        let serving = listen::serve_on_thread("durable-emu-grpc", runtime, bound, move |sidecar, stopped| {
            let engine = engine.clone();
            async move {
                if let Err(error) = sidecar.serve(engine, stopped).await {
                    tracing::warn!(target: "durable_emu::grpc", "the gRPC sidecar stopped: {error}");
                }
            }
        })
        .context("starting the gRPC sidecar's thread")?;
        Ok(Sidecar {
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
            parse_listen("4100"),
            Ok(Listen::At("127.0.0.1:4100".parse().unwrap()))
        );
    }

    #[test]
    fn off_and_addresses_parse_and_nonsense_says_what_to_give() {
        assert_eq!(parse_listen("OFF"), Ok(Listen::Off));
        assert_eq!(
            parse_listen("[::1]:4001"),
            Ok(Listen::At("[::1]:4001".parse().unwrap()))
        );
        assert_eq!(
            parse_listen("localhost:4002"),
            Ok(Listen::At("127.0.0.1:4002".parse().unwrap()))
        );
        let error = parse_listen("here").unwrap_err();
        assert!(error.contains("host:port"), "{error}");
    }

    #[test]
    fn a_wide_address_is_called_out() {
        let state = SidecarState::Listening(vec!["0.0.0.0:4001".parse().unwrap()]);
        assert!(
            state.describe().contains("NOT loopback"),
            "{}",
            state.describe()
        );
        let local = SidecarState::Listening(vec!["127.0.0.1:4001".parse().unwrap()]);
        assert!(!local.describe().contains("NOT"), "{}", local.describe());
    }
}
