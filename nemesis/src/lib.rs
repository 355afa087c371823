//! The fault model (what a fault is, seeded schedules) and the injectors per environment.
