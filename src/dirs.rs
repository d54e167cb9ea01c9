//! The user's folders pressing keeps things in, after the XDG Base Directory specification:
//! the queue file under the state folder, the staging folders of `run --out s3://` and the
//! worker's scratch under the cache folder. One place decides them.

use std::ffi::OsString;
use std::path::PathBuf;

/// Which of the user's folders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UserDir {
    /// `$XDG_STATE_HOME`, else `~/.local/state`: what must outlive a restart (the queue file).
    State,
    /// `$XDG_CACHE_HOME`, else `~/.cache`: what can be made again (staging, scratch).
    Cache,
}

impl UserDir {
    fn var(self) -> &'static str {
        match self {
            UserDir::State => "XDG_STATE_HOME",
            UserDir::Cache => "XDG_CACHE_HOME",
        }
    }

    fn under_home(self) -> &'static str {
        match self {
            UserDir::State => ".local/state",
            UserDir::Cache => ".cache",
        }
    }
}

/// `<the user's folder>/pressing`.
pub fn pressing_dir(dir: UserDir) -> PathBuf {
    resolve(dir, std::env::var_os(dir.var()), std::env::var_os("HOME"))
}

/// The folder from the environment's values: an unset or empty (or relative, which the
/// specification says to ignore) variable falls back to the home folder, and with no home
/// to the system's temporary folder.
fn resolve(dir: UserDir, var: Option<OsString>, home: Option<OsString>) -> PathBuf {
    let base = var
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            home.filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(dir.under_home()))
        })
        .unwrap_or_else(std::env::temp_dir);
    base.join("pressing")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_follow_xdg_then_home_then_tmp() {
        let some = |s: &str| Some(OsString::from(s));
        let cases = [
            (
                UserDir::State,
                some("/x/state"),
                some("/home/u"),
                "/x/state/pressing",
            ),
            (
                UserDir::State,
                None,
                some("/home/u"),
                "/home/u/.local/state/pressing",
            ),
            (
                UserDir::State,
                some(""),
                some("/home/u"),
                "/home/u/.local/state/pressing",
            ),
            (
                UserDir::State,
                some("rel"),
                some("/home/u"),
                "/home/u/.local/state/pressing",
            ),
            (
                UserDir::Cache,
                some("/x/cache"),
                some("/home/u"),
                "/x/cache/pressing",
            ),
            (
                UserDir::Cache,
                None,
                some("/home/u"),
                "/home/u/.cache/pressing",
            ),
        ];
        for (dir, var, home, want) in cases.clone() {
            assert_eq!(resolve(dir, var, home), PathBuf::from(want), "{dir:?}");
        }
        assert_eq!(
            resolve(UserDir::Cache, None, None),
            std::env::temp_dir().join("pressing")
        );
        assert_eq!(cases.len(), 6);
    }
}
