//! Partner off-ramp API: RFC 9421 signed requests (`httpsig`, `auth`), rates, payouts, settlements and the event
//! feed (`api`, `views`), signed webhooks with a durable retry queue (`webhook`, `feed`, `store`), a signed client
//! (`client`) and the devnet partner simulator (`sim`).

pub mod agents;
pub mod api;
pub mod auth;
pub mod client;
pub use crate::config::partner as config;
pub mod feed;
pub mod httpsig;
pub mod sim;
pub mod store;
pub mod views;
pub mod webhook;
pub mod wiring;

pub use api::{PartnerApiDoc, PartnerState, partner_router};
pub use wiring::{add_partner, keygen, openapi, router, spawn_dev_sim, spawn_workers};
