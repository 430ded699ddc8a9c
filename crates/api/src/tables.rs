//! How many orders each service remembers: the sizes of its bounded tables, named once for all of them.
//!
//! Plain data and names: each service reads them with its own configuration
//! reader ([`TableLimits::read`]), so this crate stays free of the HTTP kit.

/// How many orders each service keeps a record of (reservations, payments,
/// deliveries, emails). At about 1 KiB a record the default stays under
/// 10 MiB, well inside the 128 MiB memory limit the manifests set.
pub const ORDER_RECORDS_MAX: &str = "ORDER_RECORDS_MAX";
pub const DEFAULT_ORDER_RECORDS_MAX: usize = 10_000;
/// How many cancelled orders each service remembers, so that a step arriving
/// after its undo is refused. Only ids: 10,000 take well under 1 MiB.
pub const CANCELLED_ORDERS_MAX: &str = "CANCELLED_ORDERS_MAX";
pub const DEFAULT_CANCELLED_ORDERS_MAX: usize = 10_000;

/// The table sizes a service reads from its environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableLimits {
    pub records: usize,
    pub cancelled: usize,
}

impl TableLimits {
    /// Both sizes, each read as `read(variable, default)`; `read` is expected
    /// to refuse a size of 0 (e.g. `service_kit::config::env_count`).
    pub fn read<E>(read: impl Fn(&'static str, usize) -> Result<usize, E>) -> Result<Self, E> {
        Ok(Self {
            records: read(ORDER_RECORDS_MAX, DEFAULT_ORDER_RECORDS_MAX)?,
            cancelled: read(CANCELLED_ORDERS_MAX, DEFAULT_CANCELLED_ORDERS_MAX)?,
        })
    }
}

impl Default for TableLimits {
    fn default() -> Self {
        Self {
            records: DEFAULT_ORDER_RECORDS_MAX,
            cancelled: DEFAULT_CANCELLED_ORDERS_MAX,
        }
    }
}
