//! Request JSON Schemas per resource and microversion, and the validator
//! that checks bodies and query strings against them. Answers to upstream's
//! `placement/schemas/`.

pub mod common;
pub mod resource_classes;
pub mod traits;
pub mod validator;
