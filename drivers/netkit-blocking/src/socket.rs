//! The socket handle given to handlers: netkit-sys's handle, shared by both
//! drivers.

/// One connection, as seen from inside a [`Handler`](crate::Handler) callback
/// (see [`netkit_sys::Socket`] for its methods).
pub type Socket<'a, D> = netkit_sys::Socket<'a, D>;
