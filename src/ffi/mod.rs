pub mod codes; pub mod types;
