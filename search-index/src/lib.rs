//! In-memory charge point search (issue 3).
