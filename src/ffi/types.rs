pub type VixError = u64;
