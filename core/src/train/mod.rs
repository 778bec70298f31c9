//! Shared training parts: losses, mixup, EMA/SWA, schedules, metrics, the kNN monitor.
