//! Export of the leaf or the whole chain as DER or PEM.
//! STUB: interface only; to be implemented.
