//! The NBD client behind remote connections: libnbd loaded at run time (`libnbd`), one poller
//! thread for every connection (`poller`), requests and their callbacks (`ops`), a connection
//! (`client`) and a disk (`disk`). The safe logic it uses is `crate::remote`.

pub mod client;
pub mod disk;
pub mod libnbd;
pub mod ops;
pub mod poller;
