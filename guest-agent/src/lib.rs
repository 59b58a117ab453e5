//! The in-guest agent (see issue 7).
