//! TLS configurations with the system's wall clock: netkit-tls reads no clock,
//! so the drivers supply it (certificate validity, ticket lifetimes).

use std::sync::Arc;

use netkit_tls::rustls::pki_types::UnixTime;
use netkit_tls::rustls::time_provider::TimeProvider;
use netkit_tls::{ClientConfig, ClientOptions, Error, ServerConfig, ServerOptions};

/// The system's wall clock, as rustls wants it.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl TimeProvider for SystemClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(UnixTime::now())
    }
}

/// [`netkit_tls::client_config`] with the system's clock unless `opts` sets one.
pub fn client_config(opts: &ClientOptions) -> Result<ClientConfig, Error> {
    let mut opts = opts.clone();
    opts.time.get_or_insert_with(|| Arc::new(SystemClock));
    netkit_tls::client_config(&opts)
}

/// [`netkit_tls::server_config`] with the system's clock unless `opts` sets one.
pub fn server_config(opts: &ServerOptions) -> Result<ServerConfig, Error> {
    let mut opts = opts.clone();
    opts.time.get_or_insert_with(|| Arc::new(SystemClock));
    netkit_tls::server_config(&opts)
}
