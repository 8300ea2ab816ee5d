pub mod adapters;
pub mod info;
