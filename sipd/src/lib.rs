//! sipd as a library: the command line, the server and `route-test`, so tests start it in-process.
