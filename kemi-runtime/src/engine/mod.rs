//! Script engines. (Skeleton.)
