//! Operation generators (register, kv, ...): seeded streams of client operations; see DESIGN.md.
