//! Listeners: the gate (hyper, optional rustls TLS) and the admin API. They translate HTTP into
//! the engine's protocol-neutral requests and never decide anything themselves.
//!
//! Built by the gate issue; today this crate only fixes its place in the dependency graph.
