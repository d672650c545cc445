//! The command line: parse the arguments, set up logging, run a verb, map its error to an
//! exit code (0 ok, 1 blocking problem found, 2 bad usage or config, 3 runtime error).
//!
//! ```text
//!   args.rs (clap) ──> dispatch.rs ──> check / plan / status (commands.rs) / run / cleanup
//!                                      / verify / cutover / langchain / demo.rs / bench.rs
//!                 logging.rs: stderr, human or JSON, above the progress bars
//! ```
//!
//! `demo` and `bench` start throwaway clusters from `testkit` (crate-internal unless
//! the `testkit` feature makes it public for the integration tests).

mod args;
pub mod bench;
pub mod commands;
pub mod demo;
mod dispatch;
mod logging;

pub use dispatch::main;
