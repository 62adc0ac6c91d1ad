//! Black-box tests of `spindrive-host`: the real binary, real fixture
//! components, real HTTP. One binary, a module per area.

mod helpers;
mod instances;
mod limits;
mod manifest;
mod outbound;
mod postgres;
mod redis;
mod routing;
mod serving;
mod streaming;
mod variables;
