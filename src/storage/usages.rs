//! PLACEHOLDER: being implemented.
