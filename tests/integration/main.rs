//! Integration tests: the real server in-process (or as processes) on a
//! fresh PostgreSQL database per test.

mod support;

mod inventories;
mod protocol;
mod standard_data;
