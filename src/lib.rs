//! slicebox: run one program in its own small container, assembled per call
//! from content-addressed slices stored once and bind-mounted read-only.
//!
//! The layout follows the architecture: `store` keeps slices, `runtime` does
//! the kernel work, `cli` is the one parser shared by the executable and the
//! bash builtins, and `ffi` is the C boundary.

pub mod cli;
pub mod digest;
pub mod env;
pub mod ffi;
#[doc(hidden)]
pub mod fuzzing;
#[doc(hidden)]
pub mod interp;
pub mod os;
pub mod remote;
pub mod runtime;
pub mod store;
pub mod suggest;
pub mod text;
