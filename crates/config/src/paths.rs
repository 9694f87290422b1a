//! Resolving configured paths to absolute ones, lexically (nothing needs to exist yet).

use std::path::{Component, Path, PathBuf};

/// `path` if absolute, else `base/path`; `.` components dropped (`..` kept: symlinks make folding it wrong).
pub(crate) fn absolute(base: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() { path.to_path_buf() } else { base.join(path) };
    joined.components().filter(|component| !matches!(component, Component::CurDir)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_join_the_base_and_lose_their_dot_components() {
        assert_eq!(absolute(Path::new("/srv"), Path::new("./.ledge")), PathBuf::from("/srv/.ledge"));
        assert_eq!(absolute(Path::new("/srv/./a"), Path::new("b/./c")), PathBuf::from("/srv/a/b/c"));
        assert_eq!(absolute(Path::new("/srv"), Path::new("/var/lib/ledge")), PathBuf::from("/var/lib/ledge"));
        assert_eq!(absolute(Path::new("/srv"), Path::new("../x")), PathBuf::from("/srv/../x"));
    }
}
