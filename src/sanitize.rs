//! Server-supplied text made safe for a terminal.
//! STUB: interface only; to be implemented.
