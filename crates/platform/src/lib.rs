//! ledge's platform records (being written).
