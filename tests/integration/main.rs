//! Integration tests: the real server in-process (or as processes) on a
//! fresh PostgreSQL database per test.

mod support;

mod allocations;
mod bad_input;
mod change_feed;
mod claim_rules;
mod claims;
mod failover;
mod generations;
mod http_framing;
mod import_refusals;
mod inventories;
mod keystone;
mod mixed_writers;
mod operations;
mod policy_matrix;
mod protocol;
mod providers;
mod resource_providers;
mod scheduling;
mod scheduling_concurrency;
mod standard_data;
mod status;
mod switchover;
mod view_claims;
mod world_sync;
