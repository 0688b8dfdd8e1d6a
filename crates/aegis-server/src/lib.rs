//! Listeners: the gate (hyper, optional rustls TLS). They translate HTTP into the engine's
//! protocol-neutral `Intent` and `Denial`s back into HTTP; they never decide anything.

pub mod error;
pub mod gate;
pub mod respond;
pub mod tls;

pub use error::ServeError;
