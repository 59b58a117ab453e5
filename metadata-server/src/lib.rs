//! The 169.254.169.254 metadata service (see issue 3).
