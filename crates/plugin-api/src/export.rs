//! `export_plugin!`: the one line a plugin author writes to expose their types.

/// Exports the plugin's header and entry symbol for the listed types.
///
/// ```ignore
/// kiln_plugin_api::export_plugin!(regularizers = [L3], callbacks = []);
/// ```
///
/// The plugin's name and version are its crate's (`CARGO_PKG_NAME`, `CARGO_PKG_VERSION`),
/// read where the macro expands. Use it once per crate, in a `cdylib`.
#[macro_export]
macro_rules! export_plugin {
    (regularizers = [$($reg:ty),* $(,)?] $(,)?) => {
        $crate::export_plugin!(regularizers = [$($reg),*], callbacks = []);
    };
    (callbacks = [$($cb:ty),* $(,)?] $(,)?) => {
        $crate::export_plugin!(regularizers = [], callbacks = [$($cb),*]);
    };
    (regularizers = [$($reg:ty),* $(,)?], callbacks = [$($cb:ty),* $(,)?] $(,)?) => {
        const _: () = {
            // Consts, not statics: their addresses are 'static data and the header can
            // point into them in a constant initializer.
            const REGULARIZERS: &[$crate::abi::RegularizerFactory] =
                &[$($crate::regularizer_factory::<$reg>()),*];
            const CALLBACKS: &[$crate::abi::CallbackFactory] = &[$($crate::callback_factory::<$cb>()),*];
            static HEADER: $crate::abi::PluginHeader = $crate::abi::PluginHeader {
                abi_version: $crate::abi::ABI_VERSION,
                header_size: ::core::mem::size_of::<$crate::abi::PluginHeader>() as u32,
                api_version: $crate::abi::Str::from_static($crate::abi::API_VERSION),
                rustc_version: $crate::abi::Str::from_static($crate::abi::RUSTC_VERSION),
                plugin_name: $crate::abi::Str::from_static(env!("CARGO_PKG_NAME")),
                plugin_version: $crate::abi::Str::from_static(env!("CARGO_PKG_VERSION")),
                n_regularizers: REGULARIZERS.len(),
                regularizers: REGULARIZERS.as_ptr(),
                n_callbacks: CALLBACKS.len(),
                callbacks: CALLBACKS.as_ptr(),
            };

            /// The plugin's entry point: a pointer to its static header.
            #[unsafe(no_mangle)]
            pub extern "C" fn kiln_plugin_entry_v1() -> *const $crate::abi::PluginHeader {
                &HEADER
            }
        };
    };
}
