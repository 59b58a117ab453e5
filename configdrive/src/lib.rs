//! Reproducible config-2 drives (see issue 4).
