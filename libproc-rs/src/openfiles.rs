//! Open file descriptors in detail (npfiles): stat, fdinfo, sockets.
