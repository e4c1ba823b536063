//! The compiler's two IRs and their verifier. `layer`: the model as written (tensors, exact constants);
//! `dfg`: scalar fixed-point operations with exact intervals, stages and names. See
//! `docs/ARCHITECTURE.md` for what each guarantees.

pub mod dfg;
pub mod layer;
pub mod verify;
