//! Test fixture: exports kiln's entry symbol, but its header claims ABI version 999.
//!
//! Deliberately hand-written (no kiln-plugin-api): a future or foreign ABI promises only
//! that the version comes first, and the host must stop after reading that one `u32`.

/// Just the two leading fields every header starts with.
#[repr(C)]
pub struct Header {
    abi_version: u32,
    header_size: u32,
}

static HEADER: Header = Header { abi_version: 999, header_size: 8 };

/// kiln's entry symbol, returning the lying header.
#[unsafe(no_mangle)]
pub extern "C" fn kiln_plugin_entry_v1() -> *const Header {
    &HEADER
}
