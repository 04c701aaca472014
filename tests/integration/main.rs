//! Integration tests: the real server in-process (or as processes) on a
//! fresh PostgreSQL database per test.

mod support;

mod allocations;
mod protocol;
mod resource_providers;
mod standard_data;
