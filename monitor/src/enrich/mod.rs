//! What the daemon adds to an event after a source made it: where its
//! source address is (country, city, network).

pub mod geo;
