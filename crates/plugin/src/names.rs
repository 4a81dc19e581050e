//! Which names a plugin may register: `package>Name`, never a built-in's.

/// Typetag names of kiln's built-in regularizers (a plugin may not shadow them).
pub const BUILTIN_REGULARIZERS: &[&str] = &["L1", "L2", "L1L2", "Plugin"];

/// Typetag names of kiln's built-in callbacks.
pub const BUILTIN_CALLBACKS: &[&str] = &["EarlyStopping", "TerminateOnNaN", "ModelCheckpoint", "Plugin"];

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameProblem {
    /// It is a built-in's name.
    Builtin,
    /// It is not `package>Name`.
    Malformed,
}

/// Checks one registered name against the built-ins and the `package>Name` shape.
pub(crate) fn check(name: &str, builtins: &[&str]) -> Result<(), NameProblem> {
    // Built-ins first: "L2" is both malformed and a shadow, and the shadow is the real news.
    if builtins.contains(&name) {
        return Err(NameProblem::Builtin);
    }
    let well_formed = name.split_once('>').is_some_and(|(pkg, class)| {
        let ok = |s: &str| !s.is_empty() && !s.contains('>') && !s.chars().any(char::is_whitespace);
        ok(pkg) && ok(class)
    });
    if well_formed { Ok(()) } else { Err(NameProblem::Malformed) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(check("kiln_l3>L3", BUILTIN_REGULARIZERS), Ok(()));
        assert_eq!(check("L2", BUILTIN_REGULARIZERS), Err(NameProblem::Builtin));
        assert_eq!(check("Plugin", BUILTIN_CALLBACKS), Err(NameProblem::Builtin));
        assert_eq!(check("EarlyStopping", BUILTIN_CALLBACKS), Err(NameProblem::Builtin));
        for bad in ["L3", ">L3", "pkg>", "a>b>c", "my pkg>L3", ""] {
            assert_eq!(check(bad, BUILTIN_REGULARIZERS), Err(NameProblem::Malformed), "{bad}");
        }
    }
}
