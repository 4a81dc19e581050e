//! Semver compatibility between the plugin's and the host's `kiln-plugin-api`.

/// Whether a plugin compiled against API `plugin` may be used by a host with API `host`:
/// `0.x` needs the same minor (cargo's rule for 0.x); `≥ 1` needs the same major and a
/// minor no newer than the host's (the plugin may rely on what its minor added).
pub(crate) fn compatible(plugin: &str, host: &str) -> bool {
    match (major_minor(plugin), major_minor(host)) {
        (Some((0, pm)), Some((0, hm))) => pm == hm,
        (Some((pmaj, pm)), Some((hmaj, hm))) => pmaj == hmaj && pm <= hm,
        _ => false,
    }
}

fn major_minor(v: &str) -> Option<(u64, u64)> {
    let mut parts = v.split(['.', '-', '+']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::compatible;

    #[test]
    fn rules() {
        assert!(compatible("0.1.0", "0.1.7"));
        assert!(compatible("0.1.9", "0.1.0"));
        assert!(!compatible("0.2.0", "0.1.0"));
        assert!(compatible("1.2.0", "1.3.0"));
        assert!(!compatible("1.4.0", "1.3.0"));
        assert!(!compatible("2.0.0", "1.3.0"));
        assert!(!compatible("garbage", "0.1.0"));
    }
}
